/* Row movement: gather_rows (embedding lookup from a weight table), set_rows, add_rows.
 * Indices are host arrays; an index outside the destination/table leaves that row untouched
 * (set/add) or writes zeros (gather) rather than reading or writing out of bounds.
 * set/add are threaded over column ranges, so duplicate indices never race. */
#include <string.h>

#include "backend/cpu/kernels.h"

typedef struct rows_move {
    hd_tensor *y;
    const hd_tensor *src;
    const int32_t *idx;
    int64_t n;
    int add;
} rows_move;

static void gather_task(void *ctx, int64_t i0, int64_t i1, int thread) {
    rows_move *m = ctx;
    uint64_t row_bytes = hd_dtype_row_bytes(m->src->dtype, m->src->stride);
    int64_t cols = m->y->cols;
    for (int64_t i = i0; i < i1; i++) {
        float *y = (float *)m->y->data + i * m->y->stride;
        int64_t id = m->idx[i];
        if (id < 0 || id >= m->src->rows) {
            memset(y, 0, (size_t)cols * sizeof(float));
            continue;
        }
        const char *row = (const char *)m->src->data + (size_t)id * row_bytes;
        hd_cpu_load_f32(m->src->dtype, row, 0, cols, y);
    }
}

void hd_cpu_gather_rows(hd_backend *be, hd_tensor *y, const hd_tensor *table, const int32_t *ids,
                        int64_t n) {
    rows_move m = {y, table, ids, n, 0};
    hd_cpu_for_rows(hd_cpu_of(be), n, y->cols, gather_task, &m);
}

/* Here the "rows" handed out by hd_cpu_for_rows are column blocks of 256. */
#define COL_BLOCK 256

static void scatter_task(void *ctx, int64_t b0, int64_t b1, int thread) {
    rows_move m = *(rows_move *)ctx;
    int64_t c0 = b0 * COL_BLOCK, c1 = b1 * COL_BLOCK < m.y->cols ? b1 * COL_BLOCK : m.y->cols;
    for (int64_t i = 0; i < m.n; i++) {
        int64_t id = m.idx[i];
        if (id < 0 || id >= m.y->rows) continue;
        float *y = (float *)m.y->data + id * m.y->stride;
        const float *s = (const float *)m.src->data + i * m.src->stride;
        if (m.add)
            for (int64_t c = c0; c < c1; c++) y[c] += s[c];
        else
            memmove(y + c0, s + c0, (size_t)(c1 - c0) * sizeof(float));
    }
}

static void scatter(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                    int64_t n, int add) {
    rows_move m = {y, src, idx, n, add};
    int64_t blocks = (y->cols + COL_BLOCK - 1) / COL_BLOCK;
    if (n <= 0 || blocks <= 0) return;
    hd_cpu_for_rows(hd_cpu_of(be), blocks, n * COL_BLOCK, scatter_task, &m);
}

void hd_cpu_set_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n) {
    scatter(be, y, src, idx, n, 0);
}

void hd_cpu_add_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n) {
    scatter(be, y, src, idx, n, 1);
}
