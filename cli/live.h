/* live.h — the live view of `anamo train --live` and `anamo compare --live` (docs/LIVE.md):
 * a page on 127.0.0.1 that shows the runs while they train.
 *
 * Two sides that share one single-slot mailbox and nothing else:
 *   the trainer (live.c)   keeps the runs' series, and at most every LIVE_PUBLISH_MS builds an
 *                          immutable snapshot (JSON text and PNG bytes) and swaps it into the
 *                          mailbox with atomic_exchange, freeing what it gets back (a snapshot
 *                          the server never took);
 *   the server (live_server.c)  libmicrohttpd's thread; it takes the mailbox with
 *                          atomic_exchange(NULL) under its own mutex (the trainer never takes
 *                          it) and answers from the last snapshot it took.
 * The trainer never waits on the server. */
#ifndef ANAMO_CLI_LIVE_H
#define ANAMO_CLI_LIVE_H

#include "anamo.h"

#include <netinet/in.h>
#include <stddef.h>

#define LIVE_PUBLISH_MS 500 /* the trainer publishes a snapshot at most this often */
#define LIVE_IMAGES_MS 2000 /* and redraws the pictures (at an epoch's end) at most this often */

/* ---- snapshots and the server (live_server.c) ----------------------------------------------- */

/* What the server serves; each part malloc'd, immutable once published. */
typedef struct live_snapshot {
    char *json;
    size_t json_len;
    unsigned char *recon_png, *weights_png; /* NULL when there is no picture (yet) */
    size_t recon_len, weights_len;
} live_snapshot;

void live_snapshot_free(live_snapshot *s);

typedef struct live_server live_server;

/* Where to listen: "" (127.0.0.1, a free port), "PORT", or "ADDR:PORT" (IPv4; "localhost" is
 * 127.0.0.1). Fails with a message naming the value. */
int live_parse_address(const char *text, struct sockaddr_in *out, anamo_err *err);
/* Starts listening; the URL goes to *url (cap bytes). */
int live_server_start(const struct sockaddr_in *addr, live_server **out, char *url, size_t cap,
                      anamo_err *err);
/* Puts snap in the mailbox (the server takes it when it next answers); never blocks. */
void live_server_publish(live_server *srv, live_snapshot *snap);
/* Stops the server's thread and closes its socket; frees every snapshot. NULL is a no-op. */
void live_server_stop(live_server *srv);

/* ---- the trainer's side (live.c) ------------------------------------------------------------ */

typedef struct cli_live cli_live;

/* Starts the server at where (see live_parse_address) for a command titled title, and prints
 * its URL on stderr. */
int cli_live_start(const char *where, const char *title, cli_live **out, anamo_err *err);
/* Publishes the last state and stops the server. NULL is a no-op. */
void cli_live_stop(cli_live *lv);

/* Whether the argument after --live is its value (PORT or ADDRESS:PORT), not the next one. */
int cli_live_value(const char *next);

/* compare: one planned run (arm, trial) named name ("ARM/trial-T"), in the order they will
 * run; finished (summary.json there) ones show what their run_dir's logs hold. */
int cli_live_plan(cli_live *lv, const char *name, const char *arm, int trial, const char *run_dir,
                  int finished);

/* The run in run_dir begins (a planned one, or a new one named by run_dir): its model and
 * data, for the pictures (view: the test set, or the training set when there is none;
 * is_steps: step-function data, whose code is drawn against the step's position). A resumed
 * run shows what its logs already hold. */
int cli_live_run_begin(cli_live *lv, const char *run_dir, anamo_model *m, const anamo_dataset *view,
                       int is_steps);
/* The trainer's hooks call these; each is cheap unless a snapshot is due. */
void cli_live_log(cli_live *lv, const anamo_log_row *r);
void cli_live_epoch(cli_live *lv, const anamo_epoch_row *r);
void cli_live_step(cli_live *lv);
/* The run ended (ok: it finished, or diverged; else it failed or was stopped). */
void cli_live_run_end(cli_live *lv, int ok);

/* ---- the pictures (live_images.c) --------------------------------------------------------- */

/* A growing byte buffer. */
typedef struct live_buf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
} live_buf;

void live_buf_append(live_buf *b, const void *bytes, size_t n);
void live_buf_printf(live_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A number as JSON: %.8g, or null when not finite. */
void live_buf_number(live_buf *b, double v);
/* A JSON string, quoted and escaped. */
void live_buf_string(live_buf *b, const char *s);
void live_buf_free(live_buf *b);

/* What the pictures of one moment of a run hold. */
typedef struct live_pictures {
    live_buf recon_png, weights_png; /* empty when not drawn */
    live_buf extra_json;             /* "steps" and "recon_lines" members (may be empty) */
} live_pictures;

/* Draws the pictures of model m on view: the reconstruction grid (images) or lines (1-D data),
 * the encoder's first layer, and the code against the position on step data. Forward passes
 * only: the model's weights are not touched. */
int live_draw_pictures(anamo_model *m, const anamo_dataset *view, int is_steps, live_pictures *out,
                       anamo_err *err);
void live_pictures_free(live_pictures *p);

#endif
