/* test_cpu.c — the OpenBLAS kernel choice (src/core/cpu.c) for CPUs this machine is not:
 * given a feature set and the core OpenBLAS chose, the core anamo forces (or not), so the rule
 * is tested on every machine whatever its CPU; and cpu_detect on this machine against the
 * kernel's own reading of the CPU (/proc/cpuinfo's flags). */
#include "test_util.h"

#include "core/cpu.h"

static cpu_features intel_avx512(void) /* the Intel family 6 model 207 */
{
    cpu_features f = {.intel = 1,
                      .family = 6,
                      .model = 207,
                      .sse3 = 1,
                      .avx = 1,
                      .avx2 = 1,
                      .fma = 1,
                      .avx512f = 1,
                      .avx512bw = 1,
                      .avx512dq = 1,
                      .avx512vl = 1};
    return f;
}

static cpu_features with_avx2(int amd)
{
    cpu_features f = {.intel = !amd, .amd = amd, .sse3 = 1, .avx = 1, .avx2 = 1, .fma = 1};
    return f;
}

static void expect_force(const cpu_features *f, const char *chosen, const char *want)
{
    const char *got = blas_core_to_force(f, chosen);
    const char *name = chosen ? chosen : "(none)";
    if (!want && got)
        fail_msg("OpenBLAS chose %s: nothing should be forced, got %s", name, got);
    if (want && (!got || strcmp(got, want)))
        fail_msg("OpenBLAS chose %s: expected to force %s, got %s", name, want,
                 got ? got : "nothing");
}

/* The fallback the issue saw: Prescott on an AVX-512 Intel CPU becomes SkylakeX; a known good
 * choice is left alone. */
static void test_intel_avx512(void **state)
{
    (void)state;
    cpu_features f = intel_avx512();
    expect_force(&f, "Prescott", "SkylakeX");
    expect_force(&f, "Haswell", "SkylakeX"); /* an AVX2 kernel on AVX-512 hardware */
    expect_force(&f, "Sandybridge", "SkylakeX");
    expect_force(&f, "SkylakeX", NULL);
    expect_force(&f, "Cooperlake", NULL);
    expect_force(&f, "SapphireRapids", NULL);
    /* a name this table does not know may be newer than it: left alone */
    expect_force(&f, "GraniteRapids", NULL);
    /* without one of BW, DQ, VL the SkylakeX kernels may use what is missing: Haswell */
    f.avx512vl = 0;
    expect_force(&f, "Prescott", "Haswell");
    expect_force(&f, "Haswell", NULL);
}

static void test_avx2_cpus(void **state)
{
    (void)state;
    cpu_features intel = with_avx2(0), amd = with_avx2(1);
    expect_force(&intel, "Prescott", "Haswell");
    expect_force(&intel, "Nehalem", "Haswell");
    expect_force(&intel, "Haswell", NULL);
    expect_force(&amd, "Prescott", "Zen");
    expect_force(&amd, "Barcelona", "Zen");
    expect_force(&amd, "Zen", NULL);
    expect_force(&amd, "Haswell", NULL); /* the same AVX2 kernels */
    /* an AMD CPU with AVX-512 (Zen 4) gets the SkylakeX kernels: twice the Zen ones' speed */
    amd.avx512f = amd.avx512bw = amd.avx512dq = amd.avx512vl = 1;
    expect_force(&amd, "Zen", "SkylakeX");
    expect_force(&amd, "Prescott", "SkylakeX");
    expect_force(&amd, "Cooperlake", NULL); /* what OpenBLAS 0.3.21 itself picks on a Zen 4 */
    expect_force(&amd, "SkylakeX", NULL);
    /* without one of them, the AVX2 kernels again */
    amd.avx512dq = 0;
    expect_force(&amd, "Prescott", "Zen");
}

/* Without usable AVX (an old CPU, or an OS that does not save the YMM registers, which
 * cpu_detect reads as no AVX) nothing is forced: forcing a kernel the CPU cannot run would
 * crash on the first product. */
static void test_no_avx(void **state)
{
    (void)state;
    cpu_features sse = {.intel = 1, .sse3 = 1};
    expect_force(&sse, "Prescott", NULL);
    expect_force(&sse, "Core2", NULL);
    assert_null(blas_best_core(&sse));
    cpu_features avx = {.intel = 1, .sse3 = 1, .avx = 1};
    expect_force(&avx, "Prescott", "Sandybridge");
    expect_force(&avx, "Sandybridge", NULL);
    cpu_features none = {0};
    expect_force(&none, "Prescott", NULL);
    expect_force(&none, NULL, NULL);
}

static void test_ranks(void **state)
{
    (void)state;
    assert_int_equal(blas_core_rank("Prescott"), 1);
    assert_int_equal(blas_core_rank("Sandybridge"), 2);
    assert_int_equal(blas_core_rank("Haswell"), 3);
    assert_int_equal(blas_core_rank("Zen"), 3);
    assert_int_equal(blas_core_rank("SkylakeX"), 4);
    assert_int_equal(blas_core_rank("prescott"), 0); /* names are OpenBLAS's, case and all */
    assert_int_equal(blas_core_rank(NULL), 0);
}

/* /proc/cpuinfo's first "flags" line holds word FLAG. */
static int cpuinfo_has(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    int found = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            found = 0;
            for (char *save = NULL, *tok = strtok_r(strchr(line, ':') + 1, " \n", &save); tok;
                 tok = strtok_r(NULL, " \n", &save))
                found |= !strcmp(tok, flag);
            break;
        }
    if (f)
        fclose(f);
    return found;
}

/* The kernel clears a flag the OS does not support (AVX without XSAVE), as cpu_detect does by
 * xgetbv: the two readings agree on every feature anamo ranks by. */
static void test_detect_matches_cpuinfo(void **state)
{
    (void)state;
    cpu_features f;
    cpu_detect(&f);
    if (cpuinfo_has("avx") < 0)
        skip(); /* not Linux on x86-64 */
    assert_int_equal(f.sse3, cpuinfo_has("pni"));
    assert_int_equal(f.avx, cpuinfo_has("avx"));
    assert_int_equal(f.avx2, cpuinfo_has("avx2"));
    assert_int_equal(f.fma, cpuinfo_has("fma"));
    assert_int_equal(f.avx512f, cpuinfo_has("avx512f"));
    assert_int_equal(f.avx512bw, cpuinfo_has("avx512bw"));
    assert_int_equal(f.avx512dq, cpuinfo_has("avx512dq"));
    assert_int_equal(f.avx512vl, cpuinfo_has("avx512vl"));
    char text[128];
    cpu_features_text(&f, text, sizeof text);
    assert_int_equal(strstr(text, "avx2") != NULL, f.avx2);
    printf("this CPU: %s, family %d model %d, %s; OpenBLAS chose %s, the features call for %s\n",
           f.brand, f.family, f.model, text, blas_core(),
           blas_best_core(&f) ? blas_best_core(&f) : "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intel_avx512),
        cmocka_unit_test(test_avx2_cpus),
        cmocka_unit_test(test_no_avx),
        cmocka_unit_test(test_ranks),
        cmocka_unit_test(test_detect_matches_cpuinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
