/* live.c — the trainer's side of the live view (see live.h): the runs' series, kept as JSON
 * text that grows by one row per log or epoch row (so that a snapshot costs a few memcpy, not
 * a formatting of the whole history), the pictures, and the snapshots built from them at most
 * every LIVE_PUBLISH_MS. Everything here runs on the trainer's thread, inside its hooks. */
#include "live.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_MAX_POINTS 20000 /* per run; past it every other point goes, and then one in 2^k */
#define LIVE_MAX_RUNS 4096

typedef enum run_status { RUN_PENDING, RUN_RUNNING, RUN_DONE, RUN_EARLIER, RUN_STOPPED } run_status;
static const char *const STATUS_WORDS[] = {"pending", "running", "done", "finished earlier",
                                           "stopped"};

typedef struct live_point {
    int64_t iteration;
    double loss;
    int block;
} live_point;

typedef struct live_run {
    char name[160], arm[64], phase[ANAMO_NAME_MAX];
    char dir[512]; /* its run directory: what names it to the hooks */
    int trial;
    run_status status;
    double progress, train_seconds; /* fraction of the budget done; training seconds */
    double wall_start, wall_end;    /* when this process began and ended it (0: it did not) */
    int64_t epoch;
    live_point *points; /* what log_text holds, to thin it */
    int64_t npoints, cap, stride, seen;
    live_buf log_text;   /* [iteration,loss,block],… */
    live_buf epoch_text; /* [EPOCH_FIELDS],… */
} live_run;

static const char EPOCH_FIELDS[] =
    "[\"epoch\",\"train_loss\",\"test_loss\",\"test_mse\",\"code_l1\",\"code_l1_decoder\","
    "\"code_l1_jacobian\",\"l0\",\"dead_units\",\"dead_fraction\",\"zero_codes\"]";

struct cli_live {
    live_server *server;
    char title[512], command[16];
    live_run *runs;
    int nruns, current;
    double started, last_publish, last_pictures;
    int dirty; /* something changed since the last snapshot */
    int64_t seq;
    anamo_model *m; /* the current run's, for the pictures */
    const anamo_dataset *view;
    int is_steps;
    live_pictures pic;
    int64_t pic_version, pic_epoch;
    char pic_run[160];
    int pic_warned;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the series --------------------------------------------------------------------------- */

static void point_text(live_buf *b, const live_point *p)
{
    live_buf_printf(b, "%s[%lld,", b->len ? "," : "", (long long)p->iteration);
    live_buf_number(b, p->loss);
    live_buf_printf(b, ",%d]", p->block);
}

/* Keeps every other point, and from now on one point in twice as many. */
static void thin(live_run *r)
{
    int64_t kept = 0;
    for (int64_t i = 0; i < r->npoints; i += 2)
        r->points[kept++] = r->points[i];
    r->npoints = kept;
    r->stride *= 2;
    r->log_text.len = 0;
    for (int64_t i = 0; i < r->npoints; i++)
        point_text(&r->log_text, &r->points[i]);
}

static void add_point(live_run *r, int64_t iteration, double loss, int block)
{
    if (r->seen++ % r->stride)
        return;
    if (r->npoints == r->cap) {
        int64_t cap = r->cap ? 2 * r->cap : 256;
        live_point *grown = realloc(r->points, (size_t)cap * sizeof *grown);
        if (!grown) {
            r->log_text.failed = 1;
            return;
        }
        r->points = grown, r->cap = cap;
    }
    r->points[r->npoints] = (live_point){iteration, loss, block};
    point_text(&r->log_text, &r->points[r->npoints++]);
    if (r->npoints >= LIVE_MAX_POINTS)
        thin(r);
}

/* An epoch row: EPOCH_FIELDS in order. */
static void add_epoch(live_run *r, const double v[11])
{
    live_buf *b = &r->epoch_text;
    live_buf_append(b, b->len ? ",[" : "[", b->len ? 2 : 1);
    for (int i = 0; i < 11; i++) {
        if (i)
            live_buf_append(b, ",", 1);
        live_buf_number(b, v[i]);
    }
    live_buf_append(b, "]", 1);
}

static int block_number(const char *word)
{
    static const char *const WORDS[] = {"encoder", "decoder", "both", "anamo", "freecodes"};
    for (int i = 0; i < 5; i++)
        if (!strncmp(word, WORDS[i], strlen(WORDS[i])))
            return i;
    return 2;
}

/* Field col (from 0) of a CSV line, as a number (NaN when empty or not one). */
static double csv_field(const char *line, int col)
{
    for (int c = 0; c < col && line; c++)
        line = (line = strchr(line, ',')) ? line + 1 : NULL;
    return line ? strtod(line, NULL) : NAN;
}

static const char *csv_word(const char *line, int col)
{
    for (int c = 0; c < col && line; c++)
        line = (line = strchr(line, ',')) ? line + 1 : NULL;
    return line ? line : "";
}

/* What a run directory's logs already hold (a resumed or finished run). Reading them is done
 * before training starts. */
static void load_logs(live_run *r, const char *run_dir)
{
    char path[4200], line[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", run_dir);
    FILE *f = fopen(path, "r");
    for (int first = 1; f && fgets(line, sizeof line, f); first = 0)
        if (!first && strchr(line, '\n')) {
            add_point(r, (int64_t)csv_field(line, 1), csv_field(line, 3),
                      block_number(csv_word(line, 8)));
            r->epoch = (int64_t)csv_field(line, 0);
        }
    if (f)
        fclose(f);
    snprintf(path, sizeof path, "%s/epochs.csv", run_dir);
    f = fopen(path, "r");
    /* epochs.csv: epoch 0, train_loss 2, test_loss 5, test_mse 7, test_code_l1 8,
     * test_zero_codes 9, test_code_l1_decoder 10, test_code_l1_jacobian 11, test_l0 12,
     * test_dead_fraction 14 */
    for (int first = 1; f && fgets(line, sizeof line, f); first = 0) {
        if (first || !strchr(line, '\n') || !isfinite(csv_field(line, 5)))
            continue;
        const double v[11] = {csv_field(line, 0),  csv_field(line, 2),  csv_field(line, 5),
                              csv_field(line, 7),  csv_field(line, 8),  csv_field(line, 10),
                              csv_field(line, 11), csv_field(line, 12), NAN,
                              csv_field(line, 14), csv_field(line, 9)};
        add_epoch(r, v);
    }
    if (f)
        fclose(f);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/* Seconds until every run is done: the current run's rest from its pace, and each run still
 * to do at the mean wall time of those done here (else at the current run's estimated time). */
static double eta_seconds(const cli_live *lv, double now)
{
    double done_time = 0, current_rest = 0, current_total = 0;
    int done_here = 0, pending = 0;
    for (int i = 0; i < lv->nruns; i++) {
        const live_run *r = &lv->runs[i];
        pending += r->status == RUN_PENDING;
        if (r->status == RUN_DONE && r->wall_end > r->wall_start)
            done_time += r->wall_end - r->wall_start, done_here++;
        if (r->status == RUN_RUNNING && r->progress > 0) {
            current_total = (now - r->wall_start) / r->progress;
            current_rest = current_total * (1.0 - r->progress);
        }
    }
    double per_run = done_here ? done_time / done_here : current_total;
    return current_rest + pending * per_run;
}

static void run_json(live_buf *b, const live_run *r, double now)
{
    live_buf_append(b, "{\"name\":", 8);
    live_buf_string(b, r->name);
    live_buf_append(b, ",\"arm\":", 7);
    live_buf_string(b, r->arm);
    live_buf_printf(b, ",\"trial\":%d,\"status\":\"%s\",\"epoch\":%lld,\"phase\":", r->trial,
                    STATUS_WORDS[r->status], (long long)r->epoch);
    live_buf_string(b, r->phase);
    live_buf_append(b, ",\"progress\":", 12);
    live_buf_number(b, r->progress);
    live_buf_append(b, ",\"train_seconds\":", 17);
    live_buf_number(b, r->train_seconds);
    const double end = r->wall_end ? r->wall_end : now;
    const double wall = r->wall_start == 0 ? NAN : end - r->wall_start;
    live_buf_append(b, ",\"wall_seconds\":", 16);
    live_buf_number(b, wall);
    live_buf_printf(b, ",\"points\":%lld,\"stride\":%lld,\"log\":[", (long long)r->npoints,
                    (long long)r->stride);
    live_buf_append(b, r->log_text.data ? r->log_text.data : "", r->log_text.len);
    live_buf_append(b, "],\"epochs\":[", 12);
    live_buf_append(b, r->epoch_text.data ? r->epoch_text.data : "", r->epoch_text.len);
    live_buf_append(b, "]}", 2);
}

static void snapshot_json(const cli_live *lv, live_buf *b, int finished)
{
    const double now = now_s();
    int done = 0;
    for (int i = 0; i < lv->nruns; i++)
        done += lv->runs[i].status == RUN_DONE || lv->runs[i].status == RUN_EARLIER;
    live_buf_printf(b, "{\"seq\":%lld,\"command\":\"%s\",\"title\":", (long long)lv->seq,
                    lv->command);
    live_buf_string(b, lv->title);
    live_buf_printf(b, ",\"finished\":%s,\"elapsed_s\":", finished ? "true" : "false");
    live_buf_number(b, now - lv->started);
    live_buf_printf(b, ",\"runs_total\":%d,\"runs_done\":%d,\"current\":%d,\"eta_s\":", lv->nruns,
                    done, lv->current);
    live_buf_number(b, finished ? 0.0 : eta_seconds(lv, now));
    live_buf_printf(b, ",\"publish_ms\":%d,\"epoch_fields\":%s,", LIVE_PUBLISH_MS, EPOCH_FIELDS);
    live_buf_printf(b,
                    "\"pictures\":{\"version\":%lld,\"epoch\":%lld,\"recon\":%s,\"weights\":%s,"
                    "\"run\":",
                    (long long)lv->pic_version, (long long)lv->pic_epoch,
                    lv->pic.recon_png.len ? "true" : "false",
                    lv->pic.weights_png.len ? "true" : "false");
    live_buf_string(b, lv->pic_run);
    live_buf_append(b, "},", 2);
    live_buf_append(b, lv->pic.extra_json.data ? lv->pic.extra_json.data : "",
                    lv->pic.extra_json.len);
    live_buf_append(b, "\"runs\":[", 8);
    for (int i = 0; i < lv->nruns; i++) {
        if (i)
            live_buf_append(b, ",", 1);
        run_json(b, &lv->runs[i], now);
    }
    live_buf_append(b, "]}\n", 3);
}

static unsigned char *copy_bytes(const live_buf *b, int *failed)
{
    if (!b->len)
        return NULL;
    unsigned char *p = malloc(b->len);
    if (p)
        memcpy(p, b->data, b->len);
    *failed |= !p;
    return p;
}

/* Builds the snapshot of now and hands it to the server (nothing when memory runs out: the
 * page keeps the previous one). */
static void publish(cli_live *lv, int finished)
{
    live_buf json = {0};
    lv->seq++;
    snapshot_json(lv, &json, finished);
    live_snapshot *s = calloc(1, sizeof *s);
    int failed = !s || json.failed;
    if (!failed) {
        s->recon_png = copy_bytes(&lv->pic.recon_png, &failed);
        s->recon_len = lv->pic.recon_png.len;
        s->weights_png = copy_bytes(&lv->pic.weights_png, &failed);
        s->weights_len = lv->pic.weights_png.len;
        s->json = json.data, s->json_len = json.len;
        json.data = NULL;
    }
    live_buf_free(&json);
    if (failed) {
        live_snapshot_free(s);
        return;
    }
    live_server_publish(lv->server, s);
    lv->last_publish = now_s();
    lv->dirty = 0;
}

static void maybe_publish(cli_live *lv, int now_anyway)
{
    lv->dirty = 1;
    if (now_anyway || now_s() - lv->last_publish >= LIVE_PUBLISH_MS / 1000.0)
        publish(lv, 0);
}

/* Redraws the pictures of the current run; a failure is said once and the old ones stay. */
static int redraw(cli_live *lv, int64_t epoch)
{
    live_pictures fresh;
    anamo_err err = {0};
    lv->last_pictures = now_s();
    if (!lv->m || live_draw_pictures(lv->m, lv->view, lv->is_steps, &fresh, &err)) {
        if (lv->m && !lv->pic_warned++)
            fprintf(stderr, "anamo: live view: %s (the pictures stay as they were)\n", err.msg);
        return 0;
    }
    live_pictures_free(&lv->pic);
    lv->pic = fresh;
    lv->pic_version++;
    lv->pic_epoch = epoch;
    snprintf(lv->pic_run, sizeof lv->pic_run, "%s", lv->runs[lv->current].name);
    return 1;
}

/* ---- the interface ------------------------------------------------------------------------ */

int cli_live_start(const char *where, const char *title, cli_live **out, anamo_err *err)
{
    struct sockaddr_in addr;
    int rc = live_parse_address(where, &addr, err);
    if (rc)
        return rc;
    cli_live *lv = calloc(1, sizeof *lv);
    lv->runs = lv ? calloc(LIVE_MAX_RUNS, sizeof *lv->runs) : NULL;
    if (!lv || !lv->runs) {
        free(lv);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    }
    char url[128];
    rc = live_server_start(&addr, &lv->server, url, sizeof url, err);
    if (rc) {
        free(lv->runs);
        free(lv);
        return rc;
    }
    snprintf(lv->title, sizeof lv->title, "%s", title);
    const int compare = !strncmp(title, "anamo compare", 13);
    snprintf(lv->command, sizeof lv->command, "%s", compare ? "compare" : "train");
    lv->current = -1;
    lv->started = now_s();
    publish(lv, 0);
    fprintf(stderr, "live view: %s (%s; it stops with the run)\n", url,
            addr.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "this machine only"
                                                           : "reachable from the network");
    *out = lv;
    return ANAMO_OK;
}

void cli_live_stop(cli_live *lv)
{
    if (!lv)
        return;
    publish(lv, 1);
    live_server_stop(lv->server);
    for (int i = 0; i < lv->nruns; i++) {
        free(lv->runs[i].points);
        live_buf_free(&lv->runs[i].log_text);
        live_buf_free(&lv->runs[i].epoch_text);
    }
    free(lv->runs);
    live_pictures_free(&lv->pic);
    free(lv);
}

static live_run *find_or_add(cli_live *lv, const char *name, const char *run_dir)
{
    for (int i = 0; i < lv->nruns; i++)
        if (!strcmp(lv->runs[i].dir, run_dir))
            return &lv->runs[i];
    if (lv->nruns == LIVE_MAX_RUNS)
        return NULL;
    live_run *r = &lv->runs[lv->nruns++];
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->dir, sizeof r->dir, "%s", run_dir);
    snprintf(r->arm, sizeof r->arm, "%s", name);
    r->stride = 1;
    return r;
}

int cli_live_plan(cli_live *lv, const char *name, const char *arm, int trial, const char *run_dir,
                  int finished)
{
    live_run *r = find_or_add(lv, name, run_dir);
    if (!r)
        return ANAMO_OK; /* more runs than the page lists: the rest are not shown */
    snprintf(r->arm, sizeof r->arm, "%s", arm);
    r->trial = trial;
    r->status = finished ? RUN_EARLIER : RUN_PENDING;
    if (finished) {
        load_logs(r, run_dir);
        r->progress = 1.0;
    }
    maybe_publish(lv, 0);
    return ANAMO_OK;
}

int cli_live_run_begin(cli_live *lv, const char *run_dir, anamo_model *m, const anamo_dataset *view,
                       int is_steps)
{
    live_run *r = find_or_add(lv, run_dir, run_dir);
    if (!r)
        return ANAMO_OK;
    lv->current = (int)(r - lv->runs);
    r->status = RUN_RUNNING;
    r->wall_start = now_s();
    if (r->npoints == 0)
        load_logs(r, run_dir); /* a resumed run's earlier rows */
    lv->m = m, lv->view = view, lv->is_steps = is_steps;
    redraw(lv, r->epoch);
    publish(lv, 0);
    return ANAMO_OK;
}

void cli_live_log(cli_live *lv, const anamo_log_row *row)
{
    if (lv->current < 0)
        return;
    live_run *r = &lv->runs[lv->current];
    add_point(r, row->iteration, row->loss, (int)row->kind);
    r->progress = row->progress;
    r->train_seconds = row->elapsed;
    r->epoch = row->epoch;
    snprintf(r->phase, sizeof r->phase, "%s", row->phase);
    maybe_publish(lv, 0);
}

void cli_live_epoch(cli_live *lv, const anamo_epoch_row *row)
{
    if (lv->current < 0)
        return;
    live_run *r = &lv->runs[lv->current];
    r->epoch = row->epoch;
    if (row->has_test) {
        const anamo_metrics *t = &row->test;
        const double v[11] = {(double)row->epoch,
                              row->train_loss,
                              t->loss,
                              t->mse,
                              t->code_l1,
                              t->code_l1_decoder,
                              t->code_l1_jacobian,
                              t->l0,
                              (double)t->dead_units,
                              t->dead_fraction,
                              t->zero_codes};
        add_epoch(r, v);
    }
    /* the first epoch's end at once (the run's pictures are of its initial weights until then),
     * then at most every LIVE_IMAGES_MS */
    const int due = lv->pic_epoch == 0 || now_s() - lv->last_pictures >= LIVE_IMAGES_MS / 1000.0;
    const int drawn = due && redraw(lv, row->epoch);
    maybe_publish(lv, drawn);
}

void cli_live_step(cli_live *lv)
{
    if (lv->dirty && now_s() - lv->last_publish >= LIVE_PUBLISH_MS / 1000.0)
        publish(lv, 0);
}

void cli_live_run_end(cli_live *lv, int ok)
{
    if (lv->current < 0)
        return;
    live_run *r = &lv->runs[lv->current];
    r->status = ok ? RUN_DONE : RUN_STOPPED;
    r->wall_end = now_s();
    if (ok)
        r->progress = 1.0;
    redraw(lv, r->epoch); /* the final weights */
    lv->m = NULL, lv->view = NULL;
    publish(lv, 0);
}

int cli_live_value(const char *next)
{
    if (!next || !*next || next[0] == '-')
        return 0;
    size_t digits = strspn(next, "0123456789");
    return next[digits] == '\0' || strchr(next, ':') != NULL;
}
