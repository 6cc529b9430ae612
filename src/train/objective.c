/* The x0 flow-matching objective and the LM term (objective.h), in double accumulators. */
#include "train/objective.h"

#include <math.h>
#include <string.h>

double hd_train_normal(hd_prng *r) {
    double u1 = hd_prng_uniform(r), u2 = hd_prng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300; /* log(0) */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double hd_train_draw_sigma(const hd_train_objective *o, hd_prng *r) {
    double s;
    if (o->sigma_dist == HD_SIGMA_UNIFORM)
        s = hd_prng_uniform(r);
    else
        s = 1.0 / (1.0 + exp(-(o->sigma_mean + o->sigma_std * hd_train_normal(r))));
    /* σ = 0 or 1 exactly would make a sample carry no signal (or no noise) */
    return fmin(fmax(s, 1e-5), 1.0 - 1e-5);
}

void hd_train_noise(float *z, const float *x0, const float *eps, size_t n, double sigma,
                    double noise_scale) {
    const float a = (float)(1.0 - sigma), b = (float)(sigma * noise_scale);
    for (size_t i = 0; i < n; i++) z[i] = a * x0[i] + b * eps[i];
}

double hd_train_image_loss(const float *pred, const float *x0, size_t n, double sigma,
                           double sigma_min, double scale, float *dpred) {
    double w = 1.0 / fmax(sigma, sigma_min);
    w *= w;
    double sum = 0;
    const double g = 2.0 * w * scale / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - (double)x0[i];
        sum += d * d;
        dpred[i] = (float)(g * d);
    }
    return w * sum / (double)n;
}

double hd_train_lm_loss(const float *logits, int V, const int32_t *target, const uint8_t *mask,
                        int64_t rows, double scale, float *dlogits) {
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *lg = logits + r * V;
        float *dl = dlogits + r * V;
        if (!mask[r]) {
            memset(dl, 0, (size_t)V * sizeof *dl);
            continue;
        }
        double mx = lg[0], sum = 0;
        for (int v = 1; v < V; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < V; v++) sum += exp((double)lg[v] - mx);
        total += log(sum) + mx - lg[target[r]];
        for (int v = 0; v < V; v++)
            dl[v] = (float)(scale * (exp((double)lg[v] - mx) / sum - (v == target[r])));
    }
    return total;
}
