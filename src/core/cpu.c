/* cpu.c — the CPU's vector features by cpuid, and the OpenBLAS kernel they call for (see
 * cpu.h). */
#include "core/cpu.h"

#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* OpenBLAS exports these; another CBLAS (BLIS, MKL) does not, so they are weak. */
extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static void read_brand(cpu_features *f)
{
    unsigned r[12] = {0};
    for (unsigned i = 0; i < 3; i++)
        if (!__get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]))
            return;
    memcpy(f->brand, r, 48);
    f->brand[48] = '\0';
    char *p = f->brand;
    while (*p == ' ')
        p++;
    memmove(f->brand, p, strlen(p) + 1);
    for (size_t n = strlen(f->brand); n && f->brand[n - 1] == ' ';)
        f->brand[--n] = '\0';
}

void cpu_detect(cpu_features *f)
{
    memset(f, 0, sizeof *f);
    unsigned a = 0, b = 0, c = 0, d = 0, max = 0;
    if (!__get_cpuid(0, &max, &b, &c, &d))
        return;
    f->intel = b == 0x756e6547u; /* "GenuineIntel" */
    f->amd = b == 0x68747541u;   /* "AuthenticAMD" */
    __get_cpuid(1, &a, &b, &c, &d);
    int base_family = (int)((a >> 8) & 0xf), base_model = (int)((a >> 4) & 0xf);
    f->family = base_family == 0xf ? base_family + (int)((a >> 20) & 0xff) : base_family;
    f->model = base_family == 0x6 || base_family == 0xf ? base_model + (int)(((a >> 16) & 0xf) << 4)
                                                        : base_model;
    f->sse3 = (c & 1u) != 0;
    const int osxsave = (c & (1u << 27)) != 0;
    const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    const int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    f->avx = ymm && (c & (1u << 28));
    f->fma = ymm && (c & (1u << 12));
    if (max >= 7) {
        __get_cpuid_count(7, 0, &a, &b, &c, &d);
        f->avx2 = ymm && (b & (1u << 5));
        f->avx512f = zmm && (b & (1u << 16));
        f->avx512dq = zmm && (b & (1u << 17));
        f->avx512bw = zmm && (b & (1u << 30));
        f->avx512vl = zmm && (b & (1u << 31));
    }
    read_brand(f);
}
#else
void cpu_detect(cpu_features *f) { memset(f, 0, sizeof *f); }
#endif

void cpu_features_text(const cpu_features *f, char *buf, int size)
{
    const struct {
        int on;
        const char *name;
    } list[] = {{f->sse3, "sse3"},         {f->avx, "avx"},          {f->avx2, "avx2"},
                {f->fma, "fma"},           {f->avx512f, "avx512f"},  {f->avx512bw, "avx512bw"},
                {f->avx512dq, "avx512dq"}, {f->avx512vl, "avx512vl"}};
    int used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof list / sizeof list[0] && used < size; i++)
        if (list[i].on)
            used += snprintf(buf + used, (size_t)(size - used), "%s%s", used ? " " : "",
                             list[i].name);
}

const char *blas_best_core(const cpu_features *f)
{
    const int avx512 = f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl;
    if (avx512)
        return "SkylakeX";
    if (f->avx2 && f->fma)
        return f->amd ? "Zen" : "Haswell";
    if (f->avx)
        return "Sandybridge";
    return NULL;
}

int blas_core_rank(const char *core)
{
    static const struct {
        const char *name;
        int rank;
    } CORES[] = {
        {"Katmai", 1},       {"Coppermine", 1},     {"Northwood", 1},
        {"Prescott", 1},     {"Banias", 1},         {"Atom", 1},
        {"Core2", 1},        {"Penryn", 1},         {"Dunnington", 1},
        {"Nehalem", 1},      {"Athlon", 1},         {"Opteron", 1},
        {"Opteron_SSE3", 1}, {"Barcelona", 1},      {"Nano", 1},
        {"Bobcat", 1},       {"Sandybridge", 2},    {"Bulldozer", 2},
        {"Piledriver", 2},   {"Steamroller", 2},    {"Haswell", 3},
        {"Zen", 3},          {"Excavator", 3},      {"SkylakeX", 4},
        {"Cooperlake", 4},   {"SapphireRapids", 4},
    };
    for (size_t i = 0; core && i < sizeof CORES / sizeof CORES[0]; i++)
        if (!strcmp(core, CORES[i].name))
            return CORES[i].rank;
    return 0;
}

const char *blas_core_to_force(const cpu_features *f, const char *chosen)
{
    const char *best = blas_best_core(f);
    const int have = blas_core_rank(chosen);
    return best && have > 0 && have < blas_core_rank(best) ? best : NULL;
}

const char *blas_config(void)
{
    return openblas_get_config ? openblas_get_config() : "unknown (not OpenBLAS)";
}

const char *blas_core(void)
{
    return openblas_get_corename ? openblas_get_corename() : "none (OpenBLAS not loaded)";
}
