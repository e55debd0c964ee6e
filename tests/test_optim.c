/* test_optim.c — SGD and Adam against hand arithmetic (written out in the comments) and
 * against the torch.optim.Adam documentation formula evaluated in double here.
 *
 * Tolerance: the optimizers run in float32. Parameters near 2 have a float spacing of
 * 2.4e-7, and one update rounds a handful of times, so a step is right to ≲ 5e-7; we allow
 * THETA_TOL = 1e-6 on parameters. The state (m, v) is compared to 1e-6 relative. Every
 * mistake these tests look for (a missing bias correction, ε inside the root, decoupled
 * instead of L2 weight decay, a swapped β) moves a parameter by ≥ 1e-3. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "optim/optim.h"

#include <math.h>
#include <string.h>

#define THETA_TOL 1e-6
#define STATE_RTOL 1e-6

/* ---- SGD --------------------------------------------------------------------------------- */

/* θ = [1, −2], g = [0.5, 0.1], lr = 0.1:
 *     θ − lr·g = [1 − 0.05, −2 − 0.01] = [0.95, −2.01] */
static void test_sgd_step(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_SGD, 0.1f);
    float theta[2] = {1.0f, -2.0f};
    const float g[2] = {0.5f, 0.1f};
    optim_sgd_step(&cfg, theta, g, 2);
    expect_close("sgd", 0, theta[0], 0.95, 0, THETA_TOL);
    expect_close("sgd", 1, theta[1], -2.01, 0, THETA_TOL);
}

/* Weight decay adds wd·θ to the gradient (PyTorch's weight_decay), wd = 0.01:
 *     g + wd·θ = [0.5 + 0.01, 0.1 − 0.02] = [0.51, 0.08]
 *     θ − lr·(g + wd·θ) = [1 − 0.051, −2 − 0.008] = [0.949, −2.008] */
static void test_sgd_weight_decay(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_SGD, 0.1f);
    cfg.weight_decay = 0.01f;
    float theta[2] = {1.0f, -2.0f};
    const float g[2] = {0.5f, 0.1f};
    optim_sgd_step(&cfg, theta, g, 2);
    expect_close("sgd wd", 0, theta[0], 0.949, 0, THETA_TOL);
    expect_close("sgd wd", 1, theta[1], -2.008, 0, THETA_TOL);
}

/* ---- Adam -------------------------------------------------------------------------------- */

/* torch.optim.Adam's documented update, in double, for one coordinate:
 *     g ← g + wd·θ;  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *     m_hat = m/(1 − β1^t);  v_hat = v/(1 − β2^t);  θ ← θ − lr·m_hat/(√v_hat + ε) */
static void adam_reference(const optim_cfg *c, double *theta, double g, double *m, double *v, int t)
{
    g += (double)c->weight_decay * *theta;
    *m = (double)c->beta1 * *m + (1.0 - (double)c->beta1) * g;
    *v = (double)c->beta2 * *v + (1.0 - (double)c->beta2) * g * g;
    const double m_hat = *m / (1.0 - pow(c->beta1, t));
    const double v_hat = *v / (1.0 - pow(c->beta2, t));
    *theta -= (double)c->lr * m_hat / (sqrt(v_hat) + (double)c->eps);
}

/* Step 1 from m = v = 0: m_hat = g and v_hat = g², so θ moves by lr·g/(|g| + ε), that is
 * lr·sign(g) less lr·ε/|g| ≤ 1e-8:
 *     θ = [1, −2], g = [0.5, 0.1], lr = 0.1  →  [0.9, −2.1]
 * Step 2 with g = [−0.3, 0.4] (β1 = 0.9, β2 = 0.999):
 *     m = 0.9·[0.05, 0.01] + 0.1·[−0.3, 0.4]         = [0.015, 0.049]
 *     v = 0.999·[2.5e−4, 1e−5] + 0.001·[0.09, 0.16]  = [3.3975e−4, 1.6999e−4]
 *     m_hat = m/(1 − 0.81) = [0.0789474, 0.2578947]
 *     v_hat = v/(1 − 0.998001) = [0.1699600, 0.0850375], √v_hat = [0.4122620, 0.2916119]
 *     θ = [0.9 − 0.1·0.0789474/0.4122620, −2.1 − 0.1·0.2578947/0.2916119]
 *       = [0.8808502, −2.1884376] */
static void test_adam_two_steps(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_ADAM, 0.1f);
    float theta[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
    const float g1[2] = {0.5f, 0.1f}, g2[2] = {-0.3f, 0.4f};

    optim_adam_step(&cfg, theta, g1, m, v, 2, 1);
    expect_close("adam step 1", 0, theta[0], 0.9, 0, THETA_TOL);
    expect_close("adam step 1", 1, theta[1], -2.1, 0, THETA_TOL);

    optim_adam_step(&cfg, theta, g2, m, v, 2, 2);
    expect_close("adam step 2 (hand)", 0, theta[0], 0.8808502, 0, THETA_TOL);
    expect_close("adam step 2 (hand)", 1, theta[1], -2.1884376, 0, THETA_TOL);

    for (int i = 0; i < 2; i++) {
        double th = i ? -2.0 : 1.0, mr = 0.0, vr = 0.0;
        adam_reference(&cfg, &th, g1[i], &mr, &vr, 1);
        adam_reference(&cfg, &th, g2[i], &mr, &vr, 2);
        expect_close("adam step 2 (reference)", i, theta[i], th, 0, THETA_TOL);
        expect_close("adam m", i, m[i], mr, STATE_RTOL, 0);
        expect_close("adam v", i, v[i], vr, STATE_RTOL, 0);
    }
}

/* Weight decay wd = 0.5 adds wd·θ to the gradient before the moments:
 *     g + wd·θ = [0.5 + 0.5, 0.1 − 1] = [1, −0.9]
 * so the first step moves by lr·sign(g + wd·θ) = [−0.1, +0.1]: θ = [0.9, −1.9]. (Without decay
 * θ₁ would be −2.1; with AdamW's decoupled decay, −2 − 0.1 + 0.1·0.5·2 = −2.0.) */
static void test_adam_weight_decay(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_ADAM, 0.1f);
    cfg.weight_decay = 0.5f;
    float theta[2] = {1.0f, -2.0f}, m[2] = {0, 0}, v[2] = {0, 0};
    const float g[2] = {0.5f, 0.1f};
    optim_adam_step(&cfg, theta, g, m, v, 2, 1);
    expect_close("adam wd", 0, theta[0], 0.9, 0, THETA_TOL);
    expect_close("adam wd", 1, theta[1], -1.9, 0, THETA_TOL);
    /* the moments hold the decayed gradient: m = (1 − β1)·[1, −0.9] */
    expect_close("adam wd m", 0, m[0], 0.1, STATE_RTOL, 0);
    expect_close("adam wd m", 1, m[1], -0.09, STATE_RTOL, 0);
}

/* Non-default β and ε, a later t: against the reference formula over three steps. ε = 0.1 is
 * large on purpose, so ε placed inside the root or before the bias correction shows. */
static void test_adam_settings(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_ADAM, 0.05f);
    cfg.beta1 = 0.5f, cfg.beta2 = 0.75f, cfg.eps = 0.1f, cfg.weight_decay = 0.1f;
    float theta[3] = {0.25f, -1.0f, 1.5f}, m[3] = {0}, v[3] = {0};
    const float g[3][3] = {{0.2f, -0.7f, 0.05f}, {-0.4f, 0.3f, 0.6f}, {0.1f, 0.1f, -0.9f}};
    double th[3] = {0.25, -1.0, 1.5}, mr[3] = {0}, vr[3] = {0};
    for (int t = 1; t <= 3; t++) {
        optim_adam_step(&cfg, theta, g[t - 1], m, v, 3, t);
        for (int i = 0; i < 3; i++) {
            adam_reference(&cfg, &th[i], g[t - 1][i], &mr[i], &vr[i], t);
            expect_close("adam settings", i, theta[i], th[i], 0, THETA_TOL);
            expect_close("adam settings m", i, m[i], mr[i], STATE_RTOL, 0);
            expect_close("adam settings v", i, v[i], vr[i], STATE_RTOL, 0);
        }
    }
}

/* ---- sizes, defaults and dispatch -------------------------------------------------------- */

static void test_state_floats_and_defaults(void **state)
{
    assert_int_equal(optim_state_floats(OPTIM_SGD, 1000), 0);
    assert_int_equal(optim_state_floats(OPTIM_ADAM, 1000), 2000); /* m then v */
    assert_int_equal(optim_state_floats(OPTIM_ADAM, 0), 0);
    /* torch.optim.Adam's defaults */
    optim_cfg c = optim_defaults(OPTIM_ADAM, 1e-3f);
    assert_true(c.kind == OPTIM_ADAM && c.lr == 1e-3f && c.beta1 == 0.9f && c.beta2 == 0.999f &&
                c.eps == 1e-8f && c.weight_decay == 0.0f);
    assert_int_equal(optim_parse("sgd"), OPTIM_SGD);
    assert_int_equal(optim_parse("adam"), OPTIM_ADAM);
    assert_int_equal(optim_parse("adamw"), -1);
    assert_string_equal(optim_name(OPTIM_ADAM), "adam");
    assert_string_equal(optim_name(OPTIM_SGD), "sgd");
}

/* optim_step is the direct call, bit for bit: Adam's state span is m (n floats) then v. */
static void test_dispatch(void **state)
{
    enum { N = 5, T = 3 };
    const float g[T][N] = {{0.1f, -0.2f, 0.3f, -0.4f, 0.5f},
                           {-0.5f, 0.25f, 0.0f, 1.0f, -0.125f},
                           {0.3f, 0.3f, -0.3f, 0.7f, 0.01f}};
    for (int kind = OPTIM_SGD; kind <= OPTIM_ADAM; kind++) {
        optim_cfg cfg = optim_defaults((optim_kind)kind, 0.05f);
        cfg.weight_decay = 0.01f;
        float a[N] = {1, -1, 0.5f, 2, -0.25f}, b[N];
        float sa[2 * N] = {0}, sb[2 * N] = {0};
        memcpy(b, a, sizeof a);
        for (int t = 1; t <= T; t++) {
            optim_step(&cfg, a, g[t - 1], sa, N, t);
            if (kind == OPTIM_ADAM)
                optim_adam_step(&cfg, b, g[t - 1], sb, sb + N, N, t);
            else
                optim_sgd_step(&cfg, b, g[t - 1], N);
        }
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(sa, sb, sizeof sa);
        if (kind == OPTIM_ADAM)
            assert_true(sa[0] != 0.0f && sa[N] != 0.0f); /* both spans were written */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_step),       cmocka_unit_test(test_sgd_weight_decay),
        cmocka_unit_test(test_adam_two_steps), cmocka_unit_test(test_adam_weight_decay),
        cmocka_unit_test(test_adam_settings),  cmocka_unit_test(test_state_floats_and_defaults),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
