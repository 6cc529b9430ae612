#include "core/cpu_features.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* Linux hands out the AMX tile state (8 KB per thread) only to processes that ask for it; the
 * permission is process-wide, so asking again is harmless. 1 if granted. */
static int amx_permitted(void) {
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

void hd_cpu_features_detect(hd_cpu_features *f) {
    memset(f, 0, sizeof *f);
#if defined(__x86_64__) || defined(__i386__)
    /* __builtin_cpu_supports also checks that the OS saves the wide registers (XCR0). */
    __builtin_cpu_init();
    f->avx2 = __builtin_cpu_supports("avx2") != 0;
    f->fma = __builtin_cpu_supports("fma") != 0;
    f->avx512f = __builtin_cpu_supports("avx512f") != 0;
    f->avx512bw = __builtin_cpu_supports("avx512bw") != 0;
    f->avx512dq = __builtin_cpu_supports("avx512dq") != 0;
    f->avx512vl = __builtin_cpu_supports("avx512vl") != 0;
    /* F16C and AVX512-BF16 are read from CPUID directly (not every compiler names them). */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) f->f16c = (c >> 29) & 1u;
    if (f->avx512f && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f->avx512bf16 = (a >> 5) & 1u;
    if (f->avx512f && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f->avx512vnni = (c >> 11) & 1u;
        /* AMX-BF16 (edx bit 22), AMX-TILE (24), AMX-INT8 (25); the kernels use them beside
         * AVX-512, so only where that is usable too */
        unsigned amx = (1u << 22) | (1u << 24) | (1u << 25);
        f->amx_cpu = (d & amx) == amx && f->avx512bw && f->avx512vl && f->avx512bf16;
        f->amx = f->amx_cpu && amx_permitted();
    }
    if (!f->avx2) f->f16c = 0; /* F16C needs the AVX state the avx2 check verified */
#endif
}

int hd_cpu_isa_supported(int isa) {
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    switch (isa) {
    case HD_ISA_SCALAR: return 1;
    case HD_ISA_AVX2: return f.avx2 && f.fma && f.f16c;
    case HD_ISA_AVX512:
        return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
    default: return 0;
    }
}

int hd_cpu_best_isa(void) {
    if (hd_cpu_isa_supported(HD_ISA_AVX512)) return HD_ISA_AVX512;
    if (hd_cpu_isa_supported(HD_ISA_AVX2)) return HD_ISA_AVX2;
    return HD_ISA_SCALAR;
}

const char *hd_cpu_isa_name(int isa) {
    switch (isa) {
    case HD_ISA_SCALAR: return "scalar";
    case HD_ISA_AVX2: return "avx2";
    case HD_ISA_AVX512: return "avx512";
    default: return "?";
    }
}
