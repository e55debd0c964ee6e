/* conv.c — nn.Conv2d and nn.ConvTranspose2d (NCHW semantics, square kernels), each as one
 * sgemm over the whole batch between a weight matrix and an im2col matrix whose columns are
 * (sample, output position): for a batch of B samples and P output positions,
 *
 *   Conv2d           W (M = C_out, K = C_in·k·k)
 *     forward        col = im2col(in)                 (K, B·P)
 *                    out = W · col + b                (M, B·P)       channel-major
 *     backward       dW  = dout · colᵀ,  db = Σ dout
 *                    din = col2im(Wᵀ · dout)
 *   ConvTranspose2d  W (C_in, K = C_out·k·k): the adjoint of a Conv2d with that weight
 *     forward        out = col2im(Wᵀ · in) + b
 *     backward       dcol = im2col(dout)
 *                    din = W · dcol,  dW = in · dcolᵀ,  db = Σ dout
 *
 * Output sizes: Conv2d OH = ⌊(H + 2p − k)/s⌋ + 1; ConvTranspose2d OH = (H − 1)·s − 2p + k + op.
 * im2col and col2im run on OpenMP threads (one row of col, or one output plane or run of
 * planes, per task);
 * the products on nn_gemm (oneDNN's sgemm). A layer built on oneDNN (l->dnnl, model.conv = auto or dnnl) is handed
 * to conv_dnnl.c instead. */
#include "core/simd.h"
#include "nn/layer.h"

#include <omp.h>
#include <string.h>

#define CONV_OMP_MIN 16384

layout layout_of(int channel_major, int B, int64_t C, int64_t P)
{
    layout l = {channel_major ? P : C * P, channel_major ? (int64_t)B * P : P};
    return l;
}

void layout_convert(const float *src, int src_cm, float *dst, int dst_cm, int B, int64_t C,
                    int64_t P)
{
    const layout ls = layout_of(src_cm, B, C, P), ld = layout_of(dst_cm, B, C, P);
#pragma omp parallel for collapse(2) if ((int64_t)B * C * P > CONV_OMP_MIN)
    for (int b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            memcpy(dst + b * ld.sb + c * ld.sc, src + b * ls.sb + c * ls.sc,
                   (size_t)P * sizeof(float));
}

/* The geometry of one convolution: an image (C, H, W) seen through k×k windows of stride s
 * and padding p at OH×OW positions. */
typedef struct geom {
    int B, C, H, W, k, s, p, OH, OW;
} geom;

/* The output columns ow whose input column ow·s − p + kj lies inside [0, W): [*lo, *hi). */
static void valid_range(const geom *g, int kj, int *lo, int *hi)
{
    int first = g->p - kj; /* ow·s ≥ p − kj */
    *lo = first <= 0 ? 0 : (first + g->s - 1) / g->s;
    int last = g->W - 1 + g->p - kj; /* ow·s ≤ W − 1 + p − kj */
    *hi = last < 0 ? 0 : last / g->s + 1;
    if (*hi > g->OW)
        *hi = g->OW;
    if (*lo > *hi)
        *lo = *hi;
}

/* col (C·k·k, B·OH·OW) from the image batch `img` in layout li. */
static void im2col(const float *img, layout li, const geom *g, float *col)
{
    const int64_t N = (int64_t)g->B * g->OH * g->OW, kk2 = (int64_t)g->k * g->k;
#pragma omp parallel for collapse(2) if (N * g->C * kk2 > CONV_OMP_MIN)
    for (int c = 0; c < g->C; c++)
        for (int kk = 0; kk < kk2; kk++) {
            const int ki = kk / g->k, kj = kk % g->k, s = g->s, shift = kj - g->p;
            int lo, hi;
            valid_range(g, kj, &lo, &hi);
            float *row = col + (c * kk2 + kk) * N;
            for (int b = 0; b < g->B; b++) {
                const float *plane = img + b * li.sb + c * li.sc;
                for (int oh = 0; oh < g->OH; oh++) {
                    const int ih = oh * s - g->p + ki;
                    float *dst = row + ((int64_t)b * g->OH + oh) * g->OW;
                    if (ih < 0 || ih >= g->H) {
                        memset(dst, 0, (size_t)g->OW * sizeof *dst);
                        continue;
                    }
                    const float *src = plane + (int64_t)ih * g->W; /* src[ow·s + shift] is */
                    for (int ow = 0; ow < lo; ow++)                /* inside for lo ≤ ow < hi */
                        dst[ow] = 0.0f;
                    for (int ow = lo; ow < hi; ow++)
                        dst[ow] = src[ow * s + shift];
                    for (int ow = hi; ow < g->OW; ow++)
                        dst[ow] = 0.0f;
                }
            }
        }
}

/* img (layout li) = Σ of the col entries that im2col would have read from each pixel, added in
 * kk order from 0, then + bias[c] on channel c's planes when bias is not NULL (as a pass after
 * would, while the plane is in cache). Each (channel, sample) plane is one task, so no two
 * threads add into the same pixel. The general way; col2im_residues is the fast one. */
static void col2im_planes(const float *col, const geom *g, float *img, layout li, const float *bias)
{
    const int64_t N = (int64_t)g->B * g->OH * g->OW, kk2 = (int64_t)g->k * g->k;
#pragma omp parallel for collapse(2) if (N * g->C * kk2 > CONV_OMP_MIN)
    for (int c = 0; c < g->C; c++)
        for (int b = 0; b < g->B; b++) {
            float *plane = img + b * li.sb + c * li.sc;
            memset(plane, 0, (size_t)g->H * g->W * sizeof *plane);
            for (int kk = 0; kk < kk2; kk++) {
                const int ki = kk / g->k, kj = kk % g->k, s = g->s, shift = kj - g->p;
                int lo, hi;
                valid_range(g, kj, &lo, &hi);
                const float *row = col + (c * kk2 + kk) * N + (int64_t)b * g->OH * g->OW;
                for (int oh = 0; oh < g->OH; oh++) {
                    const int ih = oh * s - g->p + ki;
                    if (ih < 0 || ih >= g->H)
                        continue;
                    float *dst = plane + (int64_t)ih * g->W;
                    const float *src = row + (int64_t)oh * g->OW;
                    for (int ow = lo; ow < hi; ow++)
                        dst[ow * s + shift] += src[ow];
                }
            }
            if (bias)
                for (int64_t i = 0; i < (int64_t)g->H * g->W; i++)
                    plane[i] += bias[c];
        }
}

/* Floats of one col2im_residues task's residue planes (on its stack), and the most entries of
 * its validity masks (k² col rows of OH·OW entries; larger planes have rows long enough for
 * col2im_planes). */
#define COL2IM_TASK_FLOATS 8192
#define COL2IM_MASK_ENTRIES 4096

/* Where kernel offset kk = (ki, kj) sends col's entries, when the image is s times the col
 * planes (H = OH·s, W = OW·s): entry (oh, ow) lands on pixel (oh·s + ki − p, ow·s + kj − p),
 * which is pixel (oh + qy, ow + qx) of residue plane (ry, rx), the pixels (y, x) with
 * y mod s = ry and x mod s = rx; so at flat index oh·OW + ow + shift of that plane. */
typedef struct residue_map {
    int plane, shift; /* ry·s + rx; qy·OW + qx */
} residue_map;

static int floor_div(int a, int s) { return (a - ((a % s) + s) % s) / s; }

static residue_map residue_of(const geom *g, int ki, int kj)
{
    const int ay = ki - g->p, ax = kj - g->p;
    const int qy = floor_div(ay, g->s), qx = floor_div(ax, g->s);
    residue_map m = {(ay - qy * g->s) * g->s + (ax - qx * g->s), qy * g->OW + qx};
    return m;
}

/* The samples one task takes: its s² residue planes, each with a margin of `margin` floats on
 * both sides (where the entries that land off the image go), fit in COL2IM_TASK_FLOATS; 0 when
 * one sample's do not, or the image is not s times the col planes, or the masks do not fit. */
static int col2im_residue_batch(const geom *g, int *margin)
{
    const int64_t P = (int64_t)g->OH * g->OW, kk2 = (int64_t)g->k * g->k;
    if (g->H != g->OH * g->s || g->W != g->OW * g->s || kk2 * P > COL2IM_MASK_ENTRIES)
        return 0;
    const int q = (g->p > g->k - 1 - g->p ? g->p : g->k - 1 - g->p) / g->s + 1; /* ≥ |qy|, |qx| */
    *margin = q * (g->OW + 1);
    const int64_t per_plane = COL2IM_TASK_FLOATS / ((int64_t)g->s * g->s) - 2 * *margin;
    const int64_t n = per_plane / P;
    return n < 1 ? 0 : n > g->B ? g->B : (int)n;
}

/* dst[i] += src[i] where ok[i], for nb runs of P entries (the masked ones add +0.0). */
static ANAMO_CLONES void add_where(float *dst, const float *src, const int32_t *ok, int nb, int P)
{
    for (int b = 0; b < nb; b++, dst += P, src += P)
        for (int i = 0; i < P; i++)
            dst[i] += ok[i] ? src[i] : 0.0f;
}

/* One image row from its s residue rows (`rows`, `span` apart, n entries each): row[m·s + r] =
 * rows[r·span + m] + add. */
static ANAMO_CLONES void interleave_row(float *row, const float *rows, int64_t span, int s, int n,
                                        float add)
{
    if (s == 2) {
        const float *even = rows, *odd = rows + span;
        for (int m = 0; m < n; m++) {
            row[2 * m] = even[m] + add;
            row[2 * m + 1] = odd[m] + add;
        }
        return;
    }
    for (int r = 0; r < s; r++)
        for (int m = 0; m < n; m++)
            row[m * s + r] = rows[r * span + m] + add;
}

/* col2im for an image s times its col planes, which is every layer whose kernel is twice its
 * stride (seed 000's): per channel and run of samples, kernel offset by kernel offset, col's
 * rows are added whole into the residue planes (each in one contiguous run, the entries that
 * land off the image masked to +0.0, which changes no sum that starts from +0.0), and the
 * planes are then interleaved into the image. Each pixel receives the same additions in the
 * same order as col2im_planes gives it (kk order, from 0, then the bias): the same bits. */
static void col2im_residues(const float *col, const geom *g, float *img, layout li,
                            const float *bias, int per_task, int margin)
{
    const int s = g->s, k = g->k, P = g->OH * g->OW, kk2 = k * k;
    const int64_t N = (int64_t)g->B * P;
    residue_map where[kk2];
    int32_t valid[kk2 * P]; /* entry i of col row kk lands on the image */
    for (int kk = 0; kk < kk2; kk++) {
        const int ki = kk / k, kj = kk % k;
        where[kk] = residue_of(g, ki, kj);
        int lo, hi; /* the columns ow that land inside: [lo, hi) */
        valid_range(g, kj, &lo, &hi);
        for (int oh = 0; oh < g->OH; oh++) {
            const int y = oh * s + ki - g->p, row_in = y >= 0 && y < g->H;
            for (int ow = 0; ow < g->OW; ow++)
                valid[kk * P + oh * g->OW + ow] = row_in && ow >= lo && ow < hi;
        }
    }
    const int tasks = (g->B + per_task - 1) / per_task;
#pragma omp parallel for collapse(2) if (N * g->C * kk2 > CONV_OMP_MIN)
    for (int c = 0; c < g->C; c++)
        for (int t = 0; t < tasks; t++) {
            const int b0 = t * per_task, nb = g->B - b0 < per_task ? g->B - b0 : per_task;
            const int64_t span = (int64_t)nb * P + 2 * margin;
            float planes[COL2IM_TASK_FLOATS];
            memset(planes, 0, (size_t)(s * s * span) * sizeof *planes);
            for (int kk = 0; kk < kk2; kk++)
                add_where(planes + where[kk].plane * span + margin + where[kk].shift,
                          col + ((int64_t)c * kk2 + kk) * N + (int64_t)b0 * P, valid + kk * P, nb,
                          P);
            const float add = bias ? bias[c] : 0.0f;
            for (int b = 0; b < nb; b++) {
                float *plane = img + (b0 + b) * li.sb + c * li.sc;
                for (int y = 0; y < g->H; y++)
                    interleave_row(plane + (int64_t)y * g->W,
                                   planes + (y % s) * s * span + margin + (int64_t)b * P +
                                       (int64_t)(y / s) * g->OW,
                                   span, s, g->OW, add);
            }
        }
}

/* img = col2im(col) (+ bias): on residue planes where the shapes allow, else plane by plane. */
static void col2im(const float *col, const geom *g, float *img, layout li, const float *bias)
{
    int margin = 0;
    const int per_task = col2im_residue_batch(g, &margin);
    if (per_task)
        col2im_residues(col, g, img, li, bias, per_task, margin);
    else
        col2im_planes(col, g, img, li, bias);
}

/* Adds bias[c] to every element of channel c of a channel-major (C, N) batch. */
static void add_bias(float *out, const float *bias, int C, int64_t N)
{
#pragma omp parallel for if ((int64_t)C * N > CONV_OMP_MIN)
    for (int c = 0; c < C; c++) {
        float *row = out + c * N;
        const float v = bias[c];
        for (int64_t i = 0; i < N; i++)
            row[i] += v;
    }
}

static void bias_grad(float *dbias, const float *dout, int C, int64_t N)
{
#pragma omp parallel for if ((int64_t)C * N > CONV_OMP_MIN)
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        const float *row = dout + c * N;
        for (int64_t i = 0; i < N; i++)
            sum += row[i];
        dbias[c] = (float)sum;
    }
}

/* The window geometry of a Conv2d layer (image = its input) or a ConvTranspose2d layer
 * (image = its output, positions = its input). */
static geom conv_geom(const layer *l, int B)
{
    geom g = {B, l->in_c, l->in_h, l->in_w, l->k, l->stride, l->pad, l->out_h, l->out_w};
    if (l->kind == LAYER_CONVT2D) {
        g.C = l->out_c, g.H = l->out_h, g.W = l->out_w;
        g.OH = l->in_h, g.OW = l->in_w;
    }
    return g;
}

void conv2d_forward(layer *l, const float *in, int B)
{
    if (l->dnnl) {
        conv_dnnl_forward(l, in, B);
        return;
    }
    const geom g = conv_geom(l, B);
    const int M = l->out_c, K = l->in_c * l->k * l->k;
    const int N = B * l->out_h * l->out_w;
    im2col(in, layout_of(l->in_cm, B, l->in_c, (int64_t)l->in_h * l->in_w), &g, l->col);
    nn_gemm('N', 'N', M, N, K, l->weight, K, l->col, N, 0.0f, l->out, N);
    add_bias(l->out, l->bias, M, N);
}

void conv2d_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                     int need_dw)
{
    if (l->dnnl) {
        conv_dnnl_backward(l, in, dout, din, B, need_din, need_dw);
        return;
    }
    const geom g = conv_geom(l, B);
    const int M = l->out_c, K = l->in_c * l->k * l->k;
    const int N = B * l->out_h * l->out_w;
    (void)in; /* the forward's im2col of it is in l->col */
    if (need_dw) {
        nn_gemm('N', 'T', M, K, N, dout, N, l->col, N, 0.0f, l->dweight, K);
        bias_grad(l->dbias, dout, M, N);
    }
    if (need_din) { /* dcol = Wᵀ · dout, into col (no longer needed), then scattered back */
        nn_gemm('T', 'N', K, N, M, l->weight, K, dout, N, 0.0f, l->col, N);
        col2im(l->col, &g, din, layout_of(l->in_cm, B, l->in_c, (int64_t)l->in_h * l->in_w), NULL);
    }
}

/* The input as a channel-major (C_in, B·P_in) matrix: itself, or converted into l->inbuf. */
static const float *channel_major_input(layer *l, const float *in, int B)
{
    if (l->in_cm)
        return in;
    layout_convert(in, 0, l->inbuf, 1, B, l->in_c, (int64_t)l->in_h * l->in_w);
    return l->inbuf;
}

/* Columns of col a ConvTranspose2d's forward makes at a time: whole samples, about 256 KiB,
 * so that sgemm writes them and col2im reads them back in a core's own cache. */
#define CONVT_SLICE_FLOATS 65536

/* Floats of col one sample makes: (C_out·k·k, P_in). */
static int64_t convt2d_col_per_sample(const layer *l)
{
    return (int64_t)l->out_c * l->k * l->k * l->in_h * l->in_w;
}

static int convt2d_per_slice(const layer *l, int B)
{
    const int64_t n = CONVT_SLICE_FLOATS / convt2d_col_per_sample(l);
    return n < 1 ? 1 : n > B ? B : (int)n;
}

int64_t convt2d_col_floats(const layer *l, int max_batch, int *slots)
{
    const int64_t per_sample = convt2d_col_per_sample(l);
    const int per_slice = convt2d_per_slice(l, max_batch);
    const int nslices = (max_batch + per_slice - 1) / per_slice, procs = omp_get_num_procs();
    *slots = l->dnnl && procs < nslices ? procs : nslices;
    return l->dnnl ? (int64_t)*slots * per_slice * per_sample : (int64_t)max_batch * per_sample;
}

/* On oneDNN too: its deconvolution forward took 1.2–2× as long as this one on seed 000's
 * decoder layers (bench_conv_layers), while its backward parts were faster. The batch goes in
 * slices of whole samples, each thread making one slice's col at a time in its own part of
 * l->col (sgemm and col2im then run on the calling thread alone); no thread number reaches
 * l->col_slots. */
void convt2d_forward(layer *l, const float *in, int B)
{
    const geom g = conv_geom(l, B);
    const int C_in = l->in_c, K = l->out_c * l->k * l->k, P_in = l->in_h * l->in_w;
    const int N = B * P_in;
    const float *x = channel_major_input(l, in, B);
    const int64_t P_out = (int64_t)l->out_h * l->out_w;
    const layout lo = layout_of(1, B, l->out_c, P_out);
    const int per_slice = convt2d_per_slice(l, B), nslices = (B + per_slice - 1) / per_slice;
    const int threads = omp_get_max_threads() < l->col_slots ? omp_get_max_threads() : l->col_slots;
#pragma omp parallel num_threads(threads) if (nslices > 1)
    {
        const int t = omp_get_thread_num(), nthr = omp_get_num_threads();
        float *col = l->col + t * per_slice * convt2d_col_per_sample(l);
        for (int i = t; i < nslices; i += nthr) {
            const int b0 = i * per_slice, nb = B - b0 < per_slice ? B - b0 : per_slice;
            const int n = nb * P_in;
            geom gs = g;
            gs.B = nb;
            nn_gemm('T', 'N', K, n, C_in, l->weight, K, x + (int64_t)b0 * P_in, N, 0.0f, col, n);
            col2im(col, &gs, l->out + b0 * lo.sb, lo, l->bias);
        }
    }
}

void convt2d_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                      int need_dw)
{
    if (l->dnnl) {
        conv_dnnl_backward(l, in, dout, din, B, need_din, need_dw);
        return;
    }
    const geom g = conv_geom(l, B);
    const int C_in = l->in_c, K = l->out_c * l->k * l->k, N = B * l->in_h * l->in_w;
    const int64_t P_out = (int64_t)l->out_h * l->out_w;
    im2col(dout, layout_of(1, B, l->out_c, P_out), &g, l->col); /* dcol */
    if (need_dw) {
        const float *x = l->in_cm ? in : l->inbuf; /* converted by the forward */
        nn_gemm('N', 'T', C_in, K, N, x, N, l->col, N, 0.0f, l->dweight, K);
        bias_grad(l->dbias, dout, l->out_c, (int64_t)B * P_out);
    }
    if (need_din) {
        float *dst = l->in_cm ? din : l->inbuf;
        nn_gemm('N', 'N', C_in, N, K, l->weight, K, l->col, N, 0.0f, dst, N);
        if (!l->in_cm)
            layout_convert(dst, 1, din, 0, B, C_in, (int64_t)l->in_h * l->in_w);
    }
}
