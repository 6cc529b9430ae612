#include "agent/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int hd_sampler_init(hd_sampler *sp, const hd_sampling *s, int vocab, hd_error *e) {
    memset(sp, 0, sizeof *sp);
    if (!(s->temperature >= 0 && s->temperature <= 100) || !(s->top_p > 0 && s->top_p <= 1) ||
        !(s->repetition_penalty > 0 && s->repetition_penalty <= 100) || s->top_k < 0)
        return hd_fail(e, HD_EINVAL, "sampling: temperature in [0, 100], top-p in (0, 1], "
                                     "top-k >= 0 and repetition penalty in (0, 100] needed");
    sp->s = *s;
    sp->vocab = vocab;
    hd_mt19937_seed(&sp->rng, s->seed);
    sp->order = malloc((size_t)vocab * sizeof *sp->order);
    sp->prob = malloc((size_t)vocab * sizeof *sp->prob);
    sp->seen = calloc((size_t)vocab, 1);
    if (!sp->order || !sp->prob || !sp->seen) {
        hd_sampler_free(sp);
        return hd_fail(e, HD_ENOMEM, "sampling: out of memory");
    }
    return 0;
}

void hd_sampler_free(hd_sampler *sp) {
    free(sp->order);
    free(sp->prob);
    free(sp->seen);
    memset(sp, 0, sizeof *sp);
}

void hd_sampler_observe(hd_sampler *sp, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < sp->vocab) sp->seen[ids[i]] = 1;
}

/* Descending by logit; ties by id, so the order never depends on qsort's internals. */
static int by_logit(const void *a, const void *b, void *ctx) {
    const float *l = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (l[i] != l[j]) return l[i] > l[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* A uniform double in [0, 1) with 53 random bits. */
static double uniform(hd_mt19937 *rng) {
    uint64_t a = hd_mt19937_next(rng) >> 5, b = hd_mt19937_next(rng) >> 6;
    return (double)(a * 67108864u + b) / 9007199254740992.0;
}

int32_t hd_sampler_next(hd_sampler *sp, float *l) {
    int V = sp->vocab;
    float rp = sp->s.repetition_penalty;
    if (rp != 1.0f)
        for (int i = 0; i < V; i++)
            if (sp->seen[i]) l[i] = l[i] < 0 ? l[i] * rp : l[i] / rp;
    if (sp->s.temperature <= 0) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (l[i] > l[best]) best = i;
        return best;
    }
    for (int i = 0; i < V; i++) {
        l[i] /= sp->s.temperature;
        sp->order[i] = i;
    }
    qsort_r(sp->order, (size_t)V, sizeof *sp->order, by_logit, l);
    int n = sp->s.top_k > 0 && sp->s.top_k < V ? sp->s.top_k : V;
    while (n < V && l[sp->order[n]] == l[sp->order[n - 1]]) n++; /* ties with the k-th stay */
    double sum = 0, mx = l[sp->order[0]];
    for (int i = 0; i < n; i++) sum += sp->prob[i] = (float)exp((double)l[sp->order[i]] - mx);
    if (sp->s.top_p < 1) { /* the fewest most likely tokens whose mass reaches top_p */
        double cum = 0;
        int keep = 0;
        while (keep < n && cum < sp->s.top_p * sum) cum += sp->prob[keep++];
        n = keep > 0 ? keep : 1;
        sum = cum > 0 ? cum : sp->prob[0];
    }
    double u = uniform(&sp->rng) * sum, acc = 0;
    for (int i = 0; i < n; i++) {
        acc += sp->prob[i];
        if (u < acc) return sp->order[i];
    }
    return sp->order[n - 1];
}
