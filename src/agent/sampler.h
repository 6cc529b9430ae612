/* Next-token choice for the local agent, in Hugging Face generate's order: repetition penalty
 * over every id seen (prompt included), then temperature, top-k, top-p, and a draw from the
 * softmax; temperature <= 0 is greedy (argmax after the penalty). */
#ifndef HD_AGENT_SAMPLER_H
#define HD_AGENT_SAMPLER_H

#include <stdint.h>

#include "hidream.h"
#include "sample/rng.h"

typedef struct hd_sampling {
    float temperature;        /* <= 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float repetition_penalty; /* 1: off; > 1 discourages repeats */
    uint64_t seed;
} hd_sampling;

typedef struct hd_sampler {
    hd_sampling s;
    hd_mt19937 rng;
    int vocab;
    int32_t *order;   /* [vocab] candidate ids */
    float *prob;      /* [vocab] */
    uint8_t *seen;    /* [vocab] ids the penalty applies to */
} hd_sampler;

/* 0 or HD_ENOMEM / HD_EINVAL (a parameter out of range, named in e). */
int hd_sampler_init(hd_sampler *sp, const hd_sampling *s, int vocab, hd_error *e);
void hd_sampler_free(hd_sampler *sp);
/* Marks ids as seen (for the repetition penalty). Ids outside the vocabulary are ignored. */
void hd_sampler_observe(hd_sampler *sp, const int32_t *ids, int n);
/* Picks the next id from logits[vocab] (modified in place). */
int32_t hd_sampler_next(hd_sampler *sp, float *logits);

#endif
