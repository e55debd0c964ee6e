/* test_live_util.h — what test_live.c and test_live_browser.c share: running `anamo … --live`
 * in the background, finding the URL it prints, raw HTTP requests over a socket (so a test can
 * send what no HTTP client would), and reading metrics.csv's loss column. */
#ifndef ANAMO_TEST_LIVE_UTIL_H
#define ANAMO_TEST_LIVE_UTIL_H

#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#define LIVE_PATH_CAP 1024
#define LIVE_URL_TIMEOUT_S 60.0 /* for the run to load its data and print the URL */
#define LIVE_READ_TIMEOUT_S 10  /* for one answer of the server */

/* The port of the "live view: http://127.0.0.1:PORT/" line in DIR/NAME.stderr, waiting for it;
 * fails the test when the run ends or the time runs out first. */
static inline int live_wait_port(const char *dir, const char *name, pid_t pid)
{
    char path[LIVE_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s.stderr", dir, name);
    const double deadline = now_s() + LIVE_URL_TIMEOUT_S;
    const struct timespec nap = {0, 20000000};
    while (now_s() < deadline) {
        char *text = read_text(path, NULL);
        const char *at = text ? strstr(text, "live view: http://127.0.0.1:") : NULL;
        int port = at ? atoi(at + strlen("live view: http://127.0.0.1:")) : 0;
        free(text);
        if (port > 0)
            return port;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            text = read_text(path, NULL);
            fail_msg("the run ended before printing its URL; stderr:\n%s", text ? text : "");
        }
        nanosleep(&nap, NULL);
    }
    fail_msg("no live view URL in %s after %.0f s", path, LIVE_URL_TIMEOUT_S);
    return 0;
}

/* A socket connected to 127.0.0.1:port, or -1 (errno set). */
static inline int live_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {LIVE_READ_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends len bytes of request (a failed send is not an error: the server may close early) and
 * reads the answer until the server closes (or the time runs out); malloc'd, NUL-terminated,
 * *n its length. */
static inline char *live_exchange(int port, const char *request, size_t len, size_t *n)
{
    int fd = live_connect(port);
    if (fd < 0)
        fail_msg("cannot connect to 127.0.0.1:%d: %s", port, strerror(errno));
    for (size_t sent = 0; sent < len;) {
        ssize_t k = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        sent += (size_t)k;
    }
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (;;) {
        if (got == cap) {
            buf = realloc(buf, (cap *= 2) + 1);
            assert_non_null(buf);
        }
        ssize_t k = recv(fd, buf + got, cap - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    *n = got;
    return buf;
}

/* The status code of an HTTP answer, or 0 when there is none. */
static inline int live_status(const char *answer)
{
    return !strncmp(answer, "HTTP/1.", 7) && strlen(answer) > 12 ? atoi(answer + 9) : 0;
}

/* GET path with Connection: close; the answer as live_exchange gives it. */
static inline char *live_get(int port, const char *path, size_t *n)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             path, port);
    return live_exchange(port, req, strlen(req), n);
}

/* The body of an answer (after the blank line), or "" when it has none. */
static inline const char *live_body(const char *answer)
{
    const char *at = strstr(answer, "\r\n\r\n");
    return at ? at + 4 : "";
}

/* Waits until /snapshot.json holds needle (the server is up before the run has begun). */
static inline void live_wait_snapshot(int port, const char *needle)
{
    const double deadline = now_s() + LIVE_URL_TIMEOUT_S;
    const struct timespec nap = {0, 20000000};
    while (now_s() < deadline) {
        size_t n = 0;
        char *answer = live_get(port, "/snapshot.json", &n);
        int found = strstr(live_body(answer), needle) != NULL;
        free(answer);
        if (found)
            return;
        nanosleep(&nap, NULL);
    }
    fail_msg("/snapshot.json holds no %s after %.0f s", needle, LIVE_URL_TIMEOUT_S);
}

/* metrics.csv of run_dir: *n rows of (iteration, loss text), malloc'd; loss text as written. */
typedef struct metrics_row {
    long long iteration;
    char loss[32];
} metrics_row;

static inline metrics_row *live_metrics(const char *run_dir, size_t *n)
{
    char path[LIVE_PATH_CAP];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s: cannot read", path);
    size_t cap = 1024;
    metrics_row *rows = malloc(cap * sizeof *rows);
    assert_non_null(rows);
    *n = 0;
    const char *line = strchr(text, '\n'); /* past the header */
    while (line && *++line) {
        long long epoch, it;
        char phase[64], loss[32];
        if (sscanf(line, "%lld,%lld,%63[^,],%31[^,]", &epoch, &it, phase, loss) == 4) {
            if (*n == cap) {
                rows = realloc(rows, (cap *= 2) * sizeof *rows);
                assert_non_null(rows);
            }
            rows[*n].iteration = it;
            snprintf(rows[*n].loss, sizeof rows[*n].loss, "%s", loss);
            (*n)++;
        }
        line = strchr(line, '\n');
    }
    free(text);
    return rows;
}

/* Waits for pid (at most timeout_s) and returns its exit status, or -1 when a signal ended it. */
static inline int live_wait_exit(pid_t pid, double timeout_s)
{
    int status;
    if (cli_wait_status(pid, timeout_s, &status))
        fail_msg("the run is still going after %.0f s", timeout_s);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
