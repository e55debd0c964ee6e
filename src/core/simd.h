/* simd.h — element-wise loops compiled for the CPU they run on.
 *
 * The library is built for the x86-64 baseline (SSE2), so that one build runs anywhere; its
 * hot element-wise loops (activations, Adam) would then use 4-wide vectors even on a CPU with
 * AVX-512. ANAMO_CLONES makes gcc compile a function three times (AVX-512 F, AVX2, baseline)
 * and pick one by cpuid when the program loads (an ifunc). The clones compute bit for bit what
 * the baseline does: the build turns off FMA contraction (-ffp-contract=off), and only loops
 * without reductions are cloned, so wider vectors change no rounding
 * (tests/bit-identical.ref's check holds on every CPU). With -march=native (ANAMO_NATIVE) the
 * whole build already targets this CPU, and with compilers other than gcc the macro is empty. */
#ifndef ANAMO_CORE_SIMD_H
#define ANAMO_CORE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(ANAMO_NATIVE_BUILD)
#define ANAMO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ANAMO_CLONES
#endif

#endif
