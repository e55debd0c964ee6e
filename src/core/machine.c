/* machine.c — what the products run on: the CPU, its features, the BLAS and its kernel (and who
 * chose it: OpenBLAS, the user, or anamo_program_setup over a fallback), oneDNN, and how idle
 * OpenMP threads wait. */
#include "anamo.h"
#include "core/cpu.h"
#include "dist/comm.h"

#include <dnnl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* oneDNN's name for the instruction set its kernels were generated for. */
static const char *dnnl_isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static void describe_dnnl(char *out, size_t size)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(out, size, "oneDNN %d.%d.%d (%s threads, ISA %s)", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "non-OpenMP",
             dnnl_isa_name(dnnl_get_effective_cpu_isa()));
}

/* How libgomp's idle threads wait, and who chose it: anamo_program_setup, the user, or nobody
 * (libgomp's default spin before sleeping, 300,000). */
static void describe_omp_wait(char *out, size_t size)
{
    const char *spin = getenv("GOMP_SPINCOUNT"), *policy = getenv("OMP_WAIT_POLICY");
    const char *chosen = getenv(ANAMO_SPIN_CHOSEN); /* the value anamo set, if it set one */
    if (spin && !policy && chosen && !strcmp(spin, chosen))
        snprintf(out, size, "GOMP_SPINCOUNT=%s (anamo's choice)", spin);
    else if (spin || policy)
        snprintf(out, size, "%s%s%s%s%s (yours)", spin ? "GOMP_SPINCOUNT=" : "", spin ? spin : "",
                 spin && policy ? ", " : "", policy ? "OMP_WAIT_POLICY=" : "",
                 policy ? policy : "");
    else
        snprintf(out, size, "libgomp's default (a spin of 300000 before sleeping)");
}

void anamo_machine_describe(anamo_machine *out)
{
    memset(out, 0, sizeof *out);
    cpu_features f;
    cpu_detect(&f);
    snprintf(out->cpu, sizeof out->cpu, "%s", f.brand[0] ? f.brand : "unknown");
    out->family = f.family, out->model = f.model;
    cpu_features_text(&f, out->features, (int)sizeof out->features);
    snprintf(out->blas, sizeof out->blas, "%s", blas_config());
    snprintf(out->kernel, sizeof out->kernel, "%s", blas_core());
    const char *best = blas_best_core(&f), *fallback = getenv(ANAMO_BLAS_FALLBACK);
    snprintf(out->best_kernel, sizeof out->best_kernel, "%s", best ? best : "none");
    if (fallback)
        snprintf(out->kernel_note, sizeof out->kernel_note,
                 "forced by anamo over OpenBLAS's own choice, %s", fallback);
    else if (getenv("OPENBLAS_CORETYPE"))
        snprintf(out->kernel_note, sizeof out->kernel_note, "OPENBLAS_CORETYPE=%s (yours)",
                 getenv("OPENBLAS_CORETYPE"));
    else
        snprintf(out->kernel_note, sizeof out->kernel_note, "OpenBLAS's own choice");
    describe_dnnl(out->dnnl, sizeof out->dnnl);
    dist_describe(out->mpi, sizeof out->mpi);
    describe_omp_wait(out->omp_wait, sizeof out->omp_wait);
}
