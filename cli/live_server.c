/* live_server.c — the live view's HTTP server (libmicrohttpd, one internal polling thread).
 *
 * It serves four fixed endpoints and nothing else: "/" (the page, live_page.h),
 * "/snapshot.json", "/recon.png" and "/weights.png", matched exactly on the path as sent (not
 * unescaped); every other path, however it is written ("../", "%2e%2e/", …), is 404 — no path
 * is ever mapped to a file. Only GET and HEAD, no
 * request body. Bound to loopback, it also refuses a Host header that does not name loopback
 * (a page of another site, through DNS rebinding, cannot read it). libmicrohttpd answers
 * malformed requests (400) and headers larger than its per-connection memory (431) itself.
 *
 * The listening socket is the server's own: a gate thread accepts each connection and peeks at
 * its first bytes before handing it to libmicrohttpd (MHD_add_connection). Bytes that cannot
 * begin a request line (a method of capital letters, then a space) get 400 and the connection
 * closed there, since libmicrohttpd closes some of those (no request line at all) without a
 * status; a client that sends nothing within LIVE_PEEK_MS is closed with nothing sent.
 *
 * The mailbox: the trainer swaps snapshots in with atomic_exchange; requests take it out with
 * atomic_exchange(NULL) under srv->lock, which only this server's thread takes.
 *
 * libmicrohttpd is opened with dlopen when a server starts, not linked: a run without --live
 * never maps it, nor the TLS libraries it needs (gnutls, nettle, gmp, p11-kit, …: 2.3 MiB of
 * a training run's resident memory). Its functions are called through srv->mhd, typed from
 * <microhttpd.h> itself. */
#include "live.h"
#include "live_page.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LIVE_CONNECTION_MEMORY (64 * 1024) /* headers beyond this are refused (431) */
#define LIVE_CONNECTIONS 32
#define LIVE_CONNECTION_TIMEOUT_S 10
#define LIVE_PEEK_MS 2000  /* a new connection's first bytes must come within this */
#define LIVE_METHOD_MAX 16 /* the longest method the gate waits for ("OPTIONS", …) */

#ifndef ANAMO_MHD_SONAME
#define ANAMO_MHD_SONAME "libmicrohttpd.so.12" /* the soname since 0.9.x; CMake may set another */
#endif

/* The libmicrohttpd functions the server calls, each typed as <microhttpd.h> declares it. */
#define MHD_FUNCTIONS(X)           \
    X(start_daemon)                \
    X(stop_daemon)                 \
    X(add_connection)              \
    X(lookup_connection_value)     \
    X(create_response_from_buffer) \
    X(add_response_header)         \
    X(queue_response)              \
    X(destroy_response)

typedef struct mhd_calls {
    void *lib; /* dlopen's handle, or NULL */
#define MHD_FIELD(name) __typeof__(MHD_##name) *name;
    MHD_FUNCTIONS(MHD_FIELD)
#undef MHD_FIELD
} mhd_calls;

struct live_server {
    mhd_calls mhd;
    struct MHD_Daemon *daemon;
    _Atomic(live_snapshot *) mailbox; /* the newest snapshot not yet taken, or NULL */
    pthread_mutex_t lock;             /* guards current; the trainer never takes it */
    live_snapshot *current;           /* the snapshot requests are answered from */
    int loopback;                     /* bound to 127.0.0.0/8: check the Host header */
    unsigned port;
    int listen_fd; /* the gate's listening socket, or -1 */
    pthread_t gate;
    int gate_running;
};

void live_snapshot_free(live_snapshot *s)
{
    if (!s)
        return;
    free(s->json);
    free(s->recon_png);
    free(s->weights_png);
    free(s);
}

/* ---- libmicrohttpd, opened when a server starts -------------------------------------------- */

static int bind_function(void *lib, const char *name, void *slot, anamo_err *err)
{
    void *sym = dlsym(lib, name);
    if (!sym)
        return anamo_err_set(err, ANAMO_ERR_IO, "--live: %s has no %s (%s)", ANAMO_MHD_SONAME, name,
                             dlerror());
    memcpy(slot, &sym, sizeof sym); /* POSIX: a function's address as dlsym gives it */
    return ANAMO_OK;
}

static int mhd_open(mhd_calls *mhd, anamo_err *err)
{
    mhd->lib = dlopen(ANAMO_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!mhd->lib)
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "--live: cannot load libmicrohttpd (%s); it comes with Debian's "
                             "libmicrohttpd12 (scripts/install-deps.sh installs it)",
                             dlerror());
    int rc = ANAMO_OK;
#define MHD_BIND(name)                                                                      \
    if (rc == ANAMO_OK) {                                                                   \
        _Static_assert(sizeof mhd->name == sizeof(void *), "function pointers as dlsym's"); \
        rc = bind_function(mhd->lib, "MHD_" #name, &mhd->name, err);                        \
    }
    MHD_FUNCTIONS(MHD_BIND)
#undef MHD_BIND
    return rc;
}

int live_parse_address(const char *text, struct sockaddr_in *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const char *colon = strrchr(text, ':');
    const char *port = colon ? colon + 1 : text;
    if (colon) {
        char host[64];
        size_t n = (size_t)(colon - text);
        if (n == 0 || n >= sizeof host)
            return anamo_err_set(err, ANAMO_ERR_ARG, "--live %s: expected PORT or ADDRESS:PORT",
                                 text);
        memcpy(host, text, n);
        host[n] = '\0';
        if (strcmp(host, "localhost") && inet_pton(AF_INET, host, &out->sin_addr) != 1)
            return anamo_err_set(err, ANAMO_ERR_ARG,
                                 "--live %s: '%s' is not an IPv4 address "
                                 "(e.g. 127.0.0.1 or 0.0.0.0)",
                                 text, host);
    }
    char *end = NULL;
    long v = *port ? strtol(port, &end, 10) : 0;
    if ((*port && (*end || port[0] < '0' || port[0] > '9')) || v < 0 || v > 65535)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "--live %s: the port must be 0 to 65535 "
                             "(0: any free port)",
                             text);
    out->sin_port = htons((uint16_t)v);
    return ANAMO_OK;
}

/* ---- answering ---------------------------------------------------------------------------- */

static enum MHD_Result send_bytes(const mhd_calls *mhd, struct MHD_Connection *conn,
                                  unsigned status, const void *data, size_t len, const char *type,
                                  enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = mhd->create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return MHD_NO;
    mhd->add_response_header(r, "Content-Type", type);
    mhd->add_response_header(r, "Cache-Control", "no-store");
    mhd->add_response_header(r, "X-Content-Type-Options", "nosniff");
    mhd->add_response_header(r, "Content-Security-Policy",
                             "default-src 'none'; script-src 'unsafe-inline'; style-src "
                             "'unsafe-inline'; img-src 'self'; connect-src 'self'");
    enum MHD_Result ok = mhd->queue_response(conn, status, r);
    mhd->destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(const mhd_calls *mhd, struct MHD_Connection *conn,
                                  unsigned status, const char *msg)
{
    return send_bytes(mhd, conn, status, msg, strlen(msg), "text/plain; charset=utf-8",
                      MHD_RESPMEM_PERSISTENT);
}

/* Host: 127.0.0.1[:PORT] or localhost[:PORT] (none at all is HTTP/1.0's right). */
static int host_is_loopback(const live_server *srv, const char *host)
{
    if (!host)
        return 1;
    char want[2][64];
    snprintf(want[0], sizeof want[0], "127.0.0.1:%u", srv->port);
    snprintf(want[1], sizeof want[1], "localhost:%u", srv->port);
    return !strcmp(host, want[0]) || !strcmp(host, want[1]) || !strcmp(host, "127.0.0.1") ||
           !strcmp(host, "localhost");
}

/* The newest snapshot: the mailbox's if the trainer left one, else the one taken before. */
static live_snapshot *take_current(live_server *srv)
{
    live_snapshot *fresh = atomic_exchange(&srv->mailbox, NULL);
    if (fresh) {
        live_snapshot_free(srv->current);
        srv->current = fresh;
    }
    return srv->current;
}

/* One of the snapshot's parts, copied into the response under the lock. */
static enum MHD_Result send_part(live_server *srv, struct MHD_Connection *conn, int part)
{
    static const char *const TYPES[] = {"application/json", "image/png", "image/png"};
    pthread_mutex_lock(&srv->lock);
    const live_snapshot *s = take_current(srv);
    const void *data = !s          ? NULL
                       : part == 0 ? (const void *)s->json
                       : part == 1 ? (const void *)s->recon_png
                                   : (const void *)s->weights_png;
    size_t len = !s ? 0 : part == 0 ? s->json_len : part == 1 ? s->recon_len : s->weights_len;
    enum MHD_Result ok = data ? send_bytes(&srv->mhd, conn, MHD_HTTP_OK, data, len, TYPES[part],
                                           MHD_RESPMEM_MUST_COPY)
                              : send_error(&srv->mhd, conn, MHD_HTTP_NOT_FOUND, "not drawn yet\n");
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    live_server *srv = cls;
    const mhd_calls *mhd = &srv->mhd;
    (void)version, (void)upload_data, (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return send_error(mhd, conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
    if (*upload_data_size) /* a GET with a body */
        return send_error(mhd, conn, MHD_HTTP_BAD_REQUEST, "no body\n");
    if (srv->loopback &&
        !host_is_loopback(srv, mhd->lookup_connection_value(conn, MHD_HEADER_KIND, "Host")))
        return send_error(mhd, conn, MHD_HTTP_MISDIRECTED_REQUEST, "wrong host\n");
    if (!strcmp(url, "/"))
        return send_bytes(mhd, conn, MHD_HTTP_OK, LIVE_PAGE, sizeof LIVE_PAGE - 1,
                          "text/html; charset=utf-8", MHD_RESPMEM_PERSISTENT);
    static const char *const PARTS[] = {"/snapshot.json", "/recon.png", "/weights.png"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(url, PARTS[i]))
            return send_part(srv, conn, i);
    return send_error(mhd, conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* The path as it came: no endpoint has an escape in its name, so an escaped path ("%2e%2e",
 * "/recon.png%00") never names one, and no decoded NUL can cut a path short. */
static size_t keep_escapes(void *cls, struct MHD_Connection *conn, char *uri)
{
    (void)cls, (void)conn;
    return strlen(uri);
}

/* ---- the gate: a connection reaches libmicrohttpd only if it starts like a request ---------- */

/* 1: head begins "METHOD " (capital letters, a space); 0: it cannot; -1: only capitals so far. */
static int request_start(const char *head, ssize_t n)
{
    ssize_t i = 0;
    while (i < n && head[i] >= 'A' && head[i] <= 'Z')
        i++;
    if (i < n)
        return i > 0 && head[i] == ' ';
    return n < LIVE_METHOD_MAX ? -1 : 0;
}

/* Waits up to LIVE_PEEK_MS for the connection's first bytes and judges them (as
 * request_start; -1 also when nothing came or the peer left). */
static int peek_request_start(int fd)
{
    char head[LIVE_METHOD_MAX];
    for (int waited = 0; waited < LIVE_PEEK_MS; waited += 10) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, LIVE_PEEK_MS - waited) != 1)
            return -1;
        ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
        if (n <= 0)
            return -1;
        int verdict = request_start(head, n);
        if (verdict >= 0)
            return verdict;
        struct timespec pause = {0, 10 * 1000 * 1000}; /* more bytes of the method to come */
        nanosleep(&pause, NULL);
    }
    return -1;
}

static void *gate_main(void *arg)
{
    live_server *srv = arg;
    static const char BAD[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                              "Content-Length: 12\r\nConnection: close\r\n\r\nbad request\n";
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = accept(srv->listen_fd, (struct sockaddr *)&peer, &len);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) /* the listening socket was shut down: the server stops */
            return NULL;
        int verdict = peek_request_start(fd);
        if (verdict == 1) {
            /* libmicrohttpd closes fd if it cannot take it */
            srv->mhd.add_connection(srv->daemon, fd, (struct sockaddr *)&peer, len);
            continue;
        }
        if (verdict == 0)
            (void)!send(fd, BAD, sizeof BAD - 1, MSG_NOSIGNAL);
        close(fd);
    }
}

/* The gate's listening socket on addr; its port (a free one for port 0) in srv->port. */
static int gate_listen(live_server *srv, const struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (const struct sockaddr *)addr, sizeof *addr) || listen(fd, LIVE_CONNECTIONS) ||
        getsockname(fd, (struct sockaddr *)&bound, &len)) {
        close(fd);
        return -1;
    }
    srv->listen_fd = fd;
    srv->port = ntohs(bound.sin_port);
    return 0;
}

/* ---- starting and stopping ---------------------------------------------------------------- */

int live_server_start(const struct sockaddr_in *addr, live_server **out, char *url, size_t cap,
                      anamo_err *err)
{
    char host[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &addr->sin_addr, host, sizeof host);
    live_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    atomic_init(&srv->mailbox, NULL);
    pthread_mutex_init(&srv->lock, NULL);
    srv->listen_fd = -1;
    srv->loopback = (ntohl(addr->sin_addr.s_addr) >> 24) == 127;
    int rc = mhd_open(&srv->mhd, err);
    if (rc) {
        live_server_stop(srv);
        return rc;
    }
    if (gate_listen(srv, addr)) {
        live_server_stop(srv);
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "--live: cannot listen on %s:%u (in use, or not "
                             "an address of this machine)",
                             host, (unsigned)ntohs(addr->sin_port));
    }
    srv->daemon = srv->mhd.start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC, 0,
        NULL, NULL, on_request, srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)LIVE_CONNECTION_MEMORY, MHD_OPTION_CONNECTION_LIMIT, (unsigned)LIVE_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)LIVE_CONNECTION_TIMEOUT_S,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL, MHD_OPTION_STRICT_FOR_CLIENT,
        1 /* refuse what HTTP/1.1 does not allow */, MHD_OPTION_END);
    if (!srv->daemon || pthread_create(&srv->gate, NULL, gate_main, srv)) {
        live_server_stop(srv);
        return anamo_err_set(err, ANAMO_ERR_IO, "--live: cannot start the server on %s:%u", host,
                             (unsigned)ntohs(addr->sin_port));
    }
    srv->gate_running = 1;
    snprintf(url, cap, "http://%s:%u/", host, srv->port);
    *out = srv;
    return ANAMO_OK;
}

void live_server_publish(live_server *srv, live_snapshot *snap)
{
    /* what comes back was never taken by the server: it is the trainer's to free */
    live_snapshot_free(atomic_exchange(&srv->mailbox, snap));
}

void live_server_stop(live_server *srv)
{
    if (!srv)
        return;
    if (srv->listen_fd >= 0) /* wakes the gate's accept: it returns */
        shutdown(srv->listen_fd, SHUT_RDWR);
    if (srv->gate_running)
        pthread_join(srv->gate, NULL);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->daemon)
        srv->mhd.stop_daemon(srv->daemon); /* joins its thread, closes every connection */
    if (srv->mhd.lib)
        dlclose(srv->mhd.lib);
    live_snapshot_free(atomic_exchange(&srv->mailbox, NULL));
    live_snapshot_free(srv->current);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
}
