/* ceiling.h — what the model's matrix products allow. For each layer with a weight, the three
 * products a training step can ask of it (forward, input gradient, weight gradient) with the
 * exact sgemm arguments linear.c and conv.c's im2col path pass at batch BATCH; their FLOP per
 * sample; their rate on oneDNN's dnnl_sgemm (the library linear.c calls and the convolutions
 * run on), timed here in the bench's own run; and for a step (joint,
 * NAM encoder, NAM decoder over cached codes) the ceiling ratio
 *
 *     ceiling_ratio = samples/s × FLOP per sample ÷ (Σ product FLOP ÷ Σ product time),
 *
 * the share of an epoch's time that the step's own products would take if run alone: 1 would
 * mean the trainer does nothing but sgemm. The shapes mirror src/nn/linear.c and src/nn/conv.c
 * call for call; a change there must be made here too. (Checked, when both called
 * cblas_sgemm, by interposing it with LD_PRELOAD during training: the dense model makes the 12
 * calls listed here, the conv model the 9 distinct shapes its 18 calls come to.) A conv model
 * whose convolutions run on oneDNN's primitives (model.conv = auto, the default) makes none of
 * its conv products: the ratio then compares it with what the same convolutions as sgemm
 * products would allow (it could pass 1). */
#ifndef ANAMO_BENCH_CEILING_H
#define ANAMO_BENCH_CEILING_H

#include "bench_util.h"
#include "anamo.h"

#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef BATCH
#define BATCH 125
#endif
#ifndef MAX_REPS
#define MAX_REPS 64
#endif
#define CEILING_MIN_SECONDS 0.05 /* each shape is called until this long has passed */
#define CEILING_MAX_CALLS 1000000
#define CEILING_MAX_LAYERS 64 /* per block, as the library's */
#define CEILING_MAX_PRODUCTS (3 * 2 * CEILING_MAX_LAYERS)

enum { PART_FORWARD, PART_DIN, PART_DW, NPARTS };
static const char *const PART_NAMES[NPARTS] = {"forward", "input_grad", "weight_grad"};

typedef struct product {
    char layer[32];         /* PyTorch's name of the layer: "encoder.0" */
    int block, index, part; /* index: the layer's position in its block */
    CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc;
    float beta;
    double flop;              /* 2·M·N·K: one batch */
    double seconds[MAX_REPS]; /* per call, one figure per repetition */
} product;

/* Which products one step of a phase runs: steps.c's train_step through block_backward_span.
 * A block runs its forward, its weight gradients if need_dw, and layer i's input gradient if
 * need_dx or (need_dw and a layer before i has weights). */
typedef struct step_kind {
    const char *name;
    int fwd[2], need_dx[2], need_dw[2]; /* [0] encoder, [1] decoder */
} step_kind;

static const step_kind STEP_KINDS[] = {
    {"joint", {1, 1}, {0, 1}, {1, 1}},
    {"nam_encoder", {1, 1}, {0, 1}, {1, 0}},        /* the decoder passes dH on, no dW */
    {"nam_decoder_cached", {0, 1}, {0, 0}, {0, 1}}, /* codes from the cache, nobody needs dH */
};
#define NSTEP_KINDS ((int)(sizeof STEP_KINDS / sizeof STEP_KINDS[0]))

typedef struct ceiling {
    int n, nreps;
    product p[CEILING_MAX_PRODUCTS];
    int first_weighted[2];
    size_t max_a, max_b, max_c; /* floats each operand needs at most */
    float *a, *b, *c;
} ceiling;

static inline product *add_product(ceiling *c, const anamo_layer_info *l, int part,
                                   CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K)
{
    product *p = &c->p[c->n++];
    snprintf(p->layer, sizeof p->layer, "%s", l->name);
    p->block = l->block, p->index = l->index, p->part = part;
    p->ta = ta, p->tb = tb, p->M = M, p->N = N, p->K = K;
    p->flop = 2.0 * M * N * K;
    return p;
}

static inline void set_ld(product *p, int lda, int ldb, int ldc, float beta)
{
    p->lda = lda, p->ldb = ldb, p->ldc = ldc, p->beta = beta;
}

/* linear.c: forward out (B, OUT) = in (B, IN) · Wᵀ (bias first, beta = 1); din (B, IN) =
 * dout · W; dW (OUT, IN) = doutᵀ · in. */
static inline void add_linear(ceiling *c, const anamo_layer_info *l)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    set_ld(add_product(c, l, PART_FORWARD, CblasNoTrans, CblasTrans, BATCH, OUT, IN), IN, IN, OUT,
           1.0f);
    set_ld(add_product(c, l, PART_DIN, CblasNoTrans, CblasNoTrans, BATCH, IN, OUT), OUT, IN, IN,
           0.0f);
    set_ld(add_product(c, l, PART_DW, CblasTrans, CblasNoTrans, OUT, IN, BATCH), OUT, IN, IN, 0.0f);
}

/* conv.c, Conv2d with W (M = C_out, K = C_in·k·k) and N = B·OH·OW columns: forward out (M, N)
 * = W · col; dcol (K, N) = Wᵀ · dout (then col2im); dW (M, K) = dout · colᵀ. */
static void add_conv2d(ceiling *c, const anamo_layer_info *l)
{
    const int M = l->out_c, K = l->in_c * l->kernel * l->kernel, N = BATCH * l->out_h * l->out_w;
    set_ld(add_product(c, l, PART_FORWARD, CblasNoTrans, CblasNoTrans, M, N, K), K, N, N, 0.0f);
    set_ld(add_product(c, l, PART_DIN, CblasTrans, CblasNoTrans, K, N, M), K, N, N, 0.0f);
    set_ld(add_product(c, l, PART_DW, CblasNoTrans, CblasTrans, M, K, N), N, N, K, 0.0f);
}

/* conv.c, ConvTranspose2d with W (C_in, K = C_out·k·k) and N = B·H_in·W_in columns: forward
 * work span (K, N) = Wᵀ · x (then col2im); din (C_in, N) = W · dcol, dcol = im2col(dout);
 * dW (C_in, K) = x · dcolᵀ. */
static void add_convt2d(ceiling *c, const anamo_layer_info *l)
{
    const int C_in = l->in_c, K = l->out_c * l->kernel * l->kernel, N = BATCH * l->in_h * l->in_w;
    set_ld(add_product(c, l, PART_FORWARD, CblasTrans, CblasNoTrans, K, N, C_in), K, N, N, 0.0f);
    set_ld(add_product(c, l, PART_DIN, CblasNoTrans, CblasNoTrans, C_in, N, K), K, N, N, 0.0f);
    set_ld(add_product(c, l, PART_DW, CblasNoTrans, CblasTrans, C_in, K, N), N, N, K, 0.0f);
}

static inline void add_block(ceiling *c, const anamo_model *m, int blk)
{
    const int nlayers = anamo_model_layer_count(m, blk);
    c->first_weighted[blk] = nlayers;
    for (int i = 0; i < nlayers; i++) {
        anamo_layer_info l;
        anamo_model_layer(m, blk, i, &l, NULL);
        if (l.params > 0 && c->first_weighted[blk] == nlayers)
            c->first_weighted[blk] = i;
        if (l.kind == ANAMO_LAYER_LINEAR)
            add_linear(c, &l);
        else if (l.kind == ANAMO_LAYER_CONV2D)
            add_conv2d(c, &l);
        else if (l.kind == ANAMO_LAYER_CONVT2D)
            add_convt2d(c, &l);
    }
}

/* The operand sizes a row-major product reads and writes. */
static inline void operand_sizes(const product *p, size_t *na, size_t *nb, size_t *nc)
{
    *na = (size_t)(p->ta == CblasNoTrans ? p->M : p->K) * (size_t)p->lda;
    *nb = (size_t)(p->tb == CblasNoTrans ? p->K : p->N) * (size_t)p->ldb;
    *nc = (size_t)p->M * (size_t)p->ldc;
}

static inline float *random_floats(size_t n, unsigned seed)
{
    float *v = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; v && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return v;
}

/* The products of the model the layer lists build on a (c, h, w) input; 0 on success. */
static inline int ceiling_create(ceiling *c, const char *encoder, const char *decoder, int in_c,
                                 int in_h, int in_w)
{
    anamo_err err = {0};
    memset(c, 0, sizeof *c);
    /* a batch of one: only the layers' shapes are read, never their buffers */
    anamo_model_spec spec = {.in_c = in_c,
                             .in_h = in_h,
                             .in_w = in_w,
                             .encoder = encoder,
                             .decoder = decoder,
                             .max_batch = 1,
                             .conv = ANAMO_CONV_IM2COL};
    anamo_model *m = NULL;
    int rc = anamo_model_create(&spec, &m, &err);
    if (rc)
        fprintf(stderr, "ceiling: %s\n", err.msg);
    for (int k = 0; !rc && k < 2; k++)
        add_block(c, m, k);
    anamo_model_free(m);
    for (int i = 0; !rc && i < c->n; i++) {
        size_t na, nb, nc;
        operand_sizes(&c->p[i], &na, &nb, &nc);
        c->max_a = na > c->max_a ? na : c->max_a;
        c->max_b = nb > c->max_b ? nb : c->max_b;
        c->max_c = nc > c->max_c ? nc : c->max_c;
    }
    if (!rc) {
        c->a = random_floats(c->max_a, 1), c->b = random_floats(c->max_b, 2);
        c->c = random_floats(c->max_c, 3);
        rc = !c->a || !c->b || !c->c;
        if (rc)
            fprintf(stderr, "ceiling: cannot allocate the operands\n");
    }
    return rc;
}

static inline void ceiling_free(ceiling *c)
{
    free(c->a), free(c->b), free(c->c);
    c->a = c->b = c->c = NULL;
}

static inline double ceiling_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void call_product(const ceiling *c, const product *p)
{
    dnnl_sgemm(p->ta == CblasNoTrans ? 'N' : 'T', p->tb == CblasNoTrans ? 'N' : 'T', p->M, p->N,
               p->K, 1.0f, c->a, p->lda, c->b, p->ldb, p->beta, c->c, p->ldc);
}

/* Seconds per call of one product: one call to warm up and one to size the loop, then calls
 * until CEILING_MIN_SECONDS have passed. The operands stay in cache between calls, as they
 * mostly do not in training: the figure is the library's best on that shape. */
static inline double time_product(const ceiling *c, const product *p)
{
    call_product(c, p);
    double t0 = ceiling_now();
    call_product(c, p);
    double once = ceiling_now() - t0;
    long calls = (long)ceil(CEILING_MIN_SECONDS / (once > 1e-7 ? once : 1e-7));
    calls = calls < 1 ? 1 : calls > CEILING_MAX_CALLS ? CEILING_MAX_CALLS : calls;
    t0 = ceiling_now();
    for (long i = 0; i < calls; i++)
        call_product(c, p);
    return (ceiling_now() - t0) / (double)calls;
}

/* One repetition: every product timed once more. */
static inline void ceiling_measure(ceiling *c)
{
    if (c->nreps >= MAX_REPS)
        return;
    for (int i = 0; i < c->n; i++)
        c->p[i].seconds[c->nreps] = time_product(c, &c->p[i]);
    c->nreps++;
}

static inline int step_uses(const ceiling *c, const step_kind *s, const product *p)
{
    const int k = p->block;
    if (p->part == PART_FORWARD)
        return s->fwd[k];
    if (p->part == PART_DW)
        return s->need_dw[k];
    return s->need_dx[k] || (s->need_dw[k] && c->first_weighted[k] < p->index);
}

static inline double product_median(const product *p, int n) { return bench_median(p->seconds, n); }

static inline const char *trans_name(CBLAS_TRANSPOSE t)
{
    return t == CblasNoTrans ? "NoTrans" : "Trans";
}

/* FLOP per sample of each product and of each step, and what a joint step leaves out. */
static inline void ceiling_print_flop(const ceiling *c)
{
    for (int i = 0; i < c->n; i++)
        printf("flop_%s_%s: %.0f FLOP/sample\n", c->p[i].layer, PART_NAMES[c->p[i].part],
               c->p[i].flop / BATCH);
    for (int s = 0; s < NSTEP_KINDS; s++) {
        double flop = 0.0, part[NPARTS] = {0};
        for (int i = 0; i < c->n; i++)
            if (step_uses(c, &STEP_KINDS[s], &c->p[i])) {
                flop += c->p[i].flop / BATCH;
                part[c->p[i].part] += c->p[i].flop / BATCH;
            }
        for (int k = 0; k < NPARTS; k++)
            printf("flop_%s_%s: %.0f FLOP/sample\n", STEP_KINDS[s].name, PART_NAMES[k], part[k]);
        printf("flop_%s_step: %.0f FLOP/sample\n", STEP_KINDS[s].name, flop);
    }
    printf("joint_skips:");
    for (int i = 0, n = 0; i < c->n; i++)
        if (!step_uses(c, &STEP_KINDS[0], &c->p[i]))
            printf("%s %s_%s", n++ ? "," : "", c->p[i].layer, PART_NAMES[c->p[i].part]);
    printf(" (nobody needs the input's gradient)\n");
}

/* The rate of each product, then for each step whose samples/s is given (> 0): the rate of its
 * product mix, the samples/s its products alone would allow, and the ceiling ratio. */
static inline void ceiling_print_rates(const ceiling *c, const double *samples_per_s)
{
    if (c->nreps == 0)
        return;
    for (int i = 0; i < c->n; i++) {
        const product *p = &c->p[i];
        printf("sgemm_%s_%s: %.2f GFLOP/s (RowMajor %s %s M=%d N=%d K=%d lda=%d ldb=%d ldc=%d "
               "beta=%g)\n",
               p->layer, PART_NAMES[p->part], p->flop / product_median(p, c->nreps) * 1e-9,
               trans_name(p->ta), trans_name(p->tb), p->M, p->N, p->K, p->lda, p->ldb, p->ldc,
               (double)p->beta);
    }
    for (int s = 0; s < NSTEP_KINDS; s++) {
        if (samples_per_s[s] <= 0.0)
            continue;
        double flop = 0.0, seconds = 0.0;
        for (int i = 0; i < c->n; i++)
            if (step_uses(c, &STEP_KINDS[s], &c->p[i])) {
                flop += c->p[i].flop;
                seconds += product_median(&c->p[i], c->nreps);
            }
        const double rate = flop / seconds, achieved = samples_per_s[s] * flop / BATCH;
        const char *name = STEP_KINDS[s].name;
        printf("sgemm_%s_mix: %.2f GFLOP/s\n", name, rate * 1e-9);
        printf("%s_flop_rate: %.2f GFLOP/s\n", name, achieved * 1e-9);
        printf("%s_product_bound: %.0f samples/s\n", name, BATCH / seconds);
        printf("%s_ceiling_ratio: %.3f\n", name, achieved / rate);
    }
}

#endif
