/* test_live.c — the live view of `anamo train --live` (docs/LIVE.md), seen from outside, as a
 * browser or an attacker sees it:
 *   1. while a NAM run trains, bad requests — "../", "%2e%2e/", 1 MB of headers, garbage bytes,
 *      another Host, POST — each get an error status and nothing else, while the endpoints
 *      answer; the run still finishes (exit 0) with its results, /snapshot.json's loss series
 *      is metrics.csv's row for row, and once the run has exited its port is closed;
 *   2. that run ends with the same checkpoint as the same run without --live (one thread: the
 *      bit-identical case): every tensor's bytes and every progress field but the times — the
 *      pictures' forward passes change nothing;
 *   3. --live with a bad address is a usage error (exit 2), a busy port a runtime error (1). */
#include "test_live_util.h"

#include "io/safetensors.h"

#include <cJSON.h>

#define RUN_TIMEOUT_S 600.0

typedef struct fixture {
    char dir[256], bin[LIVE_PATH_CAP], config[LIVE_PATH_CAP];
} fixture;

static void in_dir(const fixture *fx, const char *name, char *out)
{
    snprintf(out, LIVE_PATH_CAP, "%s/%s", fx->dir, name);
}

/* 60 epochs of 20000 halves images, NAM (decoder phases reuse cached codes): a few seconds */
static const char *const RUN_ARGS[] = {"--set", "data.train=halves:20000:7",
                                       "--set", "train.epochs=60",
                                       "--set", "train.scheme=nam"};
#define NRUN_ARGS 6

/* ---- 1. bad requests while it trains ------------------------------------------------------ */

/* request gets an error status (4xx, 505) and a short body that says only what went wrong (ours, or
 * libmicrohttpd's own for what it refuses itself): no page, no data, no file. */
static void expect_refused(int port, const char *what, const char *request, size_t len)
{
    size_t n = 0;
    char *answer = live_exchange(port, request, len, &n);
    int status = live_status(answer);
    if (status < 400 || status > 599)
        fail_msg("%s: status %d, expected an error; answer:\n%.300s", what, status, answer);
    const char *body = live_body(answer);
    if (strlen(body) > 300 || strstr(body, "root:") || strstr(body, "anamo live") ||
        strstr(body, "\"runs\"") || strstr(body, "PNG"))
        fail_msg("%s: the error's body says more than the error:\n%.300s", what, body);
    free(answer);
}

static void send_bad_requests(int port)
{
    char req[1024];
    static const char *const PATHS[] = {"/../../../../etc/passwd",
                                        "/%2e%2e/%2e%2e/etc/passwd",
                                        "/..%2f..%2fetc%2fpasswd",
                                        "/snapshot.json/../../x",
                                        "//etc/passwd",
                                        "/recon.png%00.json",
                                        "/metrics.csv",
                                        "/config.ini",
                                        "/model.safetensors",
                                        "/index.html"};
    for (size_t i = 0; i < sizeof PATHS / sizeof PATHS[0]; i++) {
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", PATHS[i], port);
        expect_refused(port, PATHS[i], req, strlen(req));
    }
    /* 1 MB of headers */
    const size_t big = (size_t)1 << 20;
    char *huge = malloc(big + 256);
    assert_non_null(huge);
    int at = snprintf(huge, 256, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Big: ", port);
    memset(huge + at, 'a', big);
    memcpy(huge + at + big, "\r\n\r\n", 4);
    expect_refused(port, "1 MB header", huge, (size_t)at + big + 4);
    /* a 1 MB request line */
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'b', big);
    memcpy(huge + 5 + big, " HTTP/1.1\r\n\r\n", 13);
    expect_refused(port, "1 MB path", huge, big + 18);
    free(huge);
    /* garbage bytes, NULs and all: an error status (the gate's 400 when they cannot begin a
     * request line, libmicrohttpd's otherwise) */
    unsigned char junk[600];
    anamo_rng rng;
    anamo_rng_seed(&rng, 19);
    for (int round = 0; round < 8; round++) {
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)anamo_rng_below(&rng, 256);
        memcpy(junk + sizeof junk - 4, "\r\n\r\n", 4);
        expect_refused(port, "garbage", (const char *)junk, sizeof junk);
    }
    static const char NOT_HTTP[] = "HELLO\r\n\r\n", BAD_VERSION[] = "GET / HTTP/9.9\r\n\r\n";
    expect_refused(port, "no HTTP version", NOT_HTTP, sizeof NOT_HTTP - 1);
    expect_refused(port, "HTTP/9.9", BAD_VERSION, sizeof BAD_VERSION - 1);
    snprintf(req, sizeof req,
             "POST /snapshot.json HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 5\r\n\r\nhello",
             port);
    expect_refused(port, "POST", req, strlen(req));
    /* a page of another site that rebinds its name to 127.0.0.1 */
    snprintf(req, sizeof req, "GET /snapshot.json HTTP/1.1\r\nHost: evil.example:%d\r\n\r\n", port);
    expect_refused(port, "another Host", req, strlen(req));
}

/* The endpoints answer, each with its type. */
static void expect_endpoints(int port)
{
    static const char *const PATHS[] = {"/", "/snapshot.json", "/weights.png", "/recon.png"};
    static const char *const TYPES[] = {"text/html", "application/json", "image/png", "image/png"};
    for (int i = 0; i < 4; i++) {
        size_t n = 0;
        char *answer = live_get(port, PATHS[i], &n);
        if (live_status(answer) != 200 || !strstr(answer, TYPES[i]))
            fail_msg("GET %s: expected 200 %s; answer:\n%.300s", PATHS[i], TYPES[i], answer);
        if (i >= 2 && memcmp(live_body(answer), "\x89PNG", 4))
            fail_msg("GET %s: not a PNG", PATHS[i]);
        free(answer);
    }
}

/* /snapshot.json's loss series, now. */
static cJSON *snapshot_log(int port, cJSON **doc)
{
    size_t n = 0;
    char *answer = live_get(port, "/snapshot.json", &n);
    assert_int_equal(live_status(answer), 200);
    *doc = cJSON_Parse(live_body(answer));
    free(answer);
    assert_non_null(*doc);
    cJSON *runs = cJSON_GetObjectItemCaseSensitive(*doc, "runs");
    assert_int_equal(cJSON_GetArraySize(runs), 1);
    cJSON *log = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(runs, 0), "log");
    assert_true(cJSON_IsArray(log));
    return log;
}

/* Every [iteration, loss, block] of the snapshot is metrics.csv's row of that iteration, in
 * order: the first rows of metrics.csv, one for one (no thinning below 20000 points). */
static void expect_log_matches(const cJSON *log, const char *run_dir)
{
    size_t nrows = 0;
    metrics_row *rows = live_metrics(run_dir, &nrows);
    int npoints = cJSON_GetArraySize(log);
    assert_true(npoints > 0);
    assert_true((size_t)npoints <= nrows);
    for (int i = 0; i < npoints; i++) {
        const cJSON *p = cJSON_GetArrayItem(log, i);
        double it = cJSON_GetArrayItem(p, 0)->valuedouble;
        double loss = cJSON_GetArrayItem(p, 1)->valuedouble;
        if ((long long)it != rows[i].iteration || loss != strtod(rows[i].loss, NULL))
            fail_msg("snapshot point %d: iteration %.0f loss %.9g; metrics.csv row %d: iteration "
                     "%lld loss %s",
                     i, it, loss, i, rows[i].iteration, rows[i].loss);
    }
    free(rows);
}

static void test_bad_requests_while_training(void **state)
{
    fixture *fx = *state;
    char run[LIVE_PATH_CAP], path[LIVE_PATH_CAP];
    in_dir(fx, "live-run", run);
    const char *args[] = {"train",     fx->config,  "-o",        run,         "--live",
                          "0",         RUN_ARGS[0], RUN_ARGS[1], RUN_ARGS[2], RUN_ARGS[3],
                          RUN_ARGS[4], RUN_ARGS[5], NULL};
    pid_t pid = cli_spawn(fx->bin, fx->dir, "live", args);
    int port = live_wait_port(fx->dir, "live", pid);
    live_wait_snapshot(port, "\"weights\":true"); /* the run has begun */
    expect_endpoints(port);
    send_bad_requests(port);
    send_bad_requests(port);
    expect_endpoints(port);                    /* still answering */
    live_wait_snapshot(port, "\"log\":[[");    /* a published loss point */
    live_wait_snapshot(port, "\"version\":2"); /* pictures redrawn during training */
    cJSON *doc = NULL;
    cJSON *log = snapshot_log(port, &doc);
    int code = live_wait_exit(pid, RUN_TIMEOUT_S);
    in_dir(fx, "live.stderr", path);
    char *err = read_text(path, NULL);
    if (code != 0)
        fail_msg("the run under bad requests: exit %d; stderr:\n%s", code, err ? err : "");
    free(err);
    snprintf(path, sizeof path, "%s/summary.json", run);
    assert_true(exists(path));
    expect_log_matches(log, run);
    cJSON_Delete(doc);
    /* gone with the run: nothing listens on its port */
    int fd = live_connect(port);
    if (fd >= 0)
        fail_msg("port %d still accepts connections after the run exited", port);
    assert_int_equal(errno, ECONNREFUSED);
}

/* ---- 2. the same checkpoint with and without --live --------------------------------------- */

static cJSON *progress_of(const st_file *f)
{
    const char *s = st_meta_get(f, "anamo.progress");
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    if (!o)
        fail_msg("%s: no parsable anamo.progress", st_path(f));
    return o;
}

/* Every tensor of a equals b's byte for byte; the metadata too, but for the progress's times. */
static void expect_same_checkpoint(const char *pa, const char *pb)
{
    anamo_err err = {0};
    st_file *fa = NULL, *fb = NULL;
    if (st_open(pa, &fa, &err) || st_open(pb, &fb, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(st_count(fa), st_count(fb));
    for (int i = 0; i < st_count(fa); i++) {
        const st_tensor *ta = st_at(fa, i), *tb = st_find(fb, ta->name);
        if (!tb || ta->dtype != tb->dtype || ta->nbytes != tb->nbytes ||
            memcmp(ta->data, tb->data, ta->nbytes))
            fail_msg("tensor %s: %s differs from %s", ta->name, pb, pa);
    }
    static const char *const META[] = {"anamo.encoder", "anamo.decoder", "config"};
    for (size_t i = 0; i < sizeof META / sizeof META[0]; i++) {
        const char *a = st_meta_get(fa, META[i]), *b = st_meta_get(fb, META[i]);
        if (!a || !b || strcmp(a, b))
            fail_msg("metadata %s differs", META[i]);
    }
    cJSON *ja = progress_of(fa), *jb = progress_of(fb);
    const cJSON *item;
    int compared = 0;
    cJSON_ArrayForEach(item, ja) {
        if (!strcmp(item->string, "elapsed") || !strcmp(item->string, "epoch_seconds"))
            continue; /* times differ from run to run */
        char *ta = cJSON_PrintUnformatted(item);
        char *tb = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(jb, item->string));
        if (!ta || !tb || strcmp(ta, tb))
            fail_msg("progress %s: %s with --live, %s without", item->string, ta, tb ? tb : "none");
        cJSON_free(ta);
        cJSON_free(tb);
        compared++;
    }
    assert_true(compared >= 3);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    st_close(fa);
    st_close(fb);
}

static void test_same_checkpoint_without_live(void **state)
{
    fixture *fx = *state;
    char live_run[LIVE_PATH_CAP], plain_run[LIVE_PATH_CAP], a[LIVE_PATH_CAP], b[LIVE_PATH_CAP];
    in_dir(fx, "live-run", live_run); /* made by test 1 */
    in_dir(fx, "plain-run", plain_run);
    const char *args[] = {"train",     fx->config,  "-o",        plain_run,
                          RUN_ARGS[0], RUN_ARGS[1], RUN_ARGS[2], RUN_ARGS[3],
                          RUN_ARGS[4], RUN_ARGS[5], NULL};
    pid_t pid = cli_spawn(fx->bin, fx->dir, "plain", args);
    assert_int_equal(live_wait_exit(pid, RUN_TIMEOUT_S), 0);
    snprintf(a, sizeof a, "%s/model.safetensors", live_run);
    snprintf(b, sizeof b, "%s/model.safetensors", plain_run);
    expect_same_checkpoint(a, b);
}

/* ---- 3. bad addresses --------------------------------------------------------------------- */

static void test_bad_addresses(void **state)
{
    fixture *fx = *state;
    char run[LIVE_PATH_CAP];
    in_dir(fx, "never", run);
    static const char *const BAD[] = {"65536", "1.2.3:80", "300.0.0.1:80", "localhost:-1",
                                      "::1:80"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const char *args[] = {"train", fx->config, "-o", run, "--live", BAD[i], NULL};
        cli_result r = run_cli(fx->bin, fx->dir, args, 120.0);
        if (r.code != 2 || !strstr(r.err, "--live"))
            fail_msg("--live %s: exit %d, expected 2; stderr:\n%s", BAD[i], r.code, r.err);
        cli_free(&r);
    }
    /* a port that is taken */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(addr.sin_port));
    const char *args[] = {"train", fx->config, "-o", run, "--live", port, NULL};
    cli_result r = run_cli(fx->bin, fx->dir, args, 120.0);
    close(fd);
    if (r.code != 1 || !strstr(r.err, "cannot listen"))
        fail_msg("--live %s (taken): exit %d, expected 1; stderr:\n%s", port, r.code, r.err);
    cli_free(&r);
    assert_false(exists(run)); /* nothing written */
}

/* ---- 4. libmicrohttpd is loaded for --live only -------------------------------------------- */

/* The loader's own account (LD_DEBUG=files, on stderr) of what one run maps. */
static cli_result run_telling_files(const fixture *fx, const char *const *args)
{
    setenv("LD_DEBUG", "files", 1);
    cli_result r = run_cli(fx->bin, fx->dir, args, 120.0);
    unsetenv("LD_DEBUG");
    return r;
}

static void test_http_library_for_live_only(void **state)
{
    fixture *fx = *state;
    char plain[LIVE_PATH_CAP], live[LIVE_PATH_CAP];
    in_dir(fx, "files-plain", plain);
    in_dir(fx, "files-live", live);
    const char *plain_args[] = {"train", fx->config, "-o", plain, NULL};
    cli_result r = run_telling_files(fx, plain_args);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "file=libdnnl")); /* the account is there */
    if (strstr(r.err, "libmicrohttpd") || strstr(r.err, "libgnutls"))
        fail_msg("a run without --live loaded the HTTP libraries; stderr:\n%s", r.err);
    cli_free(&r);
    const char *live_args[] = {"train", fx->config, "-o", live, "--live", "0", NULL};
    r = run_telling_files(fx, live_args);
    assert_int_equal(r.code, 0);
    const char *mhd = strstr(r.err, "file=libmicrohttpd");
    if (!mhd || !strstr(mhd, "dynamically loaded"))
        fail_msg("--live did not dlopen libmicrohttpd; stderr:\n%s", r.err);
    cli_free(&r);
}

/* ---- setup -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || find_anamo_bin(fx->bin, sizeof fx->bin, "test_live") != 0 ||
        make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_live_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    in_dir(fx, "tiny.ini", fx->config);
    /* one thread: single-threaded runs are the bit-identical ones */
    static const char CONFIG[] = "; test_live: 100 -> 10 -> 100 on seed 000's halves images\n"
                                 "[data]\ntrain = halves:train\ntest = halves:test\n"
                                 "[model]\nencoder = linear 10, sigmoid\n"
                                 "decoder = linear 100, sigmoid\n"
                                 "[train]\nepochs = 3\nbatch = 10\nthreads = 1\nlog_every = 20\n";
    write_bytes(fx->config, CONFIG, strlen(CONFIG));
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
        cmocka_unit_test(test_bad_requests_while_training),
        cmocka_unit_test(test_same_checkpoint_without_live),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_http_library_for_live_only),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
