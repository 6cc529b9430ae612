/* safetensors reader: one file or a sharded set (model.safetensors.index.json), memory-mapped.
 *
 * Tensor data is used in place from the mapping (zero copy). Opening validates everything a
 * hostile file could get wrong: header length within the file and under a sane bound, JSON
 * well-formed, every entry a known dtype with a shape whose byte size (overflow-checked) equals
 * its [begin, end) range, ranges inside the data area and not overlapping, names unique across
 * shards. Each failure is one line naming the file and the tensor (or header field). */
#ifndef HD_IO_SAFETENSORS_H
#define HD_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "hidream.h"

#define HD_ST_MAX_DIMS 8
#define HD_ST_MAX_HEADER (100u << 20) /* 100 MiB, the limit the reference implementation uses */

typedef struct hd_st_tensor {
    char *name;
    hd_dtype dtype;
    int ndim;
    int64_t shape[HD_ST_MAX_DIMS];
    int64_t numel;
    uint64_t nbytes;
    const void *data; /* points into the file mapping (or the caller's buffer) */
    int file;         /* index into hd_safetensors.files */
} hd_st_tensor;

typedef struct hd_st_file {
    char *path;
    void *map;      /* whole file, read-only; NULL for a buffer-backed set */
    size_t size;
} hd_st_file;

typedef struct hd_safetensors {
    int n_files;
    hd_st_file *files;
    int n_tensors;
    hd_st_tensor *tensors;  /* sorted by name for hd_st_find */
} hd_safetensors;

/* Opens one .safetensors file. On failure *st is left empty (safe to hd_st_close). */
int hd_st_open(hd_safetensors *st, const char *path, hd_error *e);

/* Opens a model directory: DIR/model.safetensors.index.json and every shard it names (each shard
 * must hold exactly the tensors the index maps to it), else DIR/model.safetensors, else
 * DIR/model.gguf. (Any file given to these openers may be GGUF: see io/gguf.h.) */
int hd_st_open_dir(hd_safetensors *st, const char *dir, hd_error *e);

/* Parses and validates a complete safetensors image already in memory (used by the fuzz target
 * and by hd_st_open). `what` names it in messages. The buffer must outlive *st. */
int hd_st_open_buffer(hd_safetensors *st, const void *buf, size_t len, const char *what,
                      hd_error *e);

void hd_st_close(hd_safetensors *st);

/* Tells the kernel this process is done with bytes [off, off + len) of t's data for now: their
 * whole pages leave the resident set (they fault back in from the file if read again). Nothing
 * happens for a buffer-backed set. Used by streaming passes over a whole model (quantize). */
void hd_st_release(const hd_safetensors *st, const hd_st_tensor *t, uint64_t off, uint64_t len);

/* NULL if absent. O(log n). */
const hd_st_tensor *hd_st_find(const hd_safetensors *st, const char *name);

/* Copies a float tensor to float32 / float64 (any float dtype), or an integer tensor to int64.
 * `n` must equal the element count; errors name the tensor. */
int hd_st_read_f32(const hd_st_tensor *t, float *out, size_t n, hd_error *e);
int hd_st_read_f64(const hd_st_tensor *t, double *out, size_t n, hd_error *e);
int hd_st_read_i64(const hd_st_tensor *t, int64_t *out, size_t n, hd_error *e);

/* For the readers in io/: grow the table by one zeroed slot (*cap tracks its capacity); and
 * reject overlapping byte ranges (sorts ranges; names in messages). */
typedef struct hd_st_range {
    uint64_t begin, end;
    const char *name;
} hd_st_range;
int hd_st_push_tensor(hd_safetensors *st, int *cap, hd_st_tensor **out, const char *what,
                      hd_error *e);
int hd_st_check_overlaps(hd_st_range *ranges, size_t n_ranges, const char *what, hd_error *e);

/* Writer (for tools and tests): writes tensors to one file, header 8-byte aligned.
 * Writes to PATH.tmp and renames, so no half-written file remains on failure. */
typedef struct hd_st_write_item {
    const char *name;
    hd_dtype dtype;
    int ndim;
    int64_t shape[HD_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes; NULL -> fill() is called */
    /* Optional generator: fills `n` bytes of the tensor starting at byte `off` into buf; returns
     * 0, or a status with e set (the write then fails and leaves no file). */
    int (*fill)(void *ctx, const struct hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                hd_error *e);
    void *fill_ctx;
} hd_st_write_item;

int hd_st_write(const char *path, const hd_st_write_item *items, int n_items, hd_error *e);

#endif
