/* test_reliability.c — issue 6, "Reliability": what anamo does when its inputs are bad, when it
 * is killed, when it is resumed and when training blows up. Runs $ANAMO_BIN (fork/exec, stdout
 * and stderr to files) and the library's readers in a fresh directory under /tmp.
 *
 *   1. bad inputs, one table row each (file bytes, expected status and exit code, expected
 *      message fragments), for every reader — IDX images and labels, NPY, CSV, CIFAR-10,
 *      safetensors, checkpoints, INI configs: truncated at several offsets, wrong magic, dimensions that
 *      overflow, headers pointing past the end, a config with a typo, an empty file, a
 *      directory in place of a file. Each must fail with one line naming the file and (for a
 *      byte or text position) the offset or line, exit 1 (2 for config errors, as README says),
 *      create nothing, and never ask for more memory than the file justifies: the CLI runs
 *      under a 1 GiB address-space limit (ASan builds: an allocation limit instead);
 *   2. SIGKILL at random moments of a run that writes a checkpoint every epoch, resuming after
 *      each kill: whatever model.safetensors survives is complete, loads, is at an epoch's end,
 *      never goes back, and equals bit for bit an uninterrupted run stopped at that epoch;
 *   3. SIGTERM mid-epoch writes a checkpoint and says how to resume; the resumed run equals
 *      the unsplit one (joint and ANAMO); a SIGKILL in the first epoch, after a mid-epoch
 *      checkpoint, leaves logs that --resume and compare take up (issue 15);
 *   4. ANAMO resumed at two split points equals the unsplit run (test_cli does joint and NAM);
 *   5. divergence (a huge learning rate) stops with exit 1 and the documented message naming
 *      phase, epoch, iteration and block, records it in summary.json and keeps the last good
 *      checkpoint, which equals an uninterrupted run of the epochs before.
 * The truths are independent of the code under test: bytes and messages written here by hand,
 * uninterrupted runs for interrupted ones. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "anamo.h"
#include "data/data.h"
#include "io/safetensors.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define PATH_CAP 1024
#define MAX_ARGS 32
#define RUN_TIMEOUT_S 120.0 /* any one invocation here takes well under a second */
/* Bad inputs are at most 60 KB; 1 GiB of address space is ten times what anamo needs to start
 * and reject them, and less than any hostile header below asks for (1.6 to 4 GB). ASan reserves
 * terabytes of shadow, so under it one allocation is limited instead (a failed one returns
 * NULL, and anamo says it is out of memory, which the cases do not expect). */
#define BAD_INPUT_AS_LIMIT ((rlim_t)1 << 30)
#define ASAN_LIMITS "allocator_may_return_null=1:max_allocation_size_mb=256"

/* The kill test: KILLS runs killed after U(0, KILL_MAX_S) seconds each; every run writes a
 * checkpoint per epoch (~1 ms each), so most kills land in or between checkpoint writes. */
#define KILLS 40
#define KILL_MAX_S 0.2
#define KILL_REFERENCES 6     /* surviving epochs compared with uninterrupted runs */
#define KILL_EPOCHS "1000000" /* never reached */

extern char **environ;

typedef struct fixture {
    char dir[PATH_CAP];      /* everything this test writes goes in here */
    char bin[PATH_CAP];      /* the anamo executable */
    char tiny[PATH_CAP];     /* tiny.ini: 100→10→100 on the built-in halves images */
    char env[PATH_CAP + 16]; /* one more NAME=VALUE for the children, when not empty */
} fixture;

/* ---- files -------------------------------------------------------------------------------- */

static void in_dir(const fixture *fx, const char *name, char *out)
{
    join_path(out, PATH_CAP, fx->dir, name);
}

static void write_text(const char *path, const char *text)
{
    write_bytes(path, text, strlen(text));
}

/* ---- running the CLI ---------------------------------------------------------------------- */

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The environment for a child: ours, with ASAN_OPTIONS extended by extra when given, and
 * more (NAME=VALUE) when not empty. */
static char **child_env(const char *extra, char *asan_buf, size_t cap, const char *more)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    const char *asan = getenv("ASAN_OPTIONS");
    /* `more` replaces an inherited variable of the same name (getenv finds the first) */
    const char *eq = more[0] ? strchr(more, '=') : NULL;
    size_t more_name = eq ? (size_t)(eq - more) + 1 : 0;
    for (size_t i = 0; i < n; i++) {
        if (extra && !strncmp(environ[i], "ASAN_OPTIONS=", 13))
            continue;
        if (more_name && !strncmp(environ[i], more, more_name))
            continue;
        env[k++] = environ[i];
    }
    if (extra) {
        snprintf(asan_buf, cap, "ASAN_OPTIONS=%s%s%s", asan ? asan : "", asan ? ":" : "", extra);
        env[k++] = asan_buf;
    }
    if (more[0])
        env[k++] = (char *)more;
    env[k] = NULL;
    return env;
}

/* Starts anamo with args (NULL-terminated), stdout and stderr going to DIR/cli.stdout and
 * DIR/cli.stderr; limited: under the bad-input memory limit. */
static pid_t spawn(const fixture *fx, const char *const *args, int limited)
{
    char out_path[PATH_CAP], err_path[PATH_CAP], asan[512];
    in_dir(fx, "cli.stdout", out_path);
    in_dir(fx, "cli.stderr", err_path);
    const char *argv[TEST_CLI_MAX_ARGS + 2];
    cli_argv(fx->bin, args, argv);
#ifdef UNDER_ASAN
    char **env = child_env(limited ? ASAN_LIMITS : NULL, asan, sizeof asan, fx->env);
#else
    char **env = child_env(NULL, asan, sizeof asan, fx->env);
#endif
    /* emptied here, before the child starts: a caller that polls cli.stderr while the child
     * runs (test_sigterm_resume) must not read the previous run's output */
    write_bytes(out_path, "", 0);
    write_bytes(err_path, "", 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* only async-signal-safe calls between fork and exec */
        cli_child_output(out_path, err_path);
#ifndef UNDER_ASAN
        struct rlimit lim = {BAD_INPUT_AS_LIMIT, BAD_INPUT_AS_LIMIT};
        if (limited && setrlimit(RLIMIT_AS, &lim) != 0)
            _exit(126);
#endif
        execve(fx->bin, (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    return pid;
}

static cli_result run_argv(const fixture *fx, const char *const *args, int limited)
{
    return cli_wait(spawn(fx, args, limited), fx->bin, fx->dir, args[0], RUN_TIMEOUT_S);
}

#define RUN(fx, ...) run_argv((fx), (const char *const[]){__VA_ARGS__, NULL}, 0)

static void expect_ok(cli_result *r, const char *what)
{
    static char msg[4096]; /* the result is freed before failing: cmocka does not return */
    int bad = r->code != 0;
    if (bad)
        snprintf(msg, sizeof msg, "%s: exit %d, signal %d, stderr:\n%s", what, r->code, r->signal,
                 r->err);
    cli_free(r);
    if (bad)
        fail_msg("%s", msg);
}

#define RUN_OK(fx, ...)                       \
    do {                                      \
        cli_result r_ = RUN(fx, __VA_ARGS__); \
        expect_ok(&r_, #__VA_ARGS__);         \
    } while (0)

/* ---- checkpoints -------------------------------------------------------------------------- */

static int is_state_tensor(const char *name)
{
    return !strncmp(name, "encoder.", 8) || !strncmp(name, "decoder.", 8) ||
           !strncmp(name, "optim.", 6);
}

/* The checkpoint's anamo.progress, parsed (free with cJSON_Delete). */
static cJSON *progress_of(const st_file *f)
{
    const char *s = st_meta_get(f, "anamo.progress");
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (!o)
        fail_msg("%s: no parsable anamo.progress", st_path(f));
    return o;
}

static double progress_number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("anamo.progress: %s missing or not a number", key);
    return v->valuedouble;
}

/* The two checkpoints hold the same weights and optimizer states, bit for bit, and the same
 * progress apart from the clocks. */
static void expect_same_state(const char *pa, const char *pb)
{
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
        if (ta->dtype != tb->dtype || ta->nbytes != tb->nbytes ||
            memcmp(ta->data, tb->data, ta->nbytes))
            fail_msg("tensor %s: %s differs from %s", ta->name, pb, pa);
    }
    for (int i = 0; i < st_count(fb); i++)
        nb += is_state_tensor(st_at(fb, i)->name);
    assert_int_equal(na, nb);
    assert_true(na >= 4);
    cJSON *ja = progress_of(fa), *jb = progress_of(fb);
    const cJSON *item;
    cJSON_ArrayForEach(item, ja) {
        /* times differ from run to run, and a run that ended marks itself finished; nothing
         * else may differ */
        if (!strcmp(item->string, "elapsed") || !strcmp(item->string, "epoch_seconds") ||
            !strcmp(item->string, "finished"))
            continue;
        char *ta = cJSON_PrintUnformatted(item);
        char *tb = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(jb, item->string));
        if (!ta || !tb || strcmp(ta, tb))
            fail_msg("progress %s: %s in %s, %s in %s", item->string, ta, pa, tb ? tb : "none", pb);
        cJSON_free(ta);
        cJSON_free(tb);
    }
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    st_close(fa);
    st_close(fb);
}

/* Every weight of the checkpoint's model is finite. */
static void expect_finite_model(const char *path)
{
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(path, &f, &err))
        fail_msg("%s", err.msg);
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (t->dtype != ST_F32)
            continue;
        for (size_t k = 0; k < t->nbytes / 4; k++) {
            float v;
            memcpy(&v, (const uint8_t *)t->data + 4 * k, 4);
            if (!isfinite(v))
                fail_msg("%s: %s[%zu] = %g", path, t->name, k, v);
        }
    }
    st_close(f);
    anamo_model *m = NULL;
    if (anamo_checkpoint_load_model(path, 16, &m, &err))
        fail_msg("%s does not load: %s", path, err.msg);
    anamo_model_free(m);
}

/* ---- 1. bad inputs ------------------------------------------------------------------------ */

typedef enum reader { R_IDX, R_LABELS, R_NPY, R_CSV, R_CIFAR, R_ST, R_CKPT, R_CONFIG } reader;

typedef enum form {
    F_RAW,    /* bytes[0..len) */
    F_NPY,    /* an NPY 1.0 file whose header dict is bytes (padded as numpy pads it), then len
               data bytes */
    F_ST,     /* safetensors: the 8-byte length of the JSON in bytes, the JSON, len data bytes */
    F_CKPT,   /* a checkpoint made with st_write; len selects the fault (ckpt_faults) */
    F_BLANKS, /* CSV: a row of len zeros, len blank lines, then a row of one number */
    F_CIFAR,  /* len CIFAR-10 records, labels 0, 1, ..., the last one 10 when len is 3 */
    F_DIR,    /* a directory in place of the file */
    F_NONE    /* no file at all */
} form;

#define NO_CUT (-1L)
#define NOT_IN_PROCESS (-1)

typedef struct bad_case {
    const char *name; /* the file's name in the test directory */
    reader reader;
    form form;
    const char *bytes;
    size_t len;
    long cut;             /* keep the first cut bytes of the file, or NO_CUT */
    int gz;               /* gzip the file (before cutting) */
    int status;           /* the library reader's status; NOT_IN_PROCESS: CLI only (hostile
                           headers, which the library must refuse without a big allocation) */
    int exit_code;        /* anamo's exit code */
    const char *frags[4]; /* the message holds each, and the file's path */
} bad_case;

#define RAW(lit) F_RAW, lit, sizeof(lit) - 1
#define FMT ANAMO_ERR_FORMAT
#define IO ANAMO_ERR_IO

/* IDX images, 2 images of 3 × 4 bytes: magic 2051, then the dimensions, big-endian. */
#define IDX_HDR(n, r, c) "\0\0\10\3" n r c
#define U32_2 "\0\0\0\2"
#define U32_3 "\0\0\0\3"
#define U32_4 "\0\0\0\4"
#define PIXELS24 "abcdefghijklmnopqrstuvwx"
#define IDX_OK IDX_HDR(U32_2, U32_3, U32_4) PIXELS24
/* labels: magic 2049, count, then the bytes */
#define LABELS_OK "\0\0\10\1" U32_2 "\1\2"

/* NPY header dicts (F_NPY) */
#define NPY_U1_2x3 "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }"
#define NPY_DICT(descr, fortran, shape) \
    "{'descr': '" descr "', 'fortran_order': " fortran ", 'shape': " shape ", }"

/* safetensors JSON (F_ST): w [2, 2] at [0, 16), b [2] at [16, 24) */
#define ST_OK                                                             \
    "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}," \
    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}"
#define ST_ONE(dtype, shape, offsets) \
    "{\"a\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}}"

enum ckpt_fault { CK_NOT_ANAMO, CK_MISSING, CK_WRONG_SIZE, CK_HUGE_LAYER };

static const bad_case BAD_CASES[] = {
    /* IDX images: truncated at several offsets, trailing bytes, magic, dimensions */
    {"empty.idx", R_IDX, RAW(""), NO_CUT, 0, FMT, 1, {"empty file", NULL}},
    {"cut3.idx",
     R_IDX,
     RAW(IDX_OK),
     3,
     0,
     FMT,
     1,
     {"offset 0", "expected 16 bytes of IDX images header, found 3", NULL}},
    {"cut10.idx", R_IDX, RAW(IDX_OK), 10, 0, FMT, 1, {"offset 0", "found 10", NULL}},
    {"cut16.idx",
     R_IDX,
     RAW(IDX_OK),
     16,
     0,
     FMT,
     1,
     {"offset 16", "expected 24 bytes of images, found 0", NULL}},
    {"cut27.idx", R_IDX, RAW(IDX_OK), 27, 0, FMT, 1, {"offset 16", "found 11", NULL}},
    {"cut39.idx", R_IDX, RAW(IDX_OK), 39, 0, FMT, 1, {"offset 16", "found 23", NULL}},
    {"trailing.idx", R_IDX, RAW(IDX_OK "y"), NO_CUT, 0, FMT, 1, {"offset 40", "trailing", NULL}},
    {"labels-magic.idx",
     R_IDX,
     RAW(LABELS_OK),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 0", "magic number 2049", "labels file", NULL}},
    {"little-endian.idx",
     R_IDX,
     RAW("\3\10\0\0" U32_2 U32_3 U32_4),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 0", "little-endian", NULL}},
    {"zero-count.idx",
     R_IDX,
     RAW(IDX_HDR("\0\0\0\0", U32_3, U32_4)),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 4", "image count is 0", NULL}},
    {"rows-overflow.idx",
     R_IDX,
     RAW(IDX_HDR("\377\377\377\377", "\377\377\377\377", U32_4)),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 8", "rows 4294967295", NULL}},
    {"product-overflow.idx",
     R_IDX,
     RAW(IDX_HDR("\0\1\0\0", "\0\1\0\0", "\0\1\0\0")),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 12", "cols 65536", "limit", NULL}},
    /* a 16-byte header promising 4 GB (1000 × 2000 × 2000, under the 16 GiB cap) */
    {"hostile.idx",
     R_IDX,
     RAW(IDX_HDR("\0\0\3\350", "\0\0\7\320", "\0\0\7\320")),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"offset 16", "expected 4000000000 bytes of images, found 0", NULL}},
    {"hostile-gz.idx.gz",
     R_IDX,
     RAW(IDX_HDR("\0\0\3\350", "\0\0\7\320", "\0\0\7\320")),
     NO_CUT,
     1,
     NOT_IN_PROCESS,
     1,
     {"offset 16", "expected 4000000000 bytes of images, found 0", NULL}},
    {"cut-gzip.idx.gz", R_IDX, RAW(IDX_OK), 30, 1, FMT, 1, {"offset", NULL}},
    {"dir.idx", R_IDX, F_DIR, NULL, 0, NO_CUT, 0, IO, 1, {"is a directory", NULL}},
    {"missing.idx", R_IDX, F_NONE, NULL, 0, NO_CUT, 0, IO, 1, {"cannot open", NULL}},
    /* IDX labels, read beside a good images file */
    {"a-labels-idx1-ubyte",
     R_LABELS,
     RAW(IDX_OK),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 0", "magic number 2051", "images file", NULL}},
    {"b-labels-idx1-ubyte",
     R_LABELS,
     RAW(LABELS_OK),
     9,
     0,
     FMT,
     1,
     {"offset 8", "expected 2 bytes of labels, found 1", NULL}},
    {"c-labels-idx1-ubyte",
     R_LABELS,
     RAW("\0\0\10\1" U32_3 "\1\2\3"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"3 labels for the 2 images", NULL}},
    {"d-labels-idx1-ubyte", R_LABELS, RAW(""), NO_CUT, 0, FMT, 1, {"empty file", NULL}},
    /* NPY: preamble, header, data cut short; versions, dtypes, orders, shapes */
    {"empty.npy", R_NPY, RAW(""), NO_CUT, 0, FMT, 1, {"empty file", NULL}},
    {"cut5.npy",
     R_NPY,
     F_NPY,
     NPY_U1_2x3,
     6,
     5,
     0,
     FMT,
     1,
     {"offset 0", "expected 10 bytes of NPY preamble, found 5", NULL}},
    {"cut10.npy",
     R_NPY,
     F_NPY,
     NPY_U1_2x3,
     6,
     10,
     0,
     FMT,
     1,
     {"offset 10", "expected 118 bytes of header, found 0", NULL}},
    {"cut70.npy", R_NPY, F_NPY, NPY_U1_2x3, 6, 70, 0, FMT, 1, {"offset 10", "found 60", NULL}},
    {"cut128.npy",
     R_NPY,
     F_NPY,
     NPY_U1_2x3,
     6,
     128,
     0,
     FMT,
     1,
     {"offset 128", "expected 6 bytes of data, found 0", NULL}},
    {"cut131.npy", R_NPY, F_NPY, NPY_U1_2x3, 6, 131, 0, FMT, 1, {"offset 128", "found 3", NULL}},
    {"trailing.npy",
     R_NPY,
     F_NPY,
     NPY_U1_2x3,
     7,
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 134", "trailing", NULL}},
    {"magic.npy",
     R_NPY,
     RAW("\223NUMPX\1\0\0\0"),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 0", "not an NPY file", NULL}},
    {"version.npy",
     R_NPY,
     RAW("\223NUMPY\4\0\0\0"),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 6", "NPY version 4.0", NULL}},
    {"header-past-end.npy",
     R_NPY,
     RAW("\223NUMPY\1\0\377\377{'descr'"),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 10", "expected 65535 bytes of header, found 8", NULL}},
    {"header-huge.npy",
     R_NPY,
     RAW("\223NUMPY\2\0\0\0\0\200{}"),
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 8", "header length 2147483648", NULL}},
    {"syntax.npy",
     R_NPY,
     F_NPY,
     "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3) ",
     6,
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 128", "expected ',' or '}'", "end of header", NULL}},
    {"newline-key.npy",
     R_NPY,
     F_NPY,
     "{'de\nscr': '|u1', 'fortran_order': False}",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"unknown key", NULL}},
    {"missing-key.npy",
     R_NPY,
     F_NPY,
     "{'descr': '|u1', 'fortran_order': False}",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"missing key 'shape'", NULL}},
    {"fortran.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "True", "(2, 3)"),
     6,
     NO_CUT,
     0,
     FMT,
     1,
     {"fortran_order", NULL}},
    {"dtype.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<i8", "False", "(1,)"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"dtype '<i8'", NULL}},
    {"big-endian.npy",
     R_NPY,
     F_NPY,
     NPY_DICT(">f4", "False", "(1,)"),
     4,
     NO_CUT,
     0,
     FMT,
     1,
     {"big-endian", NULL}},
    {"zero-dim.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "False", "(0, 3)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"no elements", NULL}},
    {"scalar.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "False", "()"),
     1,
     NO_CUT,
     0,
     FMT,
     1,
     {"scalar", NULL}},
    {"five-dims.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "False", "(1, 1, 1, 1, 1)"),
     1,
     NO_CUT,
     0,
     FMT,
     1,
     {"at most 4 dimensions", NULL}},
    {"dim-64bit.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "False", "(99999999999999999999,)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"fits in 64 bits", NULL}},
    {"product-overflow.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<f4", "False", "(100000, 100000, 100000)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"limit", NULL}},
    /* the data of these three is added in make_case_file: the double 1e300, the float NaN at
     * element 1, the double -Inf; NaN or Inf would read as a run diverging at its first step */
    {"f8-too-big.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<f8", "False", "(1,)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"element 0", "does not fit in float32", NULL}},
    {"f4-nan.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<f4", "False", "(1, 2)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"element 1", "not a finite number", NULL}},
    {"f8-inf.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<f8", "False", "(1,)"),
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"element 0", "not a finite number", NULL}},
    {"hostile.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("|u1", "False", "(2000, 1000, 1000)"),
     0,
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"offset 128", "expected 2000000000 bytes of data, found 0", NULL}},
    {"hostile-f8.npy",
     R_NPY,
     F_NPY,
     NPY_DICT("<f8", "False", "(250000000, 2)"),
     0,
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"offset 128", "expected 4000000000 bytes of data, found 0", NULL}},
    {"dir.npy", R_NPY, F_DIR, NULL, 0, NO_CUT, 0, IO, 1, {"is a directory", NULL}},
    {"missing.npy", R_NPY, F_NONE, NULL, 0, NO_CUT, 0, IO, 1, {"cannot open", NULL}},
    /* CSV */
    {"empty.csv", R_CSV, RAW(""), NO_CUT, 0, FMT, 1, {"empty file", NULL}},
    {"blank.csv", R_CSV, RAW("\n \n\t\n"), NO_CUT, 0, FMT, 1, {"no data rows", NULL}},
    {"header-only.csv", R_CSV, RAW("a,b\n"), NO_CUT, 0, FMT, 1, {"no data rows", NULL}},
    {"cut.csv",
     R_CSV,
     RAW("1,2,3\n4,5,6\n"),
     9,
     0,
     FMT,
     1,
     {"line 2", "expected 3 columns, found 2", NULL}},
    {"ragged.csv",
     R_CSV,
     RAW("1,2,3\n4\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2", "expected 3 columns, found 1", NULL}},
    {"field.csv",
     R_CSV,
     RAW("1,2\n3,x\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2, column 2", "'x' is not a number", NULL}},
    {"nan.csv",
     R_CSV,
     RAW("1,2\nnan,1\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2, column 1", "not a finite number", NULL}},
    {"too-big.csv",
     R_CSV,
     RAW("1,2\n1,1e39\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2, column 2", "does not fit in float32", NULL}},
    {"empty-field.csv",
     R_CSV,
     RAW("1,2,3\n4,,6\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2, column 2", "empty field", NULL}},
    {"mixed.csv", R_CSV, RAW("1,2;3\n"), NO_CUT, 0, FMT, 1, {"line 1", "mixes", NULL}},
    {"carriage-return.csv",
     R_CSV,
     RAW("1,2\n3,4\r5\n"),
     NO_CUT,
     0,
     FMT,
     1,
     {"line 2, column 2", "not a number", NULL}},
    {"cut-gzip.csv.gz", R_CSV, RAW("1,2,3\n4,5,6\n7,8,9\n"), 25, 1, FMT, 1, {NULL}},
    {"dir.csv", R_CSV, F_DIR, NULL, 0, NO_CUT, 0, IO, 1, {"is a directory", NULL}},
    /* 60 KB whose 20000 columns and 20000 lines must not become 20000² floats (1.6 GB) */
    {"blank-lines.csv",
     R_CSV,
     F_BLANKS,
     NULL,
     20000,
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"line 20002", "expected 20000 columns, found 1", NULL}},
    /* CIFAR-10 batches (3073-byte records: a label, 3072 pixels), read as cifar10:test from a
     * data root of their own */
    {"empty", R_CIFAR, RAW(""), NO_CUT, 0, FMT, 1, {"empty file", NULL}},
    {"cut-record",
     R_CIFAR,
     F_CIFAR,
     NULL,
     2,
     3073 + 100,
     0,
     FMT,
     1,
     {"not a whole number of 3073-byte records", "record 1, at offset 3073", NULL}},
    {"bad-label",
     R_CIFAR,
     F_CIFAR,
     NULL,
     3,
     NO_CUT,
     0,
     FMT,
     1,
     {"offset 6146", "record 2 has label 10", NULL}},
    {"cut-gzip", R_CIFAR, F_CIFAR, NULL, 2, 40, 1, FMT, 1, {"offset", NULL}},
    {"dir", R_CIFAR, F_DIR, NULL, 0, NO_CUT, 0, IO, 1, {"is a directory", NULL}},
    /* safetensors: length, JSON, dtypes, shapes, offsets, overlaps, metadata */
    {"empty.safetensors", R_ST, RAW(""), NO_CUT, 0, FMT, 1, {"too short", NULL}},
    {"cut4.safetensors", R_ST, F_ST, ST_OK, 24, 4, 0, FMT, 1, {"too short", NULL}},
    {"cut8.safetensors",
     R_ST,
     F_ST,
     ST_OK,
     24,
     8,
     0,
     FMT,
     1,
     {"header length 112 exceeds file size 8", NULL}},
    {"cut60.safetensors",
     R_ST,
     F_ST,
     ST_OK,
     24,
     60,
     0,
     FMT,
     1,
     {"header length 112 exceeds file size 60", NULL}},
    {"cut120.safetensors",
     R_ST,
     F_ST,
     ST_OK,
     24,
     120,
     0,
     FMT,
     1,
     {"tensor 'w'", "lie outside the data section of 0 bytes", NULL}},
    {"cut140.safetensors",
     R_ST,
     F_ST,
     ST_OK,
     24,
     140,
     0,
     FMT,
     1,
     {"tensor 'b'", "data_offsets [16, 24] lie outside the data section of 20 bytes", NULL}},
    {"length-huge.safetensors",
     R_ST,
     RAW("\0\0\0\0\0\0\0\200{}"),
     NO_CUT,
     0,
     FMT,
     1,
     {"header length 9223372036854775808 exceeds file size 10", NULL}},
    {"json.safetensors", R_ST, F_ST, "{\"a\":", 0, NO_CUT, 0, FMT, 1, {"not valid JSON", NULL}},
    {"json-array.safetensors",
     R_ST,
     F_ST,
     "[1,2]",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"not a JSON object", NULL}},
    {"json-trailing.safetensors",
     R_ST,
     F_ST,
     "{}x",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"trailing bytes at byte 2", NULL}},
    {"dtype.safetensors",
     R_ST,
     F_ST,
     ST_ONE("F16", "[2]", "[0,4]"),
     4,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "unknown dtype 'F16'", NULL}},
    {"shape-mismatch.safetensors",
     R_ST,
     F_ST,
     ST_ONE("F32", "[3]", "[0,8]"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "do not match shape [3]", NULL}},
    {"dim-huge.safetensors",
     R_ST,
     F_ST,
     ST_ONE("U8", "[1099511627777]", "[0,1]"),
     1,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "shape[0]", NULL}},
    {"shape-overflow.safetensors",
     R_ST,
     F_ST,
     ST_ONE("F32", "[1099511627776,1099511627776]", "[0,8]"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "2^60", NULL}},
    {"offsets-past-end.safetensors",
     R_ST,
     F_ST,
     ST_ONE("F32", "[4]", "[0,16]"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "data_offsets [0, 16] lie outside the data section of 8", NULL}},
    {"offsets-negative.safetensors",
     R_ST,
     F_ST,
     ST_ONE("F32", "[2]", "[-8,0]"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "non-negative", NULL}},
    {"offsets-reversed.safetensors",
     R_ST,
     F_ST,
     ST_ONE("U8", "[0]", "[8,0]"),
     8,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'a'", "lie outside", NULL}},
    {"overlap.safetensors",
     R_ST,
     F_ST,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     12,
     NO_CUT,
     0,
     FMT,
     1,
     {"'a' [0, 8] and 'b' [4, 12] overlap", NULL}},
    {"duplicate.safetensors",
     R_ST,
     F_ST,
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
     "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
     2,
     NO_CUT,
     0,
     FMT,
     1,
     {"'a' appears twice", NULL}},
    {"metadata.safetensors",
     R_ST,
     F_ST,
     "{\"__metadata__\":{\"k\":1}}",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"metadata 'k' is not a string", NULL}},
    {"newline-name.safetensors",
     R_ST,
     F_ST,
     "{\"a\\nb\":{\"dtype\":\"X\"}}",
     0,
     NO_CUT,
     0,
     FMT,
     1,
     {"unknown dtype", NULL}},
    /* anamo eval takes a directory for a run directory, and looks for model.safetensors in it */
    {"dir.safetensors", R_ST, F_DIR, NULL, 0, NO_CUT, 0, IO, 1, {NULL}},
    {"missing.safetensors", R_ST, F_NONE, NULL, 0, NO_CUT, 0, IO, 1, {"cannot open", NULL}},
    /* checkpoints: valid safetensors that are not what a model needs */
    {"not-anamo.safetensors",
     R_CKPT,
     F_CKPT,
     NULL,
     CK_NOT_ANAMO,
     NO_CUT,
     0,
     FMT,
     1,
     {"not an anamo checkpoint", NULL}},
    {"missing-tensor.safetensors",
     R_CKPT,
     F_CKPT,
     NULL,
     CK_MISSING,
     NO_CUT,
     0,
     FMT,
     1,
     {"tensor 'encoder.0.weight' is missing", NULL}},
    {"wrong-size.safetensors",
     R_CKPT,
     F_CKPT,
     NULL,
     CK_WRONG_SIZE,
     NO_CUT,
     0,
     FMT,
     1,
     {"encoder.0.bias", NULL}},
    /* metadata claiming a 2.5-million-unit layer over tensors of 10: the checkpoint must be
     * refused for its tensors before the claimed model (gigabytes) is allocated */
    {"huge-layer.safetensors",
     R_CKPT,
     F_CKPT,
     NULL,
     CK_HUGE_LAYER,
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     1,
     {"encoder.0.weight", NULL}},
    /* configs: exit 2 for what is wrong in them, 1 for files that cannot be read */
    {"typo.ini",
     R_CONFIG,
     RAW("[train]\nepohcs = 2\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"typo.ini:2", "unknown key 'epohcs'", NULL}},
    {"value.ini",
     R_CONFIG,
     RAW("[train]\nbatch = 8\nepochs = abc\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"value.ini:3", "epochs", "'abc'", NULL}},
    {"range.ini",
     R_CONFIG,
     RAW("[train]\nbatch = 0\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"range.ini:2", "batch", NULL}},
    {"no-section.ini",
     R_CONFIG,
     RAW("epochs = 2\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"no-section.ini:1", "outside any [section]", NULL}},
    {"section.ini",
     R_CONFIG,
     RAW("[nosuch]\nkey = 1\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"section.ini:2", "unknown section [nosuch]", NULL}},
    {"syntax.ini",
     R_CONFIG,
     RAW("; ok\n[train\nepochs = 2\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"syntax.ini:2", NULL}},
    {"cut.ini",
     R_CONFIG,
     RAW("[train]\nepochs = 2\n[model]\nencoder = linear 10, relu\n"),
     22,
     0,
     NOT_IN_PROCESS,
     2,
     {"cut.ini:3", NULL}},
    {"carriage-return.ini",
     R_CONFIG,
     RAW("[train]\nepochs = 2\rbatch = 4\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"carriage-return.ini:2", NULL}},
    {"phase.ini",
     R_CONFIG,
     RAW("[train]\nscheme = nam\n[nam]\nphases = a\n"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"[phase a]", "block", NULL}},
    {"empty.ini", R_CONFIG, RAW(""), NO_CUT, 0, NOT_IN_PROCESS, 2, {"empty", NULL}},
    {"binary.ini",
     R_CONFIG,
     RAW("[train]\0\1\2"),
     NO_CUT,
     0,
     NOT_IN_PROCESS,
     2,
     {"not a text file", NULL}},
    {"dir.ini", R_CONFIG, F_DIR, NULL, 0, NO_CUT, 0, NOT_IN_PROCESS, 1, {"directory", NULL}},
    {"missing.ini", R_CONFIG, F_NONE, NULL, 0, NO_CUT, 0, NOT_IN_PROCESS, 1, {"cannot open", NULL}},
};

/* An NPY 1.0 file: preamble, dict, spaces and '\n' to a multiple of 64 bytes, data bytes. */
static size_t npy_bytes(const char *dict, size_t data, uint8_t *out, size_t cap)
{
    size_t used = 10 + strlen(dict) + 1, padded = (used + 63) / 64 * 64, hlen = padded - 10;
    assert_true(padded + data <= cap);
    memcpy(out, "\223NUMPY\1\0", 8);
    out[8] = (uint8_t)(hlen & 0xff);
    out[9] = (uint8_t)(hlen >> 8);
    memcpy(out + 10, dict, strlen(dict));
    memset(out + 10 + strlen(dict), ' ', padded - used);
    out[padded - 1] = '\n';
    for (size_t i = 0; i < data; i++)
        out[padded + i] = (uint8_t)('a' + i % 26);
    return padded + data;
}

static size_t st_bytes(const char *json, size_t data, uint8_t *out, size_t cap)
{
    size_t n = strlen(json);
    assert_true(8 + n + data <= cap);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(out + 8, json, n);
    for (size_t i = 0; i < data; i++)
        out[8 + n + i] = (uint8_t)i;
    return 8 + n + data;
}

/* A checkpoint of encoder "linear 10" and decoder "linear 100" over 1×10×10 inputs with one
 * fault; written by the library's writer so that only the fault is wrong. */
static void write_checkpoint(const char *path, enum ckpt_fault fault)
{
    static float w[1000], b[100];
    st_tensor ts[4] = {
        {"encoder.0.weight", ST_F32, 2, {10, 100}, w, 4000},
        {"encoder.0.bias", ST_F32, 1, {10}, b, 40},
        {"decoder.0.weight", ST_F32, 2, {100, 10}, w, 4000},
        {"decoder.0.bias", ST_F32, 1, {100}, b, 400},
    };
    st_meta meta[] = {{"format", "anamo-checkpoint-1"},
                      {"anamo.input_shape", "1,10,10"},
                      {"anamo.encoder", fault == CK_HUGE_LAYER ? "linear 2500000" : "linear 10"},
                      {"anamo.decoder", "linear 100"}};
    const st_tensor *first = ts;
    int nt = 4, nm = 4;
    if (fault == CK_NOT_ANAMO)
        nm = 0;
    if (fault == CK_MISSING)
        first = ts + 1, nt = 3;
    if (fault == CK_WRONG_SIZE)
        ts[1].shape[0] = 2, ts[1].nbytes = 8;
    anamo_err err = {0};
    if (st_write(path, first, nt, meta, nm, &err))
        fail_msg("%s", err.msg);
}

static void gzip_file(const char *path, const uint8_t *bytes, size_t len)
{
    gzFile gz = gzopen(path, "wb9");
    assert_non_null(gz);
    if (len)
        assert_int_equal(gzwrite(gz, bytes, (unsigned)len), (int)len);
    assert_int_equal(gzclose(gz), Z_OK);
}

/* Puts the case's file at path. */
static void make_case_file(const bad_case *c, const char *path)
{
    static uint8_t buf[4 * 3073];
    size_t len = 0;
    switch (c->form) {
    case F_DIR: assert_int_equal(mkdir(path, 0700), 0); return;
    case F_NONE: return;
    case F_CKPT: write_checkpoint(path, (enum ckpt_fault)c->len); return;
    case F_BLANKS: {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        for (size_t i = 0; i < c->len; i++)
            fputs(i ? ",0" : "0", f);
        for (size_t i = 0; i <= c->len; i++)
            fputc('\n', f);
        fputs("1\n", f);
        assert_int_equal(fclose(f), 0);
        return;
    }
    case F_RAW:
        memcpy(buf, c->bytes, c->len);
        len = c->len;
        break;
    case F_NPY: len = npy_bytes(c->bytes, c->len, buf, sizeof buf); break;
    case F_CIFAR:
        for (size_t r = 0; r < c->len; r++) {
            uint8_t *rec = buf + r * 3073;
            rec[0] = (uint8_t)(c->len == 3 && r == 2 ? 10 : r);
            for (int k = 1; k < 3073; k++)
                rec[k] = (uint8_t)(k * 7 + r);
        }
        len = c->len * 3073;
        break;
    case F_ST: len = st_bytes(c->bytes, c->len, buf, sizeof buf); break;
    }
    if (!strcmp(c->name, "f8-too-big.npy") || !strcmp(c->name, "f8-inf.npy")) {
        const double v = !strcmp(c->name, "f8-too-big.npy") ? 1e300 : -INFINITY;
        memcpy(buf + len, &v, 8);
        len += 8;
    }
    if (!strcmp(c->name, "f4-nan.npy")) {
        const float v[2] = {0.5f, NAN};
        memcpy(buf + len, v, 8);
        len += 8;
    }
    if (c->gz) {
        gzip_file(path, buf, len);
        if (c->cut != NO_CUT)
            assert_int_equal(truncate(path, c->cut), 0);
        return;
    }
    write_bytes(path, buf, c->cut != NO_CUT && (size_t)c->cut < len ? (size_t)c->cut : len);
}

/* What went wrong with the cases, one line each (the test reports them all, then fails). */
typedef struct problems {
    char text[16384];
    size_t used;
    int count;
} problems;

static void problem(problems *pb, const bad_case *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *q = line; *q; q++)
        if (*q == '\n' || *q == '\r')
            *q = '|'; /* one line per problem */
    int n = snprintf(pb->text + pb->used, sizeof pb->text - pb->used, "  %s: %s\n", c->name, line);
    if (n > 0 && pb->used + (size_t)n < sizeof pb->text)
        pb->used += (size_t)n;
    pb->count++;
}

/* The message is one line naming path and holding every fragment. */
static void expect_message(problems *pb, const bad_case *c, const char *how, const char *msg,
                           const char *path)
{
    const char *nl = strpbrk(msg, "\r\n");
    if (nl && (nl[0] != '\n' || nl[1]))
        problem(pb, c, "%s: message is not one line: %s", how, msg);
    if (!strstr(msg, path))
        problem(pb, c, "%s: message does not name the file: %s", how, msg);
    for (int i = 0; c->frags[i]; i++)
        if (!strstr(msg, c->frags[i]))
            problem(pb, c, "%s: message does not mention '%s': %s", how, c->frags[i], msg);
}

static int read_in_process(const bad_case *c, const char *path, anamo_err *err)
{
    anamo_dataset ds;
    uint8_t *labels = NULL;
    int64_t n = 0;
    st_file *f = NULL;
    anamo_model *m = NULL;
    int rc = ANAMO_OK;
    switch (c->reader) {
    case R_IDX:
        if ((rc = anamo_idx_read(path, &ds, err)) == ANAMO_OK)
            anamo_dataset_free(&ds);
        break;
    case R_LABELS:
        rc = anamo_idx_read_labels(path, &labels, &n, err);
        anamo_free(labels);
        break;
    case R_NPY:
        if ((rc = anamo_npy_read(path, &ds, err)) == ANAMO_OK)
            anamo_dataset_free(&ds);
        break;
    case R_CSV:
        if ((rc = anamo_csv_read(path, &ds, err)) == ANAMO_OK)
            anamo_dataset_free(&ds);
        break;
    case R_CIFAR:
        if ((rc = cifar_read(&path, 1, &ds, err)) == ANAMO_OK)
            anamo_dataset_free(&ds);
        break;
    case R_ST:
        rc = st_open(path, &f, err);
        st_close(f);
        break;
    case R_CKPT:
        rc = anamo_checkpoint_load_model(path, 16, &m, err);
        anamo_model_free(m);
        break;
    case R_CONFIG: break;
    }
    return rc;
}

/* The arguments that make anamo read the case's file; out is the run directory that must not
 * appear. spec and images are buffers for the strings the arguments point to. */
static int cli_args(const fixture *fx, const bad_case *c, const char *path, const char *out,
                    char *spec, char *images, const char **args)
{
    int n = 0;
    switch (c->reader) {
    case R_CONFIG: args[n++] = "train", args[n++] = path, args[n++] = "-o", args[n++] = out; break;
    case R_ST:
    case R_CKPT:
        args[n++] = "eval", args[n++] = path, args[n++] = "--data", args[n++] = "halves:test";
        break;
    case R_CIFAR: /* the data root is in the environment */
        args[n++] = "train", args[n++] = fx->tiny, args[n++] = "-o", args[n++] = out;
        args[n++] = "--set", args[n++] = "data.train=cifar10:test", args[n++] = "--set";
        args[n++] = "data.test=";
        break;
    case R_LABELS: /* read as the companion of NAME-images-idx3-ubyte */
        snprintf(images, PATH_CAP, "%.*s-images-idx3-ubyte",
                 (int)(strlen(path) - strlen("-labels-idx1-ubyte")), path);
        write_bytes(images, IDX_OK, sizeof IDX_OK - 1);
        path = images;
        /* fall through */
    default:
        snprintf(spec, PATH_CAP + 16, "data.train=%s", path);
        args[n++] = "train", args[n++] = fx->tiny, args[n++] = "-o", args[n++] = out;
        args[n++] = "--set", args[n++] = spec, args[n++] = "--set", args[n++] = "data.test=";
    }
    args[n] = NULL;
    return n;
}

/* Where the case's file goes: in the test directory, or for CIFAR-10 where cifar10:test finds
 * it under a data root of the case's own (set in fx->env for the CLI). */
static void case_path(fixture *fx, const bad_case *c, char *path)
{
    fx->env[0] = '\0';
    if (c->reader != R_CIFAR) {
        in_dir(fx, c->name, path);
        return;
    }
    char root[PATH_CAP], name[64];
    snprintf(name, sizeof name, "cifar-%s", c->name);
    in_dir(fx, name, root);
    snprintf(fx->env, sizeof fx->env, "ANAMO_DATA=%s", root);
    assert_int_equal(mkdir(root, 0700), 0);
    snprintf(path, PATH_CAP, "%s/cifar-10-batches-bin", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, PATH_CAP, "%s/cifar-10-batches-bin/test_batch.bin%s", root, c->gz ? ".gz" : "");
}

static void check_bad_case(fixture *fx, const bad_case *c, problems *pb)
{
    char path[PATH_CAP], out[PATH_CAP], spec[PATH_CAP + 16], images[PATH_CAP];
    case_path(fx, c, path);
    in_dir(fx, "rejected", out);
    make_case_file(c, path);
    if (c->status != NOT_IN_PROCESS) {
        anamo_err err = {0};
        int rc = read_in_process(c, path, &err);
        if (rc != c->status)
            problem(pb, c, "library: status %d (%s), expected %d (%s): %s", rc,
                    anamo_status_name(rc), c->status, anamo_status_name(c->status), err.msg);
        else
            expect_message(pb, c, "library", err.msg, path);
        if (c->form == F_DIR && !strstr(err.msg, "is a directory"))
            problem(pb, c, "library: message does not say 'is a directory': %s", err.msg);
    }
    const char *args[16];
    cli_args(fx, c, path, out, spec, images, args);
    cli_result r = run_argv(fx, args, 1);
    if (r.signal)
        problem(pb, c, "anamo: killed by signal %d: %s", r.signal, r.err);
    else if (r.code != c->exit_code)
        problem(pb, c, "anamo: exit %d, expected %d: %s", r.code, c->exit_code, r.err);
    else
        expect_message(pb, c, "anamo", r.err, path);
    if (r.out[0])
        problem(pb, c, "anamo: unexpected stdout: %s", r.out);
    if (exists(out)) {
        problem(pb, c, "anamo: %s was created", out);
        remove_tree(out);
    }
    cli_free(&r);
    fx->env[0] = '\0';
}

static void test_bad_inputs(void **state)
{
    fixture *fx = *state;
    static problems pb;
    const size_t n = sizeof BAD_CASES / sizeof BAD_CASES[0];
    for (size_t i = 0; i < n; i++)
        check_bad_case(fx, &BAD_CASES[i], &pb);
    print_message("bad inputs: %zu cases, %d problems\n", n, pb.count);
    for (char *line = pb.text, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
        print_message("%.*s\n", (int)(nl - line), line); /* cmocka cuts long messages */
    if (pb.count)
        fail_msg("%d problems with bad inputs (listed above)", pb.count);
}

/* A config line of 300 characters (inih's default limit is 200) is a good config. */
static void test_config_long_line(void **state)
{
    fixture *fx = *state;
    char path[PATH_CAP], out[PATH_CAP], text[2048];
    in_dir(fx, "long-line.ini", path);
    in_dir(fx, "long-line", out);
    int n = snprintf(text, sizeof text,
                     "[data]\ntrain = halves:train\ntest = halves:test\n"
                     "[model]\nencoder = linear 10, sigmoid");
    for (int i = 0; i < 30; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, ", identity");
    snprintf(text + n, sizeof text - (size_t)n,
             "\ndecoder = linear 100, sigmoid\n[train]\nepochs = 1\nbatch = 10\n");
    write_text(path, text);
    RUN_OK(fx, "train", path, "-o", out);
}

/* ---- 2. SIGKILL during checkpoints -------------------------------------------------------- */

typedef struct survivor {
    int64_t pass;
    char copy[PATH_CAP]; /* the surviving checkpoint, copied */
} survivor;

/* The checkpoint is whole: it opens, and the furthest end of its tensors' data_offsets is
 * exactly the end of the file. */
static void expect_whole_file(const char *path)
{
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(path, &f, &err))
        fail_msg("partial checkpoint after SIGKILL: %s", err.msg);
    st_close(f);
    size_t size = 0;
    char *bytes = read_text(path, &size);
    assert_non_null(bytes);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (uint8_t)bytes[i];
    cJSON *header = cJSON_ParseWithLength(bytes + 8, (size_t)hlen);
    assert_non_null(header);
    double end = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, header) {
        const cJSON *span = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (cJSON_GetArraySize(span) == 2 && cJSON_GetArrayItem(span, 1)->valuedouble > end)
            end = cJSON_GetArrayItem(span, 1)->valuedouble;
    }
    cJSON_Delete(header);
    free(bytes);
    if ((double)(8 + hlen) + end != (double)size)
        fail_msg("%s: %zu bytes, its header accounts for %.0f", path, size,
                 (double)(8 + hlen) + end);
}

/* Checks what a kill left in run; returns the epoch of its checkpoint, or 0 if none. */
static int64_t check_after_kill(const fixture *fx, const char *run, int kill_no, survivor *s)
{
    char ckpt[PATH_CAP];
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    if (!exists(ckpt))
        return 0;
    expect_whole_file(ckpt);
    anamo_err err = {0};
    anamo_model *m = NULL;
    if (anamo_checkpoint_load_model(ckpt, 16, &m, &err))
        fail_msg("kill %d: checkpoint does not load: %s", kill_no, err.msg);
    anamo_model_free(m);
    st_file *f = NULL;
    if (st_open(ckpt, &f, &err))
        fail_msg("%s", err.msg);
    cJSON *p = progress_of(f);
    int64_t pass = (int64_t)progress_number(p, "pass");
    if (progress_number(p, "offset") != 0 || pass < 1)
        fail_msg("kill %d: checkpoint at pass %lld offset %g: not an epoch's end", kill_no,
                 (long long)pass, progress_number(p, "offset"));
    cJSON_Delete(p);
    st_close(f);
    s->pass = pass;
    char name[64];
    snprintf(name, sizeof name, "survivor-%d.safetensors", kill_no);
    in_dir(fx, name, s->copy);
    size_t len = 0;
    char *bytes = read_text(ckpt, &len);
    write_bytes(s->copy, bytes, len);
    free(bytes);
    return pass;
}

/* Waits (at most RUN_TIMEOUT_S) until path exists. */
static void wait_for_file(const char *path)
{
    const double deadline = now_s() + RUN_TIMEOUT_S;
    while (!exists(path) && now_s() < deadline)
        sleep_s(0.002);
    if (!exists(path))
        fail_msg("%s: not written after %.0f s", path, RUN_TIMEOUT_S);
}

static void test_sigkill_during_checkpoints(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], tmp[PATH_CAP], ckpt[PATH_CAP];
    in_dir(fx, "killed", run);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(tmp, sizeof tmp, "%s/model.safetensors.tmp", run);
    anamo_rng rng;
    /* a new seed each run (printed); ANAMO_KILL_SEED repeats one */
    const char *fixed = getenv("ANAMO_KILL_SEED");
    uint64_t seed = fixed ? strtoull(fixed, NULL, 10) : (uint64_t)time(NULL);
    anamo_rng_seed(&rng, seed);
    survivor surv[KILLS];
    int nsurv = 0, tmps = 0, advanced = 0;
    int64_t last = 0;
    for (int k = 0; k < KILLS; k++) {
        pid_t pid;
        if (k == 0) { /* a fresh run, killed only after its first checkpoint: slow starts
                         (sanitizers, a loaded machine) cannot leave the test nothing to check */
            pid = spawn(fx,
                        (const char *const[]){"train", fx->tiny, "-o", run, "--set",
                                              "train.epochs=" KILL_EPOCHS, NULL},
                        0);
            wait_for_file(ckpt);
        } else { /* then, each time, resume what the last kill left */
            pid = spawn(fx,
                        (const char *const[]){"train", "--resume", run, "--set",
                                              "train.epochs=" KILL_EPOCHS, NULL},
                        0);
        }
        sleep_s(KILL_MAX_S * anamo_rng_uniform(&rng));
        kill(pid, SIGKILL);
        cli_result r = cli_wait(pid, fx->bin, fx->dir, "train (killed)", RUN_TIMEOUT_S);
        int by_kill = r.signal == SIGKILL;
        static char err_text[2048];
        snprintf(err_text, sizeof err_text, "%s", r.err);
        cli_free(&r);
        if (!by_kill) /* it must not have stopped by itself */
            fail_msg("kill %d (seed %llu): it ended before the kill; stderr:\n%s", k,
                     (unsigned long long)seed, err_text);
        tmps += exists(tmp);
        int64_t pass = check_after_kill(fx, run, k, &surv[nsurv]);
        if (pass < last || pass < 1)
            fail_msg("kill %d (seed %llu): checkpoint went back from epoch %lld to %lld", k,
                     (unsigned long long)seed, (long long)last, (long long)pass);
        advanced += pass > last;
        last = pass;
        nsurv++;
    }
    print_message("sigkill: %d kills (seed %llu), %d moved the checkpoint on (last at epoch "
                  "%lld), %d left a .tmp (killed inside a write)\n",
                  KILLS, (unsigned long long)seed, advanced, (long long)last, tmps);
    /* each surviving state is that of an uninterrupted run of as many epochs: compare a few,
     * spread over the run, the last always, no epoch twice */
    int64_t compared_pass = -1;
    for (int i = nsurv - 1, compared = 0; i >= 0 && compared < KILL_REFERENCES;
         i -= 1 + nsurv / KILL_REFERENCES) {
        if (surv[i].pass == compared_pass)
            continue;
        char ref[PATH_CAP], ref_ckpt[PATH_CAP], name[64], epochs[48];
        snprintf(name, sizeof name, "reference-%lld", (long long)surv[i].pass);
        in_dir(fx, name, ref);
        remove_tree(ref);
        snprintf(epochs, sizeof epochs, "train.epochs=%lld", (long long)surv[i].pass);
        RUN_OK(fx, "train", fx->tiny, "-o", ref, "--set", epochs, "--set",
               "train.checkpoint_every=0");
        snprintf(ref_ckpt, sizeof ref_ckpt, "%s/model.safetensors", ref);
        expect_same_state(ref_ckpt, surv[i].copy);
        compared_pass = surv[i].pass;
        compared++;
    }
}

/* ---- 3. SIGTERM mid-epoch, then resume ---------------------------------------------------- */

/* Starts a long run, sends SIGTERM once training is under way, checks the message and the
 * checkpoint, resumes to the end of the next epoch and compares with an unsplit run. */
static void sigterm_and_resume(fixture *fx, const char *name, const char *scheme, double after)
{
    char run[PATH_CAP], ref[PATH_CAP], err_path[PATH_CAP], ckpt[PATH_CAP], tag[64];
    char set_scheme[64];
    snprintf(tag, sizeof tag, "%s-split", name);
    in_dir(fx, tag, run);
    snprintf(tag, sizeof tag, "%s-whole", name);
    in_dir(fx, tag, ref);
    in_dir(fx, "cli.stderr", err_path);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(set_scheme, sizeof set_scheme, "train.scheme=%s", scheme);
    /* 2000 samples: 200 steps per epoch, so a stop lands inside an epoch */
    pid_t pid = spawn(fx,
                      (const char *const[]){"train", fx->tiny, "-o", run, "--set",
                                            "data.train=halves:2000:7", "--set", set_scheme,
                                            "--set", "train.epochs=100000", "--set",
                                            "train.checkpoint_every=0", NULL},
                      0);
    /* the handler is installed after the line naming the scheme */
    const double deadline = now_s() + RUN_TIMEOUT_S;
    for (;;) {
        char *text = read_text(err_path, NULL);
        int started = text && strstr(text, "training samples");
        free(text);
        if (started || now_s() > deadline)
            break;
        sleep_s(0.005);
    }
    sleep_s(after);
    kill(pid, SIGTERM);
    cli_result r = cli_wait(pid, fx->bin, fx->dir, "train (SIGTERM)", RUN_TIMEOUT_S);
    if (r.signal || r.code != 1)
        fail_msg("%s: SIGTERM gave exit %d, signal %d; stderr:\n%s", name, r.code, r.signal, r.err);
    char resume_hint[PATH_CAP + 32];
    snprintf(resume_hint, sizeof resume_hint, "anamo train --resume %s", run);
    if (!strstr(r.err, resume_hint))
        fail_msg("%s: no resume hint '%s' in:\n%s", name, resume_hint, r.err);
    cli_free(&r);
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(ckpt, &f, &err))
        fail_msg("%s: %s", name, err.msg);
    cJSON *p = progress_of(f);
    int64_t pass = (int64_t)progress_number(p, "pass");
    double offset = progress_number(p, "offset");
    cJSON_Delete(p);
    st_close(f);
    char epochs[48];
    snprintf(epochs, sizeof epochs, "train.epochs=%lld", (long long)pass + 1);
    print_message("%s: stopped at epoch %lld, sample %g; resuming to epoch %lld\n", name,
                  (long long)pass + 1, offset, (long long)pass + 1);
    RUN_OK(fx, "train", "--resume", run, "--set", epochs);
    RUN_OK(fx, "train", fx->tiny, "-o", ref, "--set", "data.train=halves:2000:7", "--set",
           set_scheme, "--set", epochs, "--set", "train.checkpoint_every=0");
    char ref_ckpt[PATH_CAP];
    snprintf(ref_ckpt, sizeof ref_ckpt, "%s/model.safetensors", ref);
    expect_same_state(ref_ckpt, ckpt);
}

/* train.checkpoint_iterations = 7 with epoch checkpoints off: whatever a kill leaves is a
 * checkpoint at a multiple of 7 steps, and (10 steps an epoch here) some are mid-epoch, which
 * --resume takes up. */
static void test_checkpoint_iterations(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], ckpt[PATH_CAP];
    in_dir(fx, "every-7", run);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    pid_t pid = spawn(fx,
                      (const char *const[]){"train", fx->tiny, "-o", run, "--set",
                                            "train.epochs=" KILL_EPOCHS, "--set",
                                            "train.checkpoint_every=0", "--set",
                                            "train.checkpoint_iterations=7", NULL},
                      0);
    wait_for_file(ckpt);
    sleep_s(0.1);
    kill(pid, SIGKILL);
    cli_result r = cli_wait(pid, fx->bin, fx->dir, "train (killed)", RUN_TIMEOUT_S);
    cli_free(&r);
    expect_whole_file(ckpt);
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(ckpt, &f, &err))
        fail_msg("%s", err.msg);
    cJSON *p = progress_of(f);
    const double iteration = progress_number(p, "iteration");
    cJSON_Delete(p);
    st_close(f);
    if (!(iteration >= 7) || fmod(iteration, 7.0) != 0.0)
        fail_msg("checkpoint at iteration %g: not a positive multiple of 7", iteration);
    RUN_OK(fx, "train", "--resume", run, "--set", "train.checkpoint_every=0", "--set",
           "train.epochs=0.5" /* a budget already spent: resumes, saves, stops */);
}

/* A log holds its header once, as its first line, then one row per key from 1 to last (the
 * key in column key_col: epochs.csv's epoch, metrics.csv's iteration with log_every = 1): no
 * row missing, none twice, none cut. */
static void expect_whole_log(const char *path, int key_col, int64_t last)
{
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s is missing", path);
    if (strncmp(text, "epoch,", 6))
        fail_msg("%s does not start with its header:\n%.300s", path, text);
    int64_t want = 1;
    const char *line = text + strcspn(text, "\n");
    for (line += *line == '\n'; *line; want++) {
        size_t len = strcspn(line, "\n");
        if (line[len] != '\n' || !strncmp(line, "epoch,", 6))
            fail_msg("%s: row %lld is cut or a second header: %.*s", path, (long long)want,
                     (int)len, line);
        const char *field = line;
        for (int c = 0; c < key_col; c++)
            field += strcspn(field, ",\n") + 1;
        if (strtoll(field, NULL, 10) != want)
            fail_msg("%s: row %lld is %.*s (a row twice, or one missing)", path, (long long)want,
                     (int)len, line);
        line += len + 1;
    }
    if (want - 1 != last)
        fail_msg("%s: %lld rows, expected %lld", path, (long long)want - 1, (long long)last);
    free(text);
}

/* Issue 15: a compare's run killed in its first epoch, just after a mid-epoch checkpoint
 * (train.checkpoint_iterations = 1), used to leave metrics.csv and epochs.csv at 0 bytes (the
 * headers still in stdio's buffer); --resume appended rows without a header, and every later
 * compare failed with "metrics.csv: no column 'iteration'". Now the resume and the compare
 * succeed, and the logs hold their header once and every row once. */
static void test_kill_first_epoch_then_compare(void **state)
{
    fixture *fx = *state;
    char ini[PATH_CAP], cmp[PATH_CAP], run[PATH_CAP], ckpt[PATH_CAP], path[PATH_CAP];
    in_dir(fx, "kill-compare.ini", ini);
    in_dir(fx, "kill-compare", cmp);
    snprintf(run, sizeof run, "%s/a/trial-0", cmp);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    /* 200 steps in the one epoch, each followed by a checkpoint: a kill just after the first
     * checkpoint lands early in the first epoch */
    write_text(ini, "[data]\ntrain = halves:2000:7\ntest =\n"
                    "[model]\nencoder = linear 10, sigmoid\ndecoder = linear 100, sigmoid\n"
                    "[train]\nepochs = 1\nbatch = 10\nlog_every = 1\nthreads = 1\n"
                    "checkpoint_every = 0\ncheckpoint_iterations = 1\n"
                    "[compare]\narms = a, b\ntrials = 1\n"
                    "[arm a]\ntrain.scheme = joint\n[arm b]\ntrain.scheme = joint\n");
    pid_t pid = spawn(fx, (const char *const[]){"compare", ini, "-o", cmp, NULL}, 0);
    wait_for_file(ckpt);
    kill(pid, SIGKILL);
    cli_result r = cli_wait(pid, fx->bin, fx->dir, "compare (killed)", RUN_TIMEOUT_S);
    int by_kill = r.signal == SIGKILL;
    cli_free(&r);
    if (!by_kill)
        fail_msg("the compare ended before the kill");
    anamo_err err = {0};
    st_file *f = NULL;
    if (st_open(ckpt, &f, &err))
        fail_msg("%s", err.msg);
    cJSON *p = progress_of(f);
    const double pass = progress_number(p, "pass"), iteration = progress_number(p, "iteration");
    cJSON_Delete(p);
    st_close(f);
    if (pass != 0)
        fail_msg("killed after the first epoch (checkpoint at iteration %g): too late to test",
                 iteration);
    print_message("killed in epoch 1 with a checkpoint at iteration %g of 200\n", iteration);
    /* the headers were on disk before the first row */
    snprintf(path, sizeof path, "%s/epochs.csv", run);
    char *text = read_text(path, NULL);
    if (!text || strncmp(text, "epoch,", 6))
        fail_msg("after the kill, %s is '%.100s': no header", path, text ? text : "(missing)");
    free(text);
    RUN_OK(fx, "train", "--resume", run);
    snprintf(path, sizeof path, "%s/metrics.csv", run);
    expect_whole_log(path, 1, 200);
    snprintf(path, sizeof path, "%s/epochs.csv", run);
    expect_whole_log(path, 0, 1);
    /* the compare reads the resumed run back and runs arm b (without checkpoints: quicker) */
    RUN_OK(fx, "compare", ini, "-o", cmp, "--set", "train.checkpoint_iterations=0");
    snprintf(path, sizeof path, "%s/results.md", cmp);
    if (!exists(path))
        fail_msg("%s: not written", path);
    snprintf(path, sizeof path, "%s/b/trial-0/metrics.csv", cmp);
    expect_whole_log(path, 1, 200);
}

static void test_sigterm_resume(void **state)
{
    sigterm_and_resume(*state, "sigterm-joint", "joint", 0.1);
    sigterm_and_resume(*state, "sigterm-anamo", "anamo", 0.05);
}

/* ---- 4. ANAMO resumed at two split points ------------------------------------------------- */

static void test_resume_anamo(void **state)
{
    fixture *fx = *state;
    char whole[PATH_CAP], split[PATH_CAP], pa[PATH_CAP], pb[PATH_CAP];
    in_dir(fx, "anamo-whole", whole);
    in_dir(fx, "anamo-split", split);
    RUN_OK(fx, "train", fx->tiny, "-o", whole, "--set", "train.scheme=anamo", "--set",
           "train.epochs=6");
    static const char *const pieces[] = {"train.epochs=2", "train.epochs=5", "train.epochs=6"};
    RUN_OK(fx, "train", fx->tiny, "-o", split, "--set", "train.scheme=anamo", "--set", pieces[0]);
    for (int i = 1; i < 3; i++)
        RUN_OK(fx, "train", "--resume", split, "--set", pieces[i]);
    snprintf(pa, sizeof pa, "%s/model.safetensors", whole);
    snprintf(pb, sizeof pb, "%s/model.safetensors", split);
    expect_same_state(pa, pb);
    /* and the per-epoch record, apart from the clock */
    snprintf(pa, sizeof pa, "%s/epochs.csv", whole);
    snprintf(pb, sizeof pb, "%s/epochs.csv", split);
    char *ta = read_text(pa, NULL), *tb = read_text(pb, NULL);
    assert_non_null(ta);
    assert_non_null(tb);
    char *sa = NULL, *sb = NULL;
    char *la = strtok_r(ta, "\n", &sa), *lb = strtok_r(tb, "\n", &sb);
    for (int row = 0; la || lb; row++) {
        if (!la || !lb)
            fail_msg("epochs.csv: %s has more rows", la ? pa : pb);
        /* cut each row before "seconds", the 11th of 12 columns */
        char *ca = la, *cb = lb;
        for (int k = 0; k < 10 && ca && cb; k++)
            ca = strchr(ca + 1, ','), cb = strchr(cb + 1, ',');
        if (!ca || !cb || ca - la != cb - lb || strncmp(la, lb, (size_t)(ca - la)))
            fail_msg("epochs.csv row %d: '%s' unsplit, '%s' resumed", row, la, lb);
        la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb);
    }
    free(ta);
    free(tb);
}

/* ---- 5. divergence ------------------------------------------------------------------------ */

static void test_divergence(void **state)
{
    fixture *fx = *state;
    char run[PATH_CAP], ref[PATH_CAP], path[PATH_CAP];
    in_dir(fx, "diverged", run);
    in_dir(fx, "diverged-reference", ref);
    /* NAM with linear blocks (nothing saturates): a sane decoder epoch, then an encoder step of
     * 1e9 that sends the loss to Inf in the second epoch */
    static const char *const sets[] = {"train.scheme=nam",        "nam.optimizer=sgd",
                                       "nam.decoder_lr=0.01",     "nam.encoder_lr=1e9",
                                       "model.encoder=linear 10", "model.decoder=linear 100"};
    const char *args[MAX_ARGS] = {"train", fx->tiny, "-o", run};
    int n = 4;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        args[n++] = "--set", args[n++] = sets[i];
    args[n++] = "--set", args[n++] = "train.epochs=5", args[n] = NULL;
    cli_result r = run_argv(fx, args, 0);
    if (r.signal || r.code != 1)
        fail_msg("diverging run: exit %d, signal %d; stderr:\n%s", r.code, r.signal, r.err);
    const char *last = r.err + strlen(r.err);
    while (last > r.err && last[-1] == '\n')
        last--;
    while (last > r.err && last[-1] != '\n')
        last--;
    static const char *const frags[] = {"diverged", "phase 'encoder'", "block encoder",
                                        "epoch 2",  "iteration 1",     "summary.json"};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++)
        if (!strstr(last, frags[i]))
            fail_msg("divergence message does not mention '%s': %s", frags[i], last);
    snprintf(path, sizeof path, "%s/summary.json", run);
    char *text = read_text(path, NULL);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "diverged");
    if (!cJSON_IsString(d) || !strstr(last, d->valuestring) || !strstr(d->valuestring, "epoch 2"))
        fail_msg("summary.json diverged = %s; stderr: %s",
                 cJSON_IsString(d) ? d->valuestring : "(not a string)", last);
    cJSON_Delete(o);
    cli_free(&r);
    /* the checkpoint is the last good epoch's: finite, loadable, and an uninterrupted
     * one-epoch run's */
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    expect_finite_model(path);
    args[1] = fx->tiny, args[3] = ref, args[n - 1] = "train.epochs=1";
    r = run_argv(fx, args, 0);
    expect_ok(&r, "reference run");
    char ref_ckpt[PATH_CAP];
    snprintf(ref_ckpt, sizeof ref_ckpt, "%s/model.safetensors", ref);
    expect_same_state(ref_ckpt, path);
    /* joint training diverging in its first epoch leaves no checkpoint, and says so */
    in_dir(fx, "diverged-joint", run);
    r = RUN(fx, "train", fx->tiny, "-o", run, "--set", "joint.optimizer=sgd", "--set",
            "joint.lr=1e9", "--set", "model.decoder=linear 100");
    if (r.signal || r.code != 1 || !strstr(r.err, "diverged: phase 'joint'") ||
        !strstr(r.err, "block encoder+decoder") || !strstr(r.err, "epoch 1"))
        fail_msg("joint divergence: exit %d, signal %d; stderr:\n%s", r.code, r.signal, r.err);
    cli_free(&r);
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    if (exists(path))
        expect_finite_model(path);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (find_anamo_bin(fx->bin, sizeof fx->bin, "test_reliability") != 0) {
        free(fx);
        return -1;
    }
    if (make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_reliability_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    in_dir(fx, "tiny.ini", fx->tiny);
    /* one thread: single-threaded runs are the bit-identical ones */
    write_text(fx->tiny, "; test_reliability: 100 -> 10 -> 100 on seed 000's halves images\n"
                         "[data]\ntrain = halves:train\ntest = halves:test\n"
                         "[model]\nencoder = linear 10, sigmoid\ndecoder = linear 100, sigmoid\n"
                         "[train]\nepochs = 3\nbatch = 10\nthreads = 1\ncheckpoint_every = 1\n"
                         "eval_every_epoch = false\n");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_config_long_line),
        cmocka_unit_test(test_sigkill_during_checkpoints),
        cmocka_unit_test(test_checkpoint_iterations),
        cmocka_unit_test(test_kill_first_epoch_then_compare),
        cmocka_unit_test(test_sigterm_resume),
        cmocka_unit_test(test_resume_anamo),
        cmocka_unit_test(test_divergence),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
