/* test_model.c — building an autoencoder: PyTorch state_dict names and shapes, the flat
 * parameter layout, the initializers' bounds, seeding, and the errors for bad layer lists.
 *
 * The truths are PyTorch's conventions (nn.Sequential numbers every module, activations
 * included; nn.Linear's weight is (out, in)) and the initializers' published bounds. Bounds are
 * checked exactly (a draw outside is a bug, whatever the seed); "fills its range" is checked as
 * max|w| > bound/2, which a correct uniform draw of n values fails with probability 2^−n
 * (n ≥ 8 here, and the seed is fixed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "nn/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* 1 × 4 × 5 inputs (20 features); the decoder starts with an activation, so its linears are
 * modules 1 and 3, not 0 and 2. */
#define ENC_SPEC "linear 16, relu, linear 8, tanh"
#define DEC_SPEC "relu, linear 16, relu, linear 20, sigmoid"

static anamo_model_spec spec_of(const char *enc, const char *dec, anamo_init_kind init, float scale,
                                uint64_t seed)
{
    anamo_model_spec s = {.in_c = 1,
                          .in_h = 4,
                          .in_w = 5,
                          .encoder = enc,
                          .decoder = dec,
                          .init = init,
                          .init_scale = scale,
                          .seed = seed,
                          .max_batch = 4};
    return s;
}

static anamo_model *create_ok(anamo_init_kind init, float scale, uint64_t seed)
{
    anamo_model_spec s = spec_of(ENC_SPEC, DEC_SPEC, init, scale, seed);
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    assert_non_null(m);
    return m;
}

/* ---- names, shapes, layout --------------------------------------------------------------- */

typedef struct expected_param {
    const char *name;
    int ndim;
    int64_t shape[2];
    int64_t offset;
} expected_param;

static void check_params(const block *b, const expected_param *want, int n, int64_t nparams)
{
    assert_int_equal(b->nparams_tensors, n);
    for (int i = 0; i < n; i++) {
        const param_ref *p = &b->params_ref[i];
        assert_string_equal(p->name, want[i].name);
        assert_int_equal(p->ndim, want[i].ndim);
        int64_t numel = 1;
        for (int d = 0; d < want[i].ndim; d++) {
            assert_int_equal(p->shape[d], want[i].shape[d]);
            numel *= want[i].shape[d];
        }
        assert_int_equal(p->numel, numel);
        assert_int_equal(p->offset, want[i].offset); /* one span, tensors back to back */
    }
    assert_int_equal(b->nparams, nparams);
}

static void test_names_and_shapes(void **state)
{
    anamo_model *m = create_ok(ANAMO_INIT_PYTORCH, 0.0f, 1);
    /* encoder: 0 linear 20→16, 1 relu, 2 linear 16→8, 3 tanh */
    const expected_param enc[] = {{"encoder.0.weight", 2, {16, 20}, 0},
                                  {"encoder.0.bias", 1, {16}, 320},
                                  {"encoder.2.weight", 2, {8, 16}, 336},
                                  {"encoder.2.bias", 1, {8}, 464}};
    /* decoder: 0 relu, 1 linear 8→16, 2 relu, 3 linear 16→20, 4 sigmoid */
    const expected_param dec[] = {{"decoder.1.weight", 2, {16, 8}, 0},
                                  {"decoder.1.bias", 1, {16}, 128},
                                  {"decoder.3.weight", 2, {20, 16}, 144},
                                  {"decoder.3.bias", 1, {20}, 464}};
    check_params(&m->enc, enc, 4, 472);
    check_params(&m->dec, dec, 4, 484);
    assert_int_equal(anamo_model_param_count(m, 0), 472);
    assert_int_equal(anamo_model_param_count(m, 1), 484);
    assert_int_equal(anamo_model_input_dim(m), 20);
    assert_int_equal(anamo_model_code_dim(m), 8);

    /* the layers point into the spans where their names say */
    const layer *l0 = &m->enc.layers[0], *l2 = &m->enc.layers[2];
    assert_ptr_equal(l0->weight, m->enc.params + 0);
    assert_ptr_equal(l0->bias, m->enc.params + 320);
    assert_ptr_equal(l2->weight, m->enc.params + 336);
    assert_ptr_equal(l2->dbias, m->enc.grads + 464);
    assert_int_equal(m->enc.layers[1].kind, LAYER_ACT);
    assert_ptr_equal(m->dec.layers[3].dweight, m->dec.grads + 144);

    char buf[128];
    block_describe(&m->dec, buf, sizeof buf);
    assert_string_equal(buf, DEC_SPEC);
    anamo_model_free(m);
}

/* ---- initializers ------------------------------------------------------------------------ */

/* Every value within ±bound, the largest above bound/2, not all equal. */
static void check_uniform(const char *name, const float *w, int64_t n, double bound)
{
    double lo = w[0], hi = w[0], amax = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!(fabs((double)w[i]) <= bound))
            fail_msg("%s[%lld] = %g outside ±%g", name, (long long)i, (double)w[i], bound);
        lo = fmin(lo, w[i]), hi = fmax(hi, w[i]), amax = fmax(amax, fabs((double)w[i]));
    }
    if (!(amax > 0.5 * bound) || !(lo < hi))
        fail_msg("%s: values in [%g, %g] do not fill ±%g", name, lo, hi, bound);
}

static int all_zero(const float *w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (w[i] != 0.0f)
            return 0;
    return 1;
}

/* nn.Linear.reset_parameters: W and b ~ U(±1/√fan_in), fan_in = the layer's input width */
static void test_init_pytorch(void **state)
{
    anamo_model *m = create_ok(ANAMO_INIT_PYTORCH, 0.0f, 7);
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc;
        for (int i = 0; i < b->nparams_tensors; i++) {
            const param_ref *p = &b->params_ref[i];
            check_uniform(p->name, b->params + p->offset, p->numel, 1.0 / sqrt((double)p->fan_in));
        }
    }
    /* fan_in of encoder.0 is 20, of decoder.1 it is 8: bounds 0.2236 and 0.3536 */
    assert_int_equal(m->enc.params_ref[0].fan_in, 20);
    assert_int_equal(m->dec.params_ref[0].fan_in, 8);
    anamo_model_free(m);
}

/* Glorot & Bengio (2010): W ~ U(±√(6/(fan_in + fan_out))), b = 0 */
static void test_init_glorot(void **state)
{
    anamo_model *m = create_ok(ANAMO_INIT_GLOROT, 0.0f, 7);
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc;
        for (int i = 0; i < b->nparams_tensors; i++) {
            const param_ref *p = &b->params_ref[i];
            const float *w = b->params + p->offset;
            if (p->is_bias)
                assert_true(all_zero(w, p->numel));
            else
                check_uniform(p->name, w, p->numel, sqrt(6.0 / (double)(p->fan_in + p->fan_out)));
        }
    }
    anamo_model_free(m);
}

/* He et al. (2015): W ~ N(0, 2/fan_in), b = 0. Pooled over the 896 weights, the mean of
 * w²/(2/fan_in) estimates 1 with standard error √(2/896) = 4.7%; we accept [0.8, 1.2] (4σ),
 * which rejects variances 1/fan_in (0.5) and 2/(fan_in + fan_out) (≤ 0.71 here). A normal
 * puts 4.6% of draws beyond 2σ (about 41 here), a uniform of that variance none; we ask ≥ 10. */
static void test_init_he(void **state)
{
    anamo_model *m = create_ok(ANAMO_INIT_HE, 0.0f, 7);
    double ratio = 0.0;
    int64_t n = 0, beyond_2sd = 0;
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc;
        for (int i = 0; i < b->nparams_tensors; i++) {
            const param_ref *p = &b->params_ref[i];
            const float *w = b->params + p->offset;
            if (p->is_bias) {
                assert_true(all_zero(w, p->numel));
                continue;
            }
            const double var = 2.0 / (double)p->fan_in;
            for (int64_t j = 0; j < p->numel; j++) {
                ratio += (double)w[j] * w[j] / var;
                beyond_2sd += fabs((double)w[j]) > 2.0 * sqrt(var);
            }
            n += p->numel;
        }
    }
    assert_int_equal(n, 896);
    ratio /= (double)n;
    if (!(ratio > 0.8 && ratio < 1.2))
        fail_msg("he: mean w²/(2/fan_in) = %g, want 1 ± 0.2", ratio);
    assert_true(beyond_2sd >= 10);
    anamo_model_free(m);
}

/* seed 000's "uniform near zero": W and b ~ U(±a) */
static void test_init_uniform(void **state)
{
    const float a = 0.01f;
    anamo_model *m = create_ok(ANAMO_INIT_UNIFORM, a, 7);
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc;
        for (int i = 0; i < b->nparams_tensors; i++) {
            const param_ref *p = &b->params_ref[i];
            check_uniform(p->name, b->params + p->offset, p->numel, a);
        }
    }
    anamo_model_free(m);
}

static void test_seeding(void **state)
{
    anamo_model *a = create_ok(ANAMO_INIT_PYTORCH, 0.0f, 42);
    anamo_model *b = create_ok(ANAMO_INIT_PYTORCH, 0.0f, 42);
    anamo_model *c = create_ok(ANAMO_INIT_PYTORCH, 0.0f, 43);
    const size_t enc_bytes = (size_t)a->enc.nparams * sizeof(float);
    const size_t dec_bytes = (size_t)a->dec.nparams * sizeof(float);
    assert_memory_equal(a->enc.params, b->enc.params, enc_bytes);
    assert_memory_equal(a->dec.params, b->dec.params, dec_bytes);
    assert_memory_not_equal(a->enc.params, c->enc.params, enc_bytes);
    assert_memory_not_equal(a->dec.params, c->dec.params, dec_bytes);
    anamo_model_free(a);
    anamo_model_free(b);
    anamo_model_free(c);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void expect_config_error(const char *enc, const char *dec, const char *block_name,
                                const char *const *needles, int nneedles)
{
    anamo_model_spec s = spec_of(enc, dec, ANAMO_INIT_PYTORCH, 0.0f, 1);
    anamo_model *m = (anamo_model *)&s; /* must come back NULL */
    anamo_err err = {0};
    int rc = anamo_model_create(&s, &m, &err);
    if (rc != ANAMO_ERR_CONFIG)
        fail_msg("encoder '%s', decoder '%s': status %d (%s), want a configuration error", enc, dec,
                 rc, err.msg);
    assert_null(m);
    assert_int_equal(err.code, ANAMO_ERR_CONFIG);
    if (!strstr(err.msg, block_name))
        fail_msg("message '%s' does not name the %s", err.msg, block_name);
    for (int i = 0; i < nneedles; i++)
        if (!strstr(err.msg, needles[i]))
            fail_msg("message '%s' does not contain '%s'", err.msg, needles[i]);
}

static void test_bad_layer_specs(void **state)
{
    static const struct {
        const char *spec, *offending;
    } bad[] = {
        {"linear", "'linear'"},       /* no width */
        {"linear -3", "'linear -3'"}, /* width not positive */
        {"linear 0", "'linear 0'"},
        {"linear 2.5", "'linear 2.5'"},       /* not an integer */
        {"linear 4 4", "'linear 4 4'"},       /* two widths */
        {"conv 3", "'conv 3'"},               /* unknown layer */
        {"linear 8, conv 3, relu", "conv 3"}, /* the offending item, not the whole list */
        {"sigmoid 2", "'sigmoid 2'"},         /* only smoothstep takes an argument */
        {"smoothstep -1", "'smoothstep -1'"}, /* ε must be > 0 */
        {"linear x", "'linear x'"},
        {"", "empty"}, /* no layers at all */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *needle[1] = {bad[i].offending};
        expect_config_error(bad[i].spec, DEC_SPEC, "encoder", needle, 1);
        expect_config_error(ENC_SPEC, bad[i].spec, "decoder", needle, 1);
    }
}

/* A decoder whose output is not the input width: the message names both widths. */
static void test_decoder_width_mismatch(void **state)
{
    const char *const widths[] = {"17", "20"};
    expect_config_error(ENC_SPEC, "linear 16, relu, linear 17, sigmoid", "decoder", widths, 2);
}

/* Well-formed variants are accepted: spaces, upper case, smoothstep's ε in both spellings. */
static void test_good_spec_variants(void **state)
{
    anamo_model_spec s = spec_of(" Linear 8 ,RELU,  linear 3, smoothstep eps=0.5",
                                 "linear 20, smoothstep 2", ANAMO_INIT_PYTORCH, 0.0f, 1);
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    char buf[128];
    block_describe(&m->enc, buf, sizeof buf);
    assert_string_equal(buf, "linear 8, relu, linear 3, smoothstep 0.5");
    assert_true(m->dec.layers[1].act == ACT_SMOOTHSTEP && m->dec.layers[1].eps == 2.0f);
    anamo_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_shapes),   cmocka_unit_test(test_init_pytorch),
        cmocka_unit_test(test_init_glorot),        cmocka_unit_test(test_init_he),
        cmocka_unit_test(test_init_uniform),       cmocka_unit_test(test_seeding),
        cmocka_unit_test(test_bad_layer_specs),    cmocka_unit_test(test_decoder_width_mismatch),
        cmocka_unit_test(test_good_spec_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
