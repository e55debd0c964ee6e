/* live_images.c — the live view's pictures of one moment of a run, drawn into memory:
 *   recon.png    fixed, evenly spaced samples of the view set (images), each above its
 *                reconstruction; 1-D data get "recon_lines" (the values) instead;
 *   weights.png  the encoder's first layer: one tile per unit when its rows are images (a
 *                linear layer on image data, a convolution's kernels), else the weight matrix
 *                as a heat map (red positive, blue negative, white zero);
 *   "steps"      on step-function data (seed 002), the code of every step against its position.
 * Forward passes in evaluation mode only (as the trainer's own end-of-epoch evaluation): the
 * weights, the optimizer state and the data order are not touched. */
#include "cli.h"
#include "live.h"

#include <math.h>
#include <stb_image_write.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECON_IMAGES 16 /* samples in the reconstruction grid */
#define RECON_COLS 8
#define RECON_LINES 4      /* samples drawn as lines on 1-D data */
#define LINES_MAX_DIM 4096 /* longer samples are not drawn as lines */
#define STEPS_MAX_SAMPLES 4097
#define STEPS_MAX_UNITS 8 /* code units drawn against the position */
#define WEIGHT_TILES 256  /* first-layer units drawn */
#define HEAT_MAX_COLS 2048
#define TILE_MIN_SIDE 28 /* small tiles are magnified to at least this */
#define GAP 1
#define BACKGROUND 64

/* ---- growing buffers ---------------------------------------------------------------------- */

void live_buf_append(live_buf *b, const void *bytes, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void live_buf_printf(live_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
    } else if ((size_t)n < sizeof small) {
        live_buf_append(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        live_buf_append(b, big, (size_t)n);
        free(big);
    }
}

void live_buf_number(live_buf *b, double v)
{
    if (isfinite(v))
        live_buf_printf(b, "%.8g", v);
    else
        live_buf_append(b, "null", 4);
}

void live_buf_string(live_buf *b, const char *s)
{
    live_buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            live_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20 || ch == '<' || ch == '>') /* no markup, even inside a string */
            live_buf_printf(b, "\\u%04x", ch);
        else
            live_buf_append(b, s, 1);
    }
    live_buf_append(b, "\"", 1);
}

void live_buf_free(live_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void live_pictures_free(live_pictures *p)
{
    live_buf_free(&p->recon_png);
    live_buf_free(&p->weights_png);
    live_buf_free(&p->extra_json);
}

/* ---- an RGB canvas of tiles --------------------------------------------------------------- */

typedef struct canvas {
    unsigned char *px; /* width × height × 3 */
    int width, height;
    int tile_h, tile_w, k; /* tile size in data pixels, magnification */
} canvas;

static int magnification(int h, int w)
{
    int side = h < w ? h : w;
    return side >= TILE_MIN_SIDE ? 1 : (TILE_MIN_SIDE + side - 1) / side;
}

static int canvas_open(canvas *cv, int rows, int cols, int tile_h, int tile_w, int k)
{
    cv->tile_h = tile_h, cv->tile_w = tile_w, cv->k = k;
    cv->width = GAP + cols * (tile_w * k + GAP);
    cv->height = GAP + rows * (tile_h * k + GAP);
    cv->px = malloc((size_t)cv->width * (size_t)cv->height * 3);
    if (cv->px)
        memset(cv->px, BACKGROUND, (size_t)cv->width * (size_t)cv->height * 3);
    return cv->px ? 0 : -1;
}

static unsigned char to_byte(double v)
{
    return !(v > 0.0) ? 0 : v >= 1.0 ? 255 : (unsigned char)(v * 255.0 + 0.5);
}

/* Tile (row, col) from planes of tile_h × tile_w (c = 1 grey, 3 RGB), v ↦ (v − lo)/(hi − lo). */
static void canvas_tile(canvas *cv, int row, int col, const float *img, int c, double lo, double hi)
{
    const int h = cv->tile_h, w = cv->tile_w, k = cv->k;
    const double scale = hi > lo ? 1.0 / (hi - lo) : 0.0;
    const int y0 = GAP + row * (h * k + GAP), x0 = GAP + col * (w * k + GAP);
    for (int y = 0; y < h * k; y++)
        for (int x = 0; x < w * k; x++)
            for (int ch = 0; ch < 3; ch++) {
                float v = img[((int64_t)(c == 3 ? ch : 0) * h + y / k) * w + x / k];
                cv->px[((size_t)(y0 + y) * (size_t)cv->width + (size_t)(x0 + x)) * 3 + ch] =
                    to_byte((v - lo) * scale);
            }
}

static void png_sink(void *ctx, void *data, int size) { live_buf_append(ctx, data, (size_t)size); }

/* Encodes the canvas into out and frees it. */
static int canvas_close(canvas *cv, live_buf *out, anamo_err *err)
{
    int ok = stbi_write_png_to_func(png_sink, out, cv->width, cv->height, 3, cv->px, cv->width * 3);
    free(cv->px);
    cv->px = NULL;
    return ok && !out->failed ? ANAMO_OK
                              : anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: cannot encode a PNG");
}

static int is_image(int c, int h, int w) { return h > 1 && w > 1 && (c == 1 || c == 3); }

/* ---- reconstructions ---------------------------------------------------------------------- */

/* Sample i of count, evenly spaced over the n samples. */
static int64_t spaced(int64_t i, int64_t count, int64_t n)
{
    return count > 1 ? i * (n - 1) / (count - 1) : 0;
}

static int recon_grid(anamo_model *m, const anamo_dataset *ds, live_buf *png, anamo_err *err)
{
    const int64_t count = ds->n < RECON_IMAGES ? ds->n : RECON_IMAGES, D = ds->dim;
    const int cols = count < RECON_COLS ? (int)count : RECON_COLS;
    const int rows = 2 * (int)((count + cols - 1) / cols);
    float *x = malloc((size_t)(2 * D) * sizeof *x);
    canvas cv = {0};
    if (!x || canvas_open(&cv, rows, cols, ds->h, ds->w, magnification(ds->h, ds->w))) {
        free(x);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    }
    int rc = ANAMO_OK;
    for (int64_t i = 0; !rc && i < count; i++) {
        const int64_t at = spaced(i, count, ds->n);
        rc = anamo_dataset_rows(ds, at, 1, x, err);
        if (!rc)
            rc = anamo_model_reconstruct(m, ds, at, 1, x + D, err);
        double lo = 0.0, hi = 1.0; /* pixels; other data: the original's range */
        for (int64_t j = 0; ds->dtype != ANAMO_U8 && j < D; j++) {
            lo = j == 0 || x[j] < lo ? x[j] : lo;
            hi = j == 0 || x[j] > hi ? x[j] : hi;
        }
        const int row = 2 * (int)(i / cols), col = (int)(i % cols);
        canvas_tile(&cv, row, col, x, ds->c, lo, hi);
        canvas_tile(&cv, row + 1, col, x + D, ds->c, lo, hi);
    }
    free(x);
    if (rc) {
        free(cv.px);
        return rc;
    }
    return canvas_close(&cv, png, err);
}

static void json_floats(live_buf *b, const float *v, int64_t n)
{
    live_buf_append(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i)
            live_buf_append(b, ",", 1);
        live_buf_number(b, v[i]);
    }
    live_buf_append(b, "]", 1);
}

/* "recon_lines":{"samples":[{"index":I,"x":[…],"xhat":[…]},…]}, */
static int recon_lines(anamo_model *m, const anamo_dataset *ds, live_buf *json, anamo_err *err)
{
    const int64_t count = ds->n < RECON_LINES ? ds->n : RECON_LINES, D = ds->dim;
    float *x = malloc((size_t)(2 * D) * sizeof *x);
    if (!x)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    live_buf_append(json, "\"recon_lines\":{\"samples\":[", 26);
    int rc = ANAMO_OK;
    for (int64_t i = 0; !rc && i < count; i++) {
        /* inside the set, not its ends: on steps the first and last are flat */
        const int64_t at = (2 * i + 1) * ds->n / (2 * count);
        rc = anamo_dataset_rows(ds, at, 1, x, err);
        if (!rc)
            rc = anamo_model_reconstruct(m, ds, at, 1, x + D, err);
        live_buf_printf(json, "%s{\"index\":%lld,\"x\":", i ? "," : "", (long long)at);
        json_floats(json, x, D);
        live_buf_append(json, ",\"xhat\":", 8);
        json_floats(json, x + D, D);
        live_buf_append(json, "}", 1);
    }
    live_buf_append(json, "]},", 3);
    free(x);
    return rc;
}

/* "steps":{"units":K,"codes":[[unit 0 at every position],…]}, — sample p steps at p. */
static int steps_codes(anamo_model *m, const anamo_dataset *ds, live_buf *json, anamo_err *err)
{
    const int64_t n = ds->n, k = anamo_model_code_dim(m);
    const int64_t units = k < STEPS_MAX_UNITS ? k : STEPS_MAX_UNITS;
    if (n > STEPS_MAX_SAMPLES)
        return ANAMO_OK;
    float *codes = malloc((size_t)(n * k) * sizeof *codes);
    float *unit = malloc((size_t)n * sizeof *unit);
    int rc = codes && unit ? anamo_model_encode(m, ds, 0, n, codes, err)
                           : anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    if (!rc) {
        live_buf_printf(json, "\"steps\":{\"units\":%lld,\"code_dim\":%lld,\"codes\":[",
                        (long long)units, (long long)k);
        for (int64_t j = 0; j < units; j++) {
            for (int64_t p = 0; p < n; p++)
                unit[p] = codes[p * k + j];
            if (j)
                live_buf_append(json, ",", 1);
            json_floats(json, unit, n);
        }
        live_buf_append(json, "]},", 3);
    }
    free(codes);
    free(unit);
    return rc;
}

/* ---- the first layer ---------------------------------------------------------------------- */

static double max_abs(const float *v, int64_t n)
{
    double a = 0.0;
    for (int64_t i = 0; i < n; i++)
        a = fabs(v[i]) > a ? fabs(v[i]) : a;
    return a;
}

/* One tile per unit (planes c × h × w each), each scaled by its own largest |w|: grey 0.5 is 0. */
static int weight_tiles(const float *w, int64_t units, int c, int h, int width, live_buf *png,
                        anamo_err *err)
{
    const int64_t size = (int64_t)c * h * width;
    const int64_t count = units < WEIGHT_TILES ? units : WEIGHT_TILES;
    int cols = (int)ceil(sqrt((double)count));
    int rows = (int)((count + cols - 1) / cols);
    canvas cv = {0};
    if (canvas_open(&cv, rows, cols, h, width, magnification(h, width)))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    for (int64_t u = 0; u < count; u++) {
        const double a = max_abs(w + u * size, size);
        canvas_tile(&cv, (int)(u / cols), (int)(u % cols), w + u * size, c, a > 0 ? -a : -1,
                    a > 0 ? a : 1);
    }
    return canvas_close(&cv, png, err);
}

/* The (rows × cols) matrix as a heat map, cells magnified to stay visible. */
static int weight_heat(const float *w, int64_t rows, int64_t cols, live_buf *png, anamo_err *err)
{
    const int r = (int)(rows < WEIGHT_TILES ? rows : WEIGHT_TILES);
    const int c = (int)(cols < HEAT_MAX_COLS ? cols : HEAT_MAX_COLS);
    const int sx = c >= 512 ? 1 : 512 / c, sy = r >= 128 ? 2 : 256 / r < 24 ? 256 / r : 24;
    double a = 0.0;
    for (int i = 0; i < r; i++)
        a = fmax(a, max_abs(w + (int64_t)i * cols, c));
    canvas cv = {.width = c * sx, .height = r * sy};
    cv.px = malloc((size_t)cv.width * (size_t)cv.height * 3);
    if (!cv.px)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    for (int y = 0; y < cv.height; y++)
        for (int x = 0; x < cv.width; x++) {
            double t = a > 0 ? w[(int64_t)(y / sy) * cols + x / sx] / a : 0.0;
            unsigned char *p = cv.px + ((size_t)y * (size_t)cv.width + (size_t)x) * 3;
            p[0] = to_byte(t < 0 ? 1 + t : 1.0);
            p[1] = to_byte(1 - fabs(t));
            p[2] = to_byte(t > 0 ? 1 - t : 1.0);
        }
    return canvas_close(&cv, png, err);
}

static int first_layer_png(anamo_model *m, const anamo_dataset *ds, live_buf *png, anamo_err *err)
{
    anamo_layer_info l;
    const float *w;
    int rc = cli_first_weights(m, 1, &l, &w, err);
    if (rc || !w)
        return rc;
    if (l.kind == ANAMO_LAYER_CONV2D) /* (out_c, in_c, k, k): grey or RGB kernels, else a map */
        return l.in_c == 1 || l.in_c == 3
                   ? weight_tiles(w, l.out_c, l.in_c, l.kernel, l.kernel, png, err)
                   : weight_heat(w, (int64_t)l.out_c * l.in_c, (int64_t)l.kernel * l.kernel, png,
                                 err);
    if (is_image(ds->c, ds->h, ds->w) && l.in_dim == ds->dim)
        return weight_tiles(w, l.out_dim, ds->c, ds->h, ds->w, png, err);
    return weight_heat(w, l.out_dim, l.in_dim, png, err);
}

int live_draw_pictures(anamo_model *m, const anamo_dataset *view, int is_steps, live_pictures *out,
                       anamo_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = ANAMO_OK;
    if (view->n > 0 && is_image(view->c, view->h, view->w))
        rc = recon_grid(m, view, &out->recon_png, err);
    else if (view->n > 0 && view->dim <= LINES_MAX_DIM)
        rc = recon_lines(m, view, &out->extra_json, err);
    if (!rc && is_steps)
        rc = steps_codes(m, view, &out->extra_json, err);
    if (!rc)
        rc = first_layer_png(m, view, &out->weights_png, err);
    if (!rc && out->extra_json.failed)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "--live: out of memory");
    if (rc)
        live_pictures_free(out);
    return rc;
}
