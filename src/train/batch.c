/* Building a micro-batch (batch.h). */
#include "train/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/patchify.h"
#include "sample/rng.h"
#include "text/chat_template.h"
#include "train/objective.h"

/* Streams derived from a sample's index: each random choice has its own, so adding one never
 * shifts another (a recipe change keeps the data identical). */
enum { STREAM_DROPOUT = 1, STREAM_SIGMA = 2, STREAM_NOISE = 3 };

int hd_train_text_init(hd_train_text *t, const hd_tokenizer *tok, const hd_token_ids *ids,
                       hd_error *e) {
    t->tok = tok;
    t->ids = *ids;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    static const char pre[] = "<|im_start|>user\n", post[] = "<|im_end|>\n<|im_start|>assistant\n";
    int rc = hd_tokenizer_encode(tok, pre, sizeof pre - 1, 0, &a, &na, e);
    if (rc == 0) rc = hd_tokenizer_encode(tok, post, sizeof post - 1, 0, &b, &nb, e);
    free(a);
    free(b);
    HD_TRY(rc);
    t->prefix = (int)na;
    t->suffix = (int)nb + 2; /* + boi, tms */
    return 0;
}

static int reserve(hd_train_batch *b, int n, size_t nx, size_t nlm, int V, int with_lm,
                   hd_error *e) {
    if (n > b->cap_n) {
        hd_sequence *seq = realloc(b->seq, (size_t)n * sizeof *seq);
        if (seq) b->seq = seq;
        hd_uit_sample *s = realloc(b->s, (size_t)n * sizeof *s);
        if (s) b->s = s;
        double *sg = realloc(b->sigma, (size_t)n * sizeof *sg);
        if (sg) b->sigma = sg;
        if (!seq || !s || !sg) return hd_fail(e, HD_ENOMEM, "training batch: out of memory");
        memset(b->seq + b->cap_n, 0, (size_t)(n - b->cap_n) * sizeof *seq);
        b->cap_n = n;
    }
    if (nx > b->cap_x) {
        float **bufs[] = {&b->x0, &b->z, &b->pred, &b->dpred};
        for (int i = 0; i < 4; i++) {
            float *p = realloc(*bufs[i], nx * sizeof(float));
            if (!p) return hd_fail(e, HD_ENOMEM, "training batch: out of memory");
            *bufs[i] = p;
        }
        b->cap_x = nx;
    }
    if (nlm > b->cap_lm) {
        int32_t *t = realloc(b->lm_target, nlm * sizeof *t);
        if (t) b->lm_target = t;
        uint8_t *m = realloc(b->lm_mask, nlm);
        if (m) b->lm_mask = m;
        if (!t || !m) return hd_fail(e, HD_ENOMEM, "training batch: out of memory");
        b->cap_lm = nlm;
    }
    size_t nl = with_lm ? nlm * (size_t)V : 0;
    if (nl > b->cap_logits) {
        float *l = realloc(b->logits, nl * sizeof(float));
        if (l) b->logits = l;
        float *d = realloc(b->dlogits, nl * sizeof(float));
        if (d) b->dlogits = d;
        if (!l || !d) return hd_fail(e, HD_ENOMEM, "training batch: out of memory");
        b->cap_logits = nl;
    }
    b->V = V;
    return 0;
}

/* Picture to patch rows in [−1, 1]. */
static int image_rows(const hd_image *im, int p, float *rows, hd_error *e) {
    size_t hw = (size_t)im->w * (size_t)im->h;
    float *chw = malloc(3 * hw * sizeof *chw);
    if (!chw) return hd_fail(e, HD_ENOMEM, "training batch: out of memory");
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) chw[c * hw + i] = im->px[3 * i + (size_t)c] / 127.5f - 1.0f;
    int rc = hd_patchify(chw, im->w, im->h, p, rows, e);
    free(chw);
    return rc;
}

/* Text of sample k: the caption, or " " (CFG's unconditional prompt) when dropped. */
static int sample_sequence(hd_train_batch *b, int i, const hd_train_config *c,
                           const hd_train_text *tx, const char *caption, uint64_t k,
                           hd_error *e) {
    hd_prng r;
    hd_prng_seed(&r, hd_prng_derive(hd_prng_derive(c->seed, k), STREAM_DROPOUT));
    const char *text = hd_prng_uniform(&r) < c->objective.cfg_dropout ? " " : caption;
    int32_t *ids = NULL;
    size_t n = 0;
    HD_TRY(hd_chat_encode(tx->tok, text, 0, NULL, &ids, &n, e));
    int p = c->model.patch_size;
    hd_grid g = {1, b->h / p, b->w / p};
    hd_sequence_free(&b->seq[i]);
    int rc = hd_sequence_build(&b->seq[i], ids, (int64_t)n, &tx->ids, NULL, 0, g, NULL, 0, e);
    free(ids);
    return rc;
}

/* LM targets of sample i: row r predicts ids[r + 1]; only the prompt's tokens (and the
 * end-of-turn after them) count, never the fixed template. */
static void sample_lm(hd_train_batch *b, int i, const hd_train_text *tx, int64_t row0) {
    const hd_sequence *s = &b->seq[i];
    int64_t rows = s->A - 1, first = tx->prefix, last = s->T - tx->suffix; /* prompt: [first, last) */
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r + 1;
        b->lm_target[row0 + r] = s->ids[t];
        b->lm_mask[row0 + r] = t >= first && t <= last;
        b->lm_count += b->lm_mask[row0 + r];
    }
}

static int one_sample(hd_train_batch *b, int i, const hd_train_config *c, const hd_dataset *ds,
                      const hd_train_text *tx, int bucket, uint64_t k, hd_error *e) {
    hd_image im = {0};
    char caption[4096];
    HD_TRY(hd_dataset_draw(ds, k, bucket, &im, caption, sizeof caption, e));
    size_t per = (size_t)(b->L * b->P);
    int rc = image_rows(&im, c->model.patch_size, b->x0 + (size_t)i * per, e);
    hd_image_free(&im);
    if (rc == 0) rc = sample_sequence(b, i, c, tx, caption, k, e);
    if (rc < 0) return hd_error_prefix(e, "sample %llu", (unsigned long long)k);
    hd_prng r;
    hd_prng_seed(&r, hd_prng_derive(hd_prng_derive(c->seed, k), STREAM_SIGMA));
    b->sigma[i] = hd_train_draw_sigma(&c->objective, &r);
    /* the noise uses the same generator as inference's initial noise (torch.randn) */
    float *z = b->z + (size_t)i * per;
    hd_torch_randn(hd_prng_derive(hd_prng_derive(c->seed, k), STREAM_NOISE), z, per);
    hd_train_noise(z, b->x0 + (size_t)i * per, z, per, b->sigma[i], c->model.noise_scale);
    hd_uit_sample *s = &b->s[i];
    s->seq = (hd_uit_seq){0};
    s->seq.ids = b->seq[i].ids;
    s->seq.n_text = b->seq[i].T;
    s->seq.n_seq = b->seq[i].S;
    s->seq.pos = b->seq[i].pos;
    s->seq.n_causal = b->seq[i].A;
    s->x = z;
    s->t = 1.0 - b->sigma[i];
    return 0;
}

int hd_train_batch_fill(hd_train_batch *b, const hd_train_config *c, const hd_dataset *ds,
                        const hd_train_text *tx, int bucket, uint64_t k0, int n, int with_lm,
                        int V, hd_error *e) {
    int p = c->model.patch_size;
    hd_dataset_bucket_size(ds, bucket, &b->w, &b->h);
    b->L = (int64_t)(b->w / p) * (b->h / p);
    b->P = 3LL * p * p;
    HD_TRY(reserve(b, n, (size_t)n * (size_t)(b->L * b->P), 0, V, 0, e));
    b->n = n;
    for (int i = 0; i < n; i++) HD_TRY(one_sample(b, i, c, ds, tx, bucket, k0 + (uint64_t)i, e));
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += b->seq[i].A - 1;
    HD_TRY(reserve(b, n, 0, (size_t)rows, V, with_lm, e));
    b->lm_rows = rows;
    b->lm_count = 0;
    int64_t row0 = 0;
    for (int i = 0; i < n; i++) {
        sample_lm(b, i, tx, row0);
        row0 += b->seq[i].A - 1;
    }
    return 0;
}

void hd_train_batch_free(hd_train_batch *b) {
    for (int i = 0; b->seq && i < b->cap_n; i++) hd_sequence_free(&b->seq[i]);
    free(b->seq);
    free(b->s);
    free(b->sigma);
    free(b->x0);
    free(b->z);
    free(b->pred);
    free(b->dpred);
    free(b->lm_target);
    free(b->lm_mask);
    free(b->logits);
    free(b->dlogits);
    memset(b, 0, sizeof *b);
}
