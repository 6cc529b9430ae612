/* torch.randn on the CPU, bit for bit (spec 05 §1).
 *
 * PyTorch's CPU generator is a 32-bit MT19937 seeded from the low 32 bits of the 64-bit seed.
 * `torch.randn(n)` in float32 then takes one of two paths:
 *   n >= 16: draw n float uniforms (24-bit), Box–Muller in blocks of 16 with the single-precision
 *            Cephes log/sin/cos of PyTorch's AVX2 kernel (the exact FMA sequence of the spec);
 *            if n is not a multiple of 16, the last 16 outputs are redrawn from 16 fresh uniforms.
 *   n <  16: per element, a double-precision normal with two 53-bit uniforms and a cached second
 *            sample (the generator keeps that cache across calls).
 * The initial noise of the official pipeline is randn(1, 3, H, W) from a generator seeded seed + 1.
 *
 * Caveat (spec 05 §1.5): PyTorch builds that dispatch a non-AVX2 CPU kernel compute the n >= 16
 * path with libm instead and differ in the last bits; we reproduce the AVX2 path (the golden's). */
#ifndef HD_SAMPLE_RNG_H
#define HD_SAMPLE_RNG_H

#include <stddef.h>
#include <stdint.h>

#define HD_MT19937_N 624

typedef struct hd_mt19937 {
    uint32_t state[HD_MT19937_N];
    int index; /* next word of state to temper; HD_MT19937_N = twist first */
} hd_mt19937;

/* Knuth initialisation from the low 32 bits of seed (as at::mt19937). */
void hd_mt19937_seed(hd_mt19937 *mt, uint64_t seed);
uint32_t hd_mt19937_next(hd_mt19937 *mt);

/* The state of a torch.Generator('cpu'): the engine plus the cached second Box–Muller sample
 * of the double-precision scalar path. */
typedef struct hd_torch_gen {
    hd_mt19937 mt;
    int has_next_normal;
    double next_normal;
} hd_torch_gen;

/* torch.Generator('cpu').manual_seed(seed). */
void hd_torch_gen_seed(hd_torch_gen *g, uint64_t seed);

/* torch.randn(n, generator=g) in float32, advancing g exactly as PyTorch does (so successive
 * calls reproduce successive torch.randn calls on one generator). */
void hd_torch_gen_randn(hd_torch_gen *g, float *out, size_t n);

/* torch.randn(n, generator=torch.Generator('cpu').manual_seed(seed)), float32. */
void hd_torch_randn(uint64_t seed, float *out, size_t n);

#endif
