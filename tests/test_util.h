/* test_util.h — helpers shared by the tests: a temporary directory under /tmp and its removal,
 * path joining, whole-file writes and reads, and the result of running the anamo binary. Every
 * tests/test_*.c is its own executable, so these are static (inline, so that a test that does
 * not use one gets no unused-function warning). They fail the test through cmocka's asserts. */
#ifndef ANAMO_TEST_UTIL_H
#define ANAMO_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "anamo.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_UTIL_PATH_CAP 1024

/* ---- directories and paths ---------------------------------------------------------------- */

/* Removes path: a file, or a directory and everything below it. Missing is not an error. */
static inline void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[TEST_UTIL_PATH_CAP];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Creates a fresh directory from tmpl (ending in XXXXXX, e.g. "/tmp/anamo_x_XXXXXX") into dir
 * (cap bytes); 0, or -1 when it cannot. */
static inline int make_temp_dir(char *dir, size_t cap, const char *tmpl)
{
    snprintf(dir, cap, "%s", tmpl);
    return mkdtemp(dir) ? 0 : -1;
}

/* out (cap bytes) = dir/name */
static inline void join_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static inline int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A group fixture that is only a temporary directory, made by temp_dir_setup from tmpl (see
 * make_temp_dir) and removed with all it holds by temp_dir_teardown. */
typedef struct temp_dir_fixture {
    char dir[256]; /* the temporary directory every file of this run goes in */
} temp_dir_fixture;

static inline int temp_dir_setup(void **state, const char *tmpl)
{
    temp_dir_fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (make_temp_dir(fx->dir, sizeof fx->dir, tmpl) != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static inline int temp_dir_teardown(void **state)
{
    temp_dir_fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* ---- whole files -------------------------------------------------------------------------- */

static inline void write_bytes(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The whole file as a NUL-terminated string (malloc'd), or NULL when it cannot be read. */
static inline char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* The whole file (malloc'd, one spare byte at the end); the file must be readable. */
static inline uint8_t *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* ---- running the CLI ---------------------------------------------------------------------- */

typedef struct cli_result {
    int code;        /* exit status, or -1 when a signal ended it */
    int signal;      /* that signal, else 0 */
    char *out, *err; /* what it wrote to stdout and stderr */
} cli_result;

static inline void cli_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* The anamo executable into bin (cap bytes): $ANAMO_BIN, else ../anamo; 0, or -1 (saying so on
 * stderr, for the test named test) when it is not an executable. */
static inline int find_anamo_bin(char *bin, size_t cap, const char *test)
{
    const char *env = getenv("ANAMO_BIN");
    snprintf(bin, cap, "%s", env && *env ? env : "../anamo");
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "%s: %s is not an executable; set ANAMO_BIN\n", test, bin);
        return -1;
    }
    return 0;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define TEST_CLI_MAX_ARGS 32

/* argv for execv: bin, then args (NULL-terminated), then NULL; argv has TEST_CLI_MAX_ARGS + 2
 * places. */
static inline void cli_argv(const char *bin, const char *const *args, const char **argv)
{
    argv[0] = bin;
    int argc = 1;
    for (; args[argc - 1]; argc++) {
        assert_true(argc <= TEST_CLI_MAX_ARGS);
        argv[argc] = args[argc - 1];
    }
    argv[argc] = NULL;
}

/* In a forked child, before exec: stdout and stderr to these files (created or truncated); exits
 * 127 when that fails. Only async-signal-safe calls. */
static inline void cli_child_output(const char *out_path, const char *err_path)
{
    int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0)
        _exit(127);
}

/* Starts bin with args (NULL-terminated), its stdout and stderr to DIR/NAME.stdout and
 * DIR/NAME.stderr; returns its pid. */
static inline pid_t cli_spawn(const char *bin, const char *dir, const char *name,
                              const char *const *args)
{
    char out_path[TEST_UTIL_PATH_CAP], err_path[TEST_UTIL_PATH_CAP];
    snprintf(out_path, sizeof out_path, "%s/%s.stdout", dir, name);
    snprintf(err_path, sizeof err_path, "%s/%s.stderr", dir, name);
    const char *argv[TEST_CLI_MAX_ARGS + 2];
    cli_argv(bin, args, argv);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* only async-signal-safe calls between fork and exec */
        cli_child_output(out_path, err_path);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits at most timeout_s seconds for pid and puts its wait status in *status; 0, or -1 when
 * it was still running (it is then killed and reaped, and the caller fails the test). */
static inline int cli_wait_status(pid_t pid, double timeout_s, int *status)
{
    pid_t w;
    const double deadline = now_s() + timeout_s;
    const struct timespec nap = {0, 2000000};
    *status = 0;
    while ((w = waitpid(pid, status, WNOHANG)) == 0 && now_s() < deadline)
        nanosleep(&nap, NULL);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, status, 0);
        return -1;
    }
    assert_int_equal(w, pid);
    return 0;
}

/* Waits at most timeout_s seconds for pid, a run of bin whose stdout and stderr went to
 * DIR/cli.stdout and DIR/cli.stderr (then the test fails: the command hangs), and collects
 * what it wrote. what names the command in messages. */
static inline cli_result cli_wait(pid_t pid, const char *bin, const char *dir, const char *what,
                                  double timeout_s)
{
    int status;
    if (cli_wait_status(pid, timeout_s, &status))
        fail_msg("anamo %s ...: still running after %.0f s", what, timeout_s);
    char out_path[TEST_UTIL_PATH_CAP], err_path[TEST_UTIL_PATH_CAP];
    snprintf(out_path, sizeof out_path, "%s/cli.stdout", dir);
    snprintf(err_path, sizeof err_path, "%s/cli.stderr", dir);
    cli_result r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    .signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0,
                    .out = read_text(out_path, NULL),
                    .err = read_text(err_path, NULL)};
    assert_non_null(r.out);
    assert_non_null(r.err);
    if (r.code == 127 && !r.out[0] && !r.err[0])
        fail_msg("%s: cannot execute (set ANAMO_BIN)", bin);
    return r;
}

/* Runs bin with args (NULL-terminated), stdout and stderr captured to DIR/cli.stdout and
 * DIR/cli.stderr, waiting at most timeout_s seconds. */
static inline cli_result run_cli(const char *bin, const char *dir, const char *const *args,
                                 double timeout_s)
{
    pid_t pid = cli_spawn(bin, dir, "cli", args);
    return cli_wait(pid, bin, dir, args[0] ? args[0] : "", timeout_s);
}

/* ---- numerical checks ---------------------------------------------------------------------- */

/* |got − want| ≤ atol + rtol·max(|got|, |want|), or the test fails naming what and index i. */
static inline void expect_close(const char *what, int64_t i, double got, double want, double rtol,
                                double atol)
{
    double scale = fmax(fabs(got), fabs(want));
    if (!(fabs(got - want) <= atol + rtol * scale))
        fail_msg("%s[%lld]: got %.9g, want %.9g (|diff| %.3g > %.3g + %.3g·%.3g)", what,
                 (long long)i, got, want, fabs(got - want), atol, rtol, scale);
}

static inline void fill_uniform(anamo_rng *rng, float *x, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = anamo_rng_uniform_range(rng, lo, hi);
}

/* Weights w of J = Σ w·out: magnitudes in [0.5, 1], both signs, so no output is ignored. */
static inline void fill_weights(anamo_rng *rng, float *w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = anamo_rng_uniform_range(rng, 0.5f, 1.0f) * (anamo_rng_below(rng, 2) ? 1.0f : -1.0f);
}

static inline double weighted_sum(const float *w, const float *out, int64_t n)
{
    double J = 0.0;
    for (int64_t i = 0; i < n; i++)
        J += (double)w[i] * (double)out[i];
    return J;
}

static inline int all_equal_to(const float *x, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] != v)
            return 0;
    return 1;
}

#endif
