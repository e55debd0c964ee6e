/* cpu.h — what the CPU can do, and which OpenBLAS kernel that calls for.
 *
 * Debian 12's OpenBLAS 0.3.21 picks its kernel from the CPU's family and model; on a CPU it
 * does not know (seen: Intel family 6 model 207, AVX-512) it falls back to the SSE3 "Prescott"
 * kernel, 5.8× slower in sgemm, and says nothing. anamo reads the CPU's features itself
 * (cpuid, and xgetbv for whether the OS saves the vector registers), ranks the kernel OpenBLAS
 * chose against the one those features allow, and programs restart once with OPENBLAS_CORETYPE
 * set when the chosen one is weaker (src/program/setup.c) — never over a user's own setting. */
#ifndef ANAMO_CORE_CPU_H
#define ANAMO_CORE_CPU_H

typedef struct cpu_features {
    int intel, amd;           /* vendor */
    int family, model;        /* display family and model, as /proc/cpuinfo shows them */
    int sse3, avx, avx2, fma; /* usable: the CPU has them and the OS saves their registers */
    int avx512f, avx512bw, avx512dq, avx512vl;
    char brand[49]; /* cpuid's brand string, trimmed */
} cpu_features;

/* The features of this CPU (all zero off x86-64). */
void cpu_detect(cpu_features *f);
/* "avx2 fma avx512f …": the usable features, space-separated, into buf. */
void cpu_features_text(const cpu_features *f, char *buf, int size);

/* The OpenBLAS core type (an OPENBLAS_CORETYPE name) the features call for: "SkylakeX" for a
 * CPU with AVX-512 F, BW, DQ and VL, AMD's too (on a Zen 4 the SkylakeX kernels ran the models'
 * products 1.9x as fast as the Zen ones: bench/README.md); "Zen" for an AMD CPU with AVX2 and
 * FMA; "Haswell" for AVX2 and FMA; "Sandybridge" for AVX; NULL when nothing better than the SSE
 * baseline applies. */
const char *blas_best_core(const cpu_features *f);
/* Rank of an OpenBLAS core name by the widest vectors its sgemm kernel uses: 1 SSE, 2 AVX,
 * 3 AVX2 + FMA, 4 AVX-512; 0 for a name this table does not know. */
int blas_core_rank(const char *core);
/* The core type to force, or NULL: the best core for f when OpenBLAS chose a known core of
 * lower rank (an unknown name is left alone: it may be newer than this table). */
const char *blas_core_to_force(const cpu_features *f, const char *chosen);

/* OpenBLAS's own description ("OpenBLAS 0.3.21 … Zen MAX_THREADS=64") and its core name, or
 * "unknown" when the BLAS anamo runs on is not OpenBLAS. */
const char *blas_config(void);
const char *blas_core(void);

/* The environment variable in which anamo_program_setup leaves the kernel OpenBLAS had chosen
 * before it forced a better one (anamo_machine_describe reports it). */
#define ANAMO_BLAS_FALLBACK "ANAMO_BLAS_FALLBACK"
/* ... and the one in which it leaves the GOMP_SPINCOUNT it set (a different value, or an
 * OMP_WAIT_POLICY beside it, is the user's). */
#define ANAMO_SPIN_CHOSEN "ANAMO_SPIN_CHOSEN"

#endif
