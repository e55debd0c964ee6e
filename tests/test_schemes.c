/* test_schemes.c — the table of schemes (src/train/scheme.h) and what a phase may ask of it.
 *
 * 1. restart = function is implemented only in ANAMO's iterations, which evaluate F at every
 *    iterate: any other phase that asks for it is a config error naming the phase and where it
 *    is implemented, and none of the phases is run; an ANAMO phase asking for it trains.
 * 2. Every phase kind has an entry with an enter and a step, and a block value outside the
 *    kinds is a config error, not a read past the table.
 * The truths are the spec itself (which phase asked for what); no tolerance is involved. */
#include "test_util.h"

#include "train/scheme.h"

#define N 8
#define D 6

static float data_x[N * D];

static anamo_dataset small_set(void)
{
    for (int i = 0; i < N * D; i++) /* values in [0.1, 0.9], no two rows alike */
        data_x[i] = (float)(0.5 + 0.4 * sin(0.7 * i + 0.2));
    anamo_dataset ds = {
        .n = N, .c = D, .h = 1, .w = 1, .dim = D, .dtype = ANAMO_F32, .data = data_x};
    snprintf(ds.source, sizeof ds.source, "test_schemes set");
    return ds;
}

static anamo_model *small_model(void)
{
    anamo_model_spec s = {.in_c = D,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = "linear 3, sigmoid",
                          .decoder = "linear 6, sigmoid",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 3,
                          .max_batch = N};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    return m;
}

/* anamo_trainer_create on one phase of kind `which` with `optimizer` and restart = function;
 * returns its code, with the message in err. */
static int create_with_function_restart(anamo_phase_kind which, const char *optimizer,
                                        anamo_err *err)
{
    anamo_dataset ds = small_set();
    anamo_model *m = small_model();
    anamo_train_spec s = {.loss = ANAMO_LOSS_MSE,
                          .lambda = 0.1f,
                          .epochs = 1,
                          .seed = 1,
                          .cache_codes = 1,
                          .nphases = 1};
    s.phases[0] = anamo_phase_default("p0", which,
                                      (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                        optimizer),
                                      0.1f, N, 1.0);
    s.phases[0].opt.restart = ANAMO_RESTART_FUNCTION;
    anamo_trainer *t = NULL;
    int rc = anamo_trainer_create(m, &s, &ds, NULL, &t, err);
    if (rc == ANAMO_OK)
        rc = anamo_trainer_run(t, NULL, err);
    anamo_trainer_free(t);
    anamo_model_free(m);
    return rc;
}

static void test_function_restart_only_in_anamo(void **state)
{
    (void)state;
    const struct {
        anamo_phase_kind which;
        const char *optimizer;
    } elsewhere[] = {{ANAMO_PHASE_JOINT, "accelerated"},
                     {ANAMO_PHASE_ENCODER, "fista"},
                     {ANAMO_PHASE_DECODER, "accelerated"},
                     {ANAMO_PHASE_JOINT, "adam"},
                     {ANAMO_PHASE_FREECODES, "fista"}};
    for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
        anamo_err err = {0};
        int rc = create_with_function_restart(elsewhere[i].which, elsewhere[i].optimizer, &err);
        if (rc != ANAMO_ERR_CONFIG)
            fail_msg("phase kind %d, %s: restart = function gave %d (%s), want a config error",
                     (int)elsewhere[i].which, elsewhere[i].optimizer, rc, err.msg);
        assert_non_null(strstr(err.msg, "phase 'p0'"));
        assert_non_null(strstr(err.msg, "restart 'function'"));
        assert_non_null(strstr(err.msg, "anamo"));
    }
    anamo_err err = {0};
    int rc = create_with_function_restart(ANAMO_PHASE_ANAMO, "fista", &err);
    if (rc != ANAMO_OK)
        fail_msg("ANAMO with restart = function: %d (%s)", rc, err.msg);
}

static void test_every_kind_has_an_entry(void **state)
{
    (void)state;
    for (int kind = ANAMO_PHASE_ENCODER; kind <= ANAMO_PHASE_FREECODES; kind++) {
        const scheme *s = scheme_of((anamo_phase_kind)kind);
        assert_non_null(s);
        assert_non_null(s->enter);
        assert_non_null(s->step);
        assert_non_null(s->name);
    }
    anamo_phase ph = anamo_phase_default("odd", (anamo_phase_kind)(ANAMO_PHASE_FREECODES + 1),
                                         ANAMO_OPT_SGD, 0.1f, N, 1.0);
    phase_rt rt;
    anamo_err err = {0};
    assert_int_equal(phase_compile(&ph, &rt, &err), ANAMO_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "phase 'odd'"));
}

/* train.cache_codes = auto keeps a code cache only where a decoder phase reads a row's codes
 * more than once before the encoder changes (trainer.c's codes_read_twice); true and false are
 * kept as they are. Each case: a cycle of phases (kind, epochs, iterations, backtracking), the
 * setting, and whether the trainer holds a cache. */
typedef struct cache_case {
    const char *what;
    int nphases;
    anamo_phase_kind kind[2];
    double epochs[2];
    int64_t iterations; /* of the first phase; 0: its epochs */
    int backtrack;      /* the first phase's step rule */
    int setting, cached;
} cache_case;

static int holds_cache(const cache_case *c)
{
    anamo_dataset ds = small_set();
    anamo_model *m = small_model();
    anamo_train_spec s = {.loss = ANAMO_LOSS_MSE,
                          .epochs = 1,
                          .seed = 1,
                          .cache_codes = c->setting,
                          .nphases = c->nphases};
    for (int i = 0; i < c->nphases; i++)
        s.phases[i] = anamo_phase_default(i ? "p1" : "p0", c->kind[i], ANAMO_OPT_SGD, 0.1f, 2,
                                          c->epochs[i]);
    s.phases[0].iterations = c->iterations;
    if (c->backtrack)
        s.phases[0].opt.step_rule = ANAMO_STEP_BACKTRACK;
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, &s, &ds, NULL, &t, &err) != ANAMO_OK)
        fail_msg("%s: anamo_trainer_create: %s", c->what, err.msg);
    const int cached = t->codes.span != NULL;
    assert_int_equal(t->spec.cache_codes,
                     c->setting == ANAMO_CACHE_CODES_AUTO ? cached : c->setting);
    anamo_trainer_free(t);
    anamo_model_free(m);
    return cached;
}

static void test_cache_codes_auto(void **state)
{
    (void)state;
    const anamo_phase_kind D_ = ANAMO_PHASE_DECODER, E_ = ANAMO_PHASE_ENCODER;
    const int AUTO = ANAMO_CACHE_CODES_AUTO;
    const cache_case cases[] = {
        {"NAM, one epoch a phase", 2, {D_, E_}, {1, 1}, 0, 0, AUTO, 0},
        {"NAM, half an epoch a decoder phase", 2, {D_, E_}, {0.5, 1}, 0, 0, AUTO, 0},
        {"NAM, two epochs a decoder phase", 2, {D_, E_}, {2, 1}, 0, 0, AUTO, 1},
        {"NAM, 5 steps of 2 rows over 8", 2, {D_, E_}, {1, 1}, 5, 0, AUTO, 1},
        {"NAM, 4 steps of 2 rows over 8", 2, {D_, E_}, {1, 1}, 4, 0, AUTO, 0},
        {"NAM, backtracking on the decoder", 2, {D_, E_}, {1, 1}, 0, 1, AUTO, 1},
        {"two decoder phases in a row", 2, {D_, D_}, {1, 1}, 0, 0, AUTO, 1},
        {"the decoder alone", 1, {D_}, {1}, 0, 0, AUTO, 1},
        {"joint", 1, {ANAMO_PHASE_JOINT}, {1}, 0, 0, AUTO, 0},
        {"NAM, one epoch a phase, cache asked for", 2, {D_, E_}, {1, 1}, 0, 0, 1, 1},
        {"NAM, two epochs a decoder phase, no cache", 2, {D_, E_}, {2, 1}, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (holds_cache(&cases[i]) != cases[i].cached)
            fail_msg("%s: %s", cases[i].what,
                     cases[i].cached ? "no code cache, where one saves encoder passes"
                                     : "a code cache, where none is needed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_function_restart_only_in_anamo),
        cmocka_unit_test(test_every_kind_has_an_entry),
        cmocka_unit_test(test_cache_codes_auto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
