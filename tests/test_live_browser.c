/* test_live_browser.c — the live view's page in a real browser: headless Chromium opens it
 * twice while a run trains, and the loss series it drew (the data-* attributes of the loss
 * chart's group, written by the page's script from /snapshot.json) grew between the two, and
 * its last point is metrics.csv's row of that iteration, the point count the rows up to it.
 * The run trains until it is stopped (SIGTERM after the second look: it saves its checkpoint
 * and exits 1, "interrupted"), so that neither look comes after its end. Skipped (exit 77,
 * ctest's SKIP_RETURN_CODE) when there is no chromium; CI installs it (install-deps.sh). */
#include "test_live_util.h"

#define SKIP_CODE 77
#define DUMP_TIMEOUT_S 90

typedef struct fixture {
    char dir[256], bin[LIVE_PATH_CAP], config[LIVE_PATH_CAP], chromium[LIVE_PATH_CAP];
} fixture;

/* $ANAMO_CHROMIUM, else chromium on $PATH, into out; 0, or -1 when there is none. */
static int find_chromium(char *out, size_t cap)
{
    const char *env = getenv("ANAMO_CHROMIUM");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/chromium", d);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* The DOM of url after its script has run (chromium --dump-dom), malloc'd. */
static char *dump_dom(const fixture *fx, int port, const char *name)
{
    char url[64], budget[64], profile[LIVE_PATH_CAP], out[LIVE_PATH_CAP];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(budget, sizeof budget, "--virtual-time-budget=%d", 3000);
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium-profile", fx->dir);
    const char *args[] = {"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          profile,      "--dump-dom",   budget,          url,
                          NULL};
    pid_t pid = cli_spawn(fx->chromium, fx->dir, name, args);
    int code = live_wait_exit(pid, DUMP_TIMEOUT_S);
    snprintf(out, sizeof out, "%s/%s.stdout", fx->dir, name);
    char *dom = read_text(out, NULL);
    if (code != 0 || !dom)
        fail_msg("chromium --dump-dom %s: exit %d", url, code);
    return dom;
}

/* The loss chart's group: data-points, data-last-iteration, data-last-loss. */
typedef struct drawn {
    long long points, last_iteration;
    double last_loss;
} drawn;

static drawn drawn_series(const char *dom, const char *which)
{
    drawn d = {0};
    const char *g = strstr(dom, "class=\"series\"");
    if (!g)
        fail_msg("%s: the page drew no loss series; DOM:\n%.2000s", which, dom);
    const char *p = strstr(g, "data-points=\""), *i = strstr(g, "data-last-iteration=\"");
    const char *l = strstr(g, "data-last-loss=\"");
    assert_non_null(p);
    assert_non_null(i);
    assert_non_null(l);
    d.points = atoll(p + strlen("data-points=\""));
    d.last_iteration = atoll(i + strlen("data-last-iteration=\""));
    d.last_loss = strtod(l + strlen("data-last-loss=\""), NULL);
    return d;
}

/* The drawn series is metrics.csv's first rows: as many points as rows up to its last
 * iteration, and that row's loss (metrics.csv and the snapshot print the same %.8g). */
static void expect_matches_metrics(drawn d, const metrics_row *rows, size_t nrows,
                                   const char *which)
{
    size_t upto = 0;
    const metrics_row *last = NULL;
    for (size_t r = 0; r < nrows; r++)
        if (rows[r].iteration <= d.last_iteration)
            upto++, last = &rows[r];
    if (!last || last->iteration != d.last_iteration)
        fail_msg("%s: iteration %lld is not in metrics.csv", which, d.last_iteration);
    if ((long long)upto != d.points || strtod(last->loss, NULL) != d.last_loss)
        fail_msg("%s: %lld points ending at loss %.9g; metrics.csv: %zu rows to iteration %lld, "
                 "loss %s",
                 which, d.points, d.last_loss, upto, d.last_iteration, last->loss);
}

static void test_page_grows_and_matches(void **state)
{
    fixture *fx = *state;
    char run[LIVE_PATH_CAP];
    snprintf(run, sizeof run, "%s/run", fx->dir);
    const char *args[] = {"train", fx->config, "-o", run, "--live", NULL};
    pid_t pid = cli_spawn(fx->bin, fx->dir, "train", args);
    int port = live_wait_port(fx->dir, "train", pid);
    live_wait_snapshot(port, "\"log\":[[");
    char *first = dump_dom(fx, port, "dom-1");
    const struct timespec pause = {1, 0};
    nanosleep(&pause, NULL);
    char *second = dump_dom(fx, port, "dom-2");
    kill(pid, SIGTERM);
    int code = live_wait_exit(pid, 120.0);
    drawn a = drawn_series(first, "first look"), b = drawn_series(second, "second look");
    if (!(a.points >= 1 && b.points > a.points && b.last_iteration > a.last_iteration))
        fail_msg("the series did not grow: %lld points to iteration %lld, then %lld to %lld",
                 a.points, a.last_iteration, b.points, b.last_iteration);
    assert_non_null(strstr(second, "<img alt=\"recon\""));
    assert_non_null(strstr(second, "<img alt=\"weights\""));
    assert_int_equal(code, 1); /* stopped: interrupted, checkpoint saved */
    size_t nrows = 0;
    metrics_row *rows = live_metrics(run, &nrows);
    expect_matches_metrics(a, rows, nrows, "first look");
    expect_matches_metrics(b, rows, nrows, "second look");
    free(rows);
    free(first);
    free(second);
    assert_true(live_connect(port) < 0); /* the server went with the run */
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || find_chromium(fx->chromium, sizeof fx->chromium) != 0 ||
        find_anamo_bin(fx->bin, sizeof fx->bin, "test_live_browser") != 0 ||
        make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_live_browser_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    snprintf(fx->config, sizeof fx->config, "%s/long.ini", fx->dir);
    /* trains until stopped: 20000 halves images, NAM (decoder blue, encoder red) */
    static const char CONFIG[] = "[data]\ntrain = halves:20000:7\ntest = halves:test\n"
                                 "[model]\nencoder = linear 10, sigmoid\n"
                                 "decoder = linear 100, sigmoid\n"
                                 "[train]\nscheme = nam\nepochs = 100000\nbatch = 10\n"
                                 "threads = 1\nlog_every = 20\ncheckpoint_every = 0\n";
    write_bytes(fx->config, CONFIG, strlen(CONFIG));
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
    char chromium[LIVE_PATH_CAP];
    if (find_chromium(chromium, sizeof chromium) != 0) {
        fprintf(stderr, "test_live_browser: no chromium (install it: scripts/install-deps.sh, "
                        "or set ANAMO_CHROMIUM); skipped\n");
        return SKIP_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_grows_and_matches),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
