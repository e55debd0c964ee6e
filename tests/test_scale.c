/* test_scale.c — the scale-aware pieces of training and evaluation, each against a truth that
 * does not share their code:
 *
 *   1. Unit-norm decoder (train.decoder_norm): after every step of every scheme and optimizer
 *      (joint and NAM with sgd, adam, momentum, rmsprop, adagrad, accelerated, fista,
 *      nesterov; NAM with backtracking sgd; ANAMO with fixed and backtracked steps; free codes)
 *      the decoder's first-layer columns (dense) or input-channel kernel slices
 *      (ConvTranspose2d), their norms computed here from the weights, are 1 (sphere) or at most
 *      1 (ball). Accelerated methods hold y_j in the parameters: for them the iterate x_j
 *      (ACCEL_X of the decoder's state) is checked after every step and the parameters at
 *      every phase's end. The same runs without
 *      the option end with columns off the sphere and outside the ball, so the check can fail.
 *      A run whose budget ends inside an accelerated phase must also leave x_j
 *      (test_unit_norm_budget_ends_mid_phase).
 *      norm_groups_tangent and norm_groups_project on a hand case; one SGD decoder step on the
 *      sphere is the retraction of the tangent step of the finite-difference gradient; Adam's
 *      first moment stays tangent, weight decay included (test_sphere_adam_moments_tangent).
 *   2. The decoder-weighted penalty λ·g, g = (1/B) Σ_b Σ_j ‖W₁ group of j‖·|h_bj|: its value
 *      against the closed form, its gradients in h (penalty_forward, penalty_subgradient) and in
 *      the decoder (penalty_decoder_backward) against central differences, dense and transposed
 *      convolution; one joint SGD step (lr 1) against central differences of the whole
 *      objective; the weighted soft threshold of optim_fista_step against its closed form, and
 *      one free-codes step under decoder_l1 against sign(v)·max(|v| − e·λ·n_j/B, 0).
 *   3. anamo_evaluate's measures under rescalings that leave x → x̂ unchanged: code_l1_decoder
 *      and code_l1_jacobian stay, code_l1 moves by c; across a hidden layer only the Jacobian
 *      measure stays. Dense and convolutional. code_l1_decoder against its closed form from
 *      the codes; explained variance on hand cases and against a direct computation.
 *   4. Dead-unit resampling: forced-dead units are revived (fewer dead units after), the count
 *      reported equals the units whose weights changed against an unresampled twin run, the new
 *      row and column norms are the ones resample.c's header promises, and Adam's m and v of the
 *      revived coordinates are 0 right after the resampling step (non-zero just before).
 *   5. Batch norm in a frozen encoder: NAM with cache_codes true and false gives bit-identical
 *      weights and running statistics, which only the encoder phases update.
 *   6. Bad scale settings through the CLI: exit 2, one line naming the key and what is allowed,
 *      no run directory.
 *
 * Tolerances (each stated again where used):
 *   NORM_TOL   1e-5 on column norms: a projection divides by a double norm and rounds each
 *              float once, leaving |‖w‖ − 1| ≤ ~len·6e-8 (≤ 3e-6 for 48 entries; measured worst
 *              7.4e-8); a run whose steps skip the projection leaves the sphere by 1e-5 (the
 *              first, smallest SGD steps) to 1e-1, the ball by up to its initial 1.4–2.4.
 *   INV_RTOL   1e-5 relative on measures under rescaling: each rescaled weight is rounded once
 *              (6e-8) and every measure is a sum of positive terms, so the float forward moves
 *              them by ~1e-6 at most; a measure that is not invariant moves by a factor ~c.
 *   FD         central differences with step 1e-3 (the float steps actually taken as the
 *              denominator); see the comments at FD_RTOL. */
#include "test_util.h"

#include "loss/loss.h"
#include "nn/model.h"
#include "optim/optim.h"
#include "train/trainer.h"

#include <omp.h>

#define NORM_TOL 1e-5
#define INV_RTOL 1e-5

/* ---- data and models ------------------------------------------------------------------------ */

#define N_SET 64    /* training samples of the runs */
#define D_DENSE 10  /* features of the dense set */
#define CONV_SIDE 8 /* the conv set: 1 × 8 × 8 images */
#define BATCH 16

static float dense_x[N_SET * D_DENSE];
static float conv_x[N_SET * CONV_SIDE * CONV_SIDE];
static anamo_dataset dense_ds, conv_ds;

/* ds describes the n samples of shape (c, h, w) in x (not copied). */
static void wrap_set(anamo_dataset *ds, float *x, int64_t n, int c, int h, int w, const char *name)
{
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->c = c, ds->h = h, ds->w = w, ds->dim = (int64_t)c * h * w;
    ds->dtype = ANAMO_F32;
    ds->data = x;
    snprintf(ds->source, sizeof ds->source, "%s", name);
}

/* A set of n samples of shape (c, h, w) with values x_i = 0.5 + 0.4·sin(0.37 i + 0.9·(i mod 7)),
 * in [0.1, 0.9] and without two rows alike. */
static void make_set(anamo_dataset *ds, float *x, int64_t n, int c, int h, int w, const char *name)
{
    const int64_t dim = (int64_t)c * h * w;
    for (int64_t i = 0; i < n * dim; i++)
        x[i] = (float)(0.5 + 0.4 * sin(0.37 * (double)i + 0.9 * (double)(i % 7)));
    wrap_set(ds, x, n, c, h, w, name);
}

static void make_sets(void)
{
    make_set(&dense_ds, dense_x, N_SET, D_DENSE, 1, 1, "dense test set");
    make_set(&conv_ds, conv_x, N_SET, 1, CONV_SIDE, CONV_SIDE, "conv test set");
}

static anamo_model *model_new(int c, int h, int w, const char *enc, const char *dec,
                              anamo_init_kind init, float scale, uint64_t seed, int max_batch)
{
    anamo_model_spec s = {.in_c = c,
                          .in_h = h,
                          .in_w = w,
                          .encoder = enc,
                          .decoder = dec,
                          .init = init,
                          .init_scale = scale,
                          .seed = seed,
                          .max_batch = max_batch};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create(%s | %s): %s", enc, dec, err.msg);
    return m;
}

static anamo_train_spec spec_new(double epochs)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = ANAMO_LOSS_MSE;
    s.epochs = epochs;
    s.seed = 3;
    s.log_every = 1000;
    s.jacobian_samples = -1;
    return s;
}

static void add_phase(anamo_train_spec *s, anamo_phase ph)
{
    assert_true(s->nphases < ANAMO_MAX_PHASES);
    s->phases[s->nphases++] = ph;
}

static anamo_trainer *trainer_new(anamo_model *m, const anamo_train_spec *s,
                                  const anamo_dataset *train)
{
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, s, train, NULL, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    return t;
}

static void run_ok(anamo_trainer *t, const anamo_train_hooks *hooks, const char *what)
{
    anamo_err err = {0};
    if (anamo_trainer_run(t, hooks, &err) != ANAMO_OK)
        fail_msg("%s: anamo_trainer_run: %s", what, err.msg);
}

static anamo_metrics evaluate_ok(anamo_model *m, const anamo_dataset *ds, int64_t jac)
{
    anamo_eval_spec es = {.loss = ANAMO_LOSS_MSE,
                          .lambda = 0.0f,
                          .penalty = ANAMO_PENALTY_L1,
                          .jacobian_samples = jac};
    anamo_metrics mt;
    anamo_err err = {0};
    if (anamo_evaluate(m, ds, &es, &mt, &err) != ANAMO_OK)
        fail_msg("anamo_evaluate: %s", err.msg);
    return mt;
}

/* Norms of the decoder's first-layer groups, read from span (the parameters, or a state span
 * laid out as they are), computed here from the layer's shape: a linear layer's column j
 * (weight (out, in), row-major), a transposed convolution's input channel c (weight
 * (in_c, out_c, k, k): the slice [c] is contiguous). Returns the number of groups. */
static int64_t first_layer_norms(const block *dec, const float *span, double *norms)
{
    const layer *l = &dec->layers[0];
    const int64_t off = l->weight - dec->params;
    if (l->kind == LAYER_LINEAR) {
        for (int64_t j = 0; j < l->in_dim; j++) {
            double sq = 0.0;
            for (int64_t i = 0; i < l->out_dim; i++) {
                double v = span[off + i * l->in_dim + j];
                sq += v * v;
            }
            norms[j] = sqrt(sq);
        }
        return l->in_dim;
    }
    assert_int_equal(l->kind, LAYER_CONVT2D);
    const int64_t len = (int64_t)l->out_c * l->k * l->k;
    for (int64_t c = 0; c < l->in_c; c++) {
        double sq = 0.0;
        for (int64_t i = 0; i < len; i++) {
            double v = span[off + c * len + i];
            sq += v * v;
        }
        norms[c] = sqrt(sq);
    }
    return l->in_c;
}

#define MAX_GROUPS 64

/* Rows j (and bias j) of a linear layer, output channel j of a Conv2d or ConvTranspose2d, times
 * s[j]. */
static void scale_outputs(layer *l, const double *s)
{
    if (l->kind == LAYER_LINEAR) {
        for (int64_t j = 0; j < l->out_dim; j++) {
            for (int64_t i = 0; i < l->in_dim; i++)
                l->weight[j * l->in_dim + i] *= (float)s[j];
            l->bias[j] *= (float)s[j];
        }
    } else if (l->kind == LAYER_CONV2D) { /* weight (out_c, in_c, k, k) */
        const int64_t per = (int64_t)l->in_c * l->k * l->k;
        for (int64_t o = 0; o < l->out_c; o++) {
            for (int64_t i = 0; i < per; i++)
                l->weight[o * per + i] *= (float)s[o];
            l->bias[o] *= (float)s[o];
        }
    } else { /* ConvTranspose2d, weight (in_c, out_c, k, k) */
        assert_int_equal(l->kind, LAYER_CONVT2D);
        const int64_t kk = (int64_t)l->k * l->k;
        for (int64_t i = 0; i < l->in_c; i++)
            for (int64_t o = 0; o < l->out_c; o++)
                for (int64_t p = 0; p < kk; p++)
                    l->weight[(i * l->out_c + o) * kk + p] *= (float)s[o];
        for (int64_t o = 0; o < l->out_c; o++)
            l->bias[o] *= (float)s[o];
    }
}

/* Columns j of a linear layer, input channel j of a ConvTranspose2d, times s[j]. */
static void scale_inputs(layer *l, const double *s)
{
    if (l->kind == LAYER_LINEAR) {
        for (int64_t i = 0; i < l->out_dim; i++)
            for (int64_t j = 0; j < l->in_dim; j++)
                l->weight[i * l->in_dim + j] *= (float)s[j];
    } else {
        assert_int_equal(l->kind, LAYER_CONVT2D);
        const int64_t per = (int64_t)l->out_c * l->k * l->k;
        for (int64_t j = 0; j < l->in_c; j++)
            for (int64_t p = 0; p < per; p++)
                l->weight[j * per + p] *= (float)s[j];
    }
}

/* ---- 1. unit-norm decoder -------------------------------------------------------------------- */

/* What the step hook saw. */
typedef struct norm_watch {
    anamo_trainer *t;
    anamo_decoder_norm kind;
    int accelerated; /* the decoder's steps are accelerated/fista in a joint or NAM phase */
    const char *what;
    int64_t checks; /* groups checked */
    double worst;   /* the largest violation: |n − 1| (sphere), n − 1 (ball) */
    double largest; /* the largest norm seen */
    double y_off;   /* accelerated: the largest violation of the parameters (y_j) */
} norm_watch;

static double violation(anamo_decoder_norm kind, double n)
{
    return kind == ANAMO_DECODER_NORM_SPHERE ? fabs(n - 1.0) : fmax(n - 1.0, 0.0);
}

/* Checks every group of span; returns its worst violation. */
static double check_span(norm_watch *w, const float *span, const char *which, int64_t it)
{
    double norms[MAX_GROUPS], worst = 0.0;
    const int64_t count = first_layer_norms(&w->t->m->dec, span, norms);
    for (int64_t k = 0; k < count; k++) {
        double v = violation(w->kind, norms[k]);
        if (!(v <= NORM_TOL))
            fail_msg("%s: %s group %lld has norm %.9g after iteration %lld (%s)", w->what, which,
                     (long long)k, norms[k], (long long)it,
                     w->kind == ANAMO_DECODER_NORM_SPHERE ? "sphere" : "ball");
        worst = fmax(worst, v);
        w->largest = fmax(w->largest, norms[k]);
        w->checks++;
    }
    w->worst = fmax(w->worst, worst);
    return worst;
}

static int norm_on_step(void *ctx, int64_t iteration, double elapsed)
{
    (void)elapsed;
    norm_watch *w = ctx;
    anamo_trainer *t = w->t;
    block *dec = &t->m->dec;
    if (!w->accelerated) {
        check_span(w, dec->params, "parameter", iteration);
        return 0;
    }
    /* the iterate x_j of the decoder's last step; before any, the state is empty */
    if (t->p.steps[1] > 0 && dec->opt_state)
        check_span(w, ACCEL_X(dec->opt_state), "iterate x_j", iteration);
    if (t->p.phase_iters == 0) { /* a phase has just ended: optim_finish left x_j there */
        check_span(w, dec->params, "end-of-phase parameter", iteration);
    } else { /* y_j, which may leave the set: only noted */
        double norms[MAX_GROUPS];
        const int64_t count = first_layer_norms(dec, dec->params, norms);
        for (int64_t k = 0; k < count; k++)
            w->y_off = fmax(w->y_off, violation(w->kind, norms[k]));
    }
    return 0;
}

typedef enum norm_scheme {
    SCH_JOINT,
    SCH_NAM,
    SCH_NAM_BACKTRACK,
    SCH_ANAMO,
    SCH_ANAMO_BACKTRACK,
    SCH_FREECODES
} norm_scheme;
static const char *const SCHEME_NAMES[] = {"joint",           "nam",      "nam+backtrack", "anamo",
                                           "anamo+backtrack", "freecodes"};

typedef struct opt_case {
    const char *name;
    float lr;
} opt_case;

/* Learning rates at which every optimizer trains these tiny models without diverging. */
static const opt_case OPTS[] = {{"sgd", 0.2f},      {"adam", 1e-2f},    {"momentum", 0.05f},
                                {"rmsprop", 1e-2f}, {"adagrad", 0.05f}, {"accelerated", 0.05f},
                                {"fista", 0.05f},   {"nesterov", 0.05f}};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

/* The decoders under test; first layers of 16 × 8 (dense) and 4 × 3·4·4 (convT). */
#define DENSE_DEC "linear 16, relu, linear 10, sigmoid"
#define CONV_DEC "convtranspose2d 3 k4 s2 p1, relu, convtranspose2d 1 k3 s1 p1, sigmoid"

/* Initial weights U(−0.6, 0.6): first-layer columns of norm ≈ 1.4 (dense) and ≈ 2.4 (convT), so
 * the ball binds from the start and an unconstrained run is visibly off both sets. */
#define NORM_INIT_SCALE 0.6f

static anamo_model *norm_model(int conv, norm_scheme sch, uint64_t seed)
{
    const int fc = sch == SCH_FREECODES; /* free codes fit an encoder ending in a sigmoid */
    if (conv)
        return model_new(1, CONV_SIDE, CONV_SIDE,
                         fc ? "conv2d 4 k4 s2 p1, sigmoid" : "conv2d 4 k4 s2 p1, relu", CONV_DEC,
                         ANAMO_INIT_UNIFORM, NORM_INIT_SCALE, seed, BATCH);
    return model_new(D_DENSE, 1, 1, fc ? "linear 8, sigmoid" : "linear 8, relu", DENSE_DEC,
                     ANAMO_INIT_UNIFORM, NORM_INIT_SCALE, seed, BATCH);
}

static anamo_train_spec norm_spec(norm_scheme sch, const opt_case *o, anamo_decoder_norm norm)
{
    anamo_train_spec s = spec_new(sch == SCH_JOINT ? 3.0 : 4.0);
    s.lambda = 0.01f;
    /* the ball keeps the columns' scale free, so the decoder-weighted penalty differs from ℓ1
     * there (and its decoder gradient is exercised under the constraint) */
    s.penalty = norm == ANAMO_DECODER_NORM_BALL ? ANAMO_PENALTY_DECODER_L1 : ANAMO_PENALTY_L1;
    s.decoder_norm = norm;
    s.cache_codes = 1;
    anamo_phase ph;
    switch (sch) {
    case SCH_JOINT:
        ph = anamo_phase_default("joint", ANAMO_PHASE_JOINT,
                                 (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, o->name),
                                 o->lr, BATCH, 1.0);
        if (!strcmp(o->name, "fista")) /* the prox, then the projection */
            ph.opt.prox = ANAMO_PROX_L1, ph.opt.prox_lambda = 1e-3f;
        add_phase(&s, ph);
        break;
    case SCH_NAM:
    case SCH_NAM_BACKTRACK:
        ph = anamo_phase_default("decoder", ANAMO_PHASE_DECODER,
                                 (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, o->name),
                                 o->lr, BATCH, 1.0);
        if (!strcmp(o->name, "fista"))
            ph.opt.prox = ANAMO_PROX_L1, ph.opt.prox_lambda = 1e-3f;
        if (sch == SCH_NAM_BACKTRACK)
            ph.opt.step_rule = ANAMO_STEP_BACKTRACK;
        add_phase(&s, ph);
        ph = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER,
                                 (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, o->name),
                                 o->lr, BATCH, 1.0);
        add_phase(&s, ph);
        break;
    case SCH_ANAMO:
    case SCH_ANAMO_BACKTRACK:
        ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, 0.05f, BATCH, 1.0);
        ph.anamo.enc_iters = 2, ph.anamo.dec_iters = 3, ph.anamo.prox_iters = 2;
        if (sch == SCH_ANAMO_BACKTRACK)
            ph.opt.step_rule = ANAMO_STEP_BACKTRACK;
        add_phase(&s, ph);
        break;
    case SCH_FREECODES:
        ph = anamo_phase_default("freecodes", ANAMO_PHASE_FREECODES, ANAMO_OPT_FISTA, 0.05f, BATCH,
                                 1.0);
        ph.freecodes.code_iters = 3, ph.freecodes.dec_iters = 3, ph.freecodes.code_lr = 0.5f;
        ph.freecodes.fit_epochs = 2, ph.freecodes.refit_epochs = 1;
        add_phase(&s, ph);
        break;
    }
    return s;
}

typedef struct norm_totals {
    int runs, ball_runs, ball_bound; /* ball runs, and those where the projection acted */
    int64_t checks;
    double worst, y_off;
} norm_totals;

/* One run with the constraint, watched after every step and at the end, then the same run
 * without it, whose final columns must violate the constraint. */
static void norm_case(int conv, norm_scheme sch, const opt_case *o, anamo_decoder_norm norm,
                      norm_totals *tot)
{
    char what[128];
    snprintf(what, sizeof what, "%s %s %s %s", conv ? "convT" : "dense", SCHEME_NAMES[sch], o->name,
             norm == ANAMO_DECODER_NORM_SPHERE ? "sphere" : "ball");
    const anamo_dataset *ds = conv ? &conv_ds : &dense_ds;
    anamo_model *m = norm_model(conv, sch, 40 + (uint64_t)sch);
    anamo_train_spec s = norm_spec(sch, o, norm);
    anamo_trainer *t = trainer_new(m, &s, ds);
    const int accel = (sch == SCH_JOINT || sch == SCH_NAM || sch == SCH_NAM_BACKTRACK) &&
                      (!strcmp(o->name, "accelerated") || !strcmp(o->name, "fista"));
    norm_watch w = {.t = t, .kind = norm, .accelerated = accel, .what = what};
    anamo_train_hooks hooks = {.ctx = &w, .on_step = norm_on_step};
    run_ok(t, &hooks, what);
    assert_true(anamo_trainer_iterations(t) >= 12);
    check_span(&w, m->dec.params, "final parameter", anamo_trainer_iterations(t));
    /* a column within 1e-5 of the ball's boundary after a step: the projection has just put it
     * there (or the step barely moved it from where the projection had) */
    if (norm == ANAMO_DECODER_NORM_BALL)
        tot->ball_runs++, tot->ball_bound += w.largest >= 1.0 - NORM_TOL;
    tot->runs++, tot->checks += w.checks;
    tot->worst = fmax(tot->worst, w.worst), tot->y_off = fmax(tot->y_off, w.y_off);
    anamo_trainer_free(t);
    anamo_model_free(m);

    /* the control: no constraint, the same initial weights and schedule */
    m = norm_model(conv, sch, 40 + (uint64_t)sch);
    s.decoder_norm = ANAMO_DECODER_NORM_NONE;
    t = trainer_new(m, &s, ds);
    run_ok(t, NULL, what);
    double norms[MAX_GROUPS], off = 0.0;
    const int64_t count = first_layer_norms(&m->dec, m->dec.params, norms);
    for (int64_t k = 0; k < count; k++)
        off = fmax(off, violation(norm, norms[k]));
    if (!(off > 1e-2))
        fail_msg("%s without decoder_norm: every column already satisfies the constraint "
                 "(worst violation %.3g), so the test could not fail",
                 what, off);
    anamo_trainer_free(t);
    anamo_model_free(m);
}

static void test_unit_norm_every_step(void **state)
{
    (void)state;
    norm_totals tot = {0};
    const anamo_decoder_norm kinds[2] = {ANAMO_DECODER_NORM_SPHERE, ANAMO_DECODER_NORM_BALL};
    for (int conv = 0; conv < 2; conv++)
        for (int k = 0; k < 2; k++) {
            for (size_t o = 0; o < N_OPTS; o++) {
                norm_case(conv, SCH_JOINT, &OPTS[o], kinds[k], &tot);
                norm_case(conv, SCH_NAM, &OPTS[o], kinds[k], &tot);
            }
            norm_case(conv, SCH_NAM_BACKTRACK, &OPTS[0], kinds[k], &tot);
            norm_case(conv, SCH_ANAMO, &OPTS[6], kinds[k], &tot);
            norm_case(conv, SCH_ANAMO_BACKTRACK, &OPTS[6], kinds[k], &tot);
            norm_case(conv, SCH_FREECODES, &OPTS[6], kinds[k], &tot);
        }
    printf("unit norm: %d runs, %lld group checks, worst violation %.3g (tolerance %.0e); "
           "accelerated y_j off the set by up to %.3g (allowed); the ball's boundary reached "
           "in %d of %d ball runs\n",
           tot.runs, (long long)tot.checks, tot.worst, NORM_TOL, tot.y_off, tot.ball_bound,
           tot.ball_runs);
    /* the ball must bind in most runs, or its check would be vacuous (the columns start outside
     * it, are projected at creation, and in most runs some step pushes one out again; in the
     * others the steps shrink every column from the start) */
    assert_true(2 * tot.ball_bound >= tot.ball_runs);
}

/* A run whose budget ends inside a phase: joint accelerated on the sphere, a phase of 2 epochs
 * and a budget of 3, so the run stops halfway through the second phase. The model it leaves
 * must be the iterate x_j, on the sphere (as at every phase's end, train_leave_phase), not the
 * extrapolated y_j, which leaves the sphere by ~β·‖x_j − x_{j−1}‖²: measured 5e-5 here at
 * lr 0.5 (and y_j differs from x_j by 4.5e-3). */
static void test_unit_norm_budget_ends_mid_phase(void **state)
{
    (void)state;
    anamo_model *m = norm_model(0, SCH_JOINT, 44);
    anamo_train_spec s = spec_new(3.0);
    s.decoder_norm = ANAMO_DECODER_NORM_SPHERE;
    add_phase(&s, anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ACCELERATED, 0.5f,
                                      BATCH, 2.0));
    anamo_trainer *t = trainer_new(m, &s, &dense_ds);
    run_ok(t, NULL, "accelerated, budget mid-phase");
    assert_true(t->p.phase_iters > 0); /* it did stop inside the phase */
    double norms[MAX_GROUPS], worst = 0.0, x_worst = 0.0, diff = 0.0;
    const int64_t count = first_layer_norms(&m->dec, m->dec.params, norms);
    for (int64_t k = 0; k < count; k++)
        worst = fmax(worst, fabs(norms[k] - 1.0));
    first_layer_norms(&m->dec, ACCEL_X(m->dec.opt_state), norms);
    for (int64_t k = 0; k < count; k++)
        x_worst = fmax(x_worst, fabs(norms[k] - 1.0));
    for (int64_t i = 0; i < m->dec.nparams; i++)
        diff = fmax(diff, fabs((double)m->dec.params[i] - ACCEL_X(m->dec.opt_state)[i]));
    if (!(x_worst <= NORM_TOL)) /* the premise: the iterate is feasible */
        fail_msg("the iterate x_j is off the sphere by %.3g", x_worst);
    if (!(worst <= NORM_TOL) || diff != 0.0)
        fail_msg("a budget spent inside an accelerated phase leaves y_j in the parameters, not x_j "
                 "(max |y − x| = %.3g): the final decoder's columns are off the sphere by %.3g "
                 "(want <= %.0e)",
                 diff, worst, NORM_TOL);
    anamo_trainer_free(t);
    anamo_model_free(m);
}

/* Hand case, a 3 × 3 weight (out 3, in 3, row-major) after one padding float (offset 1), its
 * columns the groups: w0 = (1, 2, 2) (norm 3), w1 = (0, 1, 0) and w2 = 0. grad columns g0 = (3, 0, 0), g1 = (1, 5, 2), g2 = (1, 1, 1):
 *   g0 − (g0·w0/9)·w0 = (3, 0, 0) − (1/3)(1, 2, 2) = (8/3, −2/3, −2/3)
 *   g1 − (g1·w1/1)·w1 = (1, 5, 2) − 5·(0, 1, 0) = (1, 0, 2)
 *   g2 unchanged (a zero group has no direction).
 * Projection onto the sphere: w0/3 = (1/3, 2/3, 2/3), w1 stays, the zero group stays; the ball
 * keeps w1 (norm 1) and scales w0 to norm 1. Values are exact to float rounding: 1e-6. */
static void test_tangent_and_project_hand(void **state)
{
    (void)state;
    /* offset 1, then a 3 × 3 row-major weight whose columns are the groups */
    float theta[1 + 9] = {99, 1, 0, 0, 2, 1, 0, 2, 0, 0};
    float grad[1 + 9] = {7, 3, 1, 1, 0, 5, 1, 0, 2, 1};
    const norm_groups g = {.kind = NORM_SPHERE,
                           .offset = 1,
                           .count = 3,
                           .len = 3,
                           .group_stride = 1,
                           .elem_stride = 3};
    norm_groups_tangent(&g, theta, grad);
    const double want[1 + 9] = {7, 8.0 / 3, 1, 1, -2.0 / 3, 0, 1, -2.0 / 3, 2, 1};
    for (int i = 0; i < 10; i++)
        expect_close("tangent", i, grad[i], want[i], 0, 1e-6);
    for (int k = 0; k < 2; k++) { /* and orthogonal to its column */
        double dot = 0.0;
        for (int i = 0; i < 3; i++)
            dot += (double)grad[1 + i * 3 + k] * theta[1 + i * 3 + k];
        expect_close("tangent·column", k, dot, 0.0, 0, 1e-6);
    }
    /* the ball is not a manifold: the tangent step is the sphere's only */
    float grad_ball[1 + 9];
    memcpy(grad_ball, (float[]){7, 3, 1, 1, 0, 5, 1, 0, 2, 1}, sizeof grad_ball);
    const norm_groups ball = {
        .kind = NORM_BALL, .offset = 1, .count = 3, .len = 3, .group_stride = 1, .elem_stride = 3};
    norm_groups_tangent(&ball, theta, grad_ball);
    assert_memory_equal(grad_ball, ((float[]){7, 3, 1, 1, 0, 5, 1, 0, 2, 1}), sizeof grad_ball);

    float sph[10], bal[10];
    memcpy(sph, theta, sizeof sph);
    memcpy(bal, (float[]){99, 1, 0, 0, 2, 0.5f, 0, 2, 0, 0}, sizeof bal);
    norm_groups_project(&g, sph);
    const double want_sph[10] = {99, 1.0 / 3, 0, 0, 2.0 / 3, 1, 0, 2.0 / 3, 0, 0};
    for (int i = 0; i < 10; i++)
        expect_close("sphere projection", i, sph[i], want_sph[i], 0, 1e-6);
    norm_groups_project(&ball, bal); /* w0 → w0/3; w1 = (0, 0.5, 0) inside: kept */
    const double want_bal[10] = {99, 1.0 / 3, 0, 0, 2.0 / 3, 0.5, 0, 2.0 / 3, 0, 0};
    for (int i = 0; i < 10; i++)
        expect_close("ball projection", i, bal[i], want_bal[i], 0, 1e-6);
    expect_close("norm_groups_norm", 0, norm_groups_norm(&g, theta, 0), 3.0, 0, 1e-12);
}

/* ---- 2. the decoder-weighted penalty --------------------------------------------------------- */

/* Central differences of λg with step FD_H, the float steps actually taken as the denominator.
 * In h, g is piecewise linear and every |h| ≥ 0.1 > FD_H, so the quotient is exact but for
 * rounding: g sums float products in double, ~1e-16 relative. In W₁, g depends on n_k =
 * ‖w_k‖, computed in double but stored as a float (6e-8 relative) before it weighs |h|: over
 * the step 2·FD_H that rounding is ~3e-5·n_k of the derivative λ·mass·w/(B·n), which is ~0.1
 * here; the truncation error FD_H²·|n'''|/6 ~ 1e-7. So FD_RTOL 1e-3 with FD_ATOL 1e-4 holds
 * with room, while a sign error, a missing λ, 1/B or 1/‖w‖ is off by 30% or more. */
#define FD_H 1e-3f
#define FD_RTOL 1e-3
#define FD_ATOL 1e-4
#define PEN_LAMBDA 0.3f
#define PEN_B 3
#define PEN_PREFILL 0.125f /* what dh and the grads hold before: the gradients are added */

/* λ·g at the trainer's current decoder weights (penalty_forward reads them at every call). */
static double lambda_g(anamo_trainer *t, const float *h, int B)
{
    return (double)PEN_LAMBDA * penalty_forward(t, h, B, NULL);
}

/* ∂(λg)/∂v by central differences at *v. */
static double fd_of(anamo_trainer *t, const float *h, int B, float *v)
{
    const float v0 = *v;
    *v = v0 + FD_H;
    const float up = *v;
    const double f_up = lambda_g(t, h, B);
    *v = v0 - FD_H;
    const float down = *v;
    const double f_down = lambda_g(t, h, B);
    *v = v0;
    return (f_up - f_down) / ((double)up - (double)down);
}

/* h (B × m): |h| in [0.1, 0.85], both signs, no two alike. */
static void penalty_codes(float *h, int B, int64_t m)
{
    for (int64_t i = 0; i < B * m; i++)
        h[i] = (float)((0.1 + 0.75 * fmod(0.618034 * (double)(i + 1), 1.0)) *
                       ((i * 7 / 3) % 2 ? -1.0 : 1.0));
}

static void check_penalty(anamo_model *m, const anamo_dataset *ds, const char *what)
{
    anamo_train_spec s = spec_new(1.0);
    s.lambda = PEN_LAMBDA;
    s.penalty = ANAMO_PENALTY_DECODER_L1;
    add_phase(&s, anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_SGD, 0.1f, PEN_B, 1.0));
    anamo_trainer *t = trainer_new(m, &s, ds);
    block *dec = &m->dec;
    const int64_t code_dim = anamo_model_code_dim(m);
    float h[PEN_B * 64], dh[PEN_B * 64], sub[PEN_B * 64];
    assert_true(code_dim <= 64);
    penalty_codes(h, PEN_B, code_dim);

    /* the value against the closed form (1/B) Σ_b Σ_j n_j |h_bj|, n from first_layer_norms */
    double norms[MAX_GROUPS];
    const int64_t groups = first_layer_norms(dec, dec->params, norms);
    const int64_t per_group = code_dim / groups;
    double g = 0.0;
    for (int b = 0; b < PEN_B; b++)
        for (int64_t j = 0; j < code_dim; j++)
            g += norms[j / per_group] * fabs((double)h[b * code_dim + j]);
    g /= PEN_B;
    expect_close(what, -1, penalty_forward(t, h, PEN_B, NULL), g, 1e-6, 0);

    /* ∂(λg)/∂h: added to what dh held */
    for (int64_t i = 0; i < PEN_B * code_dim; i++)
        dh[i] = PEN_PREFILL, sub[i] = PEN_PREFILL;
    expect_close(what, -2, penalty_forward(t, h, PEN_B, dh), g, 1e-6, 0);
    penalty_subgradient(t, h, PEN_B, sub);
    char name[160];
    snprintf(name, sizeof name, "%s: d(lambda g)/dh", what);
    for (int64_t i = 0; i < PEN_B * code_dim; i++) {
        double fd = fd_of(t, h, PEN_B, &h[i]);
        expect_close(name, i, dh[i] - PEN_PREFILL, fd, FD_RTOL, FD_ATOL);
        /* the closed form λ n_j sign(h)/B, and the subgradient without λ */
        double want = PEN_LAMBDA * norms[(i % code_dim) / per_group] * (h[i] > 0 ? 1 : -1) / PEN_B;
        expect_close(name, i, dh[i] - PEN_PREFILL, want, 1e-6, 1e-7);
        expect_close("penalty_subgradient", i, sub[i] - PEN_PREFILL, want / PEN_LAMBDA, 1e-6, 1e-7);
    }

    /* ∂(λg)/∂φ: only the first layer's weights get any, added to what the grads held */
    for (int64_t i = 0; i < dec->nparams; i++)
        dec->grads[i] = PEN_PREFILL;
    penalty_decoder_backward(t, h, PEN_B);
    snprintf(name, sizeof name, "%s: d(lambda g)/dphi", what);
    const int64_t w_first = dec->layers[0].weight - dec->params;
    assert_int_equal(dec->params_ref[0].offset, w_first);
    const int64_t w_len = dec->params_ref[0].numel; /* the first layer's weight */
    int64_t w_count = 0;
    for (int64_t i = 0; i < dec->nparams; i++) {
        double fd = fd_of(t, h, PEN_B, &dec->params[i]);
        const double got = (double)dec->grads[i] - PEN_PREFILL;
        expect_close(name, i, got, fd, FD_RTOL, FD_ATOL);
        const int in_first = i >= w_first && i < w_first + w_len;
        if (!in_first && got != 0.0)
            fail_msg("%s: parameter %lld outside the first layer's weight got %g", name,
                     (long long)i, got);
        w_count += in_first && fabs(got) > 1e-3;
    }
    assert_true(w_count > 0); /* the differences were not all vacuous zeros */
    anamo_trainer_free(t);
}

static void test_penalty_gradients(void **state)
{
    (void)state;
    float x[PEN_B * 16];
    anamo_dataset ds;
    make_set(&ds, x, PEN_B, 6, 1, 1, "penalty set");
    anamo_model *m = model_new(6, 1, 1, "linear 4, tanh", "linear 5, tanh, linear 6, sigmoid",
                               ANAMO_INIT_PYTORCH, 0, 7, PEN_B);
    check_penalty(m, &ds, "dense");
    anamo_model_free(m);
    /* 2 channels of 2 × 2 codes: each channel's 4 entries share the slice W₁[c] (1 × 4 × 4) */
    make_set(&ds, x, PEN_B, 1, 4, 4, "penalty conv set");
    m = model_new(1, 4, 4, "conv2d 2 k4 s2 p1, relu", "convtranspose2d 1 k4 s2 p1, sigmoid",
                  ANAMO_INIT_PYTORCH, 0, 8, PEN_B);
    assert_int_equal(anamo_model_code_dim(m), 8);
    check_penalty(m, &ds, "convT");
    anamo_model_free(m);
}

/* F(θ, φ) = loss + λg on the full batch at the current weights (train_forward). */
static double joint_objective(anamo_trainer *t, int B)
{
    step_losses out;
    model_load_batch(t->m, t->train, NULL, 0, B);
    const train_batch batch = {.idx = NULL, .x = t->m->xbuf, .B = B};
    train_forward(t, &batch, &out);
    return out.loss;
}

/* One joint SGD step at lr 1 moves every weight by −∂F/∂w: compared with central differences
 * of F (train_forward's loss + λ·g, decoder-weighted), step 1e-3. F is smooth where no code
 * crosses 0 (checked: every |h| > 1e-2, and a step moves h by ≤ 1e-3); F ≈ 0.1 is computed from
 * float outputs (relative 1e-7), so the quotient carries ~1e-5 absolute of rounding and
 * ~1e-6·|F'''| of truncation; the step's own rounding is an ulp of the weight (3e-8). Tolerance
 * 1e-2 relative with 2e-5 absolute; leaving out the penalty's decoder term changes the first
 * layer's gradients by λ·mass/(B·n)·w ≈ 0.05, far beyond it. */
static void test_joint_step_gradient(void **state)
{
    (void)state;
    enum { B = 4, D = 6 };
    float x[B * D];
    anamo_dataset ds;
    make_set(&ds, x, B, D, 1, 1, "joint set");
    anamo_model *m = model_new(D, 1, 1, "linear 4, tanh", "linear 5, tanh, linear 6, sigmoid",
                               ANAMO_INIT_PYTORCH, 0, 9, B);
    anamo_train_spec s = spec_new(1.0);
    s.lambda = PEN_LAMBDA;
    s.penalty = ANAMO_PENALTY_DECODER_L1;
    add_phase(&s, anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_SGD, 1.0f, B, 1.0));
    anamo_trainer *t = trainer_new(m, &s, &ds);
    anamo_err err = {0};
    if (train_enter_phase(t, 0, &err) != ANAMO_OK)
        fail_msg("train_enter_phase: %s", err.msg);
    /* the precondition: no code within 1e-2 of the kink of |h| */
    float codes[B * 4];
    if (anamo_model_encode(m, &ds, 0, B, codes, &err) != ANAMO_OK)
        fail_msg("%s", err.msg);
    for (int i = 0; i < B * 4; i++)
        if (!(fabsf(codes[i]) > 1e-2f))
            fail_msg("code %d = %g is too close to 0 for differences", i, (double)codes[i]);
    block *blocks[2] = {&m->enc, &m->dec};
    double *fd[2];
    float *before[2];
    for (int k = 0; k < 2; k++) {
        block *b = blocks[k];
        fd[k] = malloc((size_t)b->nparams * sizeof *fd[k]);
        before[k] = malloc((size_t)b->nparams * sizeof *before[k]);
        assert_non_null(fd[k]);
        assert_non_null(before[k]);
        memcpy(before[k], b->params, (size_t)b->nparams * sizeof(float));
        for (int64_t i = 0; i < b->nparams; i++) {
            const float v0 = b->params[i];
            b->params[i] = v0 + FD_H;
            const float up = b->params[i];
            const double f_up = joint_objective(t, B);
            b->params[i] = v0 - FD_H;
            const float down = b->params[i];
            const double f_down = joint_objective(t, B);
            b->params[i] = v0;
            fd[k][i] = (f_up - f_down) / ((double)up - (double)down);
        }
    }
    const int64_t idx[B] = {0, 1, 2, 3};
    step_losses out;
    if (train_step(t, 0, idx, B, &out, &err) != ANAMO_OK)
        fail_msg("train_step: %s", err.msg);
    for (int k = 0; k < 2; k++) {
        const char *what = k ? "joint step: decoder gradient" : "joint step: encoder gradient";
        for (int64_t i = 0; i < blocks[k]->nparams; i++)
            expect_close(what, i, (double)before[k][i] - blocks[k]->params[i], fd[k][i], 1e-2,
                         2e-5);
        free(fd[k]), free(before[k]);
    }
    anamo_trainer_free(t);
    anamo_model_free(m);
}

/* On the sphere a decoder step moves along it: one NAM decoder step of SGD at lr 1 gives the
 * column w (unit at creation) the value (w − g_t)/‖w − g_t‖, g_t = g − (g·w)·w the tangent part
 * of the column's gradient g, and every other decoder weight φ − ∂F/∂φ. g is taken by central
 * differences of F = loss + λ·g_pen (decoder_l1, whose decoder gradient is radial and so drops
 * out), as in test_joint_step_gradient: ~1e-5 absolute, so 5e-5 on the new weights. Stepping
 * along the raw g and projecting lands ≥ 1e-3 away (asserted of the reference). */
static void test_sphere_step_is_tangent(void **state)
{
    (void)state;
    enum { B = 4, D = 6 };
    float x[B * D];
    anamo_dataset ds;
    make_set(&ds, x, B, D, 1, 1, "sphere set");
    anamo_model *m = model_new(D, 1, 1, "linear 4, tanh", "linear 5, tanh, linear 6, sigmoid",
                               ANAMO_INIT_PYTORCH, 0, 9, B);
    anamo_train_spec s = spec_new(1.0);
    s.lambda = 1.0f; /* a large radial gradient, so that leaving out the tangent shows */
    s.penalty = ANAMO_PENALTY_DECODER_L1;
    s.decoder_norm = ANAMO_DECODER_NORM_SPHERE;
    add_phase(&s, anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_SGD, 1.0f, B, 1.0));
    anamo_trainer *t = trainer_new(m, &s, &ds);
    anamo_err err = {0};
    if (train_enter_phase(t, 0, &err) != ANAMO_OK)
        fail_msg("train_enter_phase: %s", err.msg);
    block *dec = &m->dec;
    const layer *l = &dec->layers[0];
    const int64_t n = dec->nparams, off = l->weight - dec->params;
    double *g = malloc((size_t)n * sizeof *g), *want = malloc((size_t)n * sizeof *want);
    float *before = malloc((size_t)n * sizeof *before);
    assert_non_null(g);
    assert_non_null(want);
    assert_non_null(before);
    memcpy(before, dec->params, (size_t)n * sizeof *before);
    for (int64_t i = 0; i < n; i++) {
        const float v0 = dec->params[i];
        dec->params[i] = v0 + FD_H;
        const float up = dec->params[i];
        const double f_up = joint_objective(t, B);
        dec->params[i] = v0 - FD_H;
        const float down = dec->params[i];
        const double f_down = joint_objective(t, B);
        dec->params[i] = v0;
        g[i] = (f_up - f_down) / ((double)up - (double)down);
        want[i] = before[i] - g[i];
    }
    double power = 0.0;
    for (int64_t j = 0; j < l->in_dim; j++) { /* column j: entries off + i·in + j */
        double ww = 0.0, gw = 0.0, nt = 0.0, nr = 0.0;
        for (int64_t i = 0; i < l->out_dim; i++) {
            const int64_t at = off + i * l->in_dim + j;
            ww += (double)before[at] * before[at], gw += g[at] * before[at];
        }
        expect_close("unit column at creation", j, sqrt(ww), 1.0, 0, NORM_TOL);
        for (int64_t i = 0; i < l->out_dim; i++) {
            const int64_t at = off + i * l->in_dim + j;
            const double u = before[at] - (g[at] - gw / ww * before[at]), r = before[at] - g[at];
            nt += u * u, nr += r * r;
        }
        for (int64_t i = 0; i < l->out_dim; i++) {
            const int64_t at = off + i * l->in_dim + j;
            want[at] = (before[at] - (g[at] - gw / ww * before[at])) / sqrt(nt);
            power = fmax(power, fabs(want[at] - (before[at] - g[at]) / sqrt(nr)));
        }
    }
    assert_true(power > 1e-3);
    const int64_t idx[B] = {0, 1, 2, 3};
    step_losses out;
    if (train_step(t, 0, idx, B, &out, &err) != ANAMO_OK)
        fail_msg("train_step: %s", err.msg);
    for (int64_t i = 0; i < n; i++)
        expect_close("sphere step", i, dec->params[i], want[i], 0, 5e-5);
    free(g), free(want), free(before);
    anamo_trainer_free(t);
    anamo_model_free(m);
}

/* steps.c promises that on the sphere "Adam's and the momentum methods' steps (and the moments
 * they keep) see only the gradient along the sphere". After one NAM decoder step with Adam,
 * m = (1 − β1)·g_used, so each first-layer column of m must be orthogonal to the column w_0 the
 * gradient was taken at: |m·w_0| ≤ 1e-6·‖m‖ (float rounding of a tangent projection and of one
 * Adam update). Checked without and with weight_decay 0.1; with it, adam.c adds wd·θ to the
 * tangent gradient inside the optimizer, a radial part of (1 − β1)·wd·‖w_0‖² = 0.01 per column
 * against ‖m‖ ≈ 1e-3, so the promise holds only if the decay is taken before the tangent
 * projection (where, being radial, it drops out). */
static double sphere_adam_radial(float weight_decay)
{
    enum { B = 4, D = 6 };
    float x[B * D];
    anamo_dataset ds;
    make_set(&ds, x, B, D, 1, 1, "sphere adam set");
    anamo_model *m = model_new(D, 1, 1, "linear 4, tanh", "linear 5, tanh, linear 6, sigmoid",
                               ANAMO_INIT_PYTORCH, 0, 9, B);
    anamo_train_spec s = spec_new(1.0);
    s.decoder_norm = ANAMO_DECODER_NORM_SPHERE;
    anamo_phase ph = anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_ADAM, 1e-2f, B,
                                         1.0);
    ph.opt.weight_decay = weight_decay;
    add_phase(&s, ph);
    anamo_trainer *t = trainer_new(m, &s, &ds);
    anamo_err err = {0};
    if (train_enter_phase(t, 0, &err) != ANAMO_OK)
        fail_msg("train_enter_phase: %s", err.msg);
    const block *dec = &m->dec;
    const layer *l = &dec->layers[0];
    const int64_t off = l->weight - dec->params;
    float w0[5 * 4];
    for (int64_t i = 0; i < l->out_dim * l->in_dim; i++)
        w0[i] = dec->params[off + i];
    const int64_t idx[B] = {0, 1, 2, 3};
    step_losses out;
    if (train_step(t, 0, idx, B, &out, &err) != ANAMO_OK)
        fail_msg("train_step: %s", err.msg);
    double worst = 0.0; /* the largest |m·w_0| / ‖m‖ over the columns */
    for (int64_t j = 0; j < l->in_dim; j++) {
        double dot = 0.0, mm = 0.0;
        for (int64_t i = 0; i < l->out_dim; i++) {
            const double mi = dec->opt_state[off + i * l->in_dim + j];
            dot += mi * w0[i * l->in_dim + j], mm += mi * mi;
        }
        assert_true(mm > 0.0);
        worst = fmax(worst, fabs(dot) / sqrt(mm));
    }
    anamo_trainer_free(t);
    anamo_model_free(m);
    return worst;
}

static void test_sphere_adam_moments_tangent(void **state)
{
    (void)state;
    const double plain = sphere_adam_radial(0.0f), decayed = sphere_adam_radial(0.1f);
    if (!(plain <= 1e-6))
        fail_msg("Adam's m has a radial part |m·w|/‖m‖ = %.3g without weight decay", plain);
    if (!(decayed <= 1e-6))
        fail_msg("with weight_decay 0.1 on a sphere-constrained decoder, Adam's first moment "
                 "has a radial part |m·w|/‖m‖ = %.3g (want <= 1e-6)",
                 decayed);
}

/* optim_fista_step with a weighted soft threshold, n = 6 coordinates in rows of period 3:
 * lr 0.5, prox_lambda 0.4 (τ = 0.2), weights w = (1, 2, 0.25), so τ_i = (0.2, 0.4, 0.05) by
 * i mod 3.
 *   step 1 (t = 1, s_0 = 1): y_0 = (1, 0.3, −0.5, −0.1, 0.9, 0.02), ∇ = (0.4, −0.2, 0.2, 0.6,
 *     0.2, −0.04): v = y_0 − 0.5∇ = (0.8, 0.4, −0.6, −0.4, 0.8, 0.04), x_1 = sign(v)·max(|v| −
 *     τ_i, 0) = (0.6, 0, −0.55, −0.2, 0.4, 0); β = (s_0 − 1)/s_1 = 0, so y_1 = x_1.
 *   step 2 (t = 2): ∇ = (0.2, 0, 0, 0.2, −0.2, 0.3): v = (0.5, 0, −0.55, −0.3, 0.5, −0.15),
 *     x_2 = (0.3, 0, −0.5, −0.1, 0.1, −0.1), y_2 = x_2 + ((s_1 − 1)/s_2)(x_2 − x_1) with
 *     s_1 = (1 + √5)/2, s_2 = (1 + √(1 + 4s_1²))/2.
 * The unweighted threshold (τ = 0.2 everywhere) gives x_1 = (0.6, 0.2, −0.4, −0.2, 0.6, 0):
 * different in three places. Float arithmetic on values ≤ 1: 1e-6. */
static void test_weighted_soft_threshold(void **state)
{
    (void)state;
    enum { N = 6, PERIOD = 3 };
    const float w[PERIOD] = {1.0f, 2.0f, 0.25f};
    float y[N] = {1.0f, 0.3f, -0.5f, -0.1f, 0.9f, 0.02f};
    const float g1[N] = {0.4f, -0.2f, 0.2f, 0.6f, 0.2f, -0.04f};
    const float g2[N] = {0.2f, 0.0f, 0.0f, 0.2f, -0.2f, 0.3f};
    const double y0[N] = {1.0, 0.3, -0.5, -0.1, 0.9, 0.02};
    const double x1[N] = {0.6, 0.0, -0.55, -0.2, 0.4, 0.0};
    const double x2[N] = {0.3, 0.0, -0.5, -0.1, 0.1, -0.1};
    const double plain_x1[N] = {0.6, 0.2, -0.4, -0.2, 0.6, 0.0};
    float state_buf[2 * N + 1];
    memset(state_buf, 0, sizeof state_buf);
    optim_cfg cfg = optim_defaults(OPTIM_FISTA, 0.5f);
    cfg.prox = PROX_L1;
    cfg.prox_lambda = 0.4f;
    cfg.prox_weight = w;
    cfg.prox_period = PERIOD;

    optim_fista_step(&cfg, y, g1, state_buf, N, 1);
    for (int i = 0; i < N; i++) {
        expect_close("y_1 = x_1", i, y[i], x1[i], 0, 1e-6);
        expect_close("state x_1", i, ACCEL_X(state_buf)[i], x1[i], 0, 1e-6);
        expect_close("state x_0", i, ACCEL_X_PREV(state_buf, N)[i], y0[i], 0, 1e-6);
    }
    const double s1 = (1.0 + sqrt(5.0)) / 2.0, s2 = (1.0 + sqrt(1.0 + 4.0 * s1 * s1)) / 2.0;
    expect_close("s_1", 0, ACCEL_S(state_buf, N), s1, 1e-6, 0);

    optim_fista_step(&cfg, y, g2, state_buf, N, 2);
    const double beta = (s1 - 1.0) / s2;
    for (int i = 0; i < N; i++) {
        expect_close("x_2", i, ACCEL_X(state_buf)[i], x2[i], 0, 1e-6);
        expect_close("y_2", i, y[i], x2[i] + beta * (x2[i] - x1[i]), 0, 1e-6);
    }

    /* without weights: the plain threshold, which differs */
    float yp[N] = {1.0f, 0.3f, -0.5f, -0.1f, 0.9f, 0.02f};
    cfg.prox_weight = NULL;
    memset(state_buf, 0, sizeof state_buf);
    optim_fista_step(&cfg, yp, g1, state_buf, N, 1);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        expect_close("unweighted x_1", i, yp[i], plain_x1[i], 0, 1e-6);
        differ += fabs(plain_x1[i] - x1[i]) > 1e-3;
    }
    assert_int_equal(differ, 3);
}

/* Free codes under the decoder-weighted penalty: one code iteration (J_code = 1, t = 1, so no
 * extrapolation) and no decoder iteration turn the batch's codes V (the initial encoder's) into
 * sign(v)·max(|v| − e·(λ/B)·n_j, 0), v = V − e·∇_V loss(D(V), X), n_j the decoder's column norms,
 * set here to 0.4, 1, 2, 3. ∇_V by central differences of the decoder loss (smooth in V, float
 * outputs: ~1e-7 absolute of error on gradients of ~1e-2), so 1e-5 on the new codes; the
 * unweighted threshold e·λ/B lands ≥ 1e-3 away (asserted of the reference). */
static void test_freecodes_weighted_threshold(void **state)
{
    (void)state;
    enum { B = 4, D = 6, M = 4 };
    const double col_norm[M] = {0.4, 1.0, 2.0, 3.0};
    const float e = 0.5f, lambda = 0.2f;
    float x[B * D];
    anamo_dataset ds;
    make_set(&ds, x, B, D, 1, 1, "free codes set");
    anamo_model *m = model_new(D, 1, 1, "linear 4, sigmoid", "linear 6, sigmoid",
                               ANAMO_INIT_PYTORCH, 0, 12, B);
    double norms[MAX_GROUPS], scale[M];
    first_layer_norms(&m->dec, m->dec.params, norms);
    for (int j = 0; j < M; j++)
        scale[j] = col_norm[j] / norms[j];
    scale_inputs(&m->dec.layers[0], scale);
    anamo_train_spec s = spec_new(1.0);
    s.lambda = lambda;
    s.penalty = ANAMO_PENALTY_DECODER_L1;
    anamo_phase ph = anamo_phase_default("freecodes", ANAMO_PHASE_FREECODES, ANAMO_OPT_FISTA, e, B,
                                         1.0);
    ph.freecodes.code_iters = 1, ph.freecodes.dec_iters = 0, ph.freecodes.code_lr = e;
    add_phase(&s, ph);
    anamo_trainer *t = trainer_new(m, &s, &ds);
    anamo_err err = {0};
    if (train_enter_phase(t, 0, &err) != ANAMO_OK)
        fail_msg("train_enter_phase: %s", err.msg);
    first_layer_norms(&m->dec, m->dec.params, norms);
    float V[B * M];
    memcpy(V, t->free_codes, sizeof V);
    model_load_batch(m, &ds, NULL, 0, B);
    double want[B * M], power = 0.0;
    for (int i = 0; i < B * M; i++) {
        const float v0 = V[i];
        V[i] = v0 + FD_H;
        const float up = V[i];
        const double f_up = train_decoder_loss(t, V, m->xbuf, B, NULL);
        V[i] = v0 - FD_H;
        const float down = V[i];
        const double f_down = train_decoder_loss(t, V, m->xbuf, B, NULL);
        V[i] = v0;
        const double grad = (f_up - f_down) / ((double)up - (double)down);
        const double v = v0 - e * grad, tau = e * lambda / B * norms[i % M];
        const double plain = e * lambda / B;
        want[i] = (v > 0 ? 1 : -1) * fmax(fabs(v) - tau, 0.0);
        power = fmax(power, fabs(want[i] - (v > 0 ? 1 : -1) * fmax(fabs(v) - plain, 0.0)));
    }
    assert_true(power > 1e-3);
    const int64_t idx[B] = {0, 1, 2, 3};
    step_losses out;
    if (train_step(t, 0, idx, B, &out, &err) != ANAMO_OK)
        fail_msg("train_step: %s", err.msg);
    for (int i = 0; i < B * M; i++)
        expect_close("free codes after one weighted FISTA step", i, t->free_codes[i], want[i], 0,
                     1e-5);
    anamo_trainer_free(t);
    anamo_model_free(m);
}

/* ---- 3. invariance of the measures ----------------------------------------------------------- */

/* (1/M) Σ_b Σ_j n_j |h_bj| from the model's codes and first_layer_norms. */
static double decoder_l1_direct(anamo_model *m, const anamo_dataset *ds)
{
    const int64_t code_dim = anamo_model_code_dim(m);
    float *codes = malloc((size_t)(ds->n * code_dim) * sizeof *codes);
    assert_non_null(codes);
    anamo_err err = {0};
    if (anamo_model_encode(m, ds, 0, ds->n, codes, &err) != ANAMO_OK)
        fail_msg("%s", err.msg);
    double norms[MAX_GROUPS], sum = 0.0;
    const int64_t per = code_dim / first_layer_norms(&m->dec, m->dec.params, norms);
    for (int64_t b = 0; b < ds->n; b++)
        for (int64_t j = 0; j < code_dim; j++)
            sum += norms[j / per] * fabs((double)codes[b * code_dim + j]);
    free(codes);
    return sum / (double)ds->n;
}

#define SCALE_C 3.7

typedef struct inv_model {
    const char *name;
    int c, h, w;
    const char *enc, *dec;
    int code_layer; /* the encoder's layer producing the code */
    const anamo_dataset *ds;
} inv_model;

static void check_invariance(const inv_model *im)
{
    anamo_model *m = model_new(im->c, im->h, im->w, im->enc, im->dec, ANAMO_INIT_PYTORCH, 0, 17,
                               BATCH);
    const int64_t n = im->ds->n;
    const int64_t units = m->enc.layers[im->code_layer].kind == LAYER_LINEAR
                              ? m->enc.layers[im->code_layer].out_dim
                              : m->enc.layers[im->code_layer].out_c;
    const int64_t hidden = m->dec.layers[0].kind == LAYER_LINEAR ? m->dec.layers[0].out_dim
                                                                 : m->dec.layers[0].out_c;
    double up[MAX_GROUPS], down[MAX_GROUPS];
    char what[128];
    const anamo_metrics a = evaluate_ok(m, im->ds, n);
    assert_true(a.code_l1 > 0 && a.code_l1_decoder > 0 && a.code_l1_jacobian > 0);
    assert_int_equal(a.jacobian_samples, n);
    snprintf(what, sizeof what, "%s: code_l1_decoder vs closed form", im->name);
    expect_close(what, 0, a.code_l1_decoder, decoder_l1_direct(m, im->ds), 1e-6, 0);

    /* the code's units × c, the decoder's first-layer columns / c: same x → x̂ */
    for (int64_t j = 0; j < units; j++)
        up[j] = SCALE_C, down[j] = 1.0 / SCALE_C;
    scale_outputs(&m->enc.layers[im->code_layer], up);
    scale_inputs(&m->dec.layers[0], down);
    const anamo_metrics b = evaluate_ok(m, im->ds, n);
    snprintf(what, sizeof what, "%s: code scaled by c", im->name);
    expect_close(what, 0, b.code_l1_decoder, a.code_l1_decoder, INV_RTOL, 0);
    expect_close(what, 1, b.code_l1_jacobian, a.code_l1_jacobian, INV_RTOL, 0);
    expect_close(what, 2, b.mse, a.mse, INV_RTOL, 0);
    expect_close(what, 3, b.code_l1, SCALE_C * a.code_l1, INV_RTOL, 0);
    expect_close(what, 4, b.code_l1_decoder, decoder_l1_direct(m, im->ds), 1e-6, 0);

    /* unit by unit, different factors (3.7 and 1/2.3 alternately): an n_j read from the wrong
     * unit would show here, where a common factor hides it */
    for (int64_t j = 0; j < units; j++)
        up[j] = j % 2 ? 1.0 / 2.3 : 3.7, down[j] = 1.0 / up[j];
    scale_outputs(&m->enc.layers[im->code_layer], up);
    scale_inputs(&m->dec.layers[0], down);
    const anamo_metrics c = evaluate_ok(m, im->ds, n);
    snprintf(what, sizeof what, "%s: units scaled by c_j", im->name);
    expect_close(what, 0, c.code_l1_decoder, a.code_l1_decoder, INV_RTOL, 0);
    expect_close(what, 1, c.code_l1_jacobian, a.code_l1_jacobian, INV_RTOL, 0);
    expect_close(what, 2, c.mse, a.mse, INV_RTOL, 0);
    assert_true(fabs(c.code_l1 - b.code_l1) > 1e-3 * b.code_l1); /* raw ℓ1 did move */

    /* the decoder's hidden layer × c, the next layer's columns / c (across a relu) */
    for (int64_t j = 0; j < hidden; j++)
        up[j] = SCALE_C, down[j] = 1.0 / SCALE_C;
    scale_outputs(&m->dec.layers[0], up);
    scale_inputs(&m->dec.layers[2], down);
    const anamo_metrics d = evaluate_ok(m, im->ds, n);
    snprintf(what, sizeof what, "%s: hidden layer scaled by c", im->name);
    expect_close(what, 0, d.code_l1_jacobian, a.code_l1_jacobian, INV_RTOL, 0);
    expect_close(what, 1, d.mse, a.mse, INV_RTOL, 0);
    expect_close(what, 2, d.code_l1, c.code_l1, INV_RTOL, 0);
    /* every first-layer column grew by c, and so does the column-weighted ℓ1 */
    expect_close(what, 3, d.code_l1_decoder, SCALE_C * a.code_l1_decoder, INV_RTOL, 0);
    anamo_model_free(m);
}

static void test_measure_invariance(void **state)
{
    (void)state;
    const inv_model dense = {"dense",
                             D_DENSE,
                             1,
                             1,
                             "linear 12, relu, linear 6, relu",
                             "linear 12, relu, linear 10, sigmoid",
                             2,
                             &dense_ds};
    const inv_model conv = {"convT",  1, CONV_SIDE, CONV_SIDE, "conv2d 4 k4 s2 p1, relu",
                            CONV_DEC, 0, &conv_ds};
    check_invariance(&dense);
    check_invariance(&conv);
}

/* Explained variance 1 − Σ‖x − x̂‖²/Σ‖x − x̄‖² on four samples (0,0), (1,0), (0,1), (1,1) with a
 * decoder that outputs a constant (w = 0, b = β):
 *   x̄ the set's own mean (0.5, 0.5): Σ‖x − x̄‖² = 2; β = 0.5 gives Σ‖x − x̂‖² = 2, EV = 0;
 *     β = 0 gives Σ‖x‖² = 4, EV = −1;
 *   x̄ = (0.25, 0.25) remembered from a training set {(0,0), (0,0), (0,0), (1,1)}: Σ‖x − x̄‖² =
 *     2·(2·0.0625 + 2·0.5625) = 2.5, so β = 0.5 gives EV = 1 − 2/2.5 = 0.2.
 * Sums of a few exact binary fractions: 1e-12. */
static void test_explained_variance_hand(void **state)
{
    (void)state;
    float x[8] = {0, 0, 1, 0, 0, 1, 1, 1}, tx[8] = {0, 0, 0, 0, 0, 0, 1, 1};
    anamo_dataset ds, train;
    wrap_set(&ds, x, 4, 2, 1, 1, "ev set");
    wrap_set(&train, tx, 4, 2, 1, 1, "ev train");
    anamo_model *half = model_new(2, 1, 1, "linear 1", "linear 2 w=0 b=0.5", ANAMO_INIT_PYTORCH, 0,
                                  1, 4);
    anamo_model *zero = model_new(2, 1, 1, "linear 1", "linear 2 w=0 b=0", ANAMO_INIT_PYTORCH, 0, 1,
                                  4);
    anamo_metrics mt = evaluate_ok(half, &ds, -1);
    assert_int_equal(mt.mean_from_train, 0);
    expect_close("EV, own mean, b 0.5", 0, mt.explained_variance, 0.0, 0, 1e-12);
    mt = evaluate_ok(zero, &ds, -1);
    expect_close("EV, own mean, b 0", 0, mt.explained_variance, -1.0, 0, 1e-12);
    anamo_err err = {0};
    if (anamo_model_fit_data_mean(half, &train, &err) != ANAMO_OK)
        fail_msg("%s", err.msg);
    mt = evaluate_ok(half, &ds, -1);
    assert_int_equal(mt.mean_from_train, 1);
    expect_close("EV, training mean, b 0.5", 0, mt.explained_variance, 0.2, 0, 1e-12);
    anamo_model_free(half);
    anamo_model_free(zero);
}

/* A random dense model with standardized inputs and a remembered training mean: EV against
 * 1 − Σ‖x − x̂‖²/Σ‖x − x̄‖² from anamo_model_reconstruct (raw scale) and the training set's mean,
 * in double. The library takes each error in the normalized space times std, this test from the
 * denormalized float x̂ (rounded once more, 6e-8 of x̂ ≈ 0.5 on residuals ≈ 0.4: ~1e-7
 * relative; measured 3e-9); Σ‖x − x̄‖² it forms by expanding the square, in double: 1e-6. */
static void test_explained_variance_direct(void **state)
{
    (void)state;
    anamo_model *m = model_new(D_DENSE, 1, 1, "linear 12, relu, linear 6, relu",
                               "linear 12, relu, linear 10, sigmoid", ANAMO_INIT_PYTORCH, 0, 5,
                               BATCH);
    float tx[20 * D_DENSE];
    anamo_dataset train;
    make_set(&train, tx, 20, D_DENSE, 1, 1, "ev train");
    for (int i = 0; i < 20 * D_DENSE; i++) /* a shifted, scaled set: its mean is not the test's */
        tx[i] = 1.5f * tx[i] - 0.2f;
    anamo_err err = {0};
    if (anamo_model_fit_standardize(m, &train, &err) || anamo_model_fit_data_mean(m, &train, &err))
        fail_msg("%s", err.msg);
    const int64_t N = dense_ds.n, D = D_DENSE;
    float *recon = malloc((size_t)(N * D) * sizeof *recon);
    assert_non_null(recon);
    if (anamo_model_reconstruct(m, &dense_ds, 0, N, recon, &err) != ANAMO_OK)
        fail_msg("%s", err.msg);
    double mean[D_DENSE] = {0}, err_sq = 0.0, spread = 0.0;
    for (int64_t b = 0; b < 20; b++)
        for (int64_t j = 0; j < D; j++)
            mean[j] += tx[b * D + j] / 20.0;
    const float *x = dense_ds.data;
    for (int64_t b = 0; b < N; b++)
        for (int64_t j = 0; j < D; j++) {
            double e = (double)x[b * D + j] - recon[b * D + j], s = x[b * D + j] - mean[j];
            err_sq += e * e, spread += s * s;
        }
    const anamo_metrics mt = evaluate_ok(m, &dense_ds, -1);
    assert_int_equal(mt.mean_from_train, 1);
    expect_close("EV direct", 0, mt.explained_variance, 1.0 - err_sq / spread, 0, 1e-6);
    expect_close("MSE direct", 0, mt.mse, err_sq / (double)(N * D), 1e-6, 0);
    free(recon);
    anamo_model_free(m);
}

/* ---- 4. dead-unit resampling ----------------------------------------------------------------- */

#define RS_EVERY 8 /* steps: two epochs of 64/16 */
#define RS_DEAD 3  /* units 0, 1, 2 are killed */
#define RS_UNITS 6
#define RS_HIDDEN 12
#define RS_DEAD_BIAS (-100.0f) /* pre-activations ≈ −100 ± 3: the relu code is 0 everywhere */
#define RS_SEED 8              /* initial weights under which only the killed units are dead */
#define RS_ENCODER_SCALE 0.2   /* resample.c: the new row's norm / the alive rows' mean norm */

typedef struct rs_watch {
    anamo_trainer *t;
    int64_t nonzero_before; /* revived coordinates' m, v entries ≠ 0 one step before */
    int64_t nonzero_after;  /* … right after the resampling step */
    int64_t other_nonzero;  /* other coordinates' entries ≠ 0 right after */
    int64_t other_checked;
    int seen_after;
    int64_t epoch_resampled;
} rs_watch;

/* Adam's m and v entries (state [0, n) and [n, 2n)) of unit j's encoder row and bias and its
 * decoder column: how many are non-zero. */
static int64_t unit_state_nonzero(const anamo_model *m, int64_t j, int64_t *checked)
{
    const block *enc = &m->enc, *dec = &m->dec;
    const layer *cl = &enc->layers[2], *d0 = &dec->layers[0];
    int64_t nz = 0, count = 0;
    for (int half = 0; half < 2; half++) {
        const float *se = enc->opt_state + half * enc->nparams;
        const float *sd = dec->opt_state + half * dec->nparams;
        for (int64_t i = 0; i < cl->in_dim; i++, count++)
            nz += se[(cl->weight - enc->params) + j * cl->in_dim + i] != 0.0f;
        nz += se[(cl->bias - enc->params) + j] != 0.0f, count++;
        for (int64_t i = 0; i < d0->out_dim; i++, count++)
            nz += sd[(d0->weight - dec->params) + i * d0->in_dim + j] != 0.0f;
    }
    if (checked)
        *checked += count;
    return nz;
}

static int rs_on_step(void *ctx, int64_t iteration, double elapsed)
{
    (void)elapsed;
    rs_watch *w = ctx;
    const anamo_model *m = w->t->m;
    if (iteration == RS_EVERY - 1)
        for (int64_t j = 0; j < RS_DEAD; j++)
            w->nonzero_before += unit_state_nonzero(m, j, NULL);
    if (iteration == RS_EVERY) {
        w->seen_after = 1;
        for (int64_t j = 0; j < RS_DEAD; j++)
            w->nonzero_after += unit_state_nonzero(m, j, NULL);
        for (int64_t j = RS_DEAD; j < RS_UNITS; j++)
            w->other_nonzero += unit_state_nonzero(m, j, &w->other_checked);
    }
    return 0;
}

static int rs_on_epoch(void *ctx, const anamo_epoch_row *row)
{
    rs_watch *w = ctx;
    w->epoch_resampled += row->resampled;
    return 0;
}

static anamo_model *rs_model(void)
{
    anamo_model *m = model_new(D_DENSE, 1, 1, "linear 12, relu, linear 6, relu",
                               "linear 12, relu, linear 10, sigmoid", ANAMO_INIT_PYTORCH, 0,
                               RS_SEED, BATCH);
    for (int j = 0; j < RS_DEAD; j++)
        m->enc.layers[2].bias[j] = RS_DEAD_BIAS;
    return m;
}

/* Weight decay makes the dead units' Adam moments non-zero (their loss gradient is 0), so that
 * a missing reset would show. */
static anamo_train_spec rs_spec(int64_t every)
{
    anamo_train_spec s = spec_new((double)RS_EVERY * BATCH / N_SET);
    anamo_phase ph = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 1e-3f, BATCH,
                                         1.0);
    ph.opt.weight_decay = 1e-2f;
    add_phase(&s, ph);
    s.resample_every = every;
    s.resample_window = every;
    return s;
}

/* 1 for a parameter resampling may set: rows and biases 0 … RS_DEAD − 1 of the code layer
 * (which = 0), columns 0 … RS_DEAD − 1 of the decoder's first layer (which = 1). */
static int revived_param(const anamo_model *m, int which, int64_t i)
{
    if (which == 0) {
        const layer *cl = &m->enc.layers[2];
        const int64_t w = cl->weight - m->enc.params, b = cl->bias - m->enc.params;
        return (i >= w && i < w + RS_DEAD * cl->in_dim) || (i >= b && i < b + RS_DEAD);
    }
    const layer *d0 = &m->dec.layers[0];
    const int64_t w = d0->weight - m->dec.params;
    return i >= w && i < w + d0->out_dim * d0->in_dim && (i - w) % d0->in_dim < RS_DEAD;
}

static double row_norm(const layer *l, int64_t j)
{
    double sq = 0.0;
    for (int64_t i = 0; i < l->in_dim; i++)
        sq += (double)l->weight[j * l->in_dim + i] * l->weight[j * l->in_dim + i];
    return sqrt(sq);
}

static void test_resample_dead_units(void **state)
{
    (void)state;
    anamo_model *m = rs_model();
    const anamo_metrics before = evaluate_ok(m, &dense_ds, -1);
    assert_int_equal(before.dead_units, RS_DEAD); /* exactly the killed ones */

    anamo_train_spec s = rs_spec(RS_EVERY);
    anamo_trainer *t = trainer_new(m, &s, &dense_ds);
    rs_watch w = {.t = t};
    anamo_train_hooks hooks = {.ctx = &w, .on_step = rs_on_step, .on_epoch = rs_on_epoch};
    run_ok(t, &hooks, "resample");
    assert_int_equal(anamo_trainer_iterations(t), RS_EVERY); /* the last step resampled */
    assert_true(w.seen_after);

    /* the units whose weights differ from a twin run without resampling: exactly the dead */
    anamo_model *twin = rs_model();
    anamo_train_spec s0 = rs_spec(0);
    anamo_trainer *t0 = trainer_new(twin, &s0, &dense_ds);
    run_ok(t0, NULL, "no resample");
    const layer *cl = &m->enc.layers[2], *cl0 = &twin->enc.layers[2];
    const layer *d0 = &m->dec.layers[0], *d00 = &twin->dec.layers[0];
    int64_t changed = 0;
    for (int64_t j = 0; j < RS_UNITS; j++) {
        int differs = cl->bias[j] != cl0->bias[j];
        for (int64_t i = 0; i < cl->in_dim; i++)
            differs |= cl->weight[j * cl->in_dim + i] != cl0->weight[j * cl->in_dim + i];
        for (int64_t i = 0; i < d0->out_dim; i++)
            differs |= d0->weight[i * d0->in_dim + j] != d00->weight[i * d0->in_dim + j];
        if (differs != (j < RS_DEAD))
            fail_msg("unit %lld: %s by resampling", (long long)j,
                     differs ? "changed (it was alive)" : "left as it was (it was dead)");
        changed += differs;
    }
    assert_int_equal(anamo_trainer_resampled(t), changed);
    assert_int_equal(w.epoch_resampled, changed);
    /* and nothing else moved: every other weight of both blocks as in the twin */
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc, *b0 = k ? &twin->dec : &twin->enc;
        for (int64_t i = 0; i < b->nparams; i++)
            if (!revived_param(m, k, i) && b->params[i] != b0->params[i])
                fail_msg("%s parameter %lld changed by resampling", b->name, (long long)i);
    }

    /* the new weights as resample.c's header says: bias 0, row norm 0.2 × the alive rows' mean,
     * column norm = the alive columns' mean (both measured at the resampling, after the step;
     * the alive ones have not moved since). Double norms of floats rescaled once: 1e-5. */
    double alive_rows = 0.0, alive_cols = 0.0, cols[MAX_GROUPS];
    first_layer_norms(&m->dec, m->dec.params, cols);
    for (int64_t j = RS_DEAD; j < RS_UNITS; j++)
        alive_rows += row_norm(cl, j) / (RS_UNITS - RS_DEAD),
            alive_cols += cols[j] / (RS_UNITS - RS_DEAD);
    for (int64_t j = 0; j < RS_DEAD; j++) {
        assert_true(cl->bias[j] == 0.0f);
        expect_close("revived row norm", j, row_norm(cl, j), RS_ENCODER_SCALE * alive_rows, 1e-5,
                     0);
        expect_close("revived column norm", j, cols[j], alive_cols, 1e-5, 0);
    }

    /* Adam's state of the revived coordinates restarted; the others' kept */
    if (w.nonzero_before == 0)
        fail_msg("the dead units' Adam state was 0 before resampling: the reset is not tested");
    if (w.nonzero_after != 0)
        fail_msg("%lld of the revived units' Adam m, v entries are not 0 after resampling",
                 (long long)w.nonzero_after);
    if (w.other_nonzero < w.other_checked / 2)
        fail_msg("only %lld of %lld alive-unit Adam entries are non-zero: their state was reset",
                 (long long)w.other_nonzero, (long long)w.other_checked);

    const anamo_metrics after = evaluate_ok(m, &dense_ds, -1);
    printf("resampling: dead units %lld before, %lld after; %lld resampled\n",
           (long long)before.dead_units, (long long)after.dead_units,
           (long long)anamo_trainer_resampled(t));
    assert_true(after.dead_units < before.dead_units);
    anamo_trainer_free(t);
    anamo_trainer_free(t0);
    anamo_model_free(m);
    anamo_model_free(twin);
}

/* ---- 5. batch norm under a frozen encoder ---------------------------------------------------- */

#define BN_N 40
#define BN_BATCH 8

static anamo_model *bn_run(int cache_codes, const anamo_dataset *ds)
{
    anamo_model *m = model_new(D_DENSE, 1, 1, "linear 8, batchnorm, relu, linear 4, relu",
                               "linear 8, relu, linear 10, sigmoid", ANAMO_INIT_PYTORCH, 0, 31,
                               BN_BATCH);
    anamo_train_spec s = spec_new(3.0); /* decoder, encoder, decoder */
    add_phase(&s, anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_SGD, 1e-1f,
                                      BN_BATCH, 1.0));
    add_phase(&s, anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, ANAMO_OPT_SGD, 1e-1f,
                                      BN_BATCH, 1.0));
    s.cache_codes = cache_codes;
    anamo_trainer *t = trainer_new(m, &s, ds);
    run_ok(t, NULL, cache_codes ? "cache_codes 1" : "cache_codes 0");
    anamo_trainer_free(t);
    return m;
}

/* Cached codes (computed once, in index order) and recomputed ones (per shuffled batch) agree
 * to float rounding, not bit for bit: dnnl_sgemm's result for a row depends on the rows around
 * it (bench_sgemm's row_depends_on_batch). SGD, not Adam, whose step of ±lr on a gradient
 * near 0 turns a rounding difference into one of lr. Measured: the two runs differ by at most
 * 7e-9 (decoder weights; encoder weights and running statistics equal); leaving the frozen
 * encoder's batch norm in training mode moves the decoder's weights by 9e-4 and the running
 * statistics by 0.4. */
#define BN_RTOL 1e-5
#define BN_ATOL 1e-6

static void test_batchnorm_cache_matches(void **state)
{
    (void)state;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    float x[BN_N * D_DENSE];
    anamo_dataset ds;
    make_set(&ds, x, BN_N, D_DENSE, 1, 1, "bn set");
    anamo_model *a = bn_run(1, &ds), *b = bn_run(0, &ds);
    omp_set_num_threads(threads);
    assert_int_equal(a->enc.nbuffer_floats, b->enc.nbuffer_floats);
    for (int64_t i = 0; i < a->enc.nparams; i++)
        expect_close("encoder params", i, a->enc.params[i], b->enc.params[i], BN_RTOL, BN_ATOL);
    for (int64_t i = 0; i < a->dec.nparams; i++)
        expect_close("decoder params", i, a->dec.params[i], b->dec.params[i], BN_RTOL, BN_ATOL);
    for (int64_t i = 0; i < a->enc.nbuffer_floats; i++)
        expect_close("running statistics", i, a->enc.buffers[i], b->enc.buffers[i], BN_RTOL,
                     BN_ATOL);
    assert_memory_equal(a->enc.counts, b->enc.counts, sizeof a->enc.counts);
    /* the comparison had something to compare: the running statistics moved, and only in the
     * encoder phase (5 steps of 40/8), not in the decoder phases around it */
    const layer *bn = &a->enc.layers[1];
    assert_int_equal(bn->kind, LAYER_BATCHNORM);
    assert_int_equal(*bn->num_batches_tracked, BN_N / BN_BATCH);
    int moved = 0;
    for (int i = 0; i < bn->out_c; i++)
        moved += bn->running_mean[i] != 0.0f && bn->running_var[i] != 1.0f;
    assert_true(moved > 0);
    anamo_model_free(a);
    anamo_model_free(b);
}

/* ---- 6. bad input through the CLI ------------------------------------------------------------ */

#define CLI_TIMEOUT_S 60.0

/* Runs `anamo train CONFIG -o DIR/rejected/run [--set S]...`: exit 2, nothing on stdout, one line
 * on stderr holding every fragment, no run directory (nor its parent). */
static void expect_config_error(const temp_dir_fixture *fx, const char *bin, const char *config,
                                const char *const *sets, const char *const *fragments)
{
    char out[TEST_UTIL_PATH_CAP], parent[TEST_UTIL_PATH_CAP];
    join_path(parent, sizeof parent, fx->dir, "rejected");
    join_path(out, sizeof out, parent, "run");
    const char *args[TEST_CLI_MAX_ARGS + 1] = {"train", config, "-o", out};
    int argc = 4;
    for (int i = 0; sets[i]; i++) {
        assert_true(argc + 2 <= TEST_CLI_MAX_ARGS);
        args[argc++] = "--set";
        args[argc++] = sets[i];
    }
    args[argc] = NULL;
    cli_result r = run_cli(bin, fx->dir, args, CLI_TIMEOUT_S);
    char what[2048] = "anamo train";
    for (int i = 0; sets[i]; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), " --set '%s'", sets[i]);
    if (r.code != 2)
        fail_msg("%s: exit %d (signal %d), expected 2; stderr:\n%s", what, r.code, r.signal, r.err);
    const char *nl = strchr(r.err, '\n');
    if (!nl || nl[1])
        fail_msg("%s: stderr is not exactly one line:\n%s", what, r.err);
    if (r.out[0])
        fail_msg("%s: unexpected stdout:\n%s", what, r.out);
    for (int i = 0; fragments[i]; i++)
        if (!strstr(r.err, fragments[i]))
            fail_msg("%s: message does not mention '%s': %s", what, fragments[i], r.err);
    if (exists(out) || exists(parent))
        fail_msg("%s: %s was created", what, exists(out) ? out : parent);
    cli_free(&r);
}

#define S(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static void test_cli_bad_scale_settings(void **state)
{
    temp_dir_fixture *fx = *state;
    char bin[TEST_UTIL_PATH_CAP], config[TEST_UTIL_PATH_CAP], in_file[TEST_UTIL_PATH_CAP];
    if (find_anamo_bin(bin, sizeof bin, "test_scale") != 0)
        fail_msg("no anamo executable");
    join_path(config, sizeof config, fx->dir, "base.ini");
    const char *base = "; a 100-16-8-16-100 autoencoder on 10 × 10 'halves' images\n"
                       "[data]\ntrain = halves:200:1\ntest = halves:50:2\n\n"
                       "[model]\nencoder = linear 16, relu, linear 8, relu\n"
                       "decoder = linear 16, relu, linear 100, sigmoid\n\n"
                       "[train]\nepochs = 1\nbatch = 20\n";
    write_bytes(config, base, strlen(base));
    /* an unknown value, in a --set and in the file */
    expect_config_error(fx, bin, config, S("train.decoder_norm=unit"),
                        S("decoder_norm", "unit", "none|sphere|ball"));
    join_path(in_file, sizeof in_file, fx->dir, "unit.ini");
    char text[1024];
    snprintf(text, sizeof text,
             "%s"
             "decoder_norm = unit\n",
             base);
    write_bytes(in_file, text, strlen(text));
    expect_config_error(fx, bin, in_file, NONE, S("decoder_norm", "unit", "none|sphere|ball"));
    /* a window of 0 steps */
    expect_config_error(fx, bin, config, S("train.resample_every=10", "train.resample_window=0"),
                        S("resample_window", ">= 1"));
    /* a constraint the decoder's first layer cannot carry */
    expect_config_error(fx, bin, config,
                        S("train.decoder_norm=sphere", "model.decoder=relu, linear 100, sigmoid"),
                        S("decoder_norm", "linear or convtranspose2d"));
    expect_config_error(fx, bin, config,
                        S("train.decoder_norm=ball",
                          "model.decoder=batchnorm, linear 100, sigmoid"),
                        S("decoder_norm", "linear or convtranspose2d", "batchnorm"));
    /* the same for the decoder-weighted penalty, and resampling without a linear code layer */
    expect_config_error(fx, bin, config,
                        S("loss.penalty=decoder_l1",
                          "model.decoder=batchnorm, linear 100, sigmoid"),
                        S("penalty", "decoder_l1", "linear or convtranspose2d"));
    expect_config_error(fx, bin, config,
                        S("train.resample_every=10",
                          "model.encoder=unflatten 1 10 10, conv2d 4 k4 s2 p1, relu",
                          "model.decoder=convtranspose2d 1 k4 s2 p1, sigmoid"),
                        S("resample_every", "linear"));
}

static int cli_setup(void **state) { return temp_dir_setup(state, "/tmp/anamo_test_scale_XXXXXX"); }

int main(void)
{
    make_sets();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tangent_and_project_hand),
        cmocka_unit_test(test_unit_norm_every_step),
        cmocka_unit_test(test_unit_norm_budget_ends_mid_phase),
        cmocka_unit_test(test_penalty_gradients),
        cmocka_unit_test(test_joint_step_gradient),
        cmocka_unit_test(test_sphere_step_is_tangent),
        cmocka_unit_test(test_sphere_adam_moments_tangent),
        cmocka_unit_test(test_weighted_soft_threshold),
        cmocka_unit_test(test_freecodes_weighted_threshold),
        cmocka_unit_test(test_measure_invariance),
        cmocka_unit_test(test_explained_variance_hand),
        cmocka_unit_test(test_explained_variance_direct),
        cmocka_unit_test(test_resample_dead_units),
        cmocka_unit_test(test_batchnorm_cache_matches),
        cmocka_unit_test_setup_teardown(test_cli_bad_scale_settings, cli_setup, temp_dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
