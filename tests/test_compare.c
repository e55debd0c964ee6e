/* test_compare.c — anamo compare run as a user runs it (fork/exec of $ANAMO_BIN), on the
 * built-in 10×10 "halves" images and a 100→10→100 autoencoder, milliseconds per run. The
 * truths are computed here, independently of cli/results.c and cli/figures.c: statistics from
 * every run's summary.json, figure data from every run's metrics.csv and epochs.csv, initial
 * weights from a model created through the public API, a grid size from the drawing's
 * geometry, a documented exit code for each bad config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <stb_image.h>

#include "anamo.h"
#include "io/safetensors.h"
#include "test_util.h"

#define PATH_CAP TEST_UTIL_PATH_CAP
#define TIMEOUT_S 60.0 /* a compare here takes ~0.1 s; a minute means it hangs */
#define GET cJSON_GetObjectItemCaseSensitive

typedef struct fixture {
    char bin[PATH_CAP], dir[256];
} fixture;

/* 4 epochs of 10 steps, joint against NAM. Model seed 2 (trials: 2, 3, 4) keeps every joint
 * run's codes alive, so every run has every epoch (with seed 0 joint's trial 1 loses them). */
#define MODEL_SEED 2 /* BASE's model.seed */
static const char BASE[] =
    "[data]\ntrain = halves:200:1\ntest = halves:20:2\n"
    "[model]\nencoder = linear 10, relu\ndecoder = linear 100, sigmoid\nseed = 2\n"
    "[train]\nepochs = 4\nbatch = 20\nlog_every = 2\nseed = 2\n[compare]\n";
#define ARMS "[arm joint]\ntrain.scheme = joint\n[arm nam]\ntrain.scheme = nam\n"
#define DEC_ARM(name, lr) \
    "[arm " name "]\ntrain.scheme = nam\nnam.start = decoder\nnam.decoder_lr = " lr "\n"
static const char *const CONFIGS[][2] = {
    {"base.ini", "arms = joint, nam\ntrials = 2\n" ARMS},
    {"quick.ini",
     "arms = joint, nam\ntrials = 2\n" ARMS "[quick]\ncompare.trials = 1\ntrain.epochs = 1\n"},
    {"dec.ini",
     "arms = dec_a, dec_b\ntrials = 2\n" DEC_ARM("dec_a", "1e-2") DEC_ARM("dec_b", "1e-3")},
    {"sweep.ini", "arms = joint, nam\ntrials = 2\nsweep = loss.lambda\n"
                  "sweep_values = 1e-3, 100\n" ARMS},
    {"nosweepvalues.ini", "arms = joint, nam\nsweep = loss.lambda\n" ARMS},
    {"ghost.ini", "arms = joint, ghost\n" ARMS},
};
static const char *const ARM_NAMES[] = {"joint", "nam"};

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || find_anamo_bin(fx->bin, sizeof fx->bin, "test_compare") != 0 ||
        make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_compare_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    for (size_t i = 0; i < sizeof CONFIGS / sizeof CONFIGS[0]; i++) {
        char path[PATH_CAP];
        join_path(path, sizeof path, fx->dir, CONFIGS[i][0]);
        FILE *f = fopen(path, "w");
        if (!f || fprintf(f, "%s%s", BASE, CONFIGS[i][1]) < 0 || fclose(f) != 0) {
            remove_tree(fx->dir);
            free(fx);
            return -1;
        }
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* anamo compare DIR/CONFIG -o DIR/OUT [extra ...] (free the result with cli_free) */
static cli_result compare(const fixture *fx, const char *config, const char *out,
                          const char *const *extra)
{
    char cfg[PATH_CAP], dir[PATH_CAP];
    join_path(cfg, sizeof cfg, fx->dir, config);
    join_path(dir, sizeof dir, fx->dir, out);
    const char *args[TEST_CLI_MAX_ARGS] = {"compare", cfg, "-o", dir};
    int n = 4;
    for (; extra && extra[n - 4]; n++)
        args[n] = extra[n - 4];
    return run_cli(fx->bin, fx->dir, args, TIMEOUT_S);
}

static void compare_ok(const fixture *fx, const char *config, const char *out,
                       const char *const *extra)
{
    cli_result r = compare(fx, config, out, extra);
    if (r.code != 0)
        fail_msg("compare %s: exit %d: %s", config, r.code, r.err);
    cli_free(&r);
}

/* p = fx->dir/out/file, or fx->dir/out/arm/trial-t/file when arm is not NULL */
static char *at(char *p, const fixture *fx, const char *out, const char *arm, int t,
                const char *file)
{
    if (arm)
        snprintf(p, PATH_CAP, "%s/%s/%s/trial-%d/%s", fx->dir, out, arm, t, file);
    else
        snprintf(p, PATH_CAP, "%s/%s/%s", fx->dir, out, file);
    return p;
}

static cJSON *read_json(const char *path)
{
    char *text = read_text(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!j)
        fail_msg("%s: missing or not JSON", path);
    return j;
}

static cJSON *summary(const fixture *fx, const char *out, const char *arm, int t)
{
    char p[PATH_CAP];
    return read_json(at(p, fx, out, arm, t, "summary.json"));
}

/* The number at a dotted path ("test.mse") of a summary; the test fails when there is none. */
static double num_at(const cJSON *o, const char *path)
{
    char part[64];
    const char *full = path;
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = GET(o, part);
        path += n + (path[n] == '.');
    }
    if (!cJSON_IsNumber(o))
        fail_msg("no number at %s", full);
    return o->valuedouble;
}

/* results.json's statistic (mean, sd, …) of a metric ("test.mse": a key with a dot) */
static double stat_at(const cJSON *arm, const char *metric, const char *which)
{
    const cJSON *v = GET(GET(GET(arm, "metrics"), metric), which);
    if (!cJSON_IsNumber(v))
        fail_msg("results.json %s: no %s %s", GET(arm, "arm")->valuestring, metric, which);
    return v->valuedouble;
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = GET(o, key);
    if (!cJSON_IsString(v))
        fail_msg("no string %s", key);
    return v->valuestring;
}

/* The line of a results.md table that starts with start, into line (1024 bytes). */
static char *md_row(const char *md, const char *start, char *line)
{
    char want[128];
    snprintf(want, sizeof want, "\n%s", start);
    const char *row = strstr(md, want);
    if (!row)
        fail_msg("results.md has no row %s", start);
    snprintf(line, 1024, "%.*s", (int)strcspn(row + 1, "\n"), row + 1);
    return line;
}

static void expect_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (n < k || strcmp(s + n - k, suffix))
        fail_msg("'%s' does not end in '%s'", s, suffix);
}

static int count_of(const char *text, const char *word)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, word)) != NULL; p += strlen(word))
        n++;
    return n;
}

/* ---- CSV and gnuplot data ------------------------------------------------------------------ */

#define MAX_ROWS 256
#define MAX_COLS 16

typedef struct table {
    int nrows, ncols;
    char *cell[MAX_ROWS][MAX_COLS]; /* into text */
    char *text;
} table;

/* A CSV file with its header as row 0 (block −1, sep ","), or block b of a gnuplot .dat file
 * (sep " "): the rows after its b-th '#' line; blocks must be apart by exactly 2 blank lines. */
static void table_read(const char *path, const char *sep, table *t, int block)
{
    memset(t, 0, sizeof *t);
    if (!(t->text = read_text(path, NULL)))
        fail_msg("%s: missing", path);
    int b = -1, blanks = 0;
    for (char *save = NULL, *line = strtok_r(t->text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), blanks = 0) {
        for (char *q = line - 1; q >= t->text && *q == '\n'; q--) /* skipped empty lines */
            blanks++;
        if (line[0] == '#' && ++b > 0 && blanks != 2)
            fail_msg("%s: %d blank lines before block %d, not 2", path, blanks, b);
        if (line[0] == '#' || (block >= 0 && b != block))
            continue;
        assert_true(t->nrows < MAX_ROWS);
        int c = 0;
        for (char *s = NULL, *f = strtok_r(line, sep, &s); f && c < MAX_COLS;
             f = strtok_r(NULL, sep, &s))
            t->cell[t->nrows][c++] = f;
        t->ncols = t->nrows ? t->ncols : c;
        assert_int_equal(c, t->ncols);
        t->nrows++;
    }
}

static int col_of(const table *t, const char *name)
{
    for (int c = 0; c < t->ncols; c++)
        if (!strcmp(t->cell[0][c], name))
            return c;
    fail_msg("no column %s", name);
    return -1;
}

static double cell(const table *t, int r, int c) { return strtod(t->cell[r][c], NULL); }

/* Block a of DIR/out/NAME.dat against column csv_col of every trial's file: the dat's column
 * dat_col is the mean over the trials at the same row, dat_col + 1 the sample sd; column 0 is
 * the CSV's column key. Returns the number of rows. */
static int expect_trial_means(const fixture *fx, const char *out, const char *dat_name, int a,
                              const char *file, const char *key, const char *csv_col, int dat_col,
                              int trials)
{
    static table dat, runs[4];
    char p[PATH_CAP];
    assert_true(trials >= 2 && trials <= 4);
    table_read(at(p, fx, out, NULL, 0, dat_name), " ", &dat, a);
    for (int t = 0; t < trials; t++) {
        table_read(at(p, fx, out, ARM_NAMES[a], t, file), ",", &runs[t], -1);
        assert_int_equal(runs[t].nrows - 1, dat.nrows); /* no run stopped early */
    }
    const int k = col_of(&runs[0], key), c = col_of(&runs[0], csv_col);
    for (int r = 0; r < dat.nrows; r++) {
        double mean = 0, ss = 0;
        for (int t = 0; t < trials; t++)
            mean += cell(&runs[t], r + 1, c) / trials;
        for (int t = 0; t < trials; t++)
            ss += pow(cell(&runs[t], r + 1, c) - mean, 2);
        assert_true(cell(&dat, r, 0) == cell(&runs[0], r + 1, k));
        expect_close(dat_name, r, cell(&dat, r, dat_col), mean, 1e-6, 0); /* %.8g */
        expect_close(dat_name, r, cell(&dat, r, dat_col + 1), sqrt(ss / (trials - 1)), 1e-5,
                     1e-6 * mean);
    }
    for (int t = 0; t < trials; t++)
        free(runs[t].text);
    free(dat.text);
    return dat.nrows;
}

static void expect_png(const char *path, int *w, int *h)
{
    int comp = 0;
    if (stbi_info(path, w, h, &comp) != 1)
        fail_msg("%s: not a PNG", path);
    assert_true(*w > 0 && *h > 0);
}

/* DIR/out/NAME.png a PNG, DIR/out/NAME.svg an SVG document */
static void expect_figure(const fixture *fx, const char *out, const char *name)
{
    char p[PATH_CAP], file[64];
    int w, h;
    snprintf(file, sizeof file, "%s.png", name);
    expect_png(at(p, fx, out, NULL, 0, file), &w, &h);
    snprintf(file, sizeof file, "%s.svg", name);
    size_t n = 0;
    char *s = read_text(at(p, fx, out, NULL, 0, file), &n);
    if (!s)
        fail_msg("%s: missing", p);
    assert_true(!strncmp(s, "<?xml", 5) || strstr(s, "<svg"));
    while (n > 0 && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    assert_true(n >= 6 && !strcmp(s + n - 6, "</svg>"));
    free(s);
}

/* ---- the tests ----------------------------------------------------------------------------- */

/* The JSON file at path without its timing numbers (anywhere in it), as compact text; every
 * other number printed with round-trip precision, so equal texts hold bit-identical numbers. */
static char *without_clocks(const char *path)
{
    static const char *const CLOCKS[] = {"seconds_per_epoch", "samples_per_s"};
    cJSON *j = read_json(path), *arm;
    for (int k = 0; k < 2; k++) {
        cJSON_DeleteItemFromObjectCaseSensitive(j, CLOCKS[k]);
        cJSON_ArrayForEach(arm, GET(j, "arms"))
            cJSON_DeleteItemFromObjectCaseSensitive(GET(arm, "metrics"), CLOCKS[k]);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* 1. One config compared twice: every number but the clocks is bit for bit the same. */
static void test_same_seed_same_results(void **state)
{
    fixture *fx = *state;
    compare_ok(fx, "base.ini", "same-a", NULL);
    compare_ok(fx, "base.ini", "same-b", NULL);
    char p[PATH_CAP];
    for (int a = 0; a < 2; a++)
        for (int t = 0; t < 2; t++) {
            cJSON *s = summary(fx, "same-a", ARM_NAMES[a], t);
            assert_int_equal(cJSON_GetArraySize(GET(s, "train")), 17); /* the metrics */
            assert_int_equal(cJSON_GetArraySize(GET(s, "test")), 17);
            assert_non_null(GET(s, "seconds_per_epoch"));
            cJSON_Delete(s);
            char *ta = without_clocks(at(p, fx, "same-a", ARM_NAMES[a], t, "summary.json"));
            char *tb = without_clocks(at(p, fx, "same-b", ARM_NAMES[a], t, "summary.json"));
            if (strcmp(ta, tb))
                fail_msg("%s trial %d: %s, then %s", ARM_NAMES[a], t, ta, tb);
            cJSON_free(ta);
            cJSON_free(tb);
        }
    char *ta = without_clocks(at(p, fx, "same-a", NULL, 0, "results.json"));
    char *tb = without_clocks(at(p, fx, "same-b", NULL, 0, "results.json"));
    if (strcmp(ta, tb))
        fail_msg("results.json: %s, then %s", ta, tb);
    assert_non_null(strstr(ta, "\"test.mse\":{\"mean\":")); /* it holds the statistics */
    assert_null(strstr(ta, "seconds_per_epoch"));
    cJSON_free(ta);
    cJSON_free(tb);
}

/* Asserts that a's and b's tensors PREFIX* (2: one layer's weight and bias) are all
 * bit-identical (same) or not all (!same). */
static void expect_block(const st_file *a, const st_file *b, const char *prefix, int same)
{
    int n = 0, differ = 0;
    for (int i = 0; i < st_count(a); i++) {
        const st_tensor *ta = st_at(a, i), *tb = st_find(b, ta->name);
        if (strncmp(ta->name, prefix, strlen(prefix)))
            continue;
        if (!tb || ta->nbytes != tb->nbytes)
            fail_msg("%s: no %s the size of %s's", st_path(b), ta->name, st_path(a));
        differ |= memcmp(ta->data, tb->data, ta->nbytes) != 0;
        if (same && differ)
            fail_msg("%s: %s differs from %s's", st_path(b), ta->name, st_path(a));
        n++;
    }
    if (!same && !differ)
        fail_msg("%s: every %s tensor equals %s's", st_path(b), prefix, st_path(a));
    assert_int_equal(n, 2);
}

static st_file *open_st(const char *path)
{
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(path, &f, &err))
        fail_msg("%s", err.msg);
    return f;
}

/* 2. One epoch of NAM starting with the decoder: the encoder keeps its initial weights, which
 * are those of trial t's seed in every arm; the decoders move at their own learning rates. */
static void test_arms_share_initial_weights(void **state)
{
    fixture *fx = *state;
    const char *const extra[] = {"--set", "train.epochs=1", NULL};
    compare_ok(fx, "dec.ini", "dec", extra);
    st_file *trial0 = NULL;
    for (int t = 0; t < 2; t++) {
        char p[PATH_CAP];
        st_file *a = open_st(at(p, fx, "dec", "dec_a", t, "model.safetensors"));
        st_file *b = open_st(at(p, fx, "dec", "dec_b", t, "model.safetensors"));
        expect_block(a, b, "encoder.", 1);
        expect_block(a, b, "decoder.", 0);
        /* the model made fresh through the API, seed model.seed + t */
        anamo_model_spec ms = {.in_c = 1,
                               .in_h = 10,
                               .in_w = 10,
                               .encoder = "linear 10, relu",
                               .decoder = "linear 100, sigmoid",
                               .init = ANAMO_INIT_PYTORCH,
                               .seed = (uint64_t)(MODEL_SEED + t),
                               .max_batch = 20};
        anamo_model *m = NULL;
        anamo_err err = {0};
        snprintf(p, sizeof p, "%s/fresh-%d.safetensors", fx->dir, t);
        if (anamo_model_create(&ms, &m, &err) || anamo_checkpoint_save(m, NULL, NULL, p, &err))
            fail_msg("fresh model: %s", err.msg);
        anamo_model_free(m);
        st_file *fresh = open_st(p);
        expect_block(fresh, a, "encoder.", 1);
        expect_block(fresh, a, "decoder.", 0); /* the decoder did train */
        st_close(fresh);
        st_close(b);
        if (t == 0) {
            trial0 = a;
        } else { /* trial 1 starts from other weights */
            expect_block(trial0, a, "encoder.", 0);
            st_close(a);
        }
    }
    st_close(trial0);
}

/* 3. More trials later run only the new ones; a run with a checkpoint but no summary resumes. */
/* Runs made by one config are not read as another's: a changed training key is refused before
 * anything trains; keys that only choose runs ([compare]) or say how runs are kept (checkpoint
 * cadence, threads) may change. */
static void test_changed_config_refused(void **state)
{
    fixture *fx = *state;
    const char *const one[] = {"--set", "compare.trials=1", NULL};
    compare_ok(fx, "base.ini", "changed", one);
    const char *const epochs[] = {"--set", "compare.trials=1", "--set", "train.epochs=5", NULL};
    cli_result r = compare(fx, "base.ini", "changed", epochs);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "made by another config"));
    assert_non_null(strstr(r.err, "epochs = 5"));    /* the line as it is now */
    assert_int_equal(count_of(r.err, "epoch 1"), 0); /* nothing trained */
    cli_free(&r);
    const char *const kept[] = {"--set", "compare.trials=1", "--set", "train.checkpoint_every=2",
                                "--set", "train.threads=1",  NULL};
    r = compare(fx, "base.ini", "changed", kept);
    assert_int_equal(r.code, 0);
    assert_int_equal(count_of(r.err, "finished earlier"), 2);
    cli_free(&r);
}

static void test_resume_without_redoing(void **state)
{
    fixture *fx = *state;
    static const char *const FILES[] = {"model.safetensors", "summary.json", "metrics.csv",
                                        "epochs.csv", "config.ini"};
    const char *const one[] = {"--set", "compare.trials=1", NULL};
    const char *const three[] = {"--set", "compare.trials=3", NULL};
    compare_ok(fx, "base.ini", "resume", one);
    struct stat before[2][5], now;
    char p[PATH_CAP];
    for (int a = 0; a < 2; a++) {
        assert_false(exists(at(p, fx, "resume", ARM_NAMES[a], 1, "")));
        for (int k = 0; k < 5; k++)
            assert_int_equal(stat(at(p, fx, "resume", ARM_NAMES[a], 0, FILES[k]), &before[a][k]),
                             0);
    }
    cli_result r = compare(fx, "base.ini", "resume", three);
    assert_int_equal(r.code, 0);
    assert_int_equal(count_of(r.err, "finished earlier"), 2);
    assert_int_equal(count_of(r.err, "[joint trial 1/3] finished earlier"), 1);
    assert_int_equal(count_of(r.err, "[nam trial 1/3] finished earlier"), 1);
    assert_int_equal(count_of(r.err, "(resumed)"), 0);
    cli_free(&r);
    for (int a = 0; a < 2; a++) {
        for (int k = 0; k < 5; k++) { /* neither rewritten in place nor replaced */
            assert_int_equal(stat(at(p, fx, "resume", ARM_NAMES[a], 0, FILES[k]), &now), 0);
            if (now.st_ino != before[a][k].st_ino ||
                now.st_mtim.tv_sec != before[a][k].st_mtim.tv_sec ||
                now.st_mtim.tv_nsec != before[a][k].st_mtim.tv_nsec)
                fail_msg("%s was rewritten", p);
        }
        for (int t = 1; t < 3; t++)
            assert_true(exists(at(p, fx, "resume", ARM_NAMES[a], t, "summary.json")));
    }
    /* an interruption after nam trial 1's last checkpoint, before its summary */
    cJSON *old = summary(fx, "resume", "nam", 1);
    char *old_epochs = read_text(at(p, fx, "resume", "nam", 1, "epochs.csv"), NULL);
    assert_int_equal(unlink(at(p, fx, "resume", "nam", 1, "summary.json")), 0);
    r = compare(fx, "base.ini", "resume", three);
    assert_int_equal(r.code, 0);
    assert_int_equal(count_of(r.err, "(resumed)"), 1);
    assert_int_equal(count_of(r.err, "finished earlier"), 5);
    const char *resumed = strstr(r.err, "(resumed)"), *line = resumed, *dir;
    while (line > r.err && line[-1] != '\n')
        line--;
    assert_true((dir = strstr(line, "/nam/trial-1:")) != NULL && dir < resumed);
    cli_free(&r);
    cJSON *again = summary(fx, "resume", "nam", 1);
    char *test_old = cJSON_PrintUnformatted(GET(old, "test"));
    char *test_again = cJSON_PrintUnformatted(GET(again, "test"));
    assert_string_equal(test_again, test_old); /* every digit of every test metric */
    assert_true(num_at(again, "epochs") == 4);
    cJSON_free(test_old);
    cJSON_free(test_again);
    /* the checkpoint was the last epoch's: nothing was trained again */
    char *new_epochs = read_text(at(p, fx, "resume", "nam", 1, "epochs.csv"), NULL);
    assert_string_equal(new_epochs, old_epochs);
    free(old_epochs);
    free(new_epochs);
    cJSON_Delete(old);
    cJSON_Delete(again);
}

/* 4. results.json's statistics of test.mse and results.md's row, from the summaries. */
static void test_results_statistics(void **state)
{
    fixture *fx = *state;
    enum { TRIALS = 3 };
    const char *const extra[] = {"--set", "compare.trials=3", NULL};
    compare_ok(fx, "base.ini", "stats", extra);
    char p[PATH_CAP], line[1024], *cells[8], *save = NULL;
    cJSON *res = read_json(at(p, fx, "stats", NULL, 0, "results.json"));
    char *md = read_text(at(p, fx, "stats", NULL, 0, "results.md"), NULL);
    assert_non_null(md);
    assert_true(num_at(res, "trials") == TRIALS);
    assert_int_equal(cJSON_GetArraySize(GET(res, "arms")), 2);
    assert_non_null(strstr(md, "\n| metric | joint | nam |\n"));
    expect_ends(md_row(md, "| diverged", line), "| 0/3 | 0/3 |");
    md_row(md, "| test MSE |", line);
    int ncells = 0;
    for (char *c = strtok_r(line, "|", &save); c && ncells < 8; c = strtok_r(NULL, "|", &save))
        cells[ncells++] = c;
    assert_int_equal(ncells, 1 + 2); /* the label, a cell per arm */
    for (int a = 0; a < 2; a++) {
        const cJSON *arm = cJSON_GetArrayItem(GET(res, "arms"), a);
        const cJSON *values = GET(GET(GET(arm, "metrics"), "test.mse"), "values");
        assert_string_equal(str_at(arm, "arm"), ARM_NAMES[a]);
        assert_int_equal(cJSON_GetArraySize(values), TRIALS);
        double v[TRIALS], mean = 0, ss = 0, lo = INFINITY, hi = -INFINITY;
        for (int t = 0; t < TRIALS; t++) {
            cJSON *s = summary(fx, "stats", ARM_NAMES[a], t);
            v[t] = num_at(s, "test.mse");
            cJSON_Delete(s);
            assert_true(cJSON_GetNumberValue(cJSON_GetArrayItem(values, t)) == v[t]);
            mean += v[t] / TRIALS;
            lo = fmin(lo, v[t]), hi = fmax(hi, v[t]);
        }
        for (int t = 0; t < TRIALS; t++)
            ss += (v[t] - mean) * (v[t] - mean);
        const double sd = sqrt(ss / (TRIALS - 1)); /* sample standard deviation */
        assert_true(sd > 0);
        expect_close("mean", a, stat_at(arm, "test.mse", "mean"), mean, 1e-12, 0);
        expect_close("sd", a, stat_at(arm, "test.mse", "sd"), sd, 1e-12, 0);
        expect_close("min", a, stat_at(arm, "test.mse", "min"), lo, 1e-12, 0);
        expect_close("max", a, stat_at(arm, "test.mse", "max"), hi, 1e-12, 0);
        char want[128];
        snprintf(want, sizeof want, " %.4g ± %.4g [%.4g, %.4g] ", mean, sd, lo, hi);
        assert_string_equal(cells[1 + a], want);
    }
    free(md);
    cJSON_Delete(res);
}

/* 5. The figures: pictures, and their data the mean over trials of the runs' logs. */
static void test_figures(void **state)
{
    fixture *fx = *state;
    compare_ok(fx, "base.ini", "figs", NULL);
    char p[PATH_CAP];
    int w, h;
    expect_figure(fx, "figs", "training-loss");
    expect_figure(fx, "figs", "epoch-loss");
    /* 10 test images a row, magnified 3× to 30 pixels, 1-pixel gaps; the originals above a
     * band per arm */
    expect_png(at(p, fx, "figs", NULL, 0, "reconstructions.png"), &w, &h);
    assert_int_equal(w, 1 + 10 * 31);
    assert_int_equal(h, 1 + (1 + 2) * 31);

    static table dat, log0;
    int colours[3] = {0}; /* rows coloured decoder, encoder, joint */
    for (int a = 0; a < 2; a++) {
        /* 10 steps an epoch, a row every 2 */
        assert_int_equal(expect_trial_means(fx, "figs", "training-loss.dat", a, "metrics.csv",
                                            "iteration", "loss", 1, 2),
                         20);
        assert_int_equal(expect_trial_means(fx, "figs", "epoch-loss.dat", a, "epochs.csv", "epoch",
                                            "train_loss", 1, 2),
                         4);
        assert_int_equal(expect_trial_means(fx, "figs", "epoch-loss.dat", a, "epochs.csv", "epoch",
                                            "test_loss", 3, 2),
                         4);
        /* the colour of the phase's block, from trial 0's rows */
        table_read(at(p, fx, "figs", NULL, 0, "training-loss.dat"), " ", &dat, a);
        table_read(at(p, fx, "figs", ARM_NAMES[a], 0, "metrics.csv"), ",", &log0, -1);
        assert_int_equal(dat.ncols, 4);
        const int block = col_of(&log0, "block");
        for (int r = 0; r < dat.nrows; r++) {
            const char *b = log0.cell[r + 1][block];
            const int kind = a == 0 ? 2 : !strcmp(b, "encoder") ? 1 : 0;
            static const unsigned long RGB[] = {0x1f77b4, 0xd62728, 0x2ca02c};
            assert_string_equal(b, a == 0 ? "both" : kind ? "encoder" : "decoder");
            assert_int_equal(strtoul(dat.cell[r][3], NULL, 10), RGB[kind]);
            colours[kind]++;
        }
        free(dat.text);
        free(log0.text);
    }
    assert_true(colours[0] > 0 && colours[1] > 0 && colours[2] == 20); /* NAM: both phases */
    table_read(at(p, fx, "figs", NULL, 0, "epoch-loss.dat"), " ", &dat, 2);
    assert_int_equal(dat.nrows, 0); /* a block per arm, no more */
    free(dat.text);
}

/* 6. A sweep of λ with a value that kills every code: four arms, the killed ones diverged. */
static void test_sweep_and_divergence(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS6[] = {"joint_lambda=1e-3", "joint_lambda=100", "nam_lambda=1e-3",
                                        "nam_lambda=100"};
    compare_ok(fx, "sweep.ini", "sweep", NULL);
    char p[PATH_CAP];
    cJSON *res = read_json(at(p, fx, "sweep", NULL, 0, "results.json"));
    assert_string_equal(str_at(res, "sweep"), "loss.lambda");
    const cJSON *arms = GET(res, "arms");
    assert_int_equal(cJSON_GetArraySize(arms), 4);
    static table dat;
    char want_div[256] = "";
    for (int a = 0; a < 4; a++) {
        const cJSON *arm = cJSON_GetArrayItem(arms, a), *epochs = GET(arm, "diverged_epoch");
        const int killed = a % 2;
        assert_string_equal(str_at(arm, "arm"), ARMS6[a]);
        assert_string_equal(str_at(arm, "family"), ARM_NAMES[a / 2]);
        assert_string_equal(str_at(arm, "sweep_value"), killed ? "100" : "1e-3");
        assert_true(num_at(arm, "diverged") == (killed ? 2 : 0));
        assert_int_equal(cJSON_GetArraySize(epochs), 2);
        for (int t = 0; t < 2; t++) {
            cJSON *s = summary(fx, "sweep", ARMS6[a], t);
            const cJSON *div = GET(s, "diverged"), *e = cJSON_GetArrayItem(epochs, t);
            assert_true(num_at(s, "lambda") == (killed ? 100.0 : (double)1e-3f)); /* a float */
            if (killed) {
                assert_true(cJSON_IsString(div) && strstr(div->valuestring, "every code is zero"));
                assert_true(cJSON_IsNumber(e) && e->valuedouble >= 1);
                assert_true(e->valuedouble == num_at(s, "diverged_epoch"));
                assert_true(num_at(s, "test.code_l1") == 0);
                snprintf(want_div + strlen(want_div), sizeof want_div - strlen(want_div),
                         "%s%.0f%s", t ? ", " : " | 2/2 (epochs ", e->valuedouble, t ? ")" : "");
            } else {
                strcat(want_div, t ? "" : " | 0/2");
                assert_true(cJSON_IsNull(div) && cJSON_IsNull(e));
            }
            cJSON_Delete(s);
        }
        /* sweep.dat: a block per family, a row per value */
        table_read(at(p, fx, "sweep", NULL, 0, "sweep.dat"), " ", &dat, a / 2);
        assert_int_equal(dat.nrows, 2);
        assert_int_equal(dat.ncols, 6);
        assert_string_equal(dat.cell[killed][0], killed ? "100" : "1e-3");
        for (int c = 1; c <= 4; c++) /* test loss mean, sd, code ℓ1 mean, sd */
            expect_close("sweep.dat", c, cell(&dat, killed, c),
                         stat_at(arm, c < 3 ? "test.loss" : "test.code_l1", c % 2 ? "mean" : "sd"),
                         1e-6, 0);
        assert_string_equal(dat.cell[killed][5], killed ? "2" : "0");
        free(dat.text);
    }
    /* results.md: "k/N (epochs …)" from the summaries */
    char *md = read_text(at(p, fx, "sweep", NULL, 0, "results.md"), NULL), line[1024];
    assert_non_null(md);
    expect_ends(md_row(md, "| diverged", line), strcat(want_div, " |"));
    free(md);
    table_read(at(p, fx, "sweep", NULL, 0, "sweep.dat"), " ", &dat, 2);
    assert_int_equal(dat.nrows, 0); /* two families */
    free(dat.text);
    int w, h;
    expect_figure(fx, "sweep", "sweep");
    expect_png(at(p, fx, "sweep", NULL, 0, "reconstructions.png"), &w, &h);
    assert_int_equal(h, 1 + (1 + 4) * 31); /* a band per arm */
    cJSON_Delete(res);
}

/* 7. --quick applies [quick]; without one it is a configuration error. */
static void test_quick(void **state)
{
    fixture *fx = *state;
    const char *const quick[] = {"--quick", NULL};
    compare_ok(fx, "quick.ini", "quick", quick);
    char p[PATH_CAP];
    for (int a = 0; a < 2; a++) {
        assert_false(exists(at(p, fx, "quick", ARM_NAMES[a], 1, "")));
        cJSON *s = summary(fx, "quick", ARM_NAMES[a], 0);
        assert_true(num_at(s, "epochs") == 1);
        cJSON_Delete(s);
    }
    cJSON *res = read_json(at(p, fx, "quick", NULL, 0, "results.json"));
    assert_true(num_at(res, "trials") == 1);
    cJSON_Delete(res);

    cli_result r = compare(fx, "base.ini", "noquick", quick);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "[quick]"));
    cli_free(&r);
    assert_false(exists(at(p, fx, "noquick", NULL, 0, "")));
}

/* 8. Configuration errors exit with code 2 "before it creates anything" (docs/CONFIG.md). */
static void test_bad_configs(void **state)
{
    fixture *fx = *state;
    char p[PATH_CAP];
    cli_result r = compare(fx, "nosweepvalues.ini", "bad-sweep", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "sweep_values"));
    cli_free(&r);
    assert_false(exists(at(p, fx, "bad-sweep", NULL, 0, "")));

    r = compare(fx, "ghost.ini", "bad-arm", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "[arm ghost]"));
    cli_free(&r);
    /* the config alone shows the section is missing: no arm should run first */
    if (exists(at(p, fx, "bad-arm", NULL, 0, "")))
        fail_msg("%s was created: arm joint ran before the missing [arm ghost] was reported", p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_results),
        cmocka_unit_test(test_arms_share_initial_weights),
        cmocka_unit_test(test_resume_without_redoing),
        cmocka_unit_test(test_changed_config_refused),
        cmocka_unit_test(test_results_statistics),
        cmocka_unit_test(test_figures),
        cmocka_unit_test(test_sweep_and_divergence),
        cmocka_unit_test(test_quick),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
