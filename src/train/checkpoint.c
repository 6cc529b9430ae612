/* Checkpoints and model export (checkpoint.h). */
#include "train/checkpoint.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/safetensors.h"

enum { STATE_STEP = 0, STATE_SEED, STATE_COUNT, STATE_N };

/* Host copies of backend tensors, freed together. */
typedef struct host_set {
    hd_st_write_item *items;
    float **bufs;
    int n, cap;
} host_set;

static int host_add(host_set *h, hd_backend *be, const char *prefix, const hd_uit_param *p,
                    const hd_tensor *t, hd_dtype dtype, hd_error *e) {
    if (h->n == h->cap) return hd_fail(e, HD_ENOMEM, "checkpoint: too many tensors");
    size_t n = (size_t)(t->rows * t->cols);
    float *buf = malloc(n * sizeof *buf);
    size_t len = strlen(prefix) + strlen(p->name) + 1;
    char *name = malloc(len);
    if (!buf || !name) {
        free(buf);
        free(name);
        return hd_fail(e, HD_ENOMEM, "checkpoint: out of memory");
    }
    snprintf(name, len, "%s%s", prefix, p->name);
    be->ops->read(be, t, buf);
    if (dtype == HD_BF16) { /* narrow in place: the first half of buf holds the bf16 values */
        uint16_t *b = (uint16_t *)buf;
        for (size_t i = 0; i < n; i++) b[i] = hd_f32_to_bf16(buf[i]);
    }
    hd_st_write_item *it = &h->items[h->n];
    memset(it, 0, sizeof *it);
    it->name = name;
    it->dtype = dtype;
    it->ndim = p->ndim;
    if (p->ndim == 1) {
        it->shape[0] = t->rows * t->cols;
    } else {
        it->shape[0] = t->rows;
        it->shape[1] = t->cols;
    }
    it->data = buf;
    h->bufs[h->n++] = buf;
    return 0;
}

static int host_init(host_set *h, int cap, hd_error *e) {
    h->items = calloc((size_t)cap, sizeof *h->items);
    h->bufs = calloc((size_t)cap, sizeof *h->bufs);
    h->n = 0;
    h->cap = cap;
    if (!h->items || !h->bufs) return hd_fail(e, HD_ENOMEM, "checkpoint: out of memory");
    return 0;
}

static void host_free(host_set *h) {
    for (int i = 0; i < h->n; i++) {
        free(h->bufs[i]);
        free((char *)h->items[i].name);
    }
    free(h->items);
    free(h->bufs);
    memset(h, 0, sizeof *h);
}

int hd_train_checkpoint_save(const char *path, const hd_train_optimizer *o, int64_t step,
                             uint64_t seed, hd_error *e) {
    host_set h = {0};
    int rc = host_init(&h, 4 * o->n + 1, e);
    for (int i = 0; rc == 0 && i < o->n; i++) {
        const hd_uit_param *p = &o->ps[i];
        rc = host_add(&h, o->be, "", p, p->w, HD_F32, e);
        if (rc == 0) rc = host_add(&h, o->be, "adam_m.", p, &o->m[i], HD_F32, e);
        if (rc == 0) rc = host_add(&h, o->be, "adam_v.", p, &o->v[i], HD_F32, e);
        if (rc == 0 && o->ema) rc = host_add(&h, o->be, "ema.", p, &o->ema[i], HD_F32, e);
    }
    int64_t state[STATE_N] = {step, (int64_t)seed, o->n};
    if (rc == 0) {
        hd_st_write_item *it = &h.items[h.n];
        memset(it, 0, sizeof *it);
        it->name = "trainer.state";
        it->dtype = HD_I64;
        it->ndim = 1;
        it->shape[0] = STATE_N;
        it->data = state;
        rc = hd_st_write(path, h.items, h.n + 1, e);
    }
    host_free(&h);
    return rc;
}

static int load_one(const hd_safetensors *st, const char *path, const char *prefix,
                    hd_backend *be, const hd_uit_param *p, hd_tensor *t, float *buf,
                    hd_error *e) {
    char name[160];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    const hd_st_tensor *x = hd_st_find(st, name);
    if (!x) return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': missing", path, name);
    int64_t n = t->rows * t->cols;
    int ok = x->dtype == HD_F32 && x->numel == n &&
             (p->ndim == 1 ? x->ndim == 1 : x->ndim == 2 && x->shape[0] == t->rows);
    if (!ok)
        return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': not F32 of the model's shape [%lld, %lld] "
                       "(a checkpoint of another model?)", path, name, (long long)t->rows,
                       (long long)t->cols);
    HD_TRY(hd_st_read_f32(x, buf, (size_t)n, e));
    be->ops->write(be, t, buf);
    return 0;
}

static int check_state(const hd_safetensors *st, const char *path, const hd_train_optimizer *o,
                       uint64_t seed, int64_t *step, hd_error *e) {
    const hd_st_tensor *s = hd_st_find(st, "trainer.state");
    int64_t v[STATE_N];
    if (!s || s->dtype != HD_I64 || s->numel != STATE_N)
        return hd_fail(e, HD_EFORMAT, "%s: trainer.state: missing or not I64[%d]", path, STATE_N);
    HD_TRY(hd_st_read_i64(s, v, STATE_N, e));
    if (v[STATE_SEED] != (int64_t)seed)
        return hd_fail(e, HD_EMISMATCH, "%s: trainer.state: seed %lld, but the recipe says %llu",
                       path, (long long)v[STATE_SEED], (unsigned long long)seed);
    if (v[STATE_COUNT] != o->n || v[STATE_STEP] < 0)
        return hd_fail(e, HD_EMISMATCH, "%s: trainer.state: %lld tensors at step %lld, the model "
                       "has %d", path, (long long)v[STATE_COUNT], (long long)v[STATE_STEP], o->n);
    *step = v[STATE_STEP];
    return 0;
}

int hd_train_checkpoint_load(const char *path, hd_train_optimizer *o, uint64_t seed,
                             int64_t *step, hd_error *e) {
    hd_safetensors st;
    HD_TRY(hd_st_open(&st, path, e));
    int rc = check_state(&st, path, o, seed, step, e);
    size_t most = 0;
    for (int i = 0; i < o->n; i++) {
        size_t n = (size_t)(o->ps[i].w->rows * o->ps[i].w->cols);
        if (n > most) most = n;
    }
    float *buf = rc == 0 ? malloc(most * sizeof *buf) : NULL;
    if (rc == 0 && !buf) rc = hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    for (int i = 0; rc == 0 && i < o->n; i++) {
        const hd_uit_param *p = &o->ps[i];
        rc = load_one(&st, path, "", o->be, p, p->w, buf, e);
        if (rc == 0) rc = load_one(&st, path, "adam_m.", o->be, p, &o->m[i], buf, e);
        if (rc == 0) rc = load_one(&st, path, "adam_v.", o->be, p, &o->v[i], buf, e);
        if (rc == 0 && o->ema) rc = load_one(&st, path, "ema.", o->be, p, &o->ema[i], buf, e);
    }
    free(buf);
    hd_st_close(&st);
    return rc;
}
