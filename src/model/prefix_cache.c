#include "model/prefix_cache.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int hd_prefix_cache_alloc(hd_prefix_cache *pc, hd_backend *be, int n_layers, int64_t n_rows,
                          int64_t kv_dim, hd_error *e) {
    hd_prefix_cache zero = {0};
    *pc = zero;
    if (n_layers <= 0 || n_rows < 0 || kv_dim <= 0 || n_rows > (INT64_C(1) << 31))
        return hd_fail(e, HD_EINVAL, "prefix cache: bad shape (%d layers, %lld rows, kv %lld)",
                       n_layers, (long long)n_rows, (long long)kv_dim);
    pc->be = be;
    pc->n_layers = n_layers;
    pc->n_rows = n_rows;
    pc->kv_dim = kv_dim;
    pc->k = calloc((size_t)n_layers, sizeof *pc->k);
    pc->v = calloc((size_t)n_layers, sizeof *pc->v);
    pc->ids = malloc(((size_t)n_rows + 1) * sizeof *pc->ids);
    pc->pos = malloc((3 * (size_t)n_rows + 1) * sizeof *pc->pos);
    if (!pc->k || !pc->v || !pc->ids || !pc->pos) {
        hd_prefix_cache_free(pc);
        return hd_fail(e, HD_ENOMEM, "prefix cache: out of memory for %d layers", n_layers);
    }
    if (n_rows == 0) return 0; /* nothing to keep: every row is a generation row */
    for (int l = 0; l < n_layers; l++) {
        int rc = be->ops->alloc(be, &pc->k[l], HD_F32, n_rows, kv_dim, e);
        if (rc == 0) rc = be->ops->alloc(be, &pc->v[l], HD_F32, n_rows, kv_dim, e);
        if (rc < 0) {
            hd_error_prefix(e, "prefix cache: layer %d", l);
            hd_prefix_cache_free(pc);
            return rc;
        }
    }
    return 0;
}

void hd_prefix_cache_free(hd_prefix_cache *pc) {
    for (int l = 0; l < pc->n_layers; l++) {
        if (pc->k) hd_tensor_free(pc->be, &pc->k[l]);
        if (pc->v) hd_tensor_free(pc->be, &pc->v[l]);
    }
    free(pc->k);
    free(pc->v);
    free(pc->ids);
    free(pc->pos);
    hd_prefix_cache zero = {0};
    *pc = zero;
}

void hd_prefix_cache_set_key(hd_prefix_cache *pc, const int32_t *ids, const int32_t *pos,
                             int64_t seq_len) {
    int64_t a = pc->n_rows;
    if (a == 0) return;
    memcpy(pc->ids, ids, (size_t)a * sizeof *ids);
    for (int ax = 0; ax < 3; ax++)
        memcpy(pc->pos + ax * a, pos + ax * seq_len, (size_t)a * sizeof *pos);
}

int hd_prefix_cache_matches(const hd_prefix_cache *pc, const int32_t *ids, const int32_t *pos,
                            int64_t seq_len, int64_t n_causal) {
    int64_t a = pc->n_rows;
    if (!pc->complete || a != n_causal || seq_len < a) return 0;
    if (a == 0) return 1;
    if (memcmp(pc->ids, ids, (size_t)a * sizeof *ids) != 0) return 0;
    for (int ax = 0; ax < 3; ax++)
        if (memcmp(pc->pos + ax * a, pos + ax * seq_len, (size_t)a * sizeof *pos) != 0) return 0;
    return 1;
}
