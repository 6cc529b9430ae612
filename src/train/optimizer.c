/* AdamW + schedule + EMA on backend tensors (optimizer.h). */
#include "train/optimizer.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

int hd_train_optimizer_init(hd_train_optimizer *o, hd_backend *be, hd_uit_param *ps, int n,
                            int with_ema, hd_error *e) {
    o->be = be;
    o->ps = ps;
    o->n = n;
    o->m = calloc((size_t)n, sizeof *o->m);
    o->v = calloc((size_t)n, sizeof *o->v);
    o->ema = with_ema ? calloc((size_t)n, sizeof *o->ema) : NULL;
    if (!o->m || !o->v || (with_ema && !o->ema))
        return hd_fail(e, HD_ENOMEM, "optimizer: out of memory");
    for (int i = 0; i < n; i++) {
        const hd_tensor *w = ps[i].w;
        HD_TRY(be->ops->alloc(be, &o->m[i], HD_F32, w->rows, w->cols, e));
        HD_TRY(be->ops->alloc(be, &o->v[i], HD_F32, w->rows, w->cols, e));
        be->ops->fill(be, &o->m[i], 0.0f);
        be->ops->fill(be, &o->v[i], 0.0f);
        if (o->ema) {
            HD_TRY(be->ops->alloc(be, &o->ema[i], HD_F32, w->rows, w->cols, e));
            /* ema = w as 1·w + 0·ema: the fresh memory must be zero first (0·NaN is NaN) */
            be->ops->fill(be, &o->ema[i], 0.0f);
            be->ops->axpby(be, &o->ema[i], 1.0f, w, 0.0f);
        }
    }
    return 0;
}

void hd_train_optimizer_free(hd_train_optimizer *o) {
    for (int i = 0; i < o->n; i++) {
        if (o->m) hd_tensor_free(o->be, &o->m[i]);
        if (o->v) hd_tensor_free(o->be, &o->v[i]);
        if (o->ema) hd_tensor_free(o->be, &o->ema[i]);
    }
    free(o->m);
    free(o->v);
    free(o->ema);
    o->m = o->v = o->ema = NULL;
    o->n = 0;
}

double hd_train_lr(const hd_train_optim *o, int64_t step, int64_t total) {
    if (step < o->warmup) return o->lr * (double)(step + 1) / (double)o->warmup;
    int64_t span = total - o->warmup;
    double frac = span > 1 ? (double)(step - o->warmup) / (double)(span - 1) : 1.0;
    if (frac > 1) frac = 1;
    double lo = o->lr * o->min_lr_ratio;
    return lo + 0.5 * (o->lr - lo) * (1.0 + cos(3.141592653589793 * frac));
}

double hd_train_optimizer_step(hd_train_optimizer *o, const hd_train_optim *c, double lr,
                               int64_t step) {
    hd_backend *be = o->be;
    double ss = 0;
    for (int i = 0; i < o->n; i++) ss += be->ops->sum_squares(be, &o->ps[i].grad);
    double norm = sqrt(ss);
    hd_adamw_step a = {.lr = (float)lr, .beta1 = (float)c->beta1, .beta2 = (float)c->beta2,
                       .eps = (float)c->eps};
    a.bc1 = (float)(1.0 - pow(c->beta1, (double)(step + 1)));
    a.bc2 = (float)(1.0 - pow(c->beta2, (double)(step + 1)));
    a.grad_scale = c->clip > 0 && norm > c->clip ? (float)(c->clip / norm) : 1.0f;
    for (int i = 0; i < o->n; i++) {
        a.weight_decay = o->ps[i].decay ? (float)c->weight_decay : 0.0f;
        be->ops->adamw(be, o->ps[i].w, &o->ps[i].grad, &o->m[i], &o->v[i], &a);
    }
    if (o->ema) {
        double d = fmin(c->ema_decay, (1.0 + (double)step) / (10.0 + (double)step));
        for (int i = 0; i < o->n; i++)
            be->ops->axpby(be, &o->ema[i], (float)(1.0 - d), o->ps[i].w, (float)d);
    }
    return norm;
}
