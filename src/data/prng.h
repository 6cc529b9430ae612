/* The data code's own small random generator: xoshiro256** seeded through splitmix64.
 *
 * The shapes world and the dataset draws must be reproducible from one 64-bit seed on every
 * platform and independent of the sampling noise generator (src/sample/rng.h, which mirrors
 * PyTorch), so they use this self-contained generator. */
#ifndef HD_DATA_PRNG_H
#define HD_DATA_PRNG_H

#include <stdint.h>

typedef struct hd_prng {
    uint64_t s[4];
} hd_prng;

/* One splitmix64 step: also a good 64-bit mixing function for deriving seeds. */
static inline uint64_t hd_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Seed derived from a parent seed and an index (image i of a run, ...). */
static inline uint64_t hd_prng_derive(uint64_t seed, uint64_t index) {
    uint64_t x = seed ^ (index * 0xD1B54A32D192ED03ull);
    hd_splitmix64(&x);
    return hd_splitmix64(&x);
}

static inline void hd_prng_seed(hd_prng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = hd_splitmix64(&x);
}

static inline uint64_t hd_prng_rotl(uint64_t v, int k) { return (v << k) | (v >> (64 - k)); }

static inline uint64_t hd_prng_next(hd_prng *r) {
    uint64_t *s = r->s;
    uint64_t out = hd_prng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = hd_prng_rotl(s[3], 45);
    return out;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double hd_prng_uniform(hd_prng *r) {
    return (double)(hd_prng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform double in [lo, hi). */
static inline double hd_prng_range(hd_prng *r, double lo, double hi) {
    return lo + (hi - lo) * hd_prng_uniform(r);
}

/* Uniform integer in [0, n), n >= 1, without modulo bias (Lemire's multiply-shift with
 * rejection). */
static inline uint32_t hd_prng_below(hd_prng *r, uint32_t n) {
    uint64_t m = (uint64_t)(uint32_t)(hd_prng_next(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t t = (uint32_t)-n % n;
        while (low < t) {
            m = (uint64_t)(uint32_t)(hd_prng_next(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

#endif
