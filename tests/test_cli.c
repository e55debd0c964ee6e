/* test_cli.c — the anamo command run as a user runs it: fork/exec of $ANAMO_BIN with stdout and
 * stderr captured to files, in a fresh directory under /tmp, on data this test writes itself:
 *   train.npy / test.npy  256 / 64 samples of 16 features, each the sum of two Gaussian bumps
 *                         with amplitudes drawn from U[0, 1] (a 2-dimensional structure that
 *                         the 16→8→4→8→16 autoencoder below learns in a fraction of a second);
 *   images.idx            40 images of 4 × 5 bytes, the IDX header written by hand.
 * The truths we compare against are independent of the code under test: parameter counts by
 * hand, an unsplit run for a resumed one, codes computed in this process for codes the CLI
 * wrote, a grid size from the drawing's geometry, a documented exit code for each bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stb_image.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "anamo.h"
#include "io/safetensors.h"
#include "test_util.h"

#define PATH_CAP 1024
#define MAX_ARGS 32
#define RUN_TIMEOUT_S 60.0 /* one invocation takes ~0.1 s; a minute means it hangs */

/* The data. */
#define N_TRAIN 256
#define N_TEST 64
#define N_FEAT 16
#define N_BUMPS 2
#define BUMP_WIDTH 2.0f
#define IMG_N 40
#define IMG_H 4
#define IMG_W 5

/* The model of base.ini, and its parameter counts by hand: weights in·out plus out biases. */
#define ENC_PARAMS (16 * 8 + 8 + 8 * 4 + 4)  /* 172 */
#define DEC_PARAMS (4 * 8 + 8 + 8 * 16 + 16) /* 184 */
#define CODE_DIM 4
#define TRAIN_EPOCHS 40
#define BATCH 16
#define LOG_EVERY 4

/* With model seed 0 (He init) the mean train loss falls from epoch 1 to epoch 40 by 109×
 * (joint) and 157× (nam); over model seeds 0–9 the smallest fall we saw was 4.6× (joint) and
 * 28× (nam), when a code unit dies. A 3× fall leaves margin for any of those seeds while a
 * trainer that does not train (loss flat, or only biases moving) cannot reach it. */
#define MIN_LOSS_FALL 3.0

typedef struct fixture {
    char dir[PATH_CAP]; /* everything this run writes goes in here */
    char bin[PATH_CAP]; /* the anamo executable */
    char train[PATH_CAP], test[PATH_CAP], images[PATH_CAP], config[PATH_CAP];
    int trained[2]; /* the shared runs "joint" and "nam" exist */
} fixture;

/* ---- files -------------------------------------------------------------------------------- */

static void in_dir(const fixture *fx, const char *name, char *out)
{
    join_path(out, PATH_CAP, fx->dir, name);
}

static cJSON *read_json(const char *path)
{
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s: cannot read", path);
    cJSON *o = cJSON_Parse(text);
    if (!o)
        fail_msg("%s: not JSON:\n%s", path, text);
    free(text);
    return o;
}

/* o[key] (or o[key][sub] when sub is not NULL) as a number; fails the test if it is not one. */
static double json_number(const cJSON *o, const char *key, const char *sub)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (sub)
        v = cJSON_GetObjectItemCaseSensitive(v, sub);
    if (!cJSON_IsNumber(v))
        fail_msg("JSON field %s%s%s missing or not a number", key, sub ? "." : "", sub ? sub : "");
    return v->valuedouble;
}

/* ---- CSV ---------------------------------------------------------------------------------- */

typedef struct csv {
    char *text;
    char **cells; /* (nrows + 1) × ncols, the header first */
    int nrows, ncols;
} csv;

/* Reads a CSV file whose every row must have as many cells as its header. */
static void csv_read(const char *path, csv *c)
{
    c->text = read_text(path, NULL);
    if (!c->text)
        fail_msg("%s: cannot read", path);
    int lines = 0, commas = 0;
    for (char *p = c->text; *p; p++)
        lines += *p == '\n', commas += *p == ',';
    c->cells = calloc((size_t)(commas + lines + 1), sizeof *c->cells);
    assert_non_null(c->cells);
    c->ncols = 0;
    c->nrows = -1;
    int k = 0;
    for (char *line = c->text; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            fail_msg("%s: last line '%s' has no newline", path, line);
        *nl = '\0';
        int cols = 0;
        for (char *cell = line;; cols++) {
            char *comma = strchr(cell, ',');
            c->cells[k++] = cell;
            if (!comma)
                break;
            *comma = '\0';
            cell = comma + 1;
        }
        cols++;
        if (c->nrows < 0)
            c->ncols = cols;
        else if (cols != c->ncols)
            fail_msg("%s: row %d has %d cells, the header %d", path, c->nrows + 1, cols, c->ncols);
        c->nrows++;
        line = nl + 1;
    }
    if (c->nrows < 0)
        fail_msg("%s: empty", path);
}

static void csv_free(csv *c)
{
    free(c->cells);
    free(c->text);
}

static const char *csv_cell(const csv *c, int row, int col) /* row 0 is the header */
{
    return c->cells[row * c->ncols + col];
}

static int csv_col(const csv *c, const char *name)
{
    for (int j = 0; j < c->ncols; j++)
        if (!strcmp(csv_cell(c, 0, j), name))
            return j;
    fail_msg("CSV has no column '%s'", name);
    return -1;
}

static double csv_num(const csv *c, int row, const char *name)
{
    const char *cell = csv_cell(c, row, csv_col(c, name));
    char *end;
    double v = strtod(cell, &end);
    if (end == cell || *end)
        fail_msg("CSV row %d column %s: '%s' is not a number", row, name, cell);
    return v;
}

/* ---- running the CLI ---------------------------------------------------------------------- */

/* Runs anamo with args (NULL-terminated), waiting at most RUN_TIMEOUT_S. */
static cli_result run_argv(const fixture *fx, const char *const *args)
{
    return run_cli(fx->bin, fx->dir, args, RUN_TIMEOUT_S);
}

#define RUN(fx, ...) run_argv((fx), (const char *const[]){__VA_ARGS__, NULL})

/* The run must have succeeded; otherwise its stderr is shown. */
static void expect_ok(cli_result *r, const char *what)
{
    if (r->code != 0)
        fail_msg("%s: exit %d, signal %d, stderr:\n%s", what, r->code, r->signal, r->err);
    cli_free(r);
}

#define RUN_OK(fx, ...)                       \
    do {                                      \
        cli_result r_ = RUN(fx, __VA_ARGS__); \
        expect_ok(&r_, #__VA_ARGS__);         \
    } while (0)

/* ---- the data ----------------------------------------------------------------------------- */

/* n rows of N_FEAT values: Σ_k a_k exp(−(j − c_k)² / (2 w²)), a_k ~ U[0, 1], clipped to 1. */
static void make_bumps(float *x, int n, uint64_t seed)
{
    static const float centers[N_BUMPS] = {4.0f, 11.0f};
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) {
        float a[N_BUMPS];
        for (int k = 0; k < N_BUMPS; k++)
            a[k] = anamo_rng_uniform(&rng);
        for (int j = 0; j < N_FEAT; j++) {
            float v = 0.0f;
            for (int k = 0; k < N_BUMPS; k++) {
                float t = ((float)j - centers[k]) / BUMP_WIDTH;
                v += a[k] * expf(-0.5f * t * t);
            }
            x[i * N_FEAT + j] = v > 1.0f ? 1.0f : v;
        }
    }
}

static void write_npy(const char *path, int n, uint64_t seed)
{
    float *x = malloc((size_t)n * N_FEAT * sizeof *x);
    assert_non_null(x);
    make_bumps(x, n, seed);
    int64_t shape[2] = {n, N_FEAT};
    anamo_err err = {0};
    if (anamo_npy_write_f32(path, x, 2, shape, &err))
        fail_msg("%s", err.msg);
    free(x);
}

static void put_be32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* An IDX image file: magic 2051, count, rows, cols (big-endian), then the bytes: each image a
 * horizontal and a vertical ramp with random amplitudes. magic and keep (bytes written) let
 * callers damage it. */
static void write_idx(const char *path, uint32_t magic, size_t keep)
{
    const size_t size = 16 + (size_t)IMG_N * IMG_H * IMG_W;
    uint8_t *b = malloc(size);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, IMG_N);
    put_be32(b + 8, IMG_H);
    put_be32(b + 12, IMG_W);
    anamo_rng rng;
    anamo_rng_seed(&rng, 3);
    uint8_t *px = b + 16;
    for (int i = 0; i < IMG_N; i++) {
        float a = anamo_rng_uniform(&rng), c = anamo_rng_uniform(&rng);
        for (int y = 0; y < IMG_H; y++)
            for (int x = 0; x < IMG_W; x++)
                *px++ = (uint8_t)(255.0f * (0.5f * a * (float)x / (IMG_W - 1) +
                                            0.5f * c * (float)y / (IMG_H - 1)));
    }
    write_bytes(path, b, keep < size ? keep : size);
    free(b);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

/* The config every run starts from; tests change it with --set. */
static void write_base_config(const fixture *fx)
{
    char text[2048];
    snprintf(text, sizeof text,
             "; test_cli's base config: a 16-8-4-8-16 autoencoder on two bumps\n"
             "[data]\ntrain = %s\ntest = %s\n\n"
             "[model]\nencoder = linear 8, relu, linear 4, relu\n"
             "decoder = linear 8, relu, linear 16, sigmoid\ninit = he\nseed = 0\n\n"
             "[train]\nepochs = %d\nbatch = %d\nlog_every = %d\nseed = 0\n\n"
             "[joint]\nlr = 1e-2\n\n"
             "[nam]\ndecoder_lr = 1e-2\nencoder_lr = 1e-2\n",
             fx->train, fx->test, TRAIN_EPOCHS, BATCH, LOG_EVERY);
    write_text(fx->config, text);
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (find_anamo_bin(fx->bin, sizeof fx->bin, "test_cli") != 0) {
        free(fx);
        return -1;
    }
    if (make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_cli_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    in_dir(fx, "train.npy", fx->train);
    in_dir(fx, "test.npy", fx->test);
    in_dir(fx, "images.idx", fx->images);
    in_dir(fx, "base.ini", fx->config);
    write_npy(fx->train, N_TRAIN, 1);
    write_npy(fx->test, N_TEST, 2);
    write_idx(fx->images, 2051, SIZE_MAX);
    write_base_config(fx);
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

/* The shared runs "joint" and "nam" of base.ini (trained once, by whichever test asks first). */
static void shared_run(fixture *fx, int nam, char *run_dir)
{
    in_dir(fx, nam ? "nam" : "joint", run_dir);
    if (fx->trained[nam])
        return;
    RUN_OK(fx, "train", fx->config, "-o", run_dir, "--set",
           nam ? "train.scheme=nam" : "train.scheme=joint");
    fx->trained[nam] = 1;
}

/* ---- 1. a tiny run, joint and nam --------------------------------------------------------- */

static void check_run_dir(const char *run, const char *scheme, double *weights_updated)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/config.ini", run);
    char *config = read_text(path, NULL);
    assert_non_null(config);
    char line[64];
    snprintf(line, sizeof line, "\nscheme = %s\n", scheme);
    assert_non_null(strstr(config, line));
    free(config);

    /* one metrics row per LOG_EVERY iterations: N_TRAIN / BATCH iterations an epoch */
    csv m;
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    csv_read(path, &m);
    assert_int_equal(m.ncols, 9);
    assert_int_equal(m.nrows, TRAIN_EPOCHS * (N_TRAIN / BATCH) / LOG_EVERY);
    assert_int_equal((int)csv_num(&m, m.nrows, "iteration"), TRAIN_EPOCHS * (N_TRAIN / BATCH));
    /* the block column: joint rows update both blocks; NAM's alternate, decoder first */
    const int nam = !strcmp(scheme, "nam");
    assert_string_equal(csv_cell(&m, 1, csv_col(&m, "block")), nam ? "decoder" : "both");
    assert_string_equal(csv_cell(&m, m.nrows, csv_col(&m, "block")), nam ? "encoder" : "both");
    csv_free(&m);

    csv e;
    snprintf(path, sizeof path, "%s/epochs.csv", run);
    csv_read(path, &e);
    assert_int_equal(e.nrows, TRAIN_EPOCHS);
    for (int r = 1; r <= e.nrows; r++)
        assert_int_equal((int)csv_num(&e, r, "epoch"), r);
    double first = csv_num(&e, 1, "train_loss"), last = csv_num(&e, e.nrows, "train_loss");
    if (!(last <= first / MIN_LOSS_FALL))
        fail_msg("%s: train loss fell from %g to %g, less than %g×", run, first, last,
                 MIN_LOSS_FALL);
    double last_test_mse = csv_num(&e, e.nrows, "test_mse");
    csv_free(&e);

    snprintf(path, sizeof path, "%s/model.safetensors", run);
    assert_true(exists(path));

    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *s = read_json(path);
    const cJSON *sch = cJSON_GetObjectItemCaseSensitive(s, "scheme");
    assert_true(cJSON_IsString(sch));
    assert_string_equal(sch->valuestring, scheme);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, "diverged")));
    assert_int_equal((int)json_number(s, "epochs", NULL), TRAIN_EPOCHS);
    assert_int_equal((int)json_number(s, "encoder_params", NULL), ENC_PARAMS);
    assert_int_equal((int)json_number(s, "decoder_params", NULL), DEC_PARAMS);
    assert_int_equal((int)json_number(s, "test", "samples"), N_TEST);
    assert_int_equal((int)json_number(s, "train", "samples"), N_TRAIN);
    /* the final model is the last epoch's: epochs.csv prints its test MSE to 8 digits */
    double mse = json_number(s, "test", "mse");
    assert_true(isfinite(mse) && mse > 0.0);
    assert_true(fabs(mse - last_test_mse) <= 1e-7 * mse);
    *weights_updated = json_number(s, "weights_updated_per_epoch", NULL);
    /* beside samples/s, what they were measured on: the BLAS kernel the run really used */
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(s, "machine");
    const cJSON *kernel = cJSON_GetObjectItemCaseSensitive(mc, "blas_kernel");
    assert_true(cJSON_IsString(kernel) && kernel->valuestring[0]);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(mc, "cpu_features")));
    assert_true(json_number(s, "machine", "threads") >= 1);
    cJSON_Delete(s);
}

static void test_train_joint_and_nam(void **state)
{
    fixture *fx = *state;
    char joint[PATH_CAP], nam[PATH_CAP];
    shared_run(fx, 0, joint);
    shared_run(fx, 1, nam);
    double w_joint, w_nam;
    check_run_dir(joint, "joint", &w_joint);
    check_run_dir(nam, "nam", &w_nam);
    /* Joint steps move every parameter each epoch; a NAM epoch (one phase per epoch, an even
     * number of epochs) moves one block, so on average (enc + dec) / 2. A parameter whose
     * gradient stays zero a whole epoch (into a dead unit) would not move: allow 5% less. */
    const double all = ENC_PARAMS + DEC_PARAMS;
    assert_true(w_joint <= all && w_joint >= 0.95 * all);
    assert_true(w_nam <= all / 2 && w_nam >= 0.95 * all / 2);
    assert_true(fabs(w_nam / w_joint - 0.5) <= 0.05 * 0.5 + 1e-12);
}

/* ---- 2. a reloaded checkpoint gives bit-identical codes ----------------------------------- */

static void test_encode_bit_identical(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], a[PATH_CAP], b[PATH_CAP], ckpt[PATH_CAP];
    shared_run(fx, 0, run);
    in_dir(fx, "codes_a.npy", a);
    in_dir(fx, "codes_b.npy", b);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    RUN_OK(fx, "encode", run, "--data", fx->test, "-o", a);
    RUN_OK(fx, "encode", ckpt, "--data", fx->test, "-o", b); /* MODEL as the file itself */
    size_t na, nb;
    char *bytes_a = read_text(a, &na), *bytes_b = read_text(b, &nb);
    assert_non_null(bytes_a);
    assert_non_null(bytes_b);
    assert_int_equal(na, nb);
    assert_memory_equal(bytes_a, bytes_b, na);
    free(bytes_a);
    free(bytes_b);

    /* the same codes computed here, through the library */
    anamo_err err = {0};
    anamo_model *m = NULL;
    anamo_dataset ds = {0}, codes = {0};
    if (anamo_checkpoint_load_model(ckpt, N_TEST, &m, &err) ||
        anamo_npy_read(fx->test, &ds, &err) || anamo_npy_read(a, &codes, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(anamo_model_code_dim(m), CODE_DIM);
    assert_int_equal(codes.dtype, ANAMO_F32);
    assert_int_equal(codes.n, N_TEST);
    assert_int_equal(codes.dim, CODE_DIM);
    float *mine = malloc((size_t)N_TEST * CODE_DIM * sizeof *mine);
    assert_non_null(mine);
    if (anamo_model_encode(m, &ds, 0, N_TEST, mine, &err))
        fail_msg("%s", err.msg);
    assert_memory_equal(mine, codes.data, (size_t)N_TEST * CODE_DIM * sizeof *mine);
    free(mine);
    anamo_dataset_free(&codes);
    anamo_dataset_free(&ds);
    anamo_model_free(m);
}

/* ---- 3. a resumed run equals the unsplit run ---------------------------------------------- */

static int is_state_tensor(const char *name)
{
    return !strncmp(name, "encoder.", 8) || !strncmp(name, "decoder.", 8) ||
           !strncmp(name, "optim.", 6);
}

/* Every weight and optimizer tensor, bit for bit; the progress except the clocks; every
 * epochs.csv cell except the seconds. */
static void expect_same_run(const char *a_dir, const char *b_dir)
{
    char pa[PATH_CAP], pb[PATH_CAP];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a_dir);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b_dir);
    anamo_err err = {0};
    st_file *fa = NULL, *fb = NULL;
    if (st_open(pa, &fa, &err) || st_open(pb, &fb, &err))
        fail_msg("%s", err.msg);
    int na = 0, nb = 0;
    for (int i = 0; i < st_count(fa); i++) {
        const st_tensor *ta = st_at(fa, i);
        if (!is_state_tensor(ta->name))
            continue;
        na++;
        const st_tensor *tb = st_find(fb, ta->name);
        if (!tb)
            fail_msg("%s has %s, %s does not", pa, ta->name, pb);
        assert_int_equal(ta->dtype, tb->dtype);
        assert_int_equal(ta->ndim, tb->ndim);
        assert_memory_equal(ta->shape, tb->shape, sizeof ta->shape[0] * (size_t)ta->ndim);
        assert_int_equal(ta->nbytes, tb->nbytes);
        if (memcmp(ta->data, tb->data, ta->nbytes))
            fail_msg("%s: tensor %s differs from %s's", pb, ta->name, pa);
    }
    for (int i = 0; i < st_count(fb); i++)
        nb += is_state_tensor(st_at(fb, i)->name);
    assert_int_equal(na, nb);
    assert_int_equal(na, 4 + 4 + 2); /* 2 linear layers × (weight, bias) per block, 2 states */

    cJSON *ja = cJSON_Parse(st_meta_get(fa, "anamo.progress"));
    cJSON *jb = cJSON_Parse(st_meta_get(fb, "anamo.progress"));
    assert_non_null(ja);
    assert_non_null(jb);
    const cJSON *item;
    cJSON_ArrayForEach(item, ja) {
        /* times differ from run to run; everything else must not */
        if (!strcmp(item->string, "elapsed") || !strcmp(item->string, "epoch_seconds"))
            continue;
        if (!cJSON_IsNumber(item)) { /* e.g. the schedules' states: compare as JSON text */
            char *ta = cJSON_PrintUnformatted(item);
            char *tb = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(jb, item->string));
            if (!ta || !tb || strcmp(ta, tb))
                fail_msg("progress %s: %s unsplit, %s resumed", item->string, ta, tb);
            cJSON_free(ta);
            cJSON_free(tb);
            continue;
        }
        if (json_number(jb, item->string, NULL) != item->valuedouble)
            fail_msg("progress %s: %g unsplit, %g resumed", item->string, item->valuedouble,
                     json_number(jb, item->string, NULL));
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    st_close(fa);
    st_close(fb);

    csv ea, eb;
    snprintf(pa, sizeof pa, "%s/epochs.csv", a_dir);
    snprintf(pb, sizeof pb, "%s/epochs.csv", b_dir);
    csv_read(pa, &ea);
    csv_read(pb, &eb);
    assert_int_equal(ea.nrows, eb.nrows);
    assert_int_equal(ea.ncols, eb.ncols);
    int seconds = csv_col(&ea, "seconds");
    for (int r = 0; r <= ea.nrows; r++)
        for (int j = 0; j < ea.ncols; j++)
            if (j != seconds && strcmp(csv_cell(&ea, r, j), csv_cell(&eb, r, j)))
                fail_msg("%s row %d column %s: '%s' unsplit, '%s' resumed", pb, r,
                         csv_cell(&ea, 0, j), csv_cell(&ea, r, j), csv_cell(&eb, r, j));
    csv_free(&ea);
    csv_free(&eb);
}

/* Trains name-A for 4 epochs at once and name-B in pieces ending at splits[0], splits[1], ...
 * (the last split must be 4), then compares them. extra: up to 8 more --set assignments. */
static void split_vs_unsplit(fixture *fx, const char *name, const int *splits, int nsplits,
                             const char *const *extra)
{
    char a[PATH_CAP], b[PATH_CAP], tag[64];
    snprintf(tag, sizeof tag, "%s-A", name);
    in_dir(fx, tag, a);
    snprintf(tag, sizeof tag, "%s-B", name);
    in_dir(fx, tag, b);
    for (int piece = -1; piece < nsplits; piece++) {
        char epochs[32];
        snprintf(epochs, sizeof epochs, "train.epochs=%d", piece < 0 ? 4 : splits[piece]);
        const char *args[MAX_ARGS + 1];
        int n = 0;
        args[n++] = "train";
        if (piece <= 0) { /* a fresh run from base.ini: A, or B's first piece */
            args[n++] = fx->config;
            args[n++] = "-o";
            args[n++] = piece < 0 ? a : b;
            args[n++] = "--set";
            args[n++] = "train.threads=1";
            for (int i = 0; extra[i]; i++) {
                args[n++] = "--set";
                args[n++] = extra[i];
            }
        } else { /* B's config.ini holds everything; only the budget grows */
            args[n++] = "--resume";
            args[n++] = b;
        }
        args[n++] = "--set";
        args[n++] = epochs;
        args[n] = NULL;
        cli_result r = run_argv(fx, args);
        expect_ok(&r, name);
    }
    expect_same_run(a, b);
}

static void test_resume_equals_unsplit(void **state)
{
    fixture *fx = *state;
    static const int halves[] = {2, 4}, thirds[] = {1, 3, 4};
    /* joint, and NAM split at a phase boundary (one epoch per phase) */
    split_vs_unsplit(fx, "resume-joint", halves, 2,
                     (const char *const[]){"train.scheme=joint", NULL});
    split_vs_unsplit(fx, "resume-nam", halves, 2, (const char *const[]){"train.scheme=nam", NULL});
    /* NAM with two-epoch phases, split inside the decoder phase (after 1 epoch, its cached codes
     * must be rebuilt) and inside the encoder phase (after 3) */
    split_vs_unsplit(fx, "resume-nam-midphase", thirds, 3,
                     (const char *const[]){"train.scheme=nam", "nam.epochs_per_phase=2", NULL});
    /* the same through explicit [phase NAME] sections, the encoder phase on larger batches */
    split_vs_unsplit(fx, "resume-phases", thirds, 3,
                     (const char *const[]){"train.scheme=nam", "nam.phases=dec, enc",
                                           "phase dec.block=decoder", "phase dec.lr=1e-2",
                                           "phase dec.epochs=2", "phase enc.block=encoder",
                                           "phase enc.lr=1e-2", "phase enc.epochs=2",
                                           "phase enc.batch=32", NULL});
}

/* ---- 4. bad input ------------------------------------------------------------------------- */

/* anamo args must exit with code (not a signal), print nothing on stdout and exactly one line
 * on stderr holding every fragment, and leave out_dir uncreated. */
static void expect_rejected(const fixture *fx, const char *const *args, int code,
                            const char *out_dir, const char *const *fragments)
{
    cli_result r = run_argv(fx, args);
    char what[4 * PATH_CAP] = "anamo";
    for (int i = 0; args[i]; i++)
        snprintf(what + strlen(what), sizeof what - strlen(what), " %s", args[i]);
    if (r.signal)
        fail_msg("%s: killed by signal %d", what, r.signal);
    if (r.code != code)
        fail_msg("%s: exit %d, expected %d; stderr:\n%s", what, r.code, code, r.err);
    const char *nl = strchr(r.err, '\n');
    if (!nl || nl[1])
        fail_msg("%s: stderr is not exactly one line:\n%s", what, r.err);
    if (r.out[0])
        fail_msg("%s: unexpected stdout:\n%s", what, r.out);
    for (int i = 0; fragments[i]; i++)
        if (!strstr(r.err, fragments[i]))
            fail_msg("%s: message does not mention '%s': %s", what, fragments[i], r.err);
    if (exists(out_dir))
        fail_msg("%s: %s was created", what, out_dir);
    cli_free(&r);
}

static void test_bad_input(void **state)
{
    fixture *fx = *state;
    char trunc[PATH_CAP], magic[PATH_CAP], unknown[PATH_CAP], badval[PATH_CAP], missing[PATH_CAP],
        nocfg[PATH_CAP], cfgdir[PATH_CAP], out[PATH_CAP];
    char set_trunc[PATH_CAP + 16], set_magic[PATH_CAP + 16], set_missing[PATH_CAP + 16];
    in_dir(fx, "truncated.idx", trunc);
    in_dir(fx, "labels-magic.idx", magic);
    in_dir(fx, "unknown-key.ini", unknown);
    in_dir(fx, "bad-value.ini", badval);
    in_dir(fx, "no-such-data.npy", missing);
    in_dir(fx, "no-such-config.ini", nocfg);
    in_dir(fx, "config-dir.ini", cfgdir);
    in_dir(fx, "rejected/run", out); /* parent and child must both stay uncreated */
    snprintf(set_trunc, sizeof set_trunc, "data.train=%s", trunc);
    snprintf(set_magic, sizeof set_magic, "data.train=%s", magic);
    snprintf(set_missing, sizeof set_missing, "data.train=%s", missing);
    write_idx(trunc, 2051, 100);      /* header and 84 of 800 pixel bytes */
    write_idx(magic, 2049, SIZE_MAX); /* a labels magic on an images file */
    /* the fault sits on line 4 of each */
    write_text(unknown, "; unknown key\n[train]\nepochs = 2\nbogus_key = 1\n");
    write_text(badval, "; bad value\n[train]\nbatch = 8\nepochs = abc\n");
    assert_int_equal(mkdir(cfgdir, 0700), 0);
    char out_parent[PATH_CAP];
    in_dir(fx, "rejected", out_parent);

    /* data faults are runtime errors (exit 1); config and --set faults are exit 2 */
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set", set_trunc,
                                          "--set", "data.test=", NULL},
                    1, out, (const char *const[]){trunc, "offset 16", NULL});
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set", set_magic,
                                          "--set", "data.test=", NULL},
                    1, out, (const char *const[]){magic, "magic", "2049", NULL});
    expect_rejected(fx, (const char *const[]){"train", unknown, "-o", out, NULL}, 2, out,
                    (const char *const[]){"unknown-key.ini:4", "bogus_key", NULL});
    expect_rejected(fx, (const char *const[]){"train", badval, "-o", out, NULL}, 2, out,
                    (const char *const[]){"bad-value.ini:4", "epochs", "abc", NULL});
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set", set_missing,
                                          NULL},
                    1, out, (const char *const[]){missing, NULL});
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set",
                                          "nosuchsection.key=1", NULL},
                    2, out, (const char *const[]){"nosuchsection", NULL});
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set",
                                          "train.epochs=abc", NULL},
                    2, out, (const char *const[]){"epochs", "abc", NULL});
    expect_rejected(fx, (const char *const[]){"train", nocfg, "-o", out, NULL}, 1, out,
                    (const char *const[]){nocfg, NULL});
    expect_rejected(fx, (const char *const[]){"train", cfgdir, "-o", out, NULL}, 1, out,
                    (const char *const[]){cfgdir, NULL});
    assert_false(exists(out_parent));
}

/* Messages state the limits themselves, and print bytes that are not printable UTF-8 escaped
 * (a config's or a path's bytes must not drive the terminal). */
static void test_messages_limits_and_escapes(void **state)
{
    fixture *fx = *state;
    char huge[PATH_CAP], latin1[PATH_CAP], out[PATH_CAP];
    in_dir(fx, "huge-epochs.ini", huge);
    in_dir(fx, "latin1.ini", latin1);
    in_dir(fx, "rejected-msg", out);
    write_text(huge, "[train]\nepochs = 1e99\n");
    write_text(latin1, "[train]\nscheme = caf\xe9\n");
    expect_rejected(fx, (const char *const[]){"train", huge, "-o", out, NULL}, 2, out,
                    (const char *const[]){"epochs", "1e99", "from 1e-09 to 1000000000", NULL});
    /* a value with its own escape-looking text stays as typed; the bare byte 0xe9 is escaped */
    expect_rejected(fx, (const char *const[]){"train", latin1, "-o", out, NULL}, 2, out,
                    (const char *const[]){"caf\\xe9", NULL});
    cli_result r = RUN(fx, "train", latin1, "-o", out);
    assert_null(strchr(r.err, 0xe9 - 256)); /* the raw byte never reaches stderr */
    cli_free(&r);
    expect_rejected(fx,
                    (const char *const[]){"train", fx->config, "-o", out, "--set", "train.batch=0",
                                          NULL},
                    2, out, (const char *const[]){"from 1 to 1048576", NULL});
}

/* ---- 5. eval and reconstruct ----------------------------------------------------------------- */

static void test_eval_matches_summary(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], path[PATH_CAP];
    shared_run(fx, 1, run);
    cli_result r = RUN(fx, "eval", run, "--data", fx->test);
    assert_int_equal(r.code, 0);
    cJSON *e = cJSON_Parse(r.out);
    if (!e || !cJSON_IsObject(e))
        fail_msg("eval printed no JSON object:\n%s", r.out);
    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *s = read_json(path);
    assert_int_equal((int)json_number(e, "samples", NULL), N_TEST);
    /* The same weights on the same data, both printed with 17 digits; but training evaluates
     * in chunks of its batch size (16) and eval in chunks of 256, and sgemm blocks and sums
     * differently for each, which moves float32 results by ~1e-7 relative: 1e-6 allows that
     * and nothing more. */
    double want = json_number(s, "test", "mse"), got = json_number(e, "mse", NULL);
    if (!(fabs(got - want) <= 1e-6 * want))
        fail_msg("eval mse %.17g, summary test mse %.17g", got, want);
    want = json_number(s, "test", "code_l1"), got = json_number(e, "code_l1", NULL);
    assert_true(fabs(got - want) <= 1e-6 * want);
    cJSON_Delete(s);
    cJSON_Delete(e);
    cli_free(&r);
}

/* A PNG at path whose size is that of a grid of count tiles of IMG_H × IMG_W, cols a row, each
 * row of originals above its row of reconstructions, 1-pixel gaps around every tile, tiles
 * magnified by the integer k that brings their shorter side to at least 28 pixels (4 → 7×). */
static void expect_grid(const char *path, int count, int cols)
{
    static const uint8_t PNG_SIGNATURE[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n;
    char *bytes = read_text(path, &n);
    assert_non_null(bytes);
    assert_true(n > sizeof PNG_SIGNATURE);
    assert_memory_equal(bytes, PNG_SIGNATURE, sizeof PNG_SIGNATURE);
    free(bytes);
    int w = 0, h = 0, comp = 0;
    assert_int_equal(stbi_info(path, &w, &h, &comp), 1);
    const int rows = (count + cols - 1) / cols;
    const int side = IMG_H < IMG_W ? IMG_H : IMG_W, k = (28 + side - 1) / side;
    assert_int_equal(w, 1 + cols * (IMG_W * k + 1));
    assert_int_equal(h, 1 + rows * 2 * (IMG_H * k + 1));
    assert_int_equal(comp, 1);
}

static void test_reconstruct_png(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], png[PATH_CAP], set_train[PATH_CAP + 16], set_test[PATH_CAP + 16];
    in_dir(fx, "images-run", run);
    snprintf(set_train, sizeof set_train, "data.train=%s", fx->images);
    snprintf(set_test, sizeof set_test, "data.test=%s", fx->images);
    RUN_OK(fx, "train", fx->config, "-o", run, "--set", set_train, "--set", set_test, "--set",
           "train.epochs=2", "--set", "model.decoder=linear 8, relu, linear 20, sigmoid");
    in_dir(fx, "grid.png", png);
    RUN_OK(fx, "reconstruct", run, "--data", fx->images, "-o", png);
    expect_grid(png, 32, 8); /* the defaults: 32 samples, 8 a row */
    RUN_OK(fx, "reconstruct", run, "--data", fx->images, "-o", png, "--count", "10", "--cols", "3");
    expect_grid(png, 10, 3);
}

static void test_help_and_usage(void **state)
{
    fixture *fx = *state;
    cli_result r = RUN(fx, "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage: anamo"));
    /* what test_bad_input relies on is documented */
    assert_non_null(strstr(r.out, "1 runtime error"));
    assert_non_null(strstr(r.out, "2 usage or configuration error"));
    cli_free(&r);
    r = RUN(fx, "train", "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage: anamo train"));
    cli_free(&r);
    r = run_argv(fx, (const char *const[]){NULL});
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "usage: anamo"));
    cli_free(&r);
    r = RUN(fx, "nosuchverb");
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "nosuchverb"));
    cli_free(&r);
}

/* anamo --version succeeds and prints `line` as one of its lines. */
static void expect_version_line(fixture *fx, const char *line)
{
    cli_result r = RUN(fx, "--version");
    assert_int_equal(r.code, 0);
    char want[256];
    snprintf(want, sizeof want, "%s\n", line);
    assert_non_null(strstr(r.out, want));
    cli_free(&r);
}

/* --version names the spin count idle OpenMP threads wait with and who chose it: anamo's 1000
 * when the user set neither GOMP_SPINCOUNT nor OMP_WAIT_POLICY, the user's own when set. */
static void test_version_names_the_wait(void **state)
{
    fixture *fx = *state;
    char *spin = getenv("GOMP_SPINCOUNT") ? strdup(getenv("GOMP_SPINCOUNT")) : NULL;
    char *policy = getenv("OMP_WAIT_POLICY") ? strdup(getenv("OMP_WAIT_POLICY")) : NULL;
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("ANAMO_OMP_ENV_SET"); /* so that anamo sets its own, as from a shell */
    unsetenv("ANAMO_SPIN_CHOSEN");
    expect_version_line(fx, "openmp wait: GOMP_SPINCOUNT=1000 (anamo's choice)");
    /* the user's own spin, even beside the mark an anamo above this process left */
    setenv("GOMP_SPINCOUNT", "4321", 1);
    setenv("ANAMO_SPIN_CHOSEN", "1000", 1);
    expect_version_line(fx, "openmp wait: GOMP_SPINCOUNT=4321 (yours)");
    unsetenv("GOMP_SPINCOUNT");
    unsetenv("ANAMO_SPIN_CHOSEN");
    setenv("OMP_WAIT_POLICY", "passive", 1);
    expect_version_line(fx, "openmp wait: OMP_WAIT_POLICY=passive (yours)");
    unsetenv("OMP_WAIT_POLICY");
    if (spin)
        setenv("GOMP_SPINCOUNT", spin, 1);
    if (policy)
        setenv("OMP_WAIT_POLICY", policy, 1);
    free(spin);
    free(policy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_joint_and_nam),
        cmocka_unit_test(test_encode_bit_identical),
        cmocka_unit_test(test_resume_equals_unsplit),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_messages_limits_and_escapes),
        cmocka_unit_test(test_eval_matches_summary),
        cmocka_unit_test(test_reconstruct_png),
        cmocka_unit_test(test_help_and_usage),
        cmocka_unit_test(test_version_names_the_wait),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
