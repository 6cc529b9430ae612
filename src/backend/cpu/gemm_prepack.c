/* Weights packed once, when they are bound, for the bf16 GEMM (the gemm_bf16 option on a CPU with
 * AVX512-BF16): linear then reads the panels its micro-kernel wants instead of converting and
 * transposing each KC×NC block of W on every call (a quarter of the layer's time at 384 tokens).
 * The panels hold bf16 pairs, so they take what a bf16 weight takes; the file's pages are
 * dropped afterwards (uit.c), as for the int8 panels.
 *
 * Layout, for the driver (gemm.c): K is cut in slices of KC = hd_gemm_kc(kernels, dtype) values;
 * the slice starting at pc begins at float pc/2 · np (np: N rounded up to whole panels of NR),
 * and holds the np/NR panels one after the other, each kcp/2 · NR floats (kcp: the slice's
 * length rounded up to ku), exactly what pack_b writes for that panel. */
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "core/error.h"

typedef struct prepack_job {
    const hd_cpu_kernels *kn;
    const hd_tensor *t;
    hd_cpu_prepacked *pw;
} prepack_job;

static void prepack_panel(void *ctx, int64_t p, int thread) {
    (void)thread;
    const prepack_job *g = ctx;
    const hd_cpu_kernels *kn = g->kn;
    const hd_tensor *t = g->t;
    const int NR = kn->nr;
    const int64_t KC = hd_gemm_kc(kn, t->dtype), j0 = p * NR;
    const int nr = (int)(t->rows - j0 < NR ? t->rows - j0 : NR);
    const uint64_t ldw_bytes = hd_dtype_row_bytes(t->dtype, t->stride);
    for (int64_t pc = 0; pc < t->cols; pc += KC) {
        int64_t kc = t->cols - pc < KC ? t->cols - pc : KC;
        int64_t kcp = (kc + kn->ku - 1) / kn->ku * kn->ku;
        float *dst = g->pw->panels + pc / 2 * g->pw->np + p * (kcp / 2) * NR;
        kn->pack_b(t->dtype, (const char *)t->data + (size_t)j0 * ldw_bytes +
                                 hd_dtype_row_bytes(t->dtype, pc),
                   t->stride, nr, kc, dst);
    }
}

int hd_cpu_prepack(hd_cpu *cpu, hd_tensor *t, hd_error *e) {
    const hd_cpu_kernels *kn = cpu->k;
    const int64_t KC = hd_gemm_kc(kn, t->dtype);
    if (KC % kn->ku || kn->nc % kn->nr || kn->ku % 2)
        return hd_fail(e, HD_EINVAL, "bf16 weight panels: kernel blocks do not tile");
    int64_t panels = (t->rows + kn->nr - 1) / kn->nr, np = panels * kn->nr;
    int64_t kp = hd_gemm_kp(kn, t->dtype, t->cols);
    size_t head = (sizeof(hd_cpu_prepacked) + 63) & ~(size_t)63;
    size_t bytes = head + (size_t)(kp / 2) * (size_t)np * sizeof(float);
    char *mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!mem)
        return hd_fail(e, HD_ENOMEM, "bf16 weight panels: out of memory for a %lld x %lld weight",
                       (long long)t->rows, (long long)t->cols);
    hd_cpu_prepacked *pw = (hd_cpu_prepacked *)mem;
    pw->np = np;
    pw->panels = (float *)(mem + head);
    prepack_job g = {kn, t, pw};
    hd_pool_run(cpu->pool, panels, prepack_panel, &g);
    t->packed = pw;
    return 0;
}
