/* Run-time detection of the x86 vector extensions the CPU kernels can use. */
#ifndef HD_CORE_CPU_FEATURES_H
#define HD_CORE_CPU_FEATURES_H

/* Kernel families, in increasing order of capability (hd_backend_options.isa uses these). */
enum {
    HD_ISA_BEST = 0,   /* pick the best the CPU supports */
    HD_ISA_SCALAR = 1, /* portable C */
    HD_ISA_AVX2 = 2,   /* AVX2 + FMA + F16C */
    HD_ISA_AVX512 = 3, /* AVX-512 F/BW/DQ/VL + FMA + F16C */
};

typedef struct hd_cpu_features {
    int avx2, fma, f16c;
    int avx512f, avx512bw, avx512dq, avx512vl, avx512bf16, avx512vnni;
    /* AMX tiles with bf16 and int8 products (amx_cpu), and the OS lets this process use them
     * (amx) */
    int amx_cpu, amx;
} hd_cpu_features;

void hd_cpu_features_detect(hd_cpu_features *f);
/* The best kernel family this CPU (and OS) can run. */
int hd_cpu_best_isa(void);
/* 1 if the CPU can run the kernel family isa (HD_ISA_SCALAR..HD_ISA_AVX512). */
int hd_cpu_isa_supported(int isa);
const char *hd_cpu_isa_name(int isa);

#endif
