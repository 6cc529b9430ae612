/* GGUF reader and writer (see gguf.h for the contract).
 *
 * Layout (v3; v2 is the same with 64-bit counts too): "GGUF", u32 version, u64 tensor count,
 * u64 key/value count; the key/values (u64-length string key, u32 value type, value); the tensor
 * infos (name, u32 n_dims, u64 dims innermost first, u32 ggml type, u64 offset into the data
 * area); padding to the alignment; the data area. All integers little-endian. */
#include "io/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/temp_guard.h"

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 1024      /* longer tensor names are refused */
#define GGUF_MAX_KEY 65535      /* and longer keys */
#define GGUF_MAX_DEPTH 4        /* arrays of arrays nested deeper are refused */
#define ORIG_SHAPE_KEY "comfy.gguf.orig_shape."
#define COMFY_PREFIX "model.diffusion_model."

enum { T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64,
       T_F64, T_COUNT };
static const uint8_t type_size[T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

int hd_gguf_is_gguf(const void *buf, size_t len) {
    return len >= 4 && memcmp(buf, HD_GGUF_MAGIC, 4) == 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t len, off;
    const char *what;
    hd_error *e;
} rd;

static int need(rd *r, uint64_t n, const char *field) {
    if (n > r->len - r->off)
        return hd_fail(r->e, HD_EFORMAT, "%s: %s at byte %zu runs past the end of the %zu-byte file",
                       r->what, field, r->off, r->len);
    return 0;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int get_uint(rd *r, int bytes, uint64_t *v, const char *field) {
    HD_TRY(need(r, (uint64_t)bytes, field));
    *v = le(r->p + r->off, bytes);
    r->off += (size_t)bytes;
    return 0;
}

/* A string: u64 length then bytes (not NUL-terminated; *s points into the file). */
static int get_str(rd *r, const char **s, size_t *n, size_t max, const char *field) {
    uint64_t len;
    HD_TRY(get_uint(r, 8, &len, field));
    if (len > max)
        return hd_fail(r->e, HD_EFORMAT, "%s: %s is %llu bytes long (at most %zu)", r->what, field,
                       (unsigned long long)len, max);
    HD_TRY(need(r, len, field));
    *s = (const char *)r->p + r->off;
    *n = (size_t)len;
    r->off += (size_t)len;
    return 0;
}

/* Skips one value of `type` (validating it), arrays recursively up to GGUF_MAX_DEPTH. */
static int skip_value(rd *r, uint32_t type, int depth, const char *key) {
    if (type >= T_COUNT)
        return hd_fail(r->e, HD_EFORMAT, "%s: key '%s': unknown value type %u", r->what, key, type);
    if (type == T_STRING) {
        const char *s;
        size_t n;
        return get_str(r, &s, &n, r->len, key);
    }
    if (type != T_ARRAY) {
        HD_TRY(need(r, type_size[type], key));
        r->off += type_size[type];
        return 0;
    }
    if (depth >= GGUF_MAX_DEPTH)
        return hd_fail(r->e, HD_EFORMAT, "%s: key '%s': arrays nested deeper than %d", r->what,
                       key, GGUF_MAX_DEPTH);
    uint64_t et, count;
    HD_TRY(get_uint(r, 4, &et, key));
    HD_TRY(get_uint(r, 8, &count, key));
    if (et >= T_COUNT)
        return hd_fail(r->e, HD_EFORMAT, "%s: key '%s': unknown array element type %llu", r->what,
                       key, (unsigned long long)et);
    if (et != T_STRING && et != T_ARRAY) { /* fixed size: one bounds check */
        if (count > (r->len - r->off) / type_size[et]) return need(r, UINT64_MAX, key);
        r->off += (size_t)count * type_size[et];
        return 0;
    }
    if (count > (r->len - r->off) / 8) return need(r, UINT64_MAX, key); /* each element ≥ 8 B */
    for (uint64_t i = 0; i < count; i++)
        HD_TRY(skip_value(r, (uint32_t)et, depth + 1, key));
    return 0;
}

/* A shape given back to a tensor stored flattened (comfy.gguf.orig_shape.NAME). */
typedef struct orig_shape {
    char name[GGUF_MAX_NAME + 1];
    int ndim;
    int64_t shape[HD_ST_MAX_DIMS];
} orig_shape;

typedef struct gguf_meta {
    uint64_t alignment;
    orig_shape *orig;
    int n_orig;
} gguf_meta;

static int read_orig_shape(rd *r, gguf_meta *m, const char *name, size_t name_len,
                           uint32_t type, const char *key) {
    uint64_t et, count;
    if (type != T_ARRAY) return skip_value(r, type, 0, key);
    HD_TRY(get_uint(r, 4, &et, key));
    HD_TRY(get_uint(r, 8, &count, key));
    int ok = et == T_I32 || et == T_U32 || et == T_I64 || et == T_U64;
    size_t pl = strlen(COMFY_PREFIX);
    if (name_len > pl && !memcmp(name, COMFY_PREFIX, pl)) name += pl, name_len -= pl;
    if (!ok || count < 1 || count > HD_ST_MAX_DIMS || name_len > GGUF_MAX_NAME)
        return hd_fail(r->e, HD_EFORMAT, "%s: key '%s': not an integer shape of 1..%d dimensions",
                       r->what, key, HD_ST_MAX_DIMS);
    orig_shape *o = realloc(m->orig, (size_t)(m->n_orig + 1) * sizeof *o);
    if (!o) return hd_fail(r->e, HD_ENOMEM, "%s: out of memory", r->what);
    m->orig = o;
    o = &m->orig[m->n_orig];
    memcpy(o->name, name, name_len);
    o->name[name_len] = 0;
    o->ndim = (int)count;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t v;
        HD_TRY(get_uint(r, type_size[et], &v, key));
        if (et == T_I32) v = (uint64_t)(int64_t)(int32_t)(uint32_t)v;
        if ((int64_t)v < 0)
            return hd_fail(r->e, HD_EFORMAT, "%s: key '%s': negative dimension", r->what, key);
        o->shape[i] = (int64_t)v;
    }
    m->n_orig++;
    return 0;
}

static int read_kv(rd *r, gguf_meta *m) {
    const char *k;
    size_t kn;
    HD_TRY(get_str(r, &k, &kn, GGUF_MAX_KEY, "a metadata key"));
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(kn < 100 ? kn : 100), k);
    uint64_t type;
    HD_TRY(get_uint(r, 4, &type, key));
    if (kn == strlen("general.alignment") && !memcmp(k, "general.alignment", kn)) {
        uint64_t a;
        if (type != T_U32)
            return hd_fail(r->e, HD_EFORMAT, "%s: key 'general.alignment' is not a u32", r->what);
        HD_TRY(get_uint(r, 4, &a, key));
        if (a < 8 || a > 65536 || (a & (a - 1)))
            return hd_fail(r->e, HD_EFORMAT,
                           "%s: key 'general.alignment' is %llu (a power of two 8..65536 needed)",
                           r->what, (unsigned long long)a);
        m->alignment = a;
        return 0;
    }
    size_t pl = strlen(ORIG_SHAPE_KEY);
    if (kn > pl && !memcmp(k, ORIG_SHAPE_KEY, pl))
        return read_orig_shape(r, m, k + pl, kn - pl, (uint32_t)type, key);
    return skip_value(r, (uint32_t)type, 0, key);
}

/* Names of the ggml types this reader does not compute with, for the message. */
static const char *ggml_type_name(uint32_t t) {
    static const char *const names[] = {[3] = "Q4_1", [6] = "Q5_0", [7] = "Q5_1", [9] = "Q8_1",
                                        [10] = "Q2_K", [11] = "Q3_K", [15] = "Q8_K",
                                        [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
                                        [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S",
                                        [22] = "IQ2_S", [23] = "IQ4_XS", [29] = "IQ1_M"};
    return t < sizeof names / sizeof *names && names[t] ? names[t] : "unknown";
}

/* Shape (safetensors order), element count and byte size of one tensor info. */
static int tensor_shape(rd *r, hd_st_tensor *t, const uint64_t *ne, int nd) {
    t->ndim = nd;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        if (ne[i] > (uint64_t)INT64_MAX || (ne[i] && (uint64_t)numel > (uint64_t)INT64_MAX / ne[i]))
            return hd_fail(r->e, HD_EFORMAT, "%s: tensor '%s': shape overflows", r->what, t->name);
        numel *= (int64_t)ne[i];
        t->shape[nd - 1 - i] = (int64_t)ne[i];
    }
    int blk = hd_dtype_block(t->dtype);
    if ((int64_t)ne[0] % blk)
        return hd_fail(r->e, HD_EFORMAT, "%s: tensor '%s': rows of %llu values are not whole %s "
                       "blocks of %d", r->what, t->name, (unsigned long long)ne[0],
                       hd_dtype_name(t->dtype), blk);
    uint64_t row = hd_dtype_row_bytes(t->dtype, (int64_t)ne[0]), rows = ne[0] ? (uint64_t)numel / ne[0] : 0;
    if (rows && row > UINT64_MAX / rows)
        return hd_fail(r->e, HD_EFORMAT, "%s: tensor '%s': byte size overflows", r->what, t->name);
    t->numel = numel;
    t->nbytes = row * rows;
    return 0;
}

/* One tensor info; *offset is its byte offset in the data area. */
static int read_tensor_info(rd *r, hd_st_tensor *t, uint64_t *offset) {
    const char *s;
    size_t n;
    HD_TRY(get_str(r, &s, &n, GGUF_MAX_NAME, "a tensor name"));
    size_t pl = strlen(COMFY_PREFIX);
    if (n > pl && !memcmp(s, COMFY_PREFIX, pl)) s += pl, n -= pl;
    if (n == 0 || memchr(s, 0, n))
        return hd_fail(r->e, HD_EFORMAT, "%s: tensor name at byte %zu is empty or holds a NUL",
                       r->what, r->off);
    if (!(t->name = strndup(s, n))) return hd_fail(r->e, HD_ENOMEM, "%s: out of memory", r->what);
    uint64_t nd, type, ne[GGUF_MAX_DIMS];
    HD_TRY(get_uint(r, 4, &nd, t->name));
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return hd_fail(r->e, HD_EFORMAT, "%s: tensor '%s': %llu dimensions (1..%d)", r->what,
                       t->name, (unsigned long long)nd, GGUF_MAX_DIMS);
    for (uint64_t i = 0; i < nd; i++)
        HD_TRY(get_uint(r, 8, &ne[i], t->name));
    HD_TRY(get_uint(r, 4, &type, t->name));
    if (hd_dtype_from_ggml((uint32_t)type, &t->dtype) != 0 || type > UINT32_MAX)
        return hd_fail(r->e, HD_EUNSUPPORTED, "%s: tensor '%s': ggml type %llu (%s) is not "
                       "supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", r->what,
                       t->name, (unsigned long long)type, ggml_type_name((uint32_t)type));
    HD_TRY(get_uint(r, 8, offset, t->name));
    return tensor_shape(r, t, ne, (int)nd);
}

/* Gives flattened tensors their comfy.gguf.orig_shape back. */
static int apply_orig_shapes(rd *r, hd_safetensors *st, int first, const gguf_meta *m) {
    for (int k = 0; k < m->n_orig; k++) {
        const orig_shape *o = &m->orig[k];
        for (int i = first; i < st->n_tensors; i++) {
            hd_st_tensor *t = &st->tensors[i];
            if (strcmp(t->name, o->name)) continue;
            int64_t n = 1;
            for (int d = 0; d < o->ndim; d++)
                n = o->shape[d] && n > INT64_MAX / o->shape[d] ? -1 : n * o->shape[d];
            if (n != t->numel)
                return hd_fail(r->e, HD_EFORMAT, "%s: key '" ORIG_SHAPE_KEY "%s': %lld values, "
                               "the tensor holds %lld", r->what, o->name, (long long)n,
                               (long long)t->numel);
            t->ndim = o->ndim;
            memcpy(t->shape, o->shape, sizeof o->shape);
        }
    }
    return 0;
}

static int read_header(rd *r, uint64_t *n_tensors, gguf_meta *m) {
    uint64_t version, n_kv;
    r->off = 4;
    HD_TRY(get_uint(r, 4, &version, "the version"));
    if (version != 2 && version != 3)
        return hd_fail(r->e, HD_EUNSUPPORTED, "%s: GGUF version %llu (2 or 3 supported)", r->what,
                       (unsigned long long)version);
    HD_TRY(get_uint(r, 8, n_tensors, "the tensor count"));
    HD_TRY(get_uint(r, 8, &n_kv, "the key/value count"));
    /* each key/value takes ≥ 13 bytes and each tensor info ≥ 28: bound the counts by the file */
    if (n_kv > r->len / 13 || *n_tensors > r->len / 28 || *n_tensors > (1u << 24))
        return hd_fail(r->e, HD_EFORMAT, "%s: %llu keys and %llu tensors cannot fit in %zu bytes",
                       r->what, (unsigned long long)n_kv, (unsigned long long)*n_tensors, r->len);
    m->alignment = HD_GGUF_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++)
        HD_TRY(read_kv(r, m));
    return 0;
}

/* Reads the tensor infos and places each tensor in the data area. */
static int read_tensors(rd *r, hd_safetensors *st, int file, uint64_t n_tensors,
                        const gguf_meta *m, hd_st_range *ranges) {
    int cap = st->n_tensors, first = st->n_tensors;
    uint64_t *offs = calloc(n_tensors ? n_tensors : 1, sizeof *offs);
    if (!offs) return hd_fail(r->e, HD_ENOMEM, "%s: out of memory", r->what);
    int rc = 0;
    for (uint64_t i = 0; i < n_tensors && rc == 0; i++) {
        hd_st_tensor *t = NULL;
        if ((rc = hd_st_push_tensor(st, &cap, &t, r->what, r->e)) < 0) break;
        t->file = file;
        st->n_tensors++; /* owned by st from here: hd_st_close frees the name */
        rc = read_tensor_info(r, t, &offs[i]);
    }
    uint64_t start = (r->off + m->alignment - 1) / m->alignment * m->alignment;
    if (rc == 0 && start > r->len)
        rc = hd_fail(r->e, HD_EFORMAT, "%s: the data area starts past the end of the file", r->what);
    uint64_t data_len = rc == 0 ? r->len - start : 0;
    for (uint64_t i = 0; i < n_tensors && rc == 0; i++) {
        hd_st_tensor *t = &st->tensors[first + (int)i];
        if (offs[i] % m->alignment || offs[i] > data_len || t->nbytes > data_len - offs[i])
            rc = hd_fail(r->e, HD_EFORMAT, "%s: tensor '%s': data [%llu, +%llu) is not aligned "
                         "to %llu or not inside the %llu-byte data area", r->what, t->name,
                         (unsigned long long)offs[i], (unsigned long long)t->nbytes,
                         (unsigned long long)m->alignment, (unsigned long long)data_len);
        else
            t->data = r->p + start + offs[i];
        ranges[i] = (hd_st_range){offs[i], offs[i] + t->nbytes, t->name};
    }
    free(offs);
    if (rc == 0) rc = hd_st_check_overlaps(ranges, (size_t)n_tensors, r->what, r->e);
    if (rc == 0) rc = apply_orig_shapes(r, st, first, m);
    return rc;
}

int hd_gguf_parse(hd_safetensors *st, int file, const uint8_t *buf, size_t len, const char *what,
                  hd_error *e) {
    rd r = {buf, len, 0, what, e};
    if (!hd_gguf_is_gguf(buf, len))
        return hd_fail(e, HD_EFORMAT, "%s: not a GGUF file (no GGUF magic)", what);
    gguf_meta m = {0};
    uint64_t n_tensors = 0;
    int rc = read_header(&r, &n_tensors, &m);
    hd_st_range *ranges = NULL;
    if (rc == 0 && !(ranges = calloc(n_tensors ? n_tensors : 1, sizeof *ranges)))
        rc = hd_fail(e, HD_ENOMEM, "%s: out of memory for %llu tensors", what,
                     (unsigned long long)n_tensors);
    if (rc == 0) rc = read_tensors(&r, st, file, n_tensors, &m, ranges);
    free(ranges);
    free(m.orig);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* A growable header image. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int failed;
} wbuf;

static void put(wbuf *b, const void *src, size_t n) {
    if (b->failed) return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + n) nc *= 2;
        uint8_t *p = realloc(b->p, nc);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = nc;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_uint(wbuf *b, uint64_t v, int bytes) {
    uint8_t x[8];
    for (int i = 0; i < bytes; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)bytes);
}

static void put_str(wbuf *b, const char *s) {
    put_uint(b, strlen(s), 8);
    put(b, s, strlen(s));
}

static void put_kv_str(wbuf *b, const char *key, const char *value) {
    put_str(b, key);
    put_uint(b, T_STRING, 4);
    put_str(b, value);
}

/* GGUF keeps at most four dimensions, and a block format's innermost dimension must be whole
 * blocks: such tensors are written as [shape[0], rest] (the rows the model binds) with their
 * shape in a comfy.gguf.orig_shape key. */
static int flattened(const hd_st_write_item *it) {
    return it->ndim > GGUF_MAX_DIMS || (hd_dtype_is_quantized(it->dtype) && it->ndim > 2);
}

static int gguf_dims(const hd_st_write_item *it, uint64_t *ne) {
    if (!flattened(it)) {
        for (int i = 0; i < it->ndim; i++) ne[i] = (uint64_t)it->shape[it->ndim - 1 - i];
        return it->ndim;
    }
    uint64_t rest = 1;
    for (int i = 1; i < it->ndim; i++) rest *= (uint64_t)it->shape[i];
    ne[0] = rest;
    ne[1] = (uint64_t)it->shape[0];
    return 2;
}

static uint64_t item_bytes(const hd_st_write_item *it) {
    uint64_t ne[GGUF_MAX_DIMS];
    int nd = gguf_dims(it, ne);
    uint64_t rows = 1;
    for (int i = 1; i < nd; i++) rows *= ne[i];
    return hd_dtype_row_bytes(it->dtype, (int64_t)ne[0]) * rows;
}

static int check_items(const char *path, const hd_st_write_item *items, int n, hd_error *e) {
    for (int i = 0; i < n; i++) {
        const hd_st_write_item *it = &items[i];
        const hd_dtype_traits *d = hd_dtype_info(it->dtype);
        if (!d || d->ggml_type < 0 || it->ndim < 1 || it->ndim > HD_ST_MAX_DIMS)
            return hd_fail(e, HD_EINVAL, "%s: tensor '%s': dtype %s or %d dimensions cannot be "
                           "written to GGUF", path, it->name, hd_dtype_name(it->dtype), it->ndim);
        uint64_t ne[GGUF_MAX_DIMS];
        gguf_dims(it, ne);
        if (ne[0] % (uint64_t)d->blk)
            return hd_fail(e, HD_EINVAL, "%s: tensor '%s': rows of %llu values are not whole "
                           "%s blocks", path, it->name, (unsigned long long)ne[0], d->name);
    }
    return 0;
}

static void build_header(wbuf *b, const hd_st_write_item *items, int n, const hd_gguf_kv *kv,
                         int n_kv) {
    int n_orig = 0;
    for (int i = 0; i < n; i++) n_orig += flattened(&items[i]);
    put(b, HD_GGUF_MAGIC, 4);
    put_uint(b, 3, 4);
    put_uint(b, (uint64_t)n, 8);
    put_uint(b, (uint64_t)(n_kv + 1 + n_orig), 8);
    for (int i = 0; i < n_kv; i++) put_kv_str(b, kv[i].key, kv[i].value);
    put_str(b, "general.alignment");
    put_uint(b, T_U32, 4);
    put_uint(b, HD_GGUF_ALIGNMENT, 4);
    for (int i = 0; i < n; i++) {
        if (!flattened(&items[i])) continue;
        char key[GGUF_MAX_NAME + 64];
        snprintf(key, sizeof key, ORIG_SHAPE_KEY "%s", items[i].name);
        put_str(b, key);
        put_uint(b, T_ARRAY, 4);
        put_uint(b, T_I32, 4);
        put_uint(b, (uint64_t)items[i].ndim, 8);
        for (int d = 0; d < items[i].ndim; d++) put_uint(b, (uint64_t)items[i].shape[d], 4);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        uint64_t ne[GGUF_MAX_DIMS];
        int nd = gguf_dims(&items[i], ne);
        put_str(b, items[i].name);
        put_uint(b, (uint64_t)nd, 4);
        for (int d = 0; d < nd; d++) put_uint(b, ne[d], 8);
        put_uint(b, (uint64_t)hd_dtype_info(items[i].dtype)->ggml_type, 4);
        put_uint(b, off, 8);
        off += (item_bytes(&items[i]) + HD_GGUF_ALIGNMENT - 1) / HD_GGUF_ALIGNMENT * HD_GGUF_ALIGNMENT;
    }
    static const uint8_t zeros[HD_GGUF_ALIGNMENT];
    put(b, zeros, (HD_GGUF_ALIGNMENT - b->len % HD_GGUF_ALIGNMENT) % HD_GGUF_ALIGNMENT);
}

#define GGUF_WRITE_CHUNK ((size_t)4 << 20)

/* One tensor's bytes (from data or fill) and its padding. */
static int write_item(FILE *f, const hd_st_write_item *it, uint8_t *chunk, const char *tmp,
                      hd_error *e) {
    uint64_t nbytes = item_bytes(it);
    for (uint64_t off = 0; off < nbytes; off += GGUF_WRITE_CHUNK) {
        size_t c = nbytes - off < GGUF_WRITE_CHUNK ? (size_t)(nbytes - off) : GGUF_WRITE_CHUNK;
        const void *src = it->data ? (const uint8_t *)it->data + off : chunk;
        if (!it->data) HD_TRY(it->fill(it->fill_ctx, it, off, chunk, c, e));
        if (fwrite(src, 1, c, f) != c)
            return hd_fail(e, HD_EIO, "%s: tensor '%s': write failed: %s", tmp, it->name,
                           strerror(errno));
    }
    static const uint8_t zeros[HD_GGUF_ALIGNMENT];
    size_t pad = (HD_GGUF_ALIGNMENT - nbytes % HD_GGUF_ALIGNMENT) % HD_GGUF_ALIGNMENT;
    if (fwrite(zeros, 1, pad, f) != pad)
        return hd_fail(e, HD_EIO, "%s: write failed: %s", tmp, strerror(errno));
    return 0;
}

static int write_body(FILE *f, const wbuf *hdr, const hd_st_write_item *items, int n,
                      const char *tmp, hd_error *e) {
    if (fwrite(hdr->p, 1, hdr->len, f) != hdr->len)
        return hd_fail(e, HD_EIO, "%s: write failed: %s", tmp, strerror(errno));
    uint8_t *chunk = malloc(GGUF_WRITE_CHUNK);
    if (!chunk) return hd_fail(e, HD_ENOMEM, "%s: out of memory for the write buffer", tmp);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = write_item(f, &items[i], chunk, tmp, e);
    free(chunk);
    return rc;
}

int hd_gguf_write(const char *path, const hd_st_write_item *items, int n_items,
                  const hd_gguf_kv *kv, int n_kv, hd_error *e) {
    if (n_items < 0 || (n_items > 0 && !items) || n_kv < 0 || (n_kv > 0 && !kv))
        return hd_fail(e, HD_EINVAL, "%s: invalid item list", path);
    HD_TRY(check_items(path, items, n_items, e));
    wbuf hdr = {0};
    build_header(&hdr, items, n_items, kv, n_kv);
    if (hdr.failed) {
        free(hdr.p);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory for the header", path);
    }
    hd_tmp_file out;
    int rc = hd_tmp_file_open(&out, path, e);
    if (rc == 0)
        rc = hd_tmp_file_finish(&out, path, write_body(out.f, &hdr, items, n_items, out.tmp, e), e);
    free(hdr.p);
    return rc;
}
