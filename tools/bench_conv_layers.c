/* bench_conv_layers.c — a white-box tool (it calls src/nn's layer functions): seed 000's six
 * convolution layers, batch 125: anamo's im2col + sgemm
 * (src/nn/conv.c) against oneDNN's convolution and deconvolution primitives, forward, backward
 * data and backward weights, in one run, alternating.
 *
 * anamo's side is the layer functions on a block built from the model's own layer lists, each
 * layer reading the layout the block gives it (the first layer of each block sample-major NCHW,
 * the others channel-major). Its backward is timed as one call (the input and weight gradients
 * share one im2col, and a Conv2d's reuses its forward's), oneDNN's as its two primitives; the
 * encoder's first layer computes no input gradient, as in training. Only the sum of a layer's
 * parts compares like with like.
 * oneDNN's side takes NCHW for activations and PyTorch's weight layouts, two ways:
 *   plain    the primitives on those layouts as they are (no reorder);
 *   blocked  layouts of oneDNN's choosing (format_tag any), with the reorders of activations,
 *            weights and gradients from and to NCHW / PyTorch's layout timed as part of it;
 *   blocked_net  the same, with the activations' user side in the layouts anamo's layers give
 *            and take (channel-major (C, N, H, W) between convolutions);
 *   layer_dnnl   anamo's layer functions on a block built with model.conv = dnnl
 *            (src/nn/conv_dnnl.c, which does what blocked_net does): what training runs.
 * Each figure is the median over rounds of the milliseconds per call, each call repeated for at
 * least 0.1 s. What the lines mean: bench/README.md. */
#include "bench_util.h"
#include "machine.h"
#include "nn/block.h"

#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 125
#define ROUNDS_MAX 15
#define MIN_SECONDS 0.1
#define NPARTS 3

static const char *const PART_NAMES[NPARTS] = {"forward", "input_grad", "weight_grad"};

enum { WAY_ANAMO = 0, WAY_PLAIN, WAY_BLOCKED, WAY_BLOCKED_NET, WAY_LAYER_DNNL, NWAYS };
static const char *const WAY_NAMES[NWAYS] = {"im2col", "dnnl_plain", "dnnl_blocked",
                                             "dnnl_blocked_net", "layer_dnnl"};

#define CHECK(call)                                                                                \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) {                                                                 \
            fprintf(stderr, "%s:%d: %s failed: status %d\n", __FILE__, __LINE__, #call, (int)st_); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A user-layout tensor and, where the primitive wants another layout, its twin and the two
 * reorders between them. */
typedef struct operand {
    dnnl_memory_t user, inner; /* inner == user when the layouts agree */
    dnnl_primitive_t to_inner, to_user;
} operand;

/* One primitive with its operands: args[i] binds a DNNL_ARG_* to operand ops[i]. is_output[i]
 * marks what it writes (reordered back to the user's layout after it runs). */
typedef struct prim {
    dnnl_primitive_t p;
    int nargs;
    int arg[5];
    operand ops[5];
    int is_output[5];
    const char *impl;
} prim;

typedef struct dnnl_ctx {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
} dnnl_ctx;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *v, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

static dnnl_memory_desc_t md_tag(int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag)
{
    dnnl_memory_desc_t md;
    CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

/* Binds a user buffer `data` (layout user_md) to the layout the primitive chose (want). */
static operand bind(const dnnl_ctx *d, const dnnl_memory_desc_t *user_md,
                    const dnnl_memory_desc_t *want, float *data)
{
    operand o = {0};
    CHECK(dnnl_memory_create(&o.user, user_md, d->eng, data));
    if (dnnl_memory_desc_equal(user_md, want)) {
        o.inner = o.user;
        return o;
    }
    CHECK(dnnl_memory_create(&o.inner, want, d->eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, user_md, d->eng, want, d->eng, NULL));
    CHECK(dnnl_primitive_create(&o.to_inner, rpd));
    dnnl_primitive_desc_destroy(rpd);
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, want, d->eng, user_md, d->eng, NULL));
    CHECK(dnnl_primitive_create(&o.to_user, rpd));
    dnnl_primitive_desc_destroy(rpd);
    return o;
}

static void reorder(const dnnl_ctx *d, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(r, d->stream, 2, a));
}

static void prim_run(const dnnl_ctx *d, prim *p)
{
    dnnl_exec_arg_t a[5];
    for (int i = 0; i < p->nargs; i++) {
        operand *o = &p->ops[i];
        if (!p->is_output[i] && o->to_inner)
            reorder(d, o->to_inner, o->user, o->inner);
        a[i] = (dnnl_exec_arg_t){p->arg[i], o->inner};
    }
    CHECK(dnnl_primitive_execute(p->p, d->stream, p->nargs, a));
    for (int i = 0; i < p->nargs; i++)
        if (p->is_output[i] && p->ops[i].to_user)
            reorder(d, p->ops[i].to_user, p->ops[i].inner, p->ops[i].user);
    CHECK(dnnl_stream_wait(d->stream));
}

/* The buffers of one layer in the user's layouts (NCHW activations, PyTorch's weights). */
typedef struct tensors {
    float *src, *dst, *w, *b, *dsrc, *ddst, *dw, *db;
} tensors;

/* The three primitives of one layer, one way. */
typedef struct layer_prims {
    prim part[NPARTS];
} layer_prims;

static void add_arg(prim *p, int arg, operand o, int is_output)
{
    p->arg[p->nargs] = arg, p->ops[p->nargs] = o, p->is_output[p->nargs] = is_output;
    p->nargs++;
}

static prim make_prim(const dnnl_ctx *d, dnnl_primitive_desc_t pd)
{
    prim p = {0};
    CHECK(dnnl_primitive_create(&p.p, pd));
    const char *impl = NULL;
    CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    p.impl = impl ? strdup(impl) : "?";
    (void)d;
    return p;
}

/* Builds forward, backward-data and backward-weights primitives of a Conv2d (deconv = 0) or a
 * ConvTranspose2d (deconv = 1) layer. */
static void build_prims(const dnnl_ctx *d, const layer *l, int way, tensors *t, layer_prims *out)
{
    const int deconv = l->kind == LAYER_CONVT2D;
    dnnl_dims_t sd = {BATCH, l->in_c, l->in_h, l->in_w}, dd = {BATCH, l->out_c, l->out_h, l->out_w};
    dnnl_dims_t wd = {l->out_c, l->in_c, l->k, l->k}, bd = {l->out_c};
    dnnl_dims_t strides = {l->stride, l->stride}, pad = {l->pad, l->pad};
    dnnl_dims_t pad_r = {l->pad, l->pad};
    /* PyTorch keeps a ConvTranspose2d's weight as (in_c, out_c, k, k): oneDNN's iohw */
    const dnnl_format_tag_t wtag = deconv ? dnnl_iohw : dnnl_oihw;
    const int net = way == WAY_BLOCKED_NET, blocked = way != WAY_PLAIN;
    dnnl_memory_desc_t u_src = md_tag(4, sd, net && l->in_cm ? dnnl_bacd : dnnl_nchw);
    dnnl_memory_desc_t u_dst = md_tag(4, dd, net && l->out_cm ? dnnl_bacd : dnnl_nchw);
    dnnl_memory_desc_t u_w = md_tag(4, wd, wtag), u_b = md_tag(1, bd, dnnl_x);
    dnnl_memory_desc_t a_src = u_src, a_dst = u_dst, a_w = u_w;
    if (blocked) {
        a_src = md_tag(4, sd, dnnl_format_tag_any), a_dst = md_tag(4, dd, dnnl_format_tag_any);
        a_w = md_tag(4, wd, dnnl_format_tag_any);
    }
    dnnl_convolution_desc_t fdesc, bddesc, bwdesc;
    dnnl_deconvolution_desc_t dfdesc, dbddesc, dbwdesc;
    const void *descs[NPARTS];
    if (!deconv) {
        CHECK(dnnl_convolution_forward_desc_init(&fdesc, dnnl_forward_training,
                                                 dnnl_convolution_direct, &a_src, &a_w, &u_b,
                                                 &a_dst, strides, pad, pad_r));
        CHECK(dnnl_convolution_backward_data_desc_init(&bddesc, dnnl_convolution_direct, &a_src,
                                                       &a_w, &a_dst, strides, pad, pad_r));
        CHECK(dnnl_convolution_backward_weights_desc_init(&bwdesc, dnnl_convolution_direct, &a_src,
                                                          &a_w, &u_b, &a_dst, strides, pad, pad_r));
        descs[0] = &fdesc, descs[1] = &bddesc, descs[2] = &bwdesc;
    } else {
        CHECK(dnnl_deconvolution_forward_desc_init(&dfdesc, dnnl_forward_training,
                                                   dnnl_deconvolution_direct, &a_src, &a_w, &u_b,
                                                   &a_dst, strides, pad, pad_r));
        CHECK(dnnl_deconvolution_backward_data_desc_init(&dbddesc, dnnl_deconvolution_direct,
                                                         &a_src, &a_w, &a_dst, strides, pad,
                                                         pad_r));
        CHECK(dnnl_deconvolution_backward_weights_desc_init(&dbwdesc, dnnl_deconvolution_direct,
                                                            &a_src, &a_w, &u_b, &a_dst, strides,
                                                            pad, pad_r));
        descs[0] = &dfdesc, descs[1] = &dbddesc, descs[2] = &dbwdesc;
    }
    dnnl_primitive_desc_t fpd, pd;
    CHECK(dnnl_primitive_desc_create(&fpd, descs[0], NULL, d->eng, NULL));
#define Q(pd_, what) dnnl_primitive_desc_query_md(pd_, what, 0)
    prim *f = &out->part[0];
    *f = make_prim(d, fpd);
    add_arg(f, DNNL_ARG_SRC, bind(d, &u_src, Q(fpd, dnnl_query_src_md), t->src), 0);
    add_arg(f, DNNL_ARG_WEIGHTS, bind(d, &u_w, Q(fpd, dnnl_query_weights_md), t->w), 0);
    add_arg(f, DNNL_ARG_BIAS, bind(d, &u_b, &u_b, t->b), 0);
    add_arg(f, DNNL_ARG_DST, bind(d, &u_dst, Q(fpd, dnnl_query_dst_md), t->dst), 1);

    CHECK(dnnl_primitive_desc_create(&pd, descs[1], NULL, d->eng, fpd));
    prim *bdp = &out->part[1];
    *bdp = make_prim(d, pd);
    add_arg(bdp, DNNL_ARG_DIFF_DST, bind(d, &u_dst, Q(pd, dnnl_query_diff_dst_md), t->ddst), 0);
    add_arg(bdp, DNNL_ARG_WEIGHTS, bind(d, &u_w, Q(pd, dnnl_query_weights_md), t->w), 0);
    add_arg(bdp, DNNL_ARG_DIFF_SRC, bind(d, &u_src, Q(pd, dnnl_query_diff_src_md), t->dsrc), 1);
    dnnl_primitive_desc_destroy(pd);

    CHECK(dnnl_primitive_desc_create(&pd, descs[2], NULL, d->eng, fpd));
    prim *bwp = &out->part[2];
    *bwp = make_prim(d, pd);
    add_arg(bwp, DNNL_ARG_SRC, bind(d, &u_src, Q(pd, dnnl_query_src_md), t->src), 0);
    add_arg(bwp, DNNL_ARG_DIFF_DST, bind(d, &u_dst, Q(pd, dnnl_query_diff_dst_md), t->ddst), 0);
    add_arg(bwp, DNNL_ARG_DIFF_WEIGHTS, bind(d, &u_w, Q(pd, dnnl_query_diff_weights_md), t->dw), 1);
    add_arg(bwp, DNNL_ARG_DIFF_BIAS, bind(d, &u_b, &u_b, t->db), 1);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(fpd);
#undef Q
}

/* One layer of the model as both ways see it. */
typedef struct bench_layer {
    const char *block_name;
    layer *l, *ld;          /* the layer on im2col, and on oneDNN */
    const float *in, *in_d; /* their inputs (the previous layer's output, or the block's) */
    float *dout, *din;
    int need_din; /* 0 for the encoder's first layer: nobody needs the data's gradient */
    tensors t;
    layer_prims ways[NWAYS]; /* [WAY_PLAIN], [WAY_BLOCKED] */
    double ms[NWAYS][NPARTS][ROUNDS_MAX];
} bench_layer;

/* anamo's parts: 0 the forward, 1 the whole backward in one call (the input gradient unless
 * the layer is the encoder's first, and the weight gradient, sharing one im2col), 2 nothing. */
static void anamo_part(bench_layer *bl, int on_dnnl, int part)
{
    layer *l = on_dnnl ? bl->ld : bl->l;
    const float *in = on_dnnl ? bl->in_d : bl->in;
    const int conv = l->kind == LAYER_CONV2D;
    if (part == 0)
        (conv ? conv2d_forward : convt2d_forward)(l, in, BATCH);
    else if (part == 1)
        (conv ? conv2d_backward : convt2d_backward)(l, in, bl->dout, bl->din, BATCH, bl->need_din,
                                                    1);
}

static void run_part(const dnnl_ctx *d, bench_layer *bl, int way, int part)
{
    if (way == WAY_ANAMO || way == WAY_LAYER_DNNL)
        anamo_part(bl, way == WAY_LAYER_DNNL, part);
    else
        prim_run(d, &bl->ways[way].part[part]);
}

static double time_part(const dnnl_ctx *d, bench_layer *bl, int way, int part)
{
    run_part(d, bl, way, part);
    double t0 = now();
    long calls = 0;
    do {
        run_part(d, bl, way, part);
        calls++;
    } while (now() - t0 < MIN_SECONDS);
    return 1e3 * (now() - t0) / (double)calls;
}

static float *floats(size_t n, unsigned seed)
{
    float *v = malloc(n * sizeof *v);
    if (!v) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fill(v, n, seed);
    return v;
}

static void setup_layer(const dnnl_ctx *d, bench_layer *bl, block *b, block *bd, int i,
                        const float *input)
{
    layer *l = &b->layers[i];
    bl->block_name = b->name, bl->l = l, bl->ld = &bd->layers[i];
    bl->in = i == 0 ? input : b->layers[i - 1].out;
    bl->in_d = i == 0 ? input : bd->layers[i - 1].out;
    bl->need_din = !(i == 0 && !strcmp(b->name, "encoder"));
    const size_t in_n = (size_t)BATCH * (size_t)l->in_dim, out_n = (size_t)BATCH * l->out_dim;
    const size_t w_n = (size_t)l->out_c * (size_t)l->in_c * (size_t)(l->k * l->k);
    bl->dout = floats(out_n, 11), bl->din = floats(in_n, 12);
    tensors *t = &bl->t;
    t->src = floats(in_n, 1), t->dst = floats(out_n, 2), t->w = floats(w_n, 3);
    t->b = floats((size_t)l->out_c, 4), t->dsrc = floats(in_n, 5), t->ddst = floats(out_n, 6);
    t->dw = floats(w_n, 7), t->db = floats((size_t)l->out_c, 8);
    for (int w = WAY_PLAIN; w < WAY_LAYER_DNNL; w++)
        build_prims(d, l, w, t, &bl->ways[w]);
}

static void print_layer(const bench_layer *bl, int rounds)
{
    static const char *const KIND[2] = {"conv2d", "convtranspose2d"};
    const layer *l = bl->l;
    printf("layer %s.%d: %s %d->%d, %dx%d -> %dx%d\n", bl->block_name, l->index,
           KIND[l->kind == LAYER_CONVT2D], l->in_c, l->out_c, l->in_h, l->in_w, l->out_h, l->out_w);
    for (int w = WAY_PLAIN; w < NWAYS; w++)
        for (int p = 0; p < NPARTS; p++)
            printf("impl_%s.%d_%s_%s: %s\n", bl->block_name, l->index, WAY_NAMES[w], PART_NAMES[p],
                   w != WAY_LAYER_DNNL                       ? bl->ways[w].part[p].impl
                   : p == 0 && bl->ld->kind == LAYER_CONVT2D ? "sgemm+col2im (conv.c)"
                                                             : conv_dnnl_impl(bl->ld, p));
    for (int w = 0; w < NWAYS; w++) {
        double sum = 0.0;
        const int one_call = w == WAY_ANAMO || w == WAY_LAYER_DNNL;
        for (int p = 0; p < NPARTS - one_call; p++) {
            double m = bench_median(bl->ms[w][p], rounds);
            sum += m;
            printf("ms_%s.%d_%s_%s: %.3f\n", bl->block_name, l->index, WAY_NAMES[w],
                   one_call && p == 1 ? "backward" : PART_NAMES[p], m);
        }
        printf("ms_%s.%d_%s_sum: %.3f\n", bl->block_name, l->index, WAY_NAMES[w], sum);
    }
}

int main(int argc, char **argv)
{
    int rounds = 5, threads = 2;
    if (bench_rounds_args(argc, argv, "bench_conv_layers", ROUNDS_MAX, &rounds, &threads))
        return 2;
    anamo_program_setup(argv);
    omp_set_num_threads(threads);
    print_machine();
    const dnnl_version_t *v = dnnl_version();
    printf("dnnl: %d.%d.%d (%s, cpu runtime %u)\nthreads: %d\nbatch: %d\nrounds: %d\n", v->major,
           v->minor, v->patch, v->hash, v->cpu_runtime, threads, BATCH, rounds);
    dnnl_ctx d;
    CHECK(dnnl_engine_create(&d.eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&d.stream, d.eng, dnnl_stream_default_flags));
    static block blocks[2][2]; /* [im2col, dnnl][encoder, decoder] */
    static const char *const ENCODER =
        "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, conv2d 48 k4 s2 p1, relu";
    static const char *const DECODER = "convtranspose2d 24 k4 s2 p1, relu, convtranspose2d 12 "
                                       "k4 s2 p1, relu, convtranspose2d 3 k4 s2 p1, sigmoid";
    const anamo_conv_impl impls[2] = {ANAMO_CONV_IM2COL, ANAMO_CONV_DNNL};
    anamo_err err = {0};
    for (int k = 0; k < 2; k++)
        if (block_create(&blocks[k][0], "encoder", ENCODER, 3, 32, 32, BATCH, impls[k], &err) ||
            block_create(&blocks[k][1], "decoder", DECODER, 48, 4, 4, BATCH, impls[k], &err))
            return fprintf(stderr, "bench_conv_layers: %s\n", err.msg), 1;
    float *input = floats((size_t)BATCH * 3 * 32 * 32, 99);
    float *code = floats((size_t)BATCH * 48 * 4 * 4, 98);
    static bench_layer layers[6];
    int n = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < blocks[0][k].nlayers; i++)
            if (blocks[0][k].layers[i].kind == LAYER_CONV2D ||
                blocks[0][k].layers[i].kind == LAYER_CONVT2D)
                setup_layer(&d, &layers[n++], &blocks[0][k], &blocks[1][k], i, k ? code : input);
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++)
            for (int p = 0; p < NPARTS; p++)
                for (int w = 0; w < NWAYS; w++) {
                    bench_layer *bl = &layers[i];
                    const int one_call = w == WAY_ANAMO || w == WAY_LAYER_DNNL;
                    if (one_call && p == 1) /* the backward reads the forward's im2col */
                        anamo_part(bl, w == WAY_LAYER_DNNL, 0);
                    bl->ms[w][p][r] = (one_call && p == 2) || (!one_call && p == 1 && !bl->need_din)
                                          ? 0.0
                                          : time_part(&d, bl, w, p);
                }
    for (int i = 0; i < n; i++)
        print_layer(&layers[i], rounds);
    for (int w = 0; w < NWAYS; w++) {
        double total = 0.0;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < NPARTS; p++)
                total += bench_median(layers[i].ms[w][p], rounds);
        printf("ms_all_layers_%s: %.3f\n", WAY_NAMES[w], total);
    }
    return 0;
}
