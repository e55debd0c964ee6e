/* test_optim_torch.c — anamo's optimizers are the torch.optim optimizers they are named after,
 * from the config's name and defaults to the step. The truth is PyTorch itself: trajectories
 * recorded from torch.optim 1.13 (tests/fixtures/torch_optim.txt, written by
 * scripts/torch-optim-fixtures.py), not formulas written here.
 *
 *   1. Every case of the fixture (sgd, sgd + weight decay, momentum and nesterov under StepLR,
 *      adagrad, rmsprop and adam at torch's defaults, adam + weight decay): the case's [joint]
 *      keys — `optimizer = adagrad` alone for the cases at the defaults — resolved by `anamo
 *      train` (its run directory's config.ini, every key with its effective value), made into
 *      a phase as src/config/settings.c does and compiled by phase_compile; the learning
 *      rate follows anamo's schedule (schedule_epoch_end at each epoch's end); every step is
 *      optim_step on torch's recorded gradient (the trajectory is replayed open-loop, so a
 *      difference cannot feed back into the gradients); the parameters after every step
 *      against torch's.
 *   2. NAM with Adam: steps.c keeps each block's Adam (m, v, and the step count of the bias
 *      correction) from one of its phases to the next, so the torch equivalent is one
 *      torch.optim.Adam per block made once; the replay keeps a state per block, a replay with
 *      a fresh Adam per phase does not match (the case tells the two apart), and a NAM run of
 *      the trainer counts its Adam steps across phases while an accelerated method's restart.
 *   3. Defaults: a config naming only the optimizer resolves to PyTorch's lr and eps (Adam 1e-3
 *      and 1e-8, Adagrad 1e-2 and 1e-10, RMSprop 1e-2 and 1e-8; anamo's 1e-3 where
 *      torch.optim.SGD has none), the same values as optim_default_lr and optim_defaults, and
 *      anamo_phase_default gives each optimizer its own eps.
 *   4. A checkpoint whose optimizer state is the accelerated method's (what a run configured
 *      `nesterov` wrote before that name went to torch's Nesterov momentum) does not resume a
 *      run of `nesterov`, with a message saying what to do; a state of the wrong size is refused.
 *
 * Tolerance: |θ − θ_torch| ≤ TORCH_RTOL·|θ_torch| + TORCH_ATOL after every step.
 *   TORCH_RTOL 2e-6 — both sides compute in float32 (spacing 6e-8 relative) in a different
 *       order (torch: lr/bias_correction1 first, anamo: m/bias_correction1; torch's kernels may
 *       fuse a multiply-add), so each step rounds a few ulps differently, and 8 steps add up to
 *       ≲ 1e-6 of a parameter.
 *   TORCH_ATOL 5e-7 — the hyperparameters are float32 here and Python doubles in torch, and
 *       RMSprop's (1 − α) amplifies that rounding: 1 − 0.99f is 9.3e-7 (relative) away from
 *       torch's (float)(1 − 0.99), so its steps, 0.04–0.1 here (lr/√(1 − α) at first), are off
 *       by ~5e-7 relative each, ~3e-7 in all on θ1, which RMSprop drives to −0.14 where
 *       2e-6 relative is 2.9e-7. (Adam's bias correction cancels its (1 − β) rounding to first
 *       order.) 5e-7 is ~4 ulps of an O(1) parameter.
 *   Measured (printed by the test): at most 0.32 of the tolerance (RMSprop; 3.0e-7 absolute),
 *   the others ≤ 0.06. The mistakes looked for move a parameter by far more (measured on the
 *   code before the fix): the seeds' heavy ball under the StepLR change 0.19 relative at the
 *   first step after it, AdaGrad's eps 1e-8 for 1e-10 3e-2 (1e-4 at step 1), an lr of 1e-3 for
 *   1e-2 1e-2 at step 1, a fresh Adam per NAM phase 5e-4. */
#include "test_util.h"

#include "optim/optim.h"
#include "train/trainer.h"

#define TORCH_RTOL 2e-6
#define TORCH_ATOL 5e-7
#define LR_RTOL 1e-6 /* the learning rate: torch's Python double against anamo's float */
#define CLI_TIMEOUT_S 60.0

#define TORCH_MAX_N 8
#define TORCH_MAX_STEPS 16
#define TORCH_MAX_CASES 16
#define TORCH_TEXT_MAX 512

typedef struct torch_step {
    int block;                /* the block stepped: 0, or 1 (the decoder of a NAM case) */
    float lr;                 /* the learning rate torch used */
    float grad[TORCH_MAX_N];  /* torch's gradient of that block */
    float theta[TORCH_MAX_N]; /* every parameter after the step */
} torch_step;

typedef struct torch_case {
    char name[64];
    char torch[TORCH_TEXT_MAX]; /* what torch ran, for messages */
    char keys[TORCH_TEXT_MAX];  /* anamo's [joint] keys, "k=v k=v" */
    int steps_per_epoch;
    int nblocks;
    int64_t off[2], len[2], n;
    float theta0[TORCH_MAX_N];
    int nsteps;
    torch_step step[TORCH_MAX_STEPS];
} torch_case;

static torch_case cases[TORCH_MAX_CASES];
static int ncases;

/* ---- reading the fixture -------------------------------------------------------------------- */

/* count floats of s into out; s advances past them. */
static void read_floats(const char **s, float *out, int64_t count, const char *what, int line)
{
    for (int64_t i = 0; i < count; i++) {
        char *end;
        out[i] = strtof(*s, &end);
        if (end == *s)
            fail_msg("torch_optim.txt:%d: %s: expected %lld numbers", line, what, (long long)count);
        *s = end;
    }
}

static void parse_line(torch_case *c, const char *line, int lineno)
{
    const char *rest;
    if (!strncmp(line, "torch ", 6)) {
        snprintf(c->torch, sizeof c->torch, "%s", line + 6);
    } else if (!strncmp(line, "keys ", 5)) {
        snprintf(c->keys, sizeof c->keys, "%s", line + 5);
    } else if (sscanf(line, "steps_per_epoch %d", &c->steps_per_epoch) == 1) {
    } else if (!strncmp(line, "blocks ", 7)) {
        long long a = 0, b = 0;
        c->nblocks = sscanf(line + 7, "%lld %lld", &a, &b);
        c->len[0] = a, c->len[1] = c->nblocks == 2 ? b : 0;
        c->off[0] = 0, c->off[1] = a;
        c->n = c->len[0] + c->len[1];
        assert_true(c->nblocks >= 1 && c->n > 0 && c->n <= TORCH_MAX_N);
    } else if (!strncmp(line, "theta0 ", 7)) {
        rest = line + 7;
        read_floats(&rest, c->theta0, c->n, "theta0", lineno);
    } else if (!strncmp(line, "step ", 5)) {
        assert_true(c->nsteps < TORCH_MAX_STEPS);
        torch_step *s = &c->step[c->nsteps++];
        char *end;
        s->block = (int)strtol(line + 5, &end, 10);
        assert_true(s->block >= 0 && s->block < c->nblocks);
        rest = end;
        read_floats(&rest, &s->lr, 1, "lr", lineno);
        read_floats(&rest, s->grad, c->len[s->block], "grad", lineno);
        read_floats(&rest, s->theta, c->n, "theta", lineno);
    } else {
        fail_msg("torch_optim.txt:%d: cannot read '%.60s'", lineno, line);
    }
}

static void load_fixture(void)
{
    const char *src = getenv("ANAMO_SOURCE_DIR");
    char path[TEST_UTIL_PATH_CAP];
    snprintf(path, sizeof path, "%s/tests/fixtures/torch_optim.txt", src ? src : "../..");
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s: cannot read the fixture (set ANAMO_SOURCE_DIR)", path);
    torch_case *c = NULL;
    int lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        if (line[0] == '#' || !line[0])
            continue;
        if (!strncmp(line, "case ", 5)) {
            assert_true(ncases < TORCH_MAX_CASES);
            c = &cases[ncases++];
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "%s", line + 5);
        } else if (!strcmp(line, "end")) {
            assert_non_null(c);
            assert_true(c->nsteps > 0 && c->steps_per_epoch > 0 && c->keys[0]);
            c = NULL;
        } else {
            if (!c)
                fail_msg("torch_optim.txt:%d: outside a case", lineno);
            parse_line(c, line, lineno);
        }
    }
    free(text);
    assert_true(ncases >= 9);
}

/* ---- configs resolved by the CLI ------------------------------------------------------------ */

typedef struct resolved {
    char *text; /* DIR/config.ini of the run */
} resolved;

/* The value of key in [section] of a resolved config (an INI file), into out; 0 if absent. */
static int resolved_get(const resolved *r, const char *section, const char *key, char *out,
                        size_t cap)
{
    char header[128];
    snprintf(header, sizeof header, "[%s]\n", section);
    const char *p = strstr(r->text, header);
    if (!p)
        return 0;
    p += strlen(header);
    const size_t klen = strlen(key);
    while (*p && *p != '[') {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > klen + 3 && !strncmp(p, key, klen) && !strncmp(p + klen, " = ", 3)) {
            snprintf(out, cap, "%.*s", (int)(len - klen - 3), p + klen + 3);
            return 1;
        }
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

static double resolved_num(const resolved *r, const char *section, const char *key)
{
    char v[128];
    if (!resolved_get(r, section, key, v, sizeof v))
        fail_msg("the resolved config has no [%s] %s:\n%s", section, key, r->text);
    return strtod(v, NULL);
}

/* `anamo train` on a 2-step run on 16 synthetic images whose config ends with tail: returns
 * the resolved config it wrote. */
static resolved resolve_config(const temp_dir_fixture *fx, const char *tail)
{
    static int runs;
    char bin[TEST_UTIL_PATH_CAP], config[TEST_UTIL_PATH_CAP], out[TEST_UTIL_PATH_CAP];
    if (find_anamo_bin(bin, sizeof bin, "test_optim_torch") != 0)
        fail_msg("no anamo executable");
    char text[2048];
    snprintf(text, sizeof text,
             "[data]\ntrain = halves:16:1\ntest =\n\n"
             "[model]\nencoder = linear 4\ndecoder = linear 100, sigmoid\n\n"
             "[train]\nepochs = 1\nbatch = 8\ncheckpoint_every = 0\n"
             "jacobian_samples = 0\neval_every_epoch = false\n\n%s",
             tail);
    snprintf(config, sizeof config, "%s/config-%d.ini", fx->dir, runs);
    snprintf(out, sizeof out, "%s/run-%d", fx->dir, runs++);
    write_bytes(config, text, strlen(text));
    cli_result r = run_cli(bin, fx->dir, (const char *const[]){"train", config, "-o", out, NULL},
                           CLI_TIMEOUT_S);
    if (r.code != 0)
        fail_msg("anamo train with\n%s\nexit %d, stderr:\n%s", tail, r.code, r.err);
    cli_free(&r);
    char path[TEST_UTIL_PATH_CAP + 16];
    snprintf(path, sizeof path, "%s/config.ini", out);
    resolved res = {.text = read_text(path, NULL)};
    assert_non_null(res.text);
    return res;
}

/* The same with [joint] holding keys ("k=v k=v"). */
static resolved resolve_joint(const temp_dir_fixture *fx, const char *keys)
{
    char tail[1024] = "[joint]\n";
    for (const char *k = keys; *k;) { /* "a=b c=d" → "a = b\nc = d\n" */
        size_t n = strcspn(k, " ");
        const char *eq = memchr(k, '=', n);
        assert_non_null(eq);
        snprintf(tail + strlen(tail), sizeof tail - strlen(tail), "%.*s = %.*s\n", (int)(eq - k), k,
                 (int)(n - (size_t)(eq - k) - 1), eq + 1);
        k += n;
        k += strspn(k, " ");
    }
    return resolve_config(fx, tail);
}

/* The phase a run of this resolved config trains with, as src/config/settings.c fills it and
 * phase_compile compiles it. */
static phase_rt compile_resolved(const resolved *r, float *base_lr)
{
    char optimizer[ANAMO_NAME_MAX], schedule[ANAMO_NAME_MAX];
    assert_true(resolved_get(r, "joint", "optimizer", optimizer, sizeof optimizer));
    assert_true(resolved_get(r, "joint", "schedule", schedule, sizeof schedule));
    anamo_phase ph = anamo_phase_default("joint", ANAMO_PHASE_JOINT,
                                         (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                           optimizer),
                                         (float)resolved_num(r, "joint", "lr"), 8, 1.0);
    ph.opt.beta1 = (float)resolved_num(r, "joint", "beta1");
    ph.opt.beta2 = (float)resolved_num(r, "joint", "beta2");
    ph.opt.eps = (float)resolved_num(r, "joint", "eps");
    ph.opt.weight_decay = (float)resolved_num(r, "joint", "weight_decay");
    ph.opt.momentum = (float)resolved_num(r, "joint", "momentum");
    ph.opt.alpha = (float)resolved_num(r, "joint", "alpha");
    ph.schedule.kind = (anamo_schedule)anamo_enum_parse(ANAMO_ENUM_SCHEDULE, schedule);
    ph.schedule.step_size = (int)resolved_num(r, "joint", "step_size");
    ph.schedule.gamma = (float)resolved_num(r, "joint", "gamma");
    phase_rt rt;
    anamo_err err = {0};
    if (phase_compile(&ph, &rt, &err) != ANAMO_OK)
        fail_msg("phase_compile: %s", err.msg);
    *base_lr = ph.opt.lr;
    return rt;
}

/* ---- 1 and 2. replaying the trajectories ---------------------------------------------------- */

typedef struct replay_result {
    double worst;        /* max over steps and parameters of |Δθ| / (RTOL·|θ_torch| + ATOL) */
    double max_rel;      /* max |Δθ| / |θ_torch| */
    double max_abs;      /* max |Δθ| */
    int bad_step, bad_i; /* the first parameter past the tolerance (bad_step −1: none) */
    double got, want;
    int lr_step; /* the first step whose lr is not torch's (−1: none) */
    float lr_got, lr_want;
} replay_result;

/* Replays c through optim_step with rt's settings, the learning rate from anamo's schedule.
 * fresh_per_phase: each block's state starts again whenever its phase starts (a fresh torch
 * optimizer per phase), instead of carrying on as steps.c's use_optimizer has it. */
static replay_result replay(const torch_case *c, const phase_rt *rt, float base_lr,
                            int fresh_per_phase)
{
    float theta[TORCH_MAX_N], state[2][2 * TORCH_MAX_N + 1];
    int64_t t[2] = {0, 0};
    memcpy(theta, c->theta0, sizeof theta);
    memset(state, 0, sizeof state);
    schedule_state sched;
    schedule_init(&sched, base_lr);
    replay_result res = {.bad_step = -1, .lr_step = -1};
    for (int s = 0; s < c->nsteps; s++) {
        const torch_step *st = &c->step[s];
        const int b = st->block;
        if (fresh_per_phase && s > 0 && c->step[s - 1].block != b)
            t[b] = 0, memset(state[b], 0, sizeof state[b]);
        optim_cfg cfg = rt->opt;
        cfg.lr = sched.lr;
        if (res.lr_step < 0 && !(fabsf(cfg.lr - st->lr) <= LR_RTOL * st->lr))
            res.lr_step = s, res.lr_got = cfg.lr, res.lr_want = st->lr;
        optim_step(&cfg, theta + c->off[b], st->grad, state[b], c->len[b], ++t[b]);
        for (int64_t i = 0; i < c->n; i++) {
            const double want = st->theta[i], diff = fabs((double)theta[i] - want);
            const double ratio = diff / (TORCH_RTOL * fabs(want) + TORCH_ATOL);
            res.max_rel = fmax(res.max_rel, diff / fabs(want));
            res.max_abs = fmax(res.max_abs, diff);
            res.worst = fmax(res.worst, ratio);
            if (ratio > 1.0 && res.bad_step < 0)
                res.bad_step = s, res.bad_i = (int)i, res.got = theta[i], res.want = want;
        }
        if ((s + 1) % c->steps_per_epoch == 0)
            schedule_epoch_end(&rt->sched, &sched, base_lr, 0.0);
    }
    return res;
}

/* Every case through the config, the phase and optim_step; all are run and reported before the
 * test fails. */
static void test_torch_trajectories(void **state)
{
    const temp_dir_fixture *fx = *state;
    int failed = 0;
    for (int k = 0; k < ncases; k++) {
        const torch_case *c = &cases[k];
        resolved r = resolve_joint(fx, c->keys);
        float base_lr;
        const phase_rt rt = compile_resolved(&r, &base_lr);
        const replay_result res = replay(c, &rt, base_lr, 0);
        print_message("%-18s max |Δθ| %.2e, max |Δθ|/|θ| %.2e: %.2f of the tolerance  [%s]\n",
                      c->name, res.max_abs, res.max_rel, res.worst, c->keys);
        if (res.lr_step >= 0)
            print_error("%s: step %d: lr %g where torch used %g (%s; anamo: [joint] %s)\n", c->name,
                        res.lr_step + 1, res.lr_got, res.lr_want, c->torch, c->keys);
        if (res.bad_step >= 0)
            print_error("%s: step %d: θ[%d] = %.9g where torch has %.9g (relative %.2e; eps %g, "
                        "lr %g; torch: %s)\n",
                        c->name, res.bad_step + 1, res.bad_i, res.got, res.want,
                        fabs(res.got - res.want) / fabs(res.want), rt.opt.eps, base_lr, c->torch);
        failed += res.lr_step >= 0 || res.bad_step >= 0;
        free(r.text);
    }
    if (failed)
        fail_msg("%d of %d torch.optim cases differ", failed, ncases);
}

/* The NAM case once more: with a fresh Adam per phase it does not match, so the case tells
 * "kept across phases" from "restarted per phase". */
static void test_nam_adam_state_carries(void **state)
{
    const temp_dir_fixture *fx = *state;
    const torch_case *c = NULL;
    for (int k = 0; k < ncases; k++)
        if (!strcmp(cases[k].name, "nam_adam"))
            c = &cases[k];
    assert_non_null(c);
    assert_int_equal(c->nblocks, 2);
    resolved r = resolve_joint(fx, c->keys);
    float base_lr;
    const phase_rt rt = compile_resolved(&r, &base_lr);
    free(r.text);
    assert_int_equal(rt.opt.kind, OPTIM_ADAM);
    const replay_result kept = replay(c, &rt, base_lr, 0), fresh = replay(c, &rt, base_lr, 1);
    if (kept.bad_step >= 0)
        fail_msg("nam_adam with each block's Adam kept: step %d θ[%d] %.9g, torch %.9g",
                 kept.bad_step + 1, kept.bad_i, kept.got, kept.want);
    print_message("nam_adam with a fresh Adam per phase: max |Δθ|/|θ| %.2e\n", fresh.max_rel);
    if (fresh.max_rel < 50 * TORCH_RTOL)
        fail_msg("nam_adam replayed with a fresh Adam per phase is within %.2e of torch: the "
                 "case does not tell the two apart",
                 fresh.max_rel);
}

/* steps.c's side of it: a NAM run of the trainer, phases decoder, encoder, decoder, encoder of
 * 2 steps each, counts each block's Adam steps across its phases (4 each: the bias correction
 * goes on with t = 3, 4 in the block's second phase, as torch's one Adam per block), while the
 * accelerated method restarts at every phase entry (its count is that of the last phase, 2). */
static void nam_step_counts(const char *optimizer, int64_t *enc_steps, int64_t *dec_steps)
{
    anamo_dataset ds = {0};
    anamo_err err = {0};
    if (anamo_dataset_open("halves:16:1", NULL, &ds, &err) != ANAMO_OK)
        fail_msg("halves:16:1: %s", err.msg);
    anamo_model_spec ms = {.in_c = ds.c,
                           .in_h = ds.h,
                           .in_w = ds.w,
                           .encoder = "linear 4",
                           .decoder = "linear 100, sigmoid",
                           .seed = 1,
                           .max_batch = 8};
    anamo_model *m = NULL;
    if (anamo_model_create(&ms, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    anamo_train_spec spec = {.loss = ANAMO_LOSS_MSE,
                             .epochs = 4.0,
                             .seed = 2,
                             .log_every = 100,
                             .jacobian_samples = -1,
                             .nphases = 2};
    spec.phases[0] = anamo_phase_default("decoder", ANAMO_PHASE_DECODER,
                                         (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                           optimizer),
                                         1e-2f, 8, 1.0);
    spec.phases[1] = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER,
                                         (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                           optimizer),
                                         1e-2f, 8, 1.0);
    spec.phases[0].iterations = spec.phases[1].iterations = 2;
    anamo_trainer *t = NULL;
    if (anamo_trainer_create(m, &spec, &ds, NULL, &t, &err) != ANAMO_OK ||
        anamo_trainer_run(t, NULL, &err) != ANAMO_OK)
        fail_msg("NAM with %s: %s", optimizer, err.msg);
    assert_int_equal(t->p.iteration, 8);
    *enc_steps = t->p.steps[0];
    *dec_steps = t->p.steps[1];
    anamo_trainer_free(t);
    anamo_model_free(m);
    anamo_dataset_free(&ds);
}

static void test_nam_keeps_adam_across_phases(void **state)
{
    (void)state;
    int64_t enc, dec;
    nam_step_counts("adam", &enc, &dec);
    assert_int_equal(enc, 4);
    assert_int_equal(dec, 4);
    nam_step_counts("accelerated", &enc, &dec);
    assert_int_equal(enc, 2);
    assert_int_equal(dec, 2);
}

/* ---- 3. defaults --------------------------------------------------------------------------- */

/* torch.optim 1.13's defaults (lr None: torch.optim.SGD requires one; anamo takes 1e-3). */
static const struct {
    const char *optimizer;
    double lr, eps;
} TORCH_DEFAULTS[] = {
    {"adam", 1e-3, 1e-8},        {"adagrad", 1e-2, 1e-10}, {"rmsprop", 1e-2, 1e-8},
    {"sgd", 1e-3, 1e-8},         {"momentum", 1e-3, 1e-8}, {"nesterov", 1e-3, 1e-8},
    {"accelerated", 1e-3, 1e-8}, {"fista", 1e-3, 1e-8},
};
#define N_DEFAULTS (int)(sizeof TORCH_DEFAULTS / sizeof TORCH_DEFAULTS[0])

static void test_config_defaults_are_torch(void **state)
{
    const temp_dir_fixture *fx = *state;
    for (int k = 0; k < N_DEFAULTS; k++) {
        const char *name = TORCH_DEFAULTS[k].optimizer;
        char keys[64];
        snprintf(keys, sizeof keys, "optimizer=%s", name);
        resolved r = resolve_joint(fx, keys);
        const double lr = resolved_num(&r, "joint", "lr"), eps = resolved_num(&r, "joint", "eps");
        free(r.text);
        if (lr != TORCH_DEFAULTS[k].lr || eps != TORCH_DEFAULTS[k].eps)
            fail_msg("[joint] optimizer = %s resolves to lr %g, eps %g; PyTorch's: %g, %g", name,
                     lr, eps, TORCH_DEFAULTS[k].lr, TORCH_DEFAULTS[k].eps);
        /* the library's own defaults agree with the config's */
        const int kind = optim_parse(name);
        assert_true(kind >= 0);
        assert_true(optim_default_lr((optim_kind)kind) == (float)lr);
        assert_true(optim_defaults((optim_kind)kind, 0.5f).eps == (float)eps);
        const anamo_phase ph = anamo_phase_default(
            "p", ANAMO_PHASE_JOINT, (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, name),
            0.5f, 8, 1.0);
        if (ph.opt.eps != (float)eps)
            fail_msg("anamo_phase_default(%s) has eps %g; PyTorch's: %g", name, ph.opt.eps, eps);
    }
    /* a [phase NAME] takes them from its own optimizer, whatever [joint]'s */
    resolved r = resolve_config(fx, "[train]\nscheme = nam\n\n[joint]\noptimizer = rmsprop\n\n"
                                    "[nam]\nphases = d, e\n\n"
                                    "[phase d]\nblock = decoder\noptimizer = adagrad\n\n"
                                    "[phase e]\nblock = encoder\noptimizer = adam\n");
    assert_true(resolved_num(&r, "phase d", "lr") == 1e-2);
    assert_true(resolved_num(&r, "phase d", "eps") == 1e-10);
    assert_true(resolved_num(&r, "phase e", "lr") == 1e-3);
    assert_true(resolved_num(&r, "phase e", "eps") == 1e-8);
    free(r.text);
}

/* ---- 4. checkpoints of the accelerated method ---------------------------------------------- */

typedef struct ckpt_run {
    anamo_dataset ds;
    anamo_model *m;
    anamo_trainer *t;
} ckpt_run;

/* A joint run of one epoch with optimizer (trained when train is set). */
static void ckpt_run_new(ckpt_run *r, const char *optimizer, int train)
{
    anamo_err err = {0};
    memset(r, 0, sizeof *r);
    if (anamo_dataset_open("halves:16:1", NULL, &r->ds, &err) != ANAMO_OK)
        fail_msg("halves:16:1: %s", err.msg);
    anamo_model_spec ms = {.in_c = r->ds.c,
                           .in_h = r->ds.h,
                           .in_w = r->ds.w,
                           .encoder = "linear 4",
                           .decoder = "linear 100, sigmoid",
                           .seed = 1,
                           .max_batch = 8};
    if (anamo_model_create(&ms, &r->m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    anamo_train_spec spec = {.loss = ANAMO_LOSS_MSE,
                             .epochs = 1.0,
                             .seed = 2,
                             .log_every = 100,
                             .jacobian_samples = -1,
                             .nphases = 1};
    spec.phases[0] = anamo_phase_default("joint", ANAMO_PHASE_JOINT,
                                         (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                           optimizer),
                                         0.05f, 8, 1.0);
    if (anamo_trainer_create(r->m, &spec, &r->ds, NULL, &r->t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create(%s): %s", optimizer, err.msg);
    if (train && anamo_trainer_run(r->t, NULL, &err) != ANAMO_OK)
        fail_msg("%s run: %s", optimizer, err.msg);
}

static void ckpt_run_free(ckpt_run *r)
{
    anamo_trainer_free(r->t);
    anamo_model_free(r->m);
    anamo_dataset_free(&r->ds);
}

/* Restores path into a fresh run of optimizer; returns the return code, the message in err. */
static int restore_into(const char *path, const char *optimizer, anamo_err *err)
{
    ckpt_run r;
    ckpt_run_new(&r, optimizer, 0);
    int rc = anamo_checkpoint_restore(r.m, r.t, path, err);
    if (rc == ANAMO_OK)
        assert_int_equal(r.t->p.opt_kind[1], optim_parse(optimizer));
    ckpt_run_free(&r);
    return rc;
}

static void test_checkpoint_of_accelerated(void **state)
{
    const temp_dir_fixture *fx = *state;
    char path[TEST_UTIL_PATH_CAP];
    join_path(path, sizeof path, fx->dir, "accelerated.safetensors");
    ckpt_run a;
    ckpt_run_new(&a, "accelerated", 1);
    anamo_err err = {0};
    if (anamo_checkpoint_save(a.m, a.t, "", path, &err) != ANAMO_OK)
        fail_msg("save: %s", err.msg);
    assert_int_equal(a.t->p.opt_kind[1], OPTIM_ACCELERATED);
    ckpt_run_free(&a);

    /* what an old `nesterov` run left: refused by the new nesterov, with the way out */
    memset(&err, 0, sizeof err);
    assert_int_not_equal(restore_into(path, "nesterov", &err), ANAMO_OK);
    print_message("restoring it into nesterov: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "accelerated"));
    assert_non_null(strstr(err.msg, "nesterov"));
    /* by any other optimizer too; by its own, it resumes */
    memset(&err, 0, sizeof err);
    assert_int_not_equal(restore_into(path, "momentum", &err), ANAMO_OK);
    memset(&err, 0, sizeof err);
    if (restore_into(path, "accelerated", &err) != ANAMO_OK)
        fail_msg("restoring into accelerated: %s", err.msg);

    /* a state of another size than its kind's (n floats saved as the accelerated method's
     * 2n + 1) is refused, not read */
    ckpt_run b;
    ckpt_run_new(&b, "nesterov", 1);
    assert_int_equal(b.t->p.opt_kind[1], OPTIM_NESTEROV);
    assert_int_equal(b.m->dec.nstate, b.m->dec.nparams);
    b.t->p.opt_kind[0] = b.t->p.opt_kind[1] = OPTIM_ACCELERATED;
    join_path(path, sizeof path, fx->dir, "mislabelled.safetensors");
    if (anamo_checkpoint_save(b.m, b.t, "", path, &err) != ANAMO_OK)
        fail_msg("save: %s", err.msg);
    ckpt_run_free(&b);
    memset(&err, 0, sizeof err);
    assert_int_not_equal(restore_into(path, "accelerated", &err), ANAMO_OK);
    print_message("a mislabelled state: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "optim.encoder.state"));
}

static int setup(void **state)
{
    load_fixture();
    return temp_dir_setup(state, "/tmp/anamo_test_optim_torch_XXXXXX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_trajectories),
        cmocka_unit_test(test_nam_adam_state_carries),
        cmocka_unit_test(test_nam_keeps_adam_across_phases),
        cmocka_unit_test(test_config_defaults_are_torch),
        cmocka_unit_test(test_checkpoint_of_accelerated),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
