/* hd_quantize: a model directory -> a model directory whose weights are one GGUF file.
 *
 * The checkpoint is validated first (config.json and every tensor against the inventory, as
 * hd_model_load does), so a broken model is never quantized. Matrices (tensors of two or more
 * dimensions named *.weight, except the ViT's positional table, which is read element-wise) are
 * quantized row by row (rows = the first dimension, the rest flattened, as the model binds
 * them); a matrix whose rows are not whole blocks of the chosen K format falls back to Q8_0, and
 * to its own dtype when not even that fits. Vectors (norm weights, biases) keep their dtype. The
 * unused text lm_head is dropped. Quantization streams: one row block is held at a time, never
 * a float32 copy of the model. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "io/config.h"
#include "io/gguf.h"
#include "model/inventory.h"

static const char *const quant_names[] = {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"};
static const hd_dtype quant_dtypes[] = {HD_Q8_0, HD_Q4_0, HD_Q4_K, HD_Q5_K, HD_Q6_K};
#define N_QUANT_TYPES (int)(sizeof quant_names / sizeof *quant_names)

/* The stored format of one tensor for target type `want`. */
static hd_dtype choose(const hd_st_tensor *t, hd_dtype want) {
    size_t n = strlen(t->name);
    int matrix = t->ndim >= 2 && n > 7 && !strcmp(t->name + n - 7, ".weight") &&
                 !strstr(t->name, "pos_embed");
    int64_t cols = t->ndim >= 2 ? t->numel / (t->shape[0] ? t->shape[0] : 1) : 0;
    if (!matrix || !hd_dtype_is_float(t->dtype) || t->shape[0] == 0) return t->dtype;
    if (cols % hd_dtype_block(want) == 0) return want;
    if (cols % hd_dtype_block(HD_Q8_0) == 0) return HD_Q8_0;
    return t->dtype;
}

/* fill() for a quantized item: converts and quantizes the rows covering [off, off + n), the
 * rows spread over the pool (each thread converts into its own float row). */
typedef struct qfill {
    const hd_safetensors *st;
    const hd_st_tensor *src;
    int64_t cols;
    uint64_t qrow_bytes;
    hd_pool *pool;
    float *rows;      /* n_threads × cols */
    uint8_t *qbuf;    /* quantized rows of the current chunk */
    size_t qbuf_cap;  /* bytes */
    uint64_t r0;      /* first row in qbuf */
    hd_dtype dtype;
    int64_t bad_row;  /* a row holding a non-finite value, -1 if none */
} qfill;

static void quantize_row_task(void *ctx, int64_t i, int thread) {
    qfill *q = ctx;
    uint64_t r = q->r0 + (uint64_t)i;
    float *row = q->rows + (size_t)thread * (size_t)q->cols;
    size_t src_rb = (size_t)hd_dtype_row_bytes(q->src->dtype, q->cols);
    hd_convert_to_f32(q->src->dtype, (const uint8_t *)q->src->data + r * src_rb, row,
                      (size_t)q->cols);
    for (int64_t k = 0; k < q->cols; k++)
        if (!isfinite(row[k])) { /* any one such row is reported */
            __atomic_store_n(&q->bad_row, (int64_t)r, __ATOMIC_RELAXED);
            return;
        }
    hd_quant_fn_for(q->dtype)(row, q->qbuf + (size_t)i * q->qrow_bytes, q->cols);
}

static int fill_quantized(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf,
                          size_t n, hd_error *e) {
    qfill *q = ctx;
    uint64_t rb = q->qrow_bytes, r0 = off / rb, r1 = (off + n + rb - 1) / rb;
    size_t need = (size_t)((r1 - r0) * rb);
    if (need > q->qbuf_cap) {
        uint8_t *p = realloc(q->qbuf, need);
        if (!p) return hd_fail(e, HD_ENOMEM, "tensor '%s': out of memory", it->name);
        q->qbuf = p;
        q->qbuf_cap = need;
    }
    q->r0 = r0;
    q->dtype = it->dtype;
    q->bad_row = -1;
    hd_pool_run(q->pool, (int64_t)(r1 - r0), quantize_row_task, q);
    if (q->bad_row >= 0)
        return hd_fail(e, HD_EFORMAT, "tensor '%s': row %lld holds a non-finite value: not "
                       "quantized", it->name, (long long)q->bad_row);
    memcpy(buf, q->qbuf + (off - r0 * rb), n);
    /* rows before the last one are done: their source pages can leave the resident set, so a
     * 17 GB input is not all resident by the end */
    uint64_t src_rb = hd_dtype_row_bytes(q->src->dtype, q->cols);
    if (r1 - r0 > 1) hd_st_release(q->st, q->src, r0 * src_rb, (r1 - 1 - r0) * src_rb);
    return 0;
}

/* Copies every small regular file of in_dir except the weights (config, tokenizer, ...). */
static int copy_side_files(const char *in_dir, const char *out_dir, hd_error *e);

static int write_model(const hd_safetensors *st, const char *path, hd_dtype want,
                       hd_pool *pool, hd_quantize_report *rep, hd_error *e) {
    hd_st_write_item *items = calloc((size_t)st->n_tensors + 1, sizeof *items);
    qfill *fills = calloc((size_t)st->n_tensors + 1, sizeof *fills);
    int n = 0, rc = 0;
    if (!items || !fills) rc = hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    for (int i = 0; rc == 0 && i < st->n_tensors; i++) {
        const hd_st_tensor *t = &st->tensors[i];
        if (!strcmp(t->name, "lm_head.weight")) continue; /* never used */
        hd_st_write_item *it = &items[n];
        *it = (hd_st_write_item){.name = t->name, .dtype = choose(t, want), .ndim = t->ndim};
        memcpy(it->shape, t->shape, sizeof t->shape);
        rep->bytes_in += t->nbytes;
        if (it->dtype == t->dtype) {
            it->data = t->data;
            rep->kept++;
        } else {
            qfill *q = &fills[n];
            q->st = st;
            q->src = t;
            q->pool = pool;
            q->cols = t->numel / t->shape[0];
            q->qrow_bytes = hd_dtype_row_bytes(it->dtype, q->cols);
            q->rows = malloc((size_t)q->cols * sizeof(float) * (size_t)hd_pool_threads(pool));
            if (!q->rows) rc = hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
            /* the shape stays as stored: its flattened [shape[0], cols] rows are the block rows */
            it->fill = fill_quantized;
            it->fill_ctx = q;
            if (it->dtype == want) rep->quantized++;
            else rep->fallback++;
        }
        rep->bytes_out += hd_dtype_row_bytes(it->dtype, t->numel / (t->shape[0] ? t->shape[0] : 1)) *
                          (uint64_t)t->shape[0];
        n++;
    }
    char source[64];
    snprintf(source, sizeof source, "hidream.c %s", hd_version());
    hd_gguf_kv kv[] = {{"general.architecture", "hidream-o1-image"}, {"general.name", "HiDream-O1-Image"},
                       {"hidream.quantized_by", source}};
    if (rc == 0) rc = hd_gguf_write(path, items, n, kv, 3, e);
    for (int i = 0; fills && i < n; i++) {
        free(fills[i].rows);
        free(fills[i].qbuf);
    }
    free(items);
    free(fills);
    return rc;
}

static int hd_quantize_type_parse(const char *name, int *dtype) {
    for (int i = 0; i < N_QUANT_TYPES; i++)
        if (!strcasecmp(name, quant_names[i])) {
            *dtype = (int)quant_dtypes[i];
            return 0;
        }
    return -1;
}

static int check_model(const char *in_dir, hd_safetensors *st, hd_error *e) {
    hd_config cfg;
    HD_TRY(hd_config_load_dir(&cfg, in_dir, e));
    HD_TRY(hd_st_open_dir(st, in_dir, e));
    int rc = hd_inventory_check(&cfg, st, 0, e);
    if (rc < 0) hd_st_close(st);
    return rc;
}

int hd_quantize(const char *in_dir, const char *out_dir, const char *type,
                hd_quantize_report *rep, hd_error *e) {
    hd_quantize_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    int want;
    if (!type || hd_quantize_type_parse(type, &want) != 0)
        return hd_fail(e, HD_EINVAL, "--type '%s': not one of q8_0, q4_0, q4_k, q5_k, q6_k",
                       type ? type : "");
    struct stat sb;
    if (stat(in_dir, &sb) == 0 && stat(out_dir, &sb) == 0) {
        char a[4096], b[4096];
        if (realpath(in_dir, a) && realpath(out_dir, b) && !strcmp(a, b))
            return hd_fail(e, HD_EINVAL, "%s: the output directory is the input directory", out_dir);
    }
    hd_safetensors st;
    HD_TRY(check_model(in_dir, &st, e));
    int rc = 0;
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        rc = hd_fail(e, HD_EIO, "%s: cannot create: %s", out_dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/model.gguf", out_dir);
    if (rc == 0) rc = copy_side_files(in_dir, out_dir, e);
    hd_pool *pool = NULL;
    if (rc == 0) rc = hd_pool_create(&pool, hd_cpu_count(), e);
    if (rc == 0) rc = write_model(&st, path, (hd_dtype)want, pool, rep, e);
    hd_pool_destroy(pool);
    hd_st_close(&st);
    return rc;
}

#define SIDE_FILE_MAX ((size_t)256 << 20)

static int is_weight_file(const char *name) {
    size_t n = strlen(name);
    return (n > 12 && !strcmp(name + n - 12, ".safetensors")) ||
           strstr(name, ".safetensors.") || (n > 5 && !strcmp(name + n - 5, ".gguf"));
}

static int copy_one(const char *src, const char *dst, hd_error *e) {
    char *buf;
    size_t len;
    HD_TRY(hd_read_file(src, SIDE_FILE_MAX, &buf, &len, e));
    FILE *f = fopen(dst, "wb");
    int rc = 0;
    if (!f) rc = hd_fail(e, HD_EIO, "%s: cannot create: %s", dst, strerror(errno));
    else if (fwrite(buf, 1, len, f) != len || fclose(f) != 0)
        rc = hd_fail(e, HD_EIO, "%s: write failed: %s", dst, strerror(errno));
    free(buf);
    return rc;
}

static int copy_side_files(const char *in_dir, const char *out_dir, hd_error *e) {
    DIR *d = opendir(in_dir);
    if (!d) return hd_fail(e, HD_EIO, "%s: cannot list: %s", in_dir, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        char src[4096], dst[4096];
        struct stat sb;
        snprintf(src, sizeof src, "%s/%s", in_dir, de->d_name);
        if (de->d_name[0] == '.' || is_weight_file(de->d_name) || stat(src, &sb) != 0 ||
            !S_ISREG(sb.st_mode) || (size_t)sb.st_size > SIDE_FILE_MAX)
            continue;
        snprintf(dst, sizeof dst, "%s/%s", out_dir, de->d_name);
        rc = copy_one(src, dst, e);
    }
    closedir(d);
    return rc;
}
