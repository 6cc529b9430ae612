/* safetensors reader and writer (see safetensors.h for the contract).
 *
 * Layout of a file: u64 little-endian header length N, N bytes of JSON (an object mapping tensor
 * names to {dtype, shape, data_offsets} plus an optional "__metadata__" object of strings), then
 * the data area; data_offsets are relative to the start of the data area. Everything read from
 * the header is treated as hostile: each problem gets its own one-line message. */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/temp_guard.h"
#include "io/gguf.h"

typedef hd_st_range st_range;

static uint64_t read_u64_le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const hd_st_tensor *)a)->name, ((const hd_st_tensor *)b)->name);
}

/* Element count and byte size of a shape, overflow-checked. Returns 0, or -1 on overflow. */
static int shape_bytes(const int64_t *shape, int ndim, size_t esize, int64_t *numel,
                       uint64_t *nbytes) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    if (esize && (uint64_t)n > UINT64_MAX / esize) return -1;
    *numel = n;
    *nbytes = (uint64_t)n * esize;
    return 0;
}

int hd_st_push_tensor(hd_safetensors *st, int *cap, hd_st_tensor **out, const char *what,
                      hd_error *e) {
    if (st->n_tensors == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        hd_st_tensor *t = realloc(st->tensors, (size_t)nc * sizeof *t);
        if (!t) return hd_fail(e, HD_ENOMEM, "%s: out of memory for the tensor table", what);
        st->tensors = t;
        *cap = nc;
    }
    *out = &st->tensors[st->n_tensors];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int parse_metadata(json_t *meta, const char *what, hd_error *e) {
    if (!json_is_object(meta))
        return hd_fail(e, HD_EFORMAT, "%s: header field '__metadata__' is not an object", what);
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v) {
        if (!json_is_string(v))
            return hd_fail(e, HD_EFORMAT, "%s: __metadata__ value '%s' is not a string", what, k);
    }
    return 0;
}

/* Reads one header entry into t (name already set by the caller). begin/end come back for the
 * range checks. */
static int parse_entry(hd_st_tensor *t, json_t *v, uint64_t data_len, const char *what,
                       uint64_t *begin, uint64_t *end, hd_error *e) {
    const char *name = t->name;
    if (!json_is_object(v))
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': entry is not an object", what, name);

    json_t *jd = json_object_get(v, "dtype");
    if (!jd) return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': missing 'dtype'", what, name);
    if (!json_is_string(jd))
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': 'dtype' is not a string", what, name);
    if (hd_dtype_parse(json_string_value(jd), &t->dtype) != 0)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': unknown dtype '%.32s'", what, name,
                       json_string_value(jd));

    json_t *js = json_object_get(v, "shape");
    if (!js) return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': missing 'shape'", what, name);
    if (!json_is_array(js))
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': 'shape' is not an array", what, name);
    size_t nd = json_array_size(js);
    if (nd > HD_ST_MAX_DIMS)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': shape has %zu dims, more than %d", what,
                       name, nd, HD_ST_MAX_DIMS);
    t->ndim = (int)nd;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d))
            return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': shape[%zu] is not an integer", what,
                           name, i);
        if (json_integer_value(d) < 0)
            return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': shape[%zu] = %lld is negative", what,
                           name, i, (long long)json_integer_value(d));
        t->shape[i] = (int64_t)json_integer_value(d);
    }

    json_t *jo = json_object_get(v, "data_offsets");
    if (!jo) return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': missing 'data_offsets'", what, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': 'data_offsets' is not two integers", what,
                       name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t en = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || en < 0)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': 'data_offsets' [%lld, %lld] is negative",
                       what, name, (long long)b, (long long)en);
    if (b > en)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': data_offsets begin %lld > end %lld", what,
                       name, (long long)b, (long long)en);

    if (shape_bytes(t->shape, t->ndim, hd_dtype_size(t->dtype), &t->numel, &t->nbytes) != 0)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': element count of the shape overflows", what,
                       name);
    if ((uint64_t)(en - b) != t->nbytes)
        return hd_fail(e, HD_EFORMAT,
                       "%s: tensor '%s': data_offsets span %llu bytes but %s x shape needs %llu",
                       what, name, (unsigned long long)(en - b), hd_dtype_name(t->dtype),
                       (unsigned long long)t->nbytes);
    if ((uint64_t)en > data_len)
        return hd_fail(e, HD_EFORMAT,
                       "%s: tensor '%s': data_offsets [%lld, %lld) lie beyond the %llu-byte data "
                       "area",
                       what, name, (long long)b, (long long)en, (unsigned long long)data_len);
    *begin = (uint64_t)b;
    *end = (uint64_t)en;
    return 0;
}

/* After sorting by begin, a non-empty range must start at or after the furthest end seen so
 * far. Empty ranges occupy no bytes and never overlap. */
int hd_st_check_overlaps(hd_st_range *ranges, size_t n_ranges, const char *what, hd_error *e) {
    if (n_ranges < 2) return 0;
    qsort(ranges, n_ranges, sizeof *ranges, cmp_range);
    const st_range *far = NULL;
    for (size_t i = 0; i < n_ranges; i++) {
        const st_range *r = &ranges[i];
        if (r->end == r->begin) continue;
        if (far && r->begin < far->end)
            return hd_fail(e, HD_EFORMAT,
                           "%s: tensor '%s': bytes [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                           what, r->name, (unsigned long long)r->begin, (unsigned long long)r->end,
                           far->name, (unsigned long long)far->begin,
                           (unsigned long long)far->end);
        if (!far || r->end > far->end) far = r;
    }
    return 0;
}

/* Validates the image of file `file` (buf, len) and appends its tensors to st: a GGUF image
 * (by its magic) or a safetensors one. */
static int parse_image(hd_safetensors *st, int file, const uint8_t *buf, size_t len,
                       const char *what, hd_error *e) {
    if (hd_gguf_is_gguf(buf, len)) return hd_gguf_parse(st, file, buf, len, what, e);
    if (len < 8)
        return hd_fail(e, HD_EFORMAT, "%s: file is %zu bytes, shorter than the 8-byte header size",
                       what, len);
    uint64_t hlen = read_u64_le(buf);
    if (hlen == 0) return hd_fail(e, HD_EFORMAT, "%s: header length is 0", what);
    if (hlen > HD_ST_MAX_HEADER)
        return hd_fail(e, HD_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", what,
                       (unsigned long long)hlen, HD_ST_MAX_HEADER);
    if (hlen > len - 8)
        return hd_fail(e, HD_EFORMAT,
                       "%s: header length %llu runs beyond the end of the %zu-byte file", what,
                       (unsigned long long)hlen, len);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: header is not valid JSON: %s (line %d, column %d)", what,
                       jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root)) {
        json_decref(root);
        return hd_fail(e, HD_EFORMAT, "%s: header is not a JSON object", what);
    }

    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_len = (uint64_t)len - 8 - hlen;
    size_t n_entries = json_object_size(root);
    st_range *ranges = calloc(n_entries ? n_entries : 1, sizeof *ranges);
    int cap = st->n_tensors, rc = 0;
    size_t n_ranges = 0;
    if (!ranges) {
        json_decref(root);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory for %zu header entries", what, n_entries);
    }

    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(val, what, e)) < 0) break;
            continue;
        }
        hd_st_tensor *t = NULL;
        if ((rc = hd_st_push_tensor(st, &cap, &t, what, e)) < 0) break;
        t->name = strdup(key);
        if (!t->name) {
            rc = hd_fail(e, HD_ENOMEM, "%s: out of memory for tensor names", what);
            break;
        }
        st->n_tensors++; /* owned by st from here: hd_st_close frees the name */
        uint64_t b = 0, en = 0;
        if ((rc = parse_entry(t, val, data_len, what, &b, &en, e)) < 0) break;
        t->data = data + b;
        t->file = file;
        ranges[n_ranges++] = (st_range){b, en, t->name};
    }

    if (rc == 0) rc = hd_st_check_overlaps(ranges, n_ranges, what, e);
    free(ranges);
    json_decref(root);
    return rc;
}

/* Sorts the table by name and rejects a name present twice (possible only across shards,
 * since one header with a repeated key is already rejected by the JSON parser). */
static int finish_table(hd_safetensors *st, const char *what, hd_error *e) {
    if (st->n_tensors > 1)
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
    for (int i = 1; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
            return hd_fail(e, HD_EFORMAT, "%s: tensor '%s' appears in both %s and %s", what,
                           st->tensors[i].name, st->files[st->tensors[i - 1].file].path,
                           st->files[st->tensors[i].file].path);
    return 0;
}

static int add_file(hd_safetensors *st, const char *path, void *map, size_t size, hd_error *e) {
    hd_st_file *f = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *f);
    if (!f) return hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    st->files = f;
    f[st->n_files] = (hd_st_file){strdup(path), map, size};
    if (!f[st->n_files].path) return hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    st->n_files++;
    return 0;
}

/* Maps `path` read-only, registers it as file index st->n_files and parses it. */
static int open_append(hd_safetensors *st, const char *path, hd_error *e) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below) */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return hd_fail(e, HD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return hd_fail(e, HD_EIO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return hd_fail(e, HD_EIO, "%s: not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return hd_fail(e, HD_EFORMAT, "%s: file is %zu bytes, shorter than the 8-byte header size",
                       path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping stays valid */
    if (map == MAP_FAILED) return hd_fail(e, HD_EIO, "%s: cannot mmap: %s", path, strerror(err));
    int rc = add_file(st, path, map, size, e);
    if (rc < 0) {
        munmap(map, size);
        return rc;
    }
    return parse_image(st, st->n_files - 1, map, size, path, e);
}

int hd_st_open(hd_safetensors *st, const char *path, hd_error *e) {
    memset(st, 0, sizeof *st);
    int rc = open_append(st, path, e);
    if (rc == 0) rc = finish_table(st, path, e);
    if (rc < 0) hd_st_close(st);
    return rc;
}

int hd_st_open_buffer(hd_safetensors *st, const void *buf, size_t len, const char *what,
                      hd_error *e) {
    memset(st, 0, sizeof *st);
    if (!what) what = "<buffer>";
    int rc = add_file(st, what, NULL, len, e);
    if (rc == 0) rc = parse_image(st, 0, buf, len, what, e);
    if (rc == 0) rc = finish_table(st, what, e);
    if (rc < 0) hd_st_close(st);
    return rc;
}

void hd_st_close(hd_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_files; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    memset(st, 0, sizeof *st);
}

void hd_st_release(const hd_safetensors *st, const hd_st_tensor *t, uint64_t off, uint64_t len) {
    if (t->file < 0 || t->file >= st->n_files || !st->files[t->file].map || off >= t->nbytes) return;
    if (len > t->nbytes - off) len = t->nbytes - off;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)t->data + off;
    uintptr_t lo = (a + page - 1) / page * page, hi = (a + len) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice: failure changes nothing */
}

const hd_st_tensor *hd_st_find(const hd_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->tensors[mid].name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- sharded directories ------------------------------------------------------------------ */

#define ST_MAX_INDEX_BYTES (64u << 20)

static char *read_small_file(const char *path, size_t *len, hd_error *e) {
    char *buf;
    return hd_read_file(path, ST_MAX_INDEX_BYTES, &buf, len, e) < 0 ? NULL : buf;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A shard name must be a plain file name inside the directory. */
static int plain_file_name(const char *s) {
    return s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

static int open_sharded(hd_safetensors *st, const char *dir, const char *index_path, hd_error *e) {
    size_t len = 0;
    char *text = read_small_file(index_path, &len, e);
    if (!text) return e ? e->code : HD_EIO;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", index_path,
                       jerr.text, jerr.line, jerr.column);
    int rc = 0;
    json_t *wm = json_is_object(root) ? json_object_get(root, "weight_map") : NULL;
    const char **shards = NULL; /* distinct shard names, in first-mention order */
    size_t n_shards = 0;
    if (!json_is_object(wm)) {
        rc = hd_fail(e, HD_EFORMAT, "%s: 'weight_map' is missing or not an object", index_path);
        goto done;
    }
    shards = calloc(json_object_size(wm) + 1, sizeof *shards);
    if (!shards) {
        rc = hd_fail(e, HD_ENOMEM, "%s: out of memory", index_path);
        goto done;
    }
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        if (!json_is_string(v)) {
            rc = hd_fail(e, HD_EFORMAT, "%s: weight_map entry for tensor '%s' is not a string",
                         index_path, name);
            goto done;
        }
        const char *s = json_string_value(v);
        if (!plain_file_name(s)) {
            rc = hd_fail(e, HD_EFORMAT,
                         "%s: tensor '%s': shard name '%.200s' is not a plain file name",
                         index_path, name, s);
            goto done;
        }
        size_t k = 0;
        while (k < n_shards && strcmp(shards[k], s))
            k++;
        if (k == n_shards) shards[n_shards++] = s;
    }
    if (n_shards == 0) {
        rc = hd_fail(e, HD_EFORMAT, "%s: 'weight_map' names no tensors", index_path);
        goto done;
    }

    char path[4096];
    for (size_t k = 0; k < n_shards; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, shards[k]);
        if (!file_exists(path)) {
            rc = hd_fail(e, HD_EIO, "%s: shard '%s' named in the index does not exist", index_path,
                         shards[k]);
            goto done;
        }
        if ((rc = open_append(st, path, e)) < 0) goto done;
    }
    /* Each tensor must sit in the shard the index names, and every indexed tensor must exist. */
    for (int i = 0; i < st->n_tensors; i++) {
        const hd_st_tensor *t = &st->tensors[i];
        json_t *want = json_object_get(wm, t->name);
        const char *shard = strrchr(st->files[t->file].path, '/') + 1;
        if (!want) {
            rc = hd_fail(e, HD_EFORMAT, "%s: tensor '%s' in shard %s is not listed in the index",
                         index_path, t->name, shard);
            goto done;
        }
        if (strcmp(json_string_value(want), shard)) {
            rc =
                hd_fail(e, HD_EFORMAT, "%s: tensor '%s' is in shard %s but the index maps it to %s",
                        index_path, t->name, shard, json_string_value(want));
            goto done;
        }
    }
    if ((rc = finish_table(st, index_path, e)) < 0) goto done;
    json_object_foreach(wm, name, v) {
        if (!hd_st_find(st, name)) {
            rc = hd_fail(e, HD_EFORMAT, "%s: tensor '%s' listed in the index is missing from %s",
                         index_path, name, json_string_value(v));
            goto done;
        }
    }
done:
    free(shards);
    json_decref(root);
    return rc;
}

int hd_st_open_dir(hd_safetensors *st, const char *dir, hd_error *e) {
    memset(st, 0, sizeof *st);
    char index_path[4096], single[4096], gguf[4096];
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(gguf, sizeof gguf, "%s/model.gguf", dir);
    int rc;
    if (file_exists(index_path)) {
        rc = open_sharded(st, dir, index_path, e);
    } else if (file_exists(single) || file_exists(gguf)) {
        const char *path = file_exists(single) ? single : gguf;
        rc = open_append(st, path, e);
        if (rc == 0) rc = finish_table(st, path, e);
    } else {
        rc = hd_fail(e, HD_EIO,
                     "%s: no model.safetensors, model.safetensors.index.json or model.gguf", dir);
    }
    if (rc < 0) hd_st_close(st);
    return rc;
}

/* ---- typed reads ---------------------------------------------------------------------------- */

/* Tensor data inside a file need not be aligned for its type (the data area starts at 8 + header
 * length), so unaligned sources are converted through an aligned bounce buffer. */
#define ST_BOUNCE_BYTES 4096

/* 0 if n matches; 1 if there is nothing to copy (out may then be NULL); < 0 on mismatch. */
static int check_count(const hd_st_tensor *t, size_t n, hd_error *e) {
    if ((uint64_t)n != (uint64_t)t->numel)
        return hd_fail(e, HD_EMISMATCH, "tensor '%s': caller expects %zu elements, it has %lld",
                       t->name, n, (long long)t->numel);
    return n == 0;
}

int hd_st_read_f32(const hd_st_tensor *t, float *out, size_t n, hd_error *e) {
    int rc = check_count(t, n, e);
    if (rc < 0) return rc;
    if (!hd_dtype_is_float(t->dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "tensor '%s': dtype %s is not a float type", t->name,
                       hd_dtype_name(t->dtype));
    if (rc == 1) return 0;
    size_t es = hd_dtype_size(t->dtype);
    if (es == 0 || (uintptr_t)t->data % es == 0) { /* (quantized blocks are read bytewise) */
        hd_convert_to_f32(t->dtype, t->data, out, n);
        return 0;
    }
    _Alignas(8) unsigned char bounce[ST_BOUNCE_BYTES];
    size_t per = ST_BOUNCE_BYTES / es;
    for (size_t i = 0; i < n; i += per) {
        size_t c = n - i < per ? n - i : per;
        memcpy(bounce, (const unsigned char *)t->data + i * es, c * es);
        hd_convert_to_f32(t->dtype, bounce, out + i, c);
    }
    return 0;
}

int hd_st_read_f64(const hd_st_tensor *t, double *out, size_t n, hd_error *e) {
    int rc = check_count(t, n, e);
    if (rc < 0) return rc;
    if (!hd_dtype_is_float(t->dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "tensor '%s': dtype %s is not a float type", t->name,
                       hd_dtype_name(t->dtype));
    if (rc == 1) return 0;
    const unsigned char *src = t->data;
    if (t->dtype == HD_F64) {
        memcpy(out, src, n * sizeof *out);
        return 0;
    }
    /* every other float type converts exactly to float32, then widens exactly; a chunk is whole
     * blocks of a quantized type (numel is whole rows of blocks, so the tail is too) */
    _Alignas(8) unsigned char bounce[ST_BOUNCE_BYTES];
    float tmp[ST_BOUNCE_BYTES / 4];
    size_t blk = (size_t)hd_dtype_block(t->dtype), per = ST_BOUNCE_BYTES / 4 / blk * blk;
    for (size_t i = 0; i < n; i += per) {
        size_t c = n - i < per ? n - i : per;
        memcpy(bounce, src + hd_dtype_row_bytes(t->dtype, (int64_t)i),
               hd_dtype_row_bytes(t->dtype, (int64_t)c));
        hd_convert_to_f32(t->dtype, bounce, tmp, c);
        for (size_t j = 0; j < c; j++)
            out[i + j] = tmp[j];
    }
    return 0;
}

int hd_st_read_i64(const hd_st_tensor *t, int64_t *out, size_t n, hd_error *e) {
    int rc = check_count(t, n, e);
    if (rc < 0) return rc;
    if (t->dtype != HD_I64 && t->dtype != HD_I32 && t->dtype != HD_I16 && t->dtype != HD_I8 &&
        t->dtype != HD_U8 && t->dtype != HD_BOOL)
        return hd_fail(e, HD_EUNSUPPORTED, "tensor '%s': dtype %s is not an integer type", t->name,
                       hd_dtype_name(t->dtype));
    const unsigned char *p = t->data;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case HD_I64: memcpy(&out[i], p + 8 * i, 8); break;
        case HD_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = v;
            break;
        }
        case HD_I16: {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            out[i] = v;
            break;
        }
        case HD_I8: out[i] = (int8_t)p[i]; break;
        case HD_U8: out[i] = p[i]; break;
        case HD_BOOL: out[i] = p[i] != 0; break;
        default: break; /* excluded above */
        }
    }
    return 0;
}

/* ---- writer --------------------------------------------------------------------------------- */

#define ST_WRITE_CHUNK (4u << 20)

static json_t *build_header(const hd_st_write_item *items, int n_items, const char *path,
                            hd_error *e) {
    json_t *root = json_object(), *meta = json_object();
    if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) ||
        json_object_set_new(root, "__metadata__", meta)) {
        json_decref(root);
        hd_fail(e, HD_ENOMEM, "%s: out of memory building the header", path);
        return NULL;
    }
    uint64_t off = 0;
    for (int i = 0; i < n_items; i++) {
        const hd_st_write_item *it = &items[i];
        const char *name = it->name ? it->name : "";
        int64_t numel = 0;
        uint64_t nbytes = 0;
        const char *why = NULL;
        if (!it->name || !it->name[0] || !strcmp(it->name, "__metadata__"))
            why = "invalid name";
        else if ((unsigned)it->dtype >= HD_DTYPE_COUNT)
            why = "invalid dtype";
        else if (it->ndim < 0 || it->ndim > HD_ST_MAX_DIMS)
            why = "invalid number of dims";
        else if (shape_bytes(it->shape, it->ndim, hd_dtype_size(it->dtype), &numel, &nbytes))
            why = "negative or overflowing shape";
        else if (nbytes && !it->data && !it->fill)
            why = "neither data nor fill given";
        else if (json_object_get(root, it->name))
            why = "name given twice";
        if (why) {
            json_decref(root);
            hd_fail(e, HD_EINVAL, "%s: tensor '%s': %s", path, name, why);
            return NULL;
        }
        json_t *shape = json_array(), *ent = json_object();
        int bad = !shape || !ent;
        for (int d = 0; !bad && d < it->ndim; d++)
            bad = json_array_append_new(shape, json_integer(it->shape[d])) != 0;
        bad = bad || json_object_set_new(ent, "dtype", json_string(hd_dtype_name(it->dtype))) ||
              json_object_set(ent, "shape", shape) ||
              json_object_set_new(ent, "data_offsets",
                                  json_pack("[II]", (json_int_t)off, (json_int_t)(off + nbytes)));
        json_decref(shape);
        if (bad || json_object_set_new(root, it->name, ent)) {
            if (bad) json_decref(ent);
            json_decref(root);
            hd_fail(e, HD_EINVAL, "%s: tensor '%s': cannot add to the header (name not UTF-8?)",
                    path, name);
            return NULL;
        }
        off += nbytes;
    }
    return root;
}

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

int hd_st_write(const char *path, const hd_st_write_item *items, int n_items, hd_error *e) {
    if (n_items < 0 || (n_items > 0 && !items))
        return hd_fail(e, HD_EINVAL, "%s: invalid item list", path);
    json_t *root = build_header(items, n_items, path, e);
    if (!root) return e ? e->code : HD_EINVAL;
    char *hdr = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!hdr) return hd_fail(e, HD_ENOMEM, "%s: out of memory serialising the header", path);

    hd_tmp_file out;
    int orc = hd_tmp_file_open(&out, path, e);
    if (orc < 0) {
        free(hdr);
        return orc;
    }
    FILE *f = out.f;
    const char *tmp = out.tmp;
    int rc = 0;
    unsigned char *chunk = NULL;
    /* pad the JSON with spaces so the data area starts 8-byte aligned */
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7;
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    if (write_all(f, lenbuf, 8) || write_all(f, hdr, hl) || write_all(f, spaces, padded - hl)) {
        rc = hd_fail(e, HD_EIO, "%s: write failed: %s", tmp, strerror(errno));
        goto out;
    }
    for (int i = 0; i < n_items && rc == 0; i++) {
        const hd_st_write_item *it = &items[i];
        int64_t numel = 0;
        uint64_t nbytes = 0;
        shape_bytes(it->shape, it->ndim, hd_dtype_size(it->dtype), &numel, &nbytes);
        if (it->data) {
            /* fwrite in bounded pieces: size_t is fine, but keeps error reporting per chunk */
            for (uint64_t off = 0; off < nbytes && rc == 0; off += ST_WRITE_CHUNK) {
                size_t c = nbytes - off < ST_WRITE_CHUNK ? (size_t)(nbytes - off) : ST_WRITE_CHUNK;
                if (write_all(f, (const unsigned char *)it->data + off, c))
                    rc = hd_fail(e, HD_EIO, "%s: tensor '%s': write failed: %s", tmp, it->name,
                                 strerror(errno));
            }
            continue;
        }
        if (nbytes && !chunk && !(chunk = malloc(ST_WRITE_CHUNK))) {
            rc = hd_fail(e, HD_ENOMEM, "%s: out of memory for the write buffer", tmp);
            break;
        }
        for (uint64_t off = 0; off < nbytes && rc == 0; off += ST_WRITE_CHUNK) {
            size_t c = nbytes - off < ST_WRITE_CHUNK ? (size_t)(nbytes - off) : ST_WRITE_CHUNK;
            if ((rc = it->fill(it->fill_ctx, it, off, chunk, c, e)) < 0) break;
            if (write_all(f, chunk, c))
                rc = hd_fail(e, HD_EIO, "%s: tensor '%s': write failed: %s", tmp, it->name,
                             strerror(errno));
        }
    }
out:
    free(chunk);
    free(hdr);
    return hd_tmp_file_finish(&out, path, rc, e);
}
