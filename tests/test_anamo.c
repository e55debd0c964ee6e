/* test_anamo.c — ANAMO (seed 000, Algorithm 1; the spec is src/train/anamo.c's header), its
 * binary-code variants, and Beck–Teboulle backtracking in a NAM phase, each against a truth
 * computed here:
 *
 *   1. On a tiny autoencoder (6 → linear 3, tanh → linear 6, sigmoid; mse; full batch of 8) we
 *      write the forward and backward out again, in double, and run the algorithm's steps by
 *      hand: J_enc = J_dec = 1, λ = 0 is one gradient step on θ then one on φ at the new θ;
 *      J_enc = J_dec = 2 are two plain steps each (y_1 = x_1 since s_0 = 1), outer iteration
 *      after outer iteration (s_j restarts); J_enc = J_dec = 3 take the third gradient at
 *      y_2 = x_2 + ((s_1 − 1)/s_2)(x_2 − x_1).
 *   2. The sub-gradient prox of λg, g(u) = (1/B)Σ‖E_u(x)‖₁, for K = 0, 1, 3 iterations against
 *      the same iterations in double; and on "halves", λ = 0.5 gives sparser codes than λ = 0.
 *   3. Binary codes three ways (ANAMO with step_ste, ANAMO with smoothstep, free codes): codes in
 *      {0, 1}, bit statistics recomputed here from the encoded matrix, a falling training loss,
 *      and the free-codes encoder fit solved again here by ridge least squares in double.
 *   4. Backtracking for a decoder phase with sgd: L never falls, every step meets the
 *      sufficient-decrease condition f(p) ≤ f(y) − ‖∇f(y)‖²/(2L) and the step before it (L/η)
 *      did not, all evaluated by the double model here.
 *
 * Tolerances (each is stated again where it is used):
 *   PARAM_TOL  1e-6, relative to max(1, |θ|). The library runs in float32 (spacing 6e-8 at 1);
 *              one step rounds the parameter once and its gradient is a sum of at most 8·6
 *              products of terms ≤ 1, whose error is a few ulps of 1e-2; with steps ≤ 3 a
 *              parameter is right to ~3e-7 after three iterations (we observe ≤ 6e-8). The
 *              mistakes looked for (the decoder's gradient at the old θ, no extrapolation, a
 *              prox at the wrong point, a missing 1/B or e) move some parameter by ≥ 1e-3; the
 *              tests assert of their own references that the alternative lands ≥ 1e-4 away
 *              (the "power" checks), so 1e-6 cannot hide them.
 *   FUN_RTOL   1e-5 of f(y) on objective values: the library's loss sums float squared errors
 *              whose relative error is ~1e-6 (an error of 1e-7 in a prediction near 0.5, over a
 *              residual near 0.1). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "train/trainer.h" /* struct anamo_trainer: the progress (lipschitz) and free codes */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_TOL 1e-6
#define FUN_RTOL 1e-5
#define POWER (100 * PARAM_TOL) /* a reference alternative must differ by this much */

/* ---- the tiny model, in double ------------------------------------------------------------ */

#define NB 8                 /* samples = the full batch */
#define NX 6                 /* input features */
#define NH 3                 /* code units */
#define ENC_N (NH * NX + NH) /* W1 (3, 6) row-major, then b1 (3): PyTorch's layout */
#define DEC_N (NX * NH + NX) /* W2 (6, 3), then b2 (6) */
#define TINY_SEED 11

static float tiny_x[NB * NX];
static double tiny_xd[NB * NX];
static anamo_dataset tiny_ds;

/* x_bj = 0.5 + 0.4·sin(0.9b + 1.7j + 0.3): values in [0.1, 0.9], no two rows alike. */
static void tiny_data(void)
{
    for (int b = 0; b < NB; b++)
        for (int j = 0; j < NX; j++) {
            tiny_x[b * NX + j] = (float)(0.5 + 0.4 * sin(0.9 * b + 1.7 * j + 0.3));
            tiny_xd[b * NX + j] = tiny_x[b * NX + j];
        }
    memset(&tiny_ds, 0, sizeof tiny_ds);
    tiny_ds.n = NB, tiny_ds.c = NX, tiny_ds.h = 1, tiny_ds.w = 1, tiny_ds.dim = NX;
    tiny_ds.dtype = ANAMO_F32;
    tiny_ds.data = tiny_x;
    snprintf(tiny_ds.source, sizeof tiny_ds.source, "tiny in-memory set");
}

static anamo_model *tiny_model(void)
{
    anamo_model_spec s = {.in_c = NX,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = "linear 3, tanh",
                          .decoder = "linear 6, sigmoid",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = TINY_SEED,
                          .max_batch = NB};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    return m;
}

/* The parameters of a block with one linear layer, as doubles: weight, then bias. */
static void read_linear(const block *b, double *w, int64_t n_out, int64_t n_in)
{
    const layer *l = &b->layers[0];
    assert_int_equal(l->kind, LAYER_LINEAR);
    assert_int_equal(l->out_dim, n_out);
    assert_int_equal(l->in_dim, n_in);
    for (int64_t i = 0; i < n_out * n_in; i++)
        w[i] = l->weight[i];
    for (int64_t i = 0; i < n_out; i++)
        w[n_out * n_in + i] = l->bias[i];
}

static void read_tiny(const anamo_model *m, double *enc, double *dec)
{
    read_linear(&m->enc, enc, NH, NX);
    read_linear(&m->dec, dec, NX, NH);
}

/* Encoder forward: pre-activations a = W1 x + b1 and codes h = tanh a, both (B, 3). */
static void enc_forward(const double *enc, const double *x, int B, double *h)
{
    for (int b = 0; b < B; b++)
        for (int k = 0; k < NH; k++) {
            double a = enc[NH * NX + k];
            for (int j = 0; j < NX; j++)
                a += enc[k * NX + j] * x[b * NX + j];
            h[b * NH + k] = tanh(a);
        }
}

/* Decoder forward and backward for codes h (B, 3): f = (1/(B·6)) Σ (σ(W2 h + b2) − x)²;
 * g_dec = ∇_φ f (or NULL), dh = ∂f/∂h (B, 3) (or NULL). Returns f. */
static double dec_fwd_bwd(const double *dec, const double *h, const double *x, int B, double *g_dec,
                          double *dh)
{
    double f = 0.0;
    if (g_dec)
        memset(g_dec, 0, DEC_N * sizeof *g_dec);
    if (dh)
        memset(dh, 0, (size_t)B * NH * sizeof *dh);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < NX; i++) {
            double a = dec[NX * NH + i];
            for (int k = 0; k < NH; k++)
                a += dec[i * NH + k] * h[b * NH + k];
            const double y = 1.0 / (1.0 + exp(-a)), r = y - x[b * NX + i];
            f += r * r;
            const double da = 2.0 * r / (B * NX) * y * (1.0 - y); /* ∂f/∂a */
            for (int k = 0; k < NH; k++) {
                if (g_dec)
                    g_dec[i * NH + k] += da * h[b * NH + k];
                if (dh)
                    dh[b * NH + k] += da * dec[i * NH + k];
            }
            if (g_dec)
                g_dec[NX * NH + i] += da;
        }
    return f / (B * NX);
}

/* Encoder backward from dh (B, 3) through tanh and the linear layer into g_enc. */
static void enc_backward(const double *enc, const double *x, int B, const double *dh, double *g_enc)
{
    double h[NB * NH];
    enc_forward(enc, x, B, h);
    memset(g_enc, 0, ENC_N * sizeof *g_enc);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < NH; k++) {
            const double da = dh[b * NH + k] * (1.0 - h[b * NH + k] * h[b * NH + k]);
            for (int j = 0; j < NX; j++)
                g_enc[k * NX + j] += da * x[b * NX + j];
            g_enc[NH * NX + k] += da;
        }
}

/* f(θ, φ) on the tiny set, with ∇_θ f (g_enc) and ∇_φ f (g_dec), each optional. */
static double tiny_f(const double *enc, const double *dec, double *g_enc, double *g_dec)
{
    double h[NB * NH], dh[NB * NH];
    enc_forward(enc, tiny_xd, NB, h);
    double f = dec_fwd_bwd(dec, h, tiny_xd, NB, g_dec, dh);
    if (g_enc)
        enc_backward(enc, tiny_xd, NB, dh, g_enc);
    return f;
}

/* ∂g(u) for g(u) = (1/B) Σ_b ‖E_u(x_b)‖₁: the encoder's backward of sign(h)/B. */
static void l1_subgradient(const double *enc, double *g)
{
    double h[NB * NH], dh[NB * NH];
    enc_forward(enc, tiny_xd, NB, h);
    for (int i = 0; i < NB * NH; i++)
        dh[i] = (h[i] > 0.0 ? 1.0 : h[i] < 0.0 ? -1.0 : 0.0) / NB;
    enc_backward(enc, tiny_xd, NB, dh, g);
}

/* The gradient of one block with the other held: which 0 is ∇_θ f(·, other), 1 is ∇_φ f over
 * fixed codes (ANAMO's decoder iterations keep H = E_θ(X) fixed, as does a decoder step). */
typedef struct block_grad_ctx {
    int which;
    const double *other; /* φ for the encoder; for the decoder, unused */
    const double *codes; /* (NB, 3) codes for the decoder */
} block_grad_ctx;

static void block_grad(const block_grad_ctx *c, const double *w, double *g)
{
    if (c->which == 0)
        tiny_f(w, c->other, g, NULL);
    else
        dec_fwd_bwd(w, c->codes, tiny_xd, NB, g, NULL);
}

/* w ← w − lr·∇ (steps times). */
static void plain_steps(const block_grad_ctx *c, double *w, int n, int steps, double lr)
{
    double g[ENC_N > DEC_N ? ENC_N : DEC_N];
    for (int s = 0; s < steps; s++) {
        block_grad(c, w, g);
        for (int i = 0; i < n; i++)
            w[i] -= lr * g[i];
    }
}

/* Three iterations of the accelerated gradient, written out (s_0 = 1):
 *   x_1 = x_0 − lr∇(x_0)              (y_0 = x_0)
 *   x_2 = x_1 − lr∇(x_1)              (y_1 = x_1 + ((s_0 − 1)/s_1)(x_1 − x_0) = x_1)
 *   y_2 = x_2 + ((s_1 − 1)/s_2)(x_2 − x_1),  s_1 = (1 + √5)/2,  s_2 = (1 + √(1 + 4 s_1²))/2
 *   x_3 = y_2 − lr∇(y_2); the block's result is x_3. */
static void accelerated3(const block_grad_ctx *c, double *w, int n, double lr)
{
    double x1[ENC_N > DEC_N ? ENC_N : DEC_N], y2[ENC_N > DEC_N ? ENC_N : DEC_N];
    plain_steps(c, w, n, 1, lr);
    memcpy(x1, w, (size_t)n * sizeof *w);
    plain_steps(c, w, n, 1, lr); /* w = x_2 */
    const double s1 = (1.0 + sqrt(5.0)) / 2.0, s2 = (1.0 + sqrt(1.0 + 4.0 * s1 * s1)) / 2.0;
    const double beta = (s1 - 1.0) / s2;
    for (int i = 0; i < n; i++)
        y2[i] = w[i] + beta * (w[i] - x1[i]);
    memcpy(w, y2, (size_t)n * sizeof *w);
    plain_steps(c, w, n, 1, lr); /* w = x_3 */
}

static double max_diff(const double *a, const double *b, int n)
{
    double d = 0.0;
    for (int i = 0; i < n; i++)
        d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* |got − want| ≤ PARAM_TOL·max(1, |want|) for every parameter (see the header). */
static void expect_params(const char *what, const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= PARAM_TOL * fmax(1.0, fabs(want[i]))))
            fail_msg("%s[%d]: got %.9g, want %.9g (|diff| %.3g)", what, i, got[i], want[i],
                     fabs(got[i] - want[i]));
}

/* ---- running the trainer ------------------------------------------------------------------ */

static anamo_train_spec one_phase_spec(anamo_loss_kind loss, float lambda, anamo_phase ph,
                                       double epochs)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = loss;
    s.lambda = lambda;
    s.nphases = 1;
    s.phases[0] = ph;
    s.epochs = epochs;
    s.seed = 5;
    s.log_every = 1000;
    s.cache_codes = 0;
    return s;
}

static void train_ok(anamo_model *m, const anamo_train_spec *s, const anamo_dataset *train,
                     const anamo_dataset *test, const anamo_train_hooks *hooks,
                     anamo_trainer **keep)
{
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, s, train, test, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    if (anamo_trainer_run(t, hooks, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_run: %s", err.msg);
    if (keep)
        *keep = t;
    else
        anamo_trainer_free(t);
}

/* Outer ANAMO iterations (epochs of one full batch; one unless told) on a fresh tiny model:
 * the parameters before and after. */
typedef struct tiny_run {
    int enc_iters, dec_iters, prox_iters, epochs;
    float e, d, lambda, prox_step;
} tiny_run;

static void run_tiny(const tiny_run *r, double *enc0, double *dec0, double *enc1, double *dec1)
{
    anamo_model *m = tiny_model();
    read_tiny(m, enc0, dec0);
    anamo_phase ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, r->e, NB,
                                         1.0);
    ph.anamo.enc_iters = r->enc_iters, ph.anamo.dec_iters = r->dec_iters;
    ph.anamo.enc_lr = r->e, ph.anamo.dec_lr = r->d;
    ph.anamo.prox_iters = r->prox_iters, ph.anamo.prox_step = r->prox_step;
    anamo_train_spec s = one_phase_spec(ANAMO_LOSS_MSE, r->lambda, ph,
                                        r->epochs > 0 ? r->epochs : 1);
    train_ok(m, &s, &tiny_ds, NULL, NULL, NULL);
    read_tiny(m, enc1, dec1);
    anamo_model_free(m);
}

/* ---- 1. ANAMO with λ = 0 and fixed steps is alternating gradient descent ---------------------- */

#define E_STEP 2.0f /* e and d: large enough that every mistake looked for shows (≥ 1e-4) */
#define D_STEP 3.0f

/* J_enc = J_dec = 1: θ' = θ − e∇_θ f(θ, φ), then φ' = φ − d∇_φ f(θ', φ). */
static void test_one_step_each(void **state)
{
    (void)state;
    double enc0[ENC_N], dec0[DEC_N], enc1[ENC_N], dec1[DEC_N];
    const tiny_run r = {.enc_iters = 1,
                        .dec_iters = 1,
                        .e = E_STEP,
                        .d = D_STEP,
                        .prox_iters = 10,
                        .prox_step = 0.5f};
    run_tiny(&r, enc0, dec0, enc1, dec1);

    double enc_want[ENC_N], dec_want[DEC_N], dec_jacobi[DEC_N], h[NB * NH];
    memcpy(enc_want, enc0, sizeof enc0);
    block_grad_ctx ce = {.which = 0, .other = dec0};
    plain_steps(&ce, enc_want, ENC_N, 1, E_STEP);
    enc_forward(enc_want, tiny_xd, NB, h); /* the decoder's gradient is taken at θ' */
    memcpy(dec_want, dec0, sizeof dec0);
    block_grad_ctx cd = {.which = 1, .codes = h};
    plain_steps(&cd, dec_want, DEC_N, 1, D_STEP);
    expect_params("encoder θ'", enc1, enc_want, ENC_N);
    expect_params("decoder φ'", dec1, dec_want, DEC_N);

    /* power: the decoder's gradient at the old θ (a Jacobi, not Gauss–Seidel, update) differs */
    enc_forward(enc0, tiny_xd, NB, h);
    memcpy(dec_jacobi, dec0, sizeof dec0);
    plain_steps(&cd, dec_jacobi, DEC_N, 1, D_STEP);
    assert_true(max_diff(dec_jacobi, dec_want, DEC_N) > POWER);
    assert_true(max_diff(enc0, enc_want, ENC_N) > POWER);
}

/* J_enc = J_dec = 2: y_1 = x_1 + ((s_0 − 1)/s_1)(x_1 − x_0) = x_1 when s_0 = 1, so two
 * accelerated iterations are two plain gradient steps on each block. Over two outer iterations,
 * since s_j restarts at each block update (a carried s would extrapolate at once). */
static void test_two_iterations_are_plain(void **state)
{
    (void)state;
    double enc0[ENC_N], dec0[DEC_N], enc1[ENC_N], dec1[DEC_N];
    const tiny_run r = {.enc_iters = 2,
                        .dec_iters = 2,
                        .e = E_STEP,
                        .d = D_STEP,
                        .prox_iters = 10,
                        .prox_step = 0.5f,
                        .epochs = 2};
    run_tiny(&r, enc0, dec0, enc1, dec1);
    double enc_want[ENC_N], dec_want[DEC_N], h[NB * NH];
    memcpy(enc_want, enc0, sizeof enc0);
    memcpy(dec_want, dec0, sizeof dec0);
    for (int outer = 0; outer < 2; outer++) {
        block_grad_ctx ce = {.which = 0, .other = dec_want};
        plain_steps(&ce, enc_want, ENC_N, 2, E_STEP);
        enc_forward(enc_want, tiny_xd, NB, h);
        block_grad_ctx cd = {.which = 1, .codes = h};
        plain_steps(&cd, dec_want, DEC_N, 2, D_STEP);
    }
    expect_params("encoder after 2 × 2 iterations", enc1, enc_want, ENC_N);
    expect_params("decoder after 2 × 2 iterations", dec1, dec_want, DEC_N);
}

/* J_enc = J_dec = 3: the third gradient is taken at the extrapolated y_2 (accelerated3); on
 * the decoder over the codes H = E_{θ'}(X) of the new encoder, computed once. */
static void test_three_iterations_extrapolate(void **state)
{
    (void)state;
    double enc0[ENC_N], dec0[DEC_N], enc1[ENC_N], dec1[DEC_N];
    const tiny_run r = {.enc_iters = 3,
                        .dec_iters = 3,
                        .e = E_STEP,
                        .d = D_STEP,
                        .prox_iters = 10,
                        .prox_step = 0.5f};
    run_tiny(&r, enc0, dec0, enc1, dec1);
    double enc_want[ENC_N], dec_want[DEC_N], enc_plain[ENC_N], dec_plain[DEC_N], h[NB * NH];
    memcpy(enc_want, enc0, sizeof enc0);
    block_grad_ctx ce = {.which = 0, .other = dec0};
    accelerated3(&ce, enc_want, ENC_N, E_STEP);
    enc_forward(enc_want, tiny_xd, NB, h);
    memcpy(dec_want, dec0, sizeof dec0);
    block_grad_ctx cd = {.which = 1, .codes = h};
    accelerated3(&cd, dec_want, DEC_N, D_STEP);
    expect_params("encoder x_3", enc1, enc_want, ENC_N);
    expect_params("decoder x_3", dec1, dec_want, DEC_N);

    /* power: three plain steps (no extrapolation) end elsewhere */
    memcpy(enc_plain, enc0, sizeof enc0);
    plain_steps(&ce, enc_plain, ENC_N, 3, E_STEP);
    memcpy(dec_plain, dec0, sizeof dec0);
    plain_steps(&cd, dec_plain, DEC_N, 3, D_STEP);
    assert_true(max_diff(enc_plain, enc_want, ENC_N) > POWER);
    assert_true(max_diff(dec_plain, dec_want, DEC_N) > POWER);
}

/* ---- 2. the sub-gradient prox of λg -------------------------------------------------------- */

#define PROX_E 0.8f /* e, λ and η all different, so that a swap of two of them shows */
#define PROX_LAMBDA 0.5f
#define PROX_ETA 0.3f

/* One encoder iteration (J_enc = 1, J_dec = 0, so φ stays):
 *   z = θ − e∇f(θ);  u_0 = z;  u_{i+1} = u_i − η(e·λ·∂g(u_i) + (u_i − z));  θ' = u_K. */
static void prox_case(int K, double *enc_out)
{
    double enc0[ENC_N], dec0[DEC_N], enc1[ENC_N], dec1[DEC_N];
    const tiny_run r = {.enc_iters = 1,
                        .dec_iters = 0,
                        .e = PROX_E,
                        .d = 1.0f,
                        .lambda = PROX_LAMBDA,
                        .prox_iters = K,
                        .prox_step = PROX_ETA};
    run_tiny(&r, enc0, dec0, enc1, dec1);
    double z[ENC_N], u[ENC_N], dg[ENC_N], h[NB * NH];
    memcpy(z, enc0, sizeof z);
    block_grad_ctx ce = {.which = 0, .other = dec0};
    plain_steps(&ce, z, ENC_N, 1, PROX_E);
    memcpy(u, z, sizeof u);
    for (int i = 0; i < K; i++) {
        enc_forward(u, tiny_xd, NB, h);
        for (int k = 0; k < NB * NH; k++) /* sign(h) is the same in float: |h| is not tiny */
            assert_true(fabs(h[k]) > 1e-4);
        l1_subgradient(u, dg);
        for (int k = 0; k < ENC_N; k++)
            u[k] -= (double)PROX_ETA *
                    ((double)PROX_E * (double)PROX_LAMBDA * dg[k] + (u[k] - z[k]));
    }
    char what[64];
    snprintf(what, sizeof what, "encoder after the prox, K = %d", K);
    expect_params(what, enc1, u, ENC_N);
    for (int k = 0; k < DEC_N; k++) /* J_dec = 0: the decoder is untouched */
        assert_true(dec1[k] == dec0[k]);
    memcpy(enc_out, u, sizeof u);
}

static void test_subgradient_prox(void **state)
{
    (void)state;
    double u0[ENC_N], u1[ENC_N], u3[ENC_N];
    prox_case(0, u0);
    prox_case(1, u1);
    prox_case(3, u3);
    /* power: each prox iteration moves θ visibly */
    assert_true(max_diff(u0, u1, ENC_N) > POWER);
    assert_true(max_diff(u1, u3, ENC_N) > POWER);
}

static void open_ok(const char *spec, anamo_dataset *ds)
{
    anamo_err err = {0};
    if (anamo_dataset_open(spec, NULL, ds, &err) != ANAMO_OK)
        fail_msg("anamo_dataset_open(%s): %s", spec, err.msg);
}

static anamo_model *halves_model(const char *encoder, int binary_codes)
{
    anamo_model_spec s = {.in_c = 1,
                          .in_h = 10,
                          .in_w = 10,
                          .encoder = encoder,
                          .decoder = "linear 100, sigmoid",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 0,
                          .max_batch = 100,
                          .binary_codes = binary_codes};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    return m;
}

static anamo_metrics evaluate_ok(anamo_model *m, const anamo_dataset *ds, anamo_loss_kind loss,
                                 float lambda)
{
    anamo_metrics mt;
    anamo_err err = {0};
    const anamo_eval_spec spec = {.loss = loss, .lambda = lambda};
    if (anamo_evaluate(m, ds, &spec, &mt, &err) != ANAMO_OK)
        fail_msg("anamo_evaluate: %s", err.msg);
    return mt;
}

/* experiments/anamo-vs-adam.ini's ANAMO arm (10 outer iterations, full batch), with λ = 0.5
 * against λ = 0 from the same initial weights: the penalty must make the codes sparser. We
 * observe a mean code ℓ1 of 0.023 against 3.6 (the penalty all but closes the sigmoid codes);
 * we assert ≤ 0.8 of the unpenalized run's, which a prox that does nothing fails (ratio ~1). */
#define HALVES_L1_RATIO 0.8

static double halves_code_l1(float lambda)
{
    anamo_dataset train;
    open_ok("halves:train", &train);
    anamo_model *m = halves_model("linear 10, sigmoid", 0);
    anamo_phase ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, 0.5f, 100,
                                         1.0);
    ph.anamo.enc_iters = 5, ph.anamo.dec_iters = 15, ph.anamo.enc_lr = 0.5f, ph.anamo.dec_lr = 0.5f;
    ph.anamo.prox_iters = 10, ph.anamo.prox_step = 0.5f;
    anamo_train_spec s = one_phase_spec(ANAMO_LOSS_MSE_SUM, lambda, ph, 10.0);
    train_ok(m, &s, &train, NULL, NULL, NULL);
    double l1 = evaluate_ok(m, &train, ANAMO_LOSS_MSE_SUM, lambda).code_l1;
    anamo_model_free(m);
    anamo_dataset_free(&train);
    return l1;
}

static void test_lambda_sparsifies(void **state)
{
    (void)state;
    const double l1_plain = halves_code_l1(0.0f), l1_penalized = halves_code_l1(0.5f);
    if (!(l1_penalized <= HALVES_L1_RATIO * l1_plain))
        fail_msg("code l1 with lambda 0.5: %g, with lambda 0: %g (want ratio <= %g)", l1_penalized,
                 l1_plain, HALVES_L1_RATIO);
}

/* ---- 3. binary codes ------------------------------------------------------------------------ */

typedef struct loss_trace {
    int64_t epochs;
    double first, last;
} loss_trace;

static int record_loss(void *ctx, const anamo_epoch_row *row)
{
    loss_trace *tr = ctx;
    if (tr->epochs++ == 0)
        tr->first = row->train_loss;
    tr->last = row->train_loss;
    return 0;
}

/* Encodes ds; every code is 0.0f or 1.0f; the bit statistics computed here from that matrix
 * equal anamo_evaluate's. Returns the number of distinct code words. */
static int64_t check_binary_codes(anamo_model *m, const anamo_dataset *ds)
{
    const int64_t n = ds->n, code_dim = anamo_model_code_dim(m);
    float *codes = malloc((size_t)(n * code_dim) * sizeof *codes);
    anamo_err err = {0};
    assert_non_null(codes);
    if (anamo_model_encode(m, ds, 0, n, codes, &err) != ANAMO_OK)
        fail_msg("anamo_model_encode: %s", err.msg);
    int64_t ones = 0, bits_used = 0, distinct = 0;
    for (int64_t i = 0; i < n * code_dim; i++) {
        if (codes[i] != 0.0f && codes[i] != 1.0f)
            fail_msg("%s: code %lld is %.9g, not 0 or 1", ds->source, (long long)i, codes[i]);
        ones += codes[i] == 1.0f;
    }
    for (int64_t k = 0; k < code_dim; k++) {
        int64_t on = 0;
        for (int64_t i = 0; i < n; i++)
            on += codes[i * code_dim + k] == 1.0f;
        bits_used += on > 0 && on < n;
    }
    for (int64_t i = 0; i < n; i++) { /* a word is new if no earlier row equals it */
        int seen = 0;
        for (int64_t j = 0; j < i && !seen; j++)
            seen = !memcmp(codes + i * code_dim, codes + j * code_dim,
                           (size_t)code_dim * sizeof *codes);
        distinct += !seen;
    }
    anamo_metrics mt = evaluate_ok(m, ds, ANAMO_LOSS_MSE_SUM, 0.1f);
    assert_true(fabs(mt.ones - (double)ones / (double)(n * code_dim)) <= 1e-12);
    assert_int_equal(mt.bits_used, bits_used);
    assert_int_equal(mt.distinct_codes, distinct);
    free(codes);
    return distinct;
}

/* experiments/binary-codes.ini: mse_sum, λ = 0.1, 20 epochs of full batches of 100, codes of 8
 * bits; ANAMO 5 encoder iterations at e = 0.01, 15 decoder iterations at d = 0.5; free codes
 * 5 code iterations at 0.5, 15 decoder iterations at 0.5, least squares, 2 refit epochs. */
static anamo_trainer *train_binary(const char *encoder, anamo_phase_kind scheme, anamo_model **mp,
                                   const anamo_dataset *train, const anamo_dataset *test,
                                   loss_trace *tr)
{
    anamo_model *m = halves_model(encoder, 1);
    anamo_phase ph;
    if (scheme == ANAMO_PHASE_ANAMO) {
        ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, 0.01f, 100, 1.0);
        ph.anamo.enc_iters = 5, ph.anamo.dec_iters = 15, ph.anamo.enc_lr = 0.01f,
        ph.anamo.dec_lr = 0.5f;
        ph.anamo.prox_iters = 10, ph.anamo.prox_step = 0.5f;
    } else {
        ph = anamo_phase_default("freecodes", ANAMO_PHASE_FREECODES, ANAMO_OPT_FISTA, 0.5f, 100,
                                 1.0);
        ph.freecodes.code_iters = 5, ph.freecodes.dec_iters = 15, ph.freecodes.code_lr = 0.5f,
        ph.freecodes.dec_lr = 0.5f;
        ph.freecodes.fit = ANAMO_FIT_LEAST_SQUARES;
        ph.freecodes.refit_epochs = 2;
    }
    anamo_train_spec s = one_phase_spec(ANAMO_LOSS_MSE_SUM, 0.1f, ph, 20.0);
    anamo_train_hooks hooks = {.ctx = tr, .on_epoch = record_loss};
    anamo_trainer *t = NULL;
    train_ok(m, &s, train, test, &hooks, &t);
    assert_int_equal(tr->epochs, 20);
    *mp = m;
    return t;
}

/* The training loss of the last epoch against the first. Observed ratios (last/first): ANAMO
 * with step_ste 0.10, with smoothstep 0.12, free codes 0.08; we assert ≤ 0.5: a decoder
 * that does not learn stays near 1. The codes must also use more than one word on the training
 * set (observed: 4, 2 and 8 words). */
#define BINARY_LOSS_RATIO 0.5

static void check_binary_variant(const char *encoder, anamo_phase_kind scheme)
{
    anamo_dataset train, test;
    open_ok("halves:train", &train);
    open_ok("halves:test", &test);
    loss_trace tr = {0};
    anamo_model *m;
    anamo_trainer *t = train_binary(encoder, scheme, &m, &train, &test, &tr);
    if (!(tr.last <= BINARY_LOSS_RATIO * tr.first))
        fail_msg("%s: training loss %g in the first epoch, %g in the last (want ratio <= %g)",
                 encoder, tr.first, tr.last, BINARY_LOSS_RATIO);
    assert_true(check_binary_codes(m, &train) >= 2);
    check_binary_codes(m, &test);
    anamo_trainer_free(t);
    anamo_model_free(m);
    anamo_dataset_free(&train);
    anamo_dataset_free(&test);
}

static void test_binary_step_ste(void **state)
{
    (void)state;
    check_binary_variant("linear 8, step_ste", ANAMO_PHASE_ANAMO);
}

static void test_binary_smoothstep(void **state)
{
    (void)state;
    check_binary_variant("linear 8, smoothstep 1", ANAMO_PHASE_ANAMO);
}

/* ---- 3c. free codes: the encoder fit is ridge least squares -------------------------------- */

#define LS_RIDGE_REL 1e-3 /* freecodes.c's documented ρ: 1e-3 · mean diagonal of AᵀA (+ 1e-6) */
#define LS_K 101          /* columns of A = [X 1] */
#define LS_M 8            /* code bits */

/* J(W) = ‖AW − T‖² + ρ‖W‖², A = [X 1] (N × 101), T = 2h − 1 (N × 8), W (101 × 8). */
static double ridge_objective(const double *A, const double *T, int64_t N, const double *W,
                              double rho)
{
    double J = 0.0;
    for (int64_t r = 0; r < N; r++)
        for (int k = 0; k < LS_M; k++) {
            double v = -T[r * LS_M + k];
            for (int j = 0; j < LS_K; j++)
                v += A[r * LS_K + j] * W[j * LS_M + k];
            J += v * v;
        }
    for (int i = 0; i < LS_K * LS_M; i++)
        J += rho * W[i] * W[i];
    return J;
}

/* Solves (AᵀA + ρI) W = AᵀT by Cholesky in double. */
static void ridge_solve(const double *A, const double *T, int64_t N, double rho, double *W)
{
    static double G[LS_K * LS_K];
    double rhs[LS_K * LS_M];
    for (int i = 0; i < LS_K; i++) {
        for (int j = 0; j < LS_K; j++) {
            double s = 0.0;
            for (int64_t r = 0; r < N; r++)
                s += A[r * LS_K + i] * A[r * LS_K + j];
            G[i * LS_K + j] = s + (i == j ? rho : 0.0);
        }
        for (int k = 0; k < LS_M; k++) {
            double s = 0.0;
            for (int64_t r = 0; r < N; r++)
                s += A[r * LS_K + i] * T[r * LS_M + k];
            rhs[i * LS_M + k] = s;
        }
    }
    for (int j = 0; j < LS_K; j++) { /* G = LLᵀ, L in the lower triangle */
        for (int k = 0; k < j; k++)
            G[j * LS_K + j] -= G[j * LS_K + k] * G[j * LS_K + k];
        assert_true(G[j * LS_K + j] > 0.0);
        G[j * LS_K + j] = sqrt(G[j * LS_K + j]);
        for (int i = j + 1; i < LS_K; i++) {
            for (int k = 0; k < j; k++)
                G[i * LS_K + j] -= G[i * LS_K + k] * G[j * LS_K + k];
            G[i * LS_K + j] /= G[j * LS_K + j];
        }
    }
    for (int c = 0; c < LS_M; c++) {
        double y[LS_K];
        for (int i = 0; i < LS_K; i++) { /* L y = rhs */
            double s = rhs[i * LS_M + c];
            for (int k = 0; k < i; k++)
                s -= G[i * LS_K + k] * y[k];
            y[i] = s / G[i * LS_K + i];
        }
        for (int i = LS_K - 1; i >= 0; i--) { /* Lᵀ w = y */
            double s = y[i];
            for (int k = i + 1; k < LS_K; k++)
                s -= G[k * LS_K + i] * W[k * LS_M + c];
            W[i * LS_M + c] = s / G[i * LS_K + i];
        }
    }
}

/* After the run, the trainer's free codes H̃ are still those the fit saw: h = [H̃ > 0]. We solve
 * the ridge problem again in double and compare:
 *   - W̃ (the encoder's weight transposed, bias as the last row) against our solution, to
 *     LS_WTOL relative in Frobenius norm: float32 Cholesky of a matrix of condition up to
 *     ~mean-diag/ρ·101 ≈ 1e5 is right to ~1e5·6e-8 ≈ 6e-3 at worst; we observe 7e-4, and a
 *     ridge twice the documented one already moves W̃ by 0.27;
 *   - J(W̃) ≤ J(W̃ ± δ) for random δ of size 1e-3·rms(W̃): at a minimizer J rises by
 *     ‖Aδ‖² + ρ‖δ‖² in both directions, while at a point with a sizeable gradient one of ±δ
 *     lowers J;
 *   - sign(affine(x)) against h on the training set: we observe 100% of the bits (101
 *     unknowns per bit for 100 samples: least squares nearly interpolates); we assert ≥ 95%. */
#define LS_WTOL 1e-2
#define LS_AGREE 0.95

static void check_least_squares(const anamo_trainer *t, const anamo_model *m,
                                const anamo_dataset *train)
{
    const int64_t N = train->n;
    assert_int_equal(m->in_dim + 1, LS_K);
    assert_int_equal(m->enc.out_dim, LS_M);
    double *A = malloc((size_t)(N * LS_K) * sizeof *A), *T = malloc((size_t)(N * LS_M) * sizeof *T);
    assert_true(A && T);
    const float *X = train->data;
    double trace = 0.0;
    for (int64_t r = 0; r < N; r++) {
        for (int j = 0; j < LS_K - 1; j++)
            A[r * LS_K + j] = X[r * (LS_K - 1) + j];
        A[r * LS_K + LS_K - 1] = 1.0;
        for (int j = 0; j < LS_K; j++)
            trace += A[r * LS_K + j] * A[r * LS_K + j];
        for (int k = 0; k < LS_M; k++)
            T[r * LS_M + k] = t->free_codes[r * LS_M + k] > 0.0f ? 1.0 : -1.0; /* 2h − 1 */
    }
    const double rho = LS_RIDGE_REL * trace / LS_K + 1e-6;
    double W_lib[LS_K * LS_M], W_ref[LS_K * LS_M], W_try[LS_K * LS_M];
    const layer *lin = &m->enc.layers[0];
    for (int k = 0; k < LS_M; k++) {
        for (int j = 0; j < LS_K - 1; j++)
            W_lib[j * LS_M + k] = lin->weight[k * (LS_K - 1) + j];
        W_lib[(LS_K - 1) * LS_M + k] = lin->bias[k];
    }
    ridge_solve(A, T, N, rho, W_ref);
    double num = 0.0, den = 0.0, ms = 0.0;
    for (int i = 0; i < LS_K * LS_M; i++) {
        num += (W_lib[i] - W_ref[i]) * (W_lib[i] - W_ref[i]);
        den += W_ref[i] * W_ref[i];
        ms += W_lib[i] * W_lib[i] / (LS_K * LS_M);
    }
    if (!(sqrt(num) <= LS_WTOL * sqrt(den)))
        fail_msg("least squares: ‖W − W*‖/‖W*‖ = %g (want <= %g)", sqrt(num / den), LS_WTOL);

    const double J = ridge_objective(A, T, N, W_lib, rho), size = 1e-3 * sqrt(ms);
    anamo_rng rng;
    anamo_rng_seed(&rng, 99);
    for (int trial = 0; trial < 8; trial++) {
        double delta[LS_K * LS_M];
        for (int i = 0; i < LS_K * LS_M; i++)
            delta[i] = size * anamo_rng_normal(&rng);
        for (int sgn = -1; sgn <= 1; sgn += 2) {
            for (int i = 0; i < LS_K * LS_M; i++)
                W_try[i] = W_lib[i] + sgn * delta[i];
            const double J_try = ridge_objective(A, T, N, W_try, rho);
            if (!(J <= J_try))
                fail_msg("least squares: J(W) = %.12g > J(W %c δ) = %.12g (trial %d)", J,
                         sgn < 0 ? '-' : '+', J_try, trial);
        }
    }

    int64_t agree = 0;
    for (int64_t r = 0; r < N; r++)
        for (int k = 0; k < LS_M; k++) {
            double a = 0.0;
            for (int j = 0; j < LS_K; j++)
                a += A[r * LS_K + j] * W_lib[j * LS_M + k];
            agree += (a > 0.0) == (T[r * LS_M + k] > 0.0);
        }
    if (!((double)agree >= LS_AGREE * (double)(N * LS_M)))
        fail_msg("least squares: sign(affine) agrees with h on %lld of %lld bits", (long long)agree,
                 (long long)(N * LS_M));
    free(A);
    free(T);
}

static void test_binary_free_codes(void **state)
{
    (void)state;
    anamo_dataset train, test;
    open_ok("halves:train", &train);
    open_ok("halves:test", &test);
    loss_trace tr = {0};
    anamo_model *m;
    anamo_trainer *t = train_binary("linear 8, step", ANAMO_PHASE_FREECODES, &m, &train, &test,
                                    &tr);
    if (!(tr.last <= BINARY_LOSS_RATIO * tr.first))
        fail_msg("free codes: training loss %g in the first epoch, %g in the last", tr.first,
                 tr.last);
    assert_true(check_binary_codes(m, &train) >= 2);
    check_binary_codes(m, &test);
    check_least_squares(t, m, &train);
    anamo_trainer_free(t);
    anamo_model_free(m);
    anamo_dataset_free(&train);
    anamo_dataset_free(&test);
}

/* ---- 4. backtracking in a NAM decoder phase ------------------------------------------------- */

/* NAM on the tiny model: a decoder phase (sgd, backtracking from lr = 1000, i.e. L = 1e-3, far
 * below the curvature, so the search must grow L) and an encoder phase (sgd, fixed step), one
 * full-batch epoch each, alternating. After each decoder step the hook checks, in double:
 *   L ≥ the previous L (Beck–Teboulle's L only grows, across the encoder phases too);
 *   p = y − ∇f(y)/L (the step taken is the accepted one);
 *   f(p) ≤ f(y) − ‖∇f(y)‖²/(2L) + FUN_RTOL·f(y) (sufficient decrease, which for p = y − ∇/L is
 *     what f(p) ≤ f(y) + ⟨p − y, ∇f(y)⟩ + (L/2)‖p − y‖² becomes);
 *   when L grew on this step, L/η was refused: f(y − η∇/L) > f(y) − η‖∇‖²/(2L) − FUN_RTOL·f(y).
 * f is the full-batch mse, so the same objective at every step. */
#define BT_LR 1000.0f
#define BT_ETA 2.0
#define BT_EPOCHS 12

typedef struct bt_ctx {
    anamo_trainer *t;
    double enc[ENC_N], y[DEC_N], g[DEC_N], f_y, g2, L_prev;
    int decoder_steps, grew;
} bt_ctx;

static void bt_load_point(bt_ctx *c)
{
    read_tiny(c->t->m, c->enc, c->y);
    c->f_y = tiny_f(c->enc, c->y, NULL, c->g);
    c->g2 = 0.0;
    for (int i = 0; i < DEC_N; i++)
        c->g2 += c->g[i] * c->g[i];
}

static int bt_check(void *ctx, const anamo_epoch_row *row)
{
    bt_ctx *c = ctx;
    if (row->decoder_steps > 0) {
        assert_int_equal(row->decoder_steps, 1);
        double enc[ENC_N], p[DEC_N], p_want[DEC_N], q[DEC_N];
        read_tiny(c->t->m, enc, p);
        const double L = c->t->p.lipschitz[1], tol = FUN_RTOL * c->f_y;
        if (!(L >= c->L_prev))
            fail_msg("decoder step %d: L = %g fell below %g", c->decoder_steps, L, c->L_prev);
        for (int i = 0; i < DEC_N; i++)
            p_want[i] = c->y[i] - c->g[i] / L;
        expect_params("decoder after the backtracked step", p, p_want, DEC_N);
        const double f_p = tiny_f(enc, p, NULL, NULL);
        if (!(f_p <= c->f_y - c->g2 / (2.0 * L) + tol))
            fail_msg("decoder step %d: f(p) = %.9g > f(y) − ‖∇‖²/(2L) = %.9g (L = %g)",
                     c->decoder_steps, f_p, c->f_y - c->g2 / (2.0 * L), L);
        if (L > c->L_prev) {
            const double L_less = L / BT_ETA;
            c->grew++;
            for (int i = 0; i < DEC_N; i++)
                q[i] = c->y[i] - c->g[i] / L_less;
            const double f_q = tiny_f(enc, q, NULL, NULL);
            if (!(f_q > c->f_y - c->g2 / (2.0 * L_less) - tol))
                fail_msg("decoder step %d: L = %g accepted where L/η = %g already passed",
                         c->decoder_steps, L, L_less);
        }
        c->L_prev = L;
        c->decoder_steps++;
    }
    assert_true(c->t->p.lipschitz[0] == 0.0); /* the encoder's step is fixed */
    bt_load_point(c);                         /* the next decoder step starts here */
    return 0;
}

static void test_nam_backtracking(void **state)
{
    (void)state;
    anamo_model *m = tiny_model();
    anamo_phase dec = anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_SGD, BT_LR, NB,
                                          1.0);
    dec.opt.step_rule = ANAMO_STEP_BACKTRACK;
    dec.opt.backtrack_eta = (float)BT_ETA;
    anamo_phase enc = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, ANAMO_OPT_SGD, 0.5f, NB,
                                          1.0);
    anamo_train_spec s = one_phase_spec(ANAMO_LOSS_MSE, 0.0f, dec, BT_EPOCHS);
    s.nphases = 2;
    s.phases[1] = enc;
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, &s, &tiny_ds, NULL, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    bt_ctx c = {.t = t, .L_prev = 1.0 / BT_LR};
    bt_load_point(&c);
    anamo_train_hooks hooks = {.ctx = &c, .on_epoch = bt_check};
    if (anamo_trainer_run(t, &hooks, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_run: %s", err.msg);
    assert_int_equal(c.decoder_steps, BT_EPOCHS / 2);
    assert_true(c.grew >= 1); /* the search did run (from L = 1e-3 it must) */
    anamo_trainer_free(t);
    anamo_model_free(m);
}

static int setup(void **state)
{
    (void)state;
    tiny_data();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_step_each),
        cmocka_unit_test(test_two_iterations_are_plain),
        cmocka_unit_test(test_three_iterations_extrapolate),
        cmocka_unit_test(test_subgradient_prox),
        cmocka_unit_test(test_lambda_sparsifies),
        cmocka_unit_test(test_binary_step_ste),
        cmocka_unit_test(test_binary_smoothstep),
        cmocka_unit_test(test_binary_free_codes),
        cmocka_unit_test(test_nam_backtracking),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
