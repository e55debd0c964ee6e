/* conv_dnnl.c — Conv2d and ConvTranspose2d on oneDNN's convolution and deconvolution
 * primitives (forward, backward data, backward weights), the layer's alternative to conv.c's
 * im2col + sgemm where oneDNN is faster (tools/bench_conv_layers.c measures both: on seed
 * 000's six layers oneDNN's own blocked layouts win every part but ConvTranspose2d's forward,
 * which conv.c keeps on sgemm + col2im; of that forward only the descriptor is made, as the
 * backward ones' hint).
 *
 * The layer keeps anamo's layouts on its side: input and output as the block gives and takes
 * them (NCHW, or channel-major (C, N, H, W), oneDNN's "bacd"), weights in PyTorch's layout
 * (Conv2d (out, in, k, k): "oihw"; ConvTranspose2d (in, out, k, k): "iohw"). Each primitive
 * picks its own layouts (format_tag any); what differs from the user's layout is reordered
 * into a work span before the primitive runs (inputs) or out of it after (outputs), so weights
 * and gradients stay in the block's flat buffers. Every part reorders its inputs afresh, so
 * nothing is kept in a work span between calls, and the layers of a block share one span per
 * role (conv_dnnl_work), each as large as the largest part that has run needs: a span grows
 * when a part first runs, not when it is made, so a part training never runs (the first
 * layer's input gradient, 7.8 MiB on seed 000's CIFAR-10 model at batch 125) holds none.
 *
 * Primitives are made for one batch size; a layer keeps the sets of the last CONV_DNNL_SETS
 * batch sizes it ran (training batch, evaluation batch, the Jacobian's tangent rows), and
 * oneDNN's own primitive cache makes remaking one cheap. The max-batch set is made when the
 * block is built, so that what oneDNN cannot do is known then (the layer keeps im2col); a
 * failure to make a set for a smaller batch later (out of memory), or to grow a work span,
 * ends the process with the layer, batch and status (or the call), as libgomp and OpenBLAS do
 * on theirs. */
#include "core/err.h"
#include "nn/layer.h"

#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_DNNL_SETS 4

/* The tensors a layer's primitives read and write. */
enum {
    ROLE_SRC = 0,
    ROLE_DST,
    ROLE_WEI,
    ROLE_BIA,
    ROLE_DDST,
    ROLE_DSRC,
    ROLE_DWEI,
    ROLE_DBIA,
    NROLES
};
enum { PART_FWD = 0, PART_BWD_DATA, PART_BWD_WEI, NPARTS };

static const int ROLE_ARG[NROLES] = {DNNL_ARG_SRC,          DNNL_ARG_DST,      DNNL_ARG_WEIGHTS,
                                     DNNL_ARG_BIAS,         DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC,
                                     DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
static const int ROLE_IS_OUTPUT[NROLES] = {0, 1, 0, 0, 0, 1, 1, 1};
static const dnnl_query_t ROLE_QUERY[NROLES] = {
    dnnl_query_src_md,          dnnl_query_dst_md,         dnnl_query_weights_md,
    dnnl_query_weights_md,      dnnl_query_diff_dst_md,    dnnl_query_diff_src_md,
    dnnl_query_diff_weights_md, dnnl_query_diff_weights_md};
static const int ROLE_QUERY_INDEX[NROLES] = {0, 0, 0, 1, 0, 0, 0, 1};
/* the roles each part binds, in the order of its arguments */
static const int PART_ROLES[NPARTS][4] = {{ROLE_SRC, ROLE_WEI, ROLE_BIA, ROLE_DST},
                                          {ROLE_DDST, ROLE_WEI, ROLE_DSRC, -1},
                                          {ROLE_SRC, ROLE_DDST, ROLE_DWEI, ROLE_DBIA}};

/* One argument of a primitive: the user's memory and, where the primitive wants another
 * layout, its own memory over the layer's work span and the reorder between the two (user →
 * inner for an input, inner → user for an output). */
typedef struct dnnl_bind {
    int role;
    dnnl_memory_t user, inner; /* inner == user: no reorder */
    dnnl_primitive_t reorder;
    size_t bytes; /* inner's size: the role's work span holds it once the part has run */
} dnnl_bind;

typedef struct dnnl_op {
    dnnl_primitive_t prim;
    int nbinds;
    dnnl_bind binds[4];
} dnnl_op;

typedef struct dnnl_set {
    int batch; /* 0: empty */
    dnnl_op op[NPARTS];
    int shared_ddst; /* both backward parts read the same reordered diff_dst */
} dnnl_set;

struct conv_dnnl_work {
    void *span[NROLES]; /* in the primitives' own layouts */
    size_t bytes[NROLES];
};

struct conv_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_dnnl_work *work; /* the block's, shared by its layers */
    dnnl_set sets[CONV_DNNL_SETS];
    int next; /* the set to replace when none has the batch */
    char impl[NPARTS][32];
};

/* ---- memory descriptors ------------------------------------------------------------------ */

static dnnl_status_t user_md(const layer *l, int role, int B, dnnl_memory_desc_t *md)
{
    const int deconv = l->kind == LAYER_CONVT2D;
    switch (role) {
    case ROLE_SRC:
    case ROLE_DSRC: {
        dnnl_dims_t d = {B, l->in_c, l->in_h, l->in_w};
        return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, l->in_cm ? dnnl_bacd : dnnl_nchw);
    }
    case ROLE_DST:
    case ROLE_DDST: {
        dnnl_dims_t d = {B, l->out_c, l->out_h, l->out_w};
        return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, l->out_cm ? dnnl_bacd : dnnl_nchw);
    }
    case ROLE_WEI:
    case ROLE_DWEI: {
        dnnl_dims_t d = {l->out_c, l->in_c, l->k, l->k};
        return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, deconv ? dnnl_iohw : dnnl_oihw);
    }
    default: {
        dnnl_dims_t d = {l->out_c};
        return dnnl_memory_desc_init_by_tag(md, 1, d, dnnl_f32, dnnl_x);
    }
    }
}

static dnnl_status_t any_md(const layer *l, int role, int B, dnnl_memory_desc_t *md)
{
    dnnl_memory_desc_t u;
    dnnl_status_t st = user_md(l, role, B, &u);
    if (st != dnnl_success || role == ROLE_BIA || role == ROLE_DBIA) {
        *md = u;
        return st;
    }
    return dnnl_memory_desc_init_by_tag(md, u.ndims, u.dims, dnnl_f32, dnnl_format_tag_any);
}

/* ---- the three operation descriptors ----------------------------------------------------- */

/* oneDNN wants the right padding that makes the sizes exact:
 *   Conv2d           OH = (H − k + pl + pr)/s + 1      (PyTorch floors: pr may be < p)
 *   ConvTranspose2d  OH = (H − 1)·s − pl − pr + k      (PyTorch: pr = p − output_padding) */
static void paddings(const layer *l, dnnl_dims_t strides, dnnl_dims_t pl, dnnl_dims_t pr)
{
    strides[0] = strides[1] = l->stride;
    pl[0] = pl[1] = l->pad;
    if (l->kind == LAYER_CONV2D) {
        pr[0] = (int64_t)(l->out_h - 1) * l->stride + l->k - l->in_h - l->pad;
        pr[1] = (int64_t)(l->out_w - 1) * l->stride + l->k - l->in_w - l->pad;
    } else {
        pr[0] = (int64_t)(l->in_h - 1) * l->stride + l->k - l->pad - l->out_h;
        pr[1] = (int64_t)(l->in_w - 1) * l->stride + l->k - l->pad - l->out_w;
    }
}

typedef union op_desc {
    dnnl_convolution_desc_t conv;
    dnnl_deconvolution_desc_t deconv;
} op_desc;

static dnnl_status_t init_desc(const layer *l, int part, int B, op_desc *d)
{
    dnnl_memory_desc_t src, dst, wei, bia;
    dnnl_dims_t s, pl, pr;
    dnnl_status_t st = any_md(l, ROLE_SRC, B, &src);
    if (st == dnnl_success)
        st = any_md(l, ROLE_DST, B, &dst);
    if (st == dnnl_success)
        st = any_md(l, ROLE_WEI, B, &wei);
    if (st == dnnl_success)
        st = any_md(l, ROLE_BIA, B, &bia);
    if (st != dnnl_success)
        return st;
    paddings(l, s, pl, pr);
    if (l->kind == LAYER_CONV2D) {
        const dnnl_alg_kind_t a = dnnl_convolution_direct;
        if (part == PART_FWD)
            return dnnl_convolution_forward_desc_init(&d->conv, dnnl_forward_training, a, &src,
                                                      &wei, &bia, &dst, s, pl, pr);
        if (part == PART_BWD_DATA)
            return dnnl_convolution_backward_data_desc_init(&d->conv, a, &src, &wei, &dst, s, pl,
                                                            pr);
        return dnnl_convolution_backward_weights_desc_init(&d->conv, a, &src, &wei, &bia, &dst, s,
                                                           pl, pr);
    }
    const dnnl_alg_kind_t a = dnnl_deconvolution_direct;
    if (part == PART_FWD)
        return dnnl_deconvolution_forward_desc_init(&d->deconv, dnnl_forward_training, a, &src,
                                                    &wei, &bia, &dst, s, pl, pr);
    if (part == PART_BWD_DATA)
        return dnnl_deconvolution_backward_data_desc_init(&d->deconv, a, &src, &wei, &dst, s, pl,
                                                          pr);
    return dnnl_deconvolution_backward_weights_desc_init(&d->deconv, a, &src, &wei, &bia, &dst, s,
                                                         pl, pr);
}

/* ---- building a set ---------------------------------------------------------------------- */

/* Grows the shared work span of a role to hold `bytes`. */
static dnnl_status_t reserve(conv_dnnl *c, int role, size_t bytes)
{
    conv_dnnl_work *w = c->work;
    if (bytes <= w->bytes[role])
        return dnnl_success;
    void *p = anamo_alloc(bytes);
    if (!p)
        return dnnl_out_of_memory;
    anamo_free(w->span[role]);
    w->span[role] = p, w->bytes[role] = bytes;
    return dnnl_success;
}

static dnnl_status_t bind(conv_dnnl *c, const layer *l, int B, dnnl_primitive_desc_t pd, int role,
                          dnnl_bind *b)
{
    dnnl_memory_desc_t u;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, ROLE_QUERY[role],
                                                                  ROLE_QUERY_INDEX[role]);
    b->role = role;
    dnnl_status_t st = user_md(l, role, B, &u);
    if (st == dnnl_success)
        st = dnnl_memory_create(&b->user, &u, c->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success || !want || dnnl_memory_desc_equal(&u, want)) {
        b->inner = b->user;
        return st != dnnl_success ? st : want ? dnnl_success : dnnl_invalid_arguments;
    }
    b->bytes = dnnl_memory_desc_get_size(want); /* reserved when the part runs (op_run) */
    st = dnnl_memory_create(&b->inner, want, c->engine, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_t rpd = NULL;
    if (st == dnnl_success)
        st = ROLE_IS_OUTPUT[role]
                 ? dnnl_reorder_primitive_desc_create(&rpd, want, c->engine, &u, c->engine, NULL)
                 : dnnl_reorder_primitive_desc_create(&rpd, &u, c->engine, want, c->engine, NULL);
    if (st == dnnl_success)
        st = dnnl_primitive_create(&b->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return st;
}

static void op_free(dnnl_op *op)
{
    for (int i = 0; i < op->nbinds; i++) {
        dnnl_bind *b = &op->binds[i];
        if (b->inner != b->user)
            dnnl_memory_destroy(b->inner);
        dnnl_memory_destroy(b->user);
        dnnl_primitive_destroy(b->reorder);
    }
    dnnl_primitive_destroy(op->prim);
    memset(op, 0, sizeof *op);
}

static void set_free(dnnl_set *s)
{
    for (int p = 0; p < NPARTS; p++)
        op_free(&s->op[p]);
    s->batch = 0;
}

/* The primitive descriptor of one part (hint: the forward's, for the backward parts). */
static dnnl_status_t pd_create(const conv_dnnl *c, const layer *l, int B, int part,
                               dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd)
{
    op_desc d;
    *pd = NULL;
    dnnl_status_t st = init_desc(l, part, B, &d);
    return st == dnnl_success ? dnnl_primitive_desc_create(pd, &d, NULL, c->engine, hint) : st;
}

/* The primitive of pd and its arguments' bindings. */
static dnnl_status_t op_build(conv_dnnl *c, const layer *l, int B, int part,
                              dnnl_primitive_desc_t pd, dnnl_op *op)
{
    dnnl_status_t st = dnnl_primitive_create(&op->prim, pd);
    for (int i = 0; st == dnnl_success && i < 4 && PART_ROLES[part][i] >= 0; i++)
        st = bind(c, l, B, pd, PART_ROLES[part][i], &op->binds[op->nbinds++]);
    const char *impl = NULL;
    if (st == dnnl_success &&
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success)
        snprintf(c->impl[part], sizeof c->impl[part], "%s", impl ? impl : "?");
    return st;
}

/* The set of batch B. A ConvTranspose2d's forward runs in conv.c: of it only the descriptor is
 * made, the backward parts' hint. */
static dnnl_status_t set_build(conv_dnnl *c, const layer *l, int B, dnnl_set *s)
{
    dnnl_primitive_desc_t fwd = NULL, pd = NULL;
    dnnl_status_t st = pd_create(c, l, B, PART_FWD, NULL, &fwd);
    if (st == dnnl_success && l->kind == LAYER_CONV2D)
        st = op_build(c, l, B, PART_FWD, fwd, &s->op[PART_FWD]);
    for (int part = PART_BWD_DATA; st == dnnl_success && part <= PART_BWD_WEI; part++) {
        st = pd_create(c, l, B, part, fwd, &pd);
        if (st == dnnl_success)
            st = op_build(c, l, B, part, pd, &s->op[part]);
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    dnnl_primitive_desc_destroy(fwd);
    if (st != dnnl_success) {
        set_free(s);
        return st;
    }
    const dnnl_bind *wd = &s->op[PART_BWD_WEI].binds[1], *dd = &s->op[PART_BWD_DATA].binds[0];
    const dnnl_memory_desc_t *a, *b;
    s->shared_ddst = wd->inner != wd->user && dd->inner != dd->user &&
                     dnnl_memory_get_memory_desc(wd->inner, &a) == dnnl_success &&
                     dnnl_memory_get_memory_desc(dd->inner, &b) == dnnl_success &&
                     dnnl_memory_desc_equal(a, b);
    s->batch = B;
    return dnnl_success;
}

/* The set for batch B, made if the layer has none. */
static dnnl_set *set_for(conv_dnnl *c, const layer *l, int B)
{
    for (int i = 0; i < CONV_DNNL_SETS; i++)
        if (c->sets[i].batch == B)
            return &c->sets[i];
    dnnl_set *s = &c->sets[c->next];
    c->next = (c->next + 1) % CONV_DNNL_SETS;
    set_free(s);
    dnnl_status_t st = set_build(c, l, B, s);
    if (st != dnnl_success) {
        fprintf(stderr,
                "anamo: %s:%d: oneDNN cannot make the primitives of a %s layer for a "
                "batch of %d: status %d\n",
                __FILE__, __LINE__, l->kind == LAYER_CONV2D ? "Conv2d" : "ConvTranspose2d", B,
                (int)st);
        abort();
    }
    return s;
}

/* ---- running ----------------------------------------------------------------------------- */

static void check(dnnl_status_t st, const char *what)
{
    if (st != dnnl_success) {
        fprintf(stderr, "anamo: %s:%d: oneDNN %s failed: status %d\n", __FILE__, __LINE__, what,
                (int)st);
        abort();
    }
}

static void reorder(conv_dnnl *c, dnnl_bind *b, int to_inner)
{
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, to_inner ? b->user : b->inner},
                            {DNNL_ARG_TO, to_inner ? b->inner : b->user}};
    check(dnnl_primitive_execute(b->reorder, c->stream, 2, a), "reorder");
}

/* Runs one part on the user's tensors data[role]; skip_role's input is already in its work
 * span (or -1). */
static void op_run(conv_dnnl *c, dnnl_op *op, void *const data[NROLES], int skip_role)
{
    dnnl_exec_arg_t args[4];
    for (int i = 0; i < op->nbinds; i++) {
        dnnl_bind *b = &op->binds[i];
        check(dnnl_memory_set_data_handle(b->user, data[b->role]), "set_data_handle");
        if (b->inner != b->user) {
            check(reserve(c, b->role, b->bytes), "work span allocation");
            check(dnnl_memory_set_data_handle(b->inner, c->work->span[b->role]), "set_data_handle");
            if (!ROLE_IS_OUTPUT[b->role] && b->role != skip_role)
                reorder(c, b, 1);
        }
        args[i] = (dnnl_exec_arg_t){ROLE_ARG[b->role], b->inner};
    }
    check(dnnl_primitive_execute(op->prim, c->stream, op->nbinds, args), "execute");
    for (int i = 0; i < op->nbinds; i++)
        if (ROLE_IS_OUTPUT[op->binds[i].role] && op->binds[i].inner != op->binds[i].user)
            reorder(c, &op->binds[i], 0);
    check(dnnl_stream_wait(c->stream), "stream_wait");
}

void conv_dnnl_forward(layer *l, const float *in, int B)
{
    void *data[NROLES] = {0};
    data[ROLE_SRC] = (void *)in, data[ROLE_DST] = l->out;
    data[ROLE_WEI] = l->weight, data[ROLE_BIA] = l->bias;
    op_run(l->dnnl, &set_for(l->dnnl, l, B)->op[PART_FWD], data, -1);
}

void conv_dnnl_backward(layer *l, const float *in, const float *dout, float *din, int B,
                        int need_din, int need_dw)
{
    dnnl_set *s = set_for(l->dnnl, l, B);
    void *data[NROLES] = {0};
    data[ROLE_SRC] = (void *)in, data[ROLE_DDST] = (void *)dout, data[ROLE_DSRC] = din;
    data[ROLE_WEI] = l->weight, data[ROLE_DWEI] = l->dweight, data[ROLE_DBIA] = l->dbias;
    if (need_dw)
        op_run(l->dnnl, &s->op[PART_BWD_WEI], data, -1);
    if (need_din)
        op_run(l->dnnl, &s->op[PART_BWD_DATA], data, need_dw && s->shared_ddst ? ROLE_DDST : -1);
}

/* ---- the layer's life -------------------------------------------------------------------- */

void conv_dnnl_free(conv_dnnl *c)
{
    if (!c)
        return;
    for (int i = 0; i < CONV_DNNL_SETS; i++)
        set_free(&c->sets[i]);
    dnnl_stream_destroy(c->stream);
    dnnl_engine_destroy(c->engine);
    free(c);
}

conv_dnnl_work *conv_dnnl_work_create(void) { return calloc(1, sizeof(conv_dnnl_work)); }

void conv_dnnl_work_free(conv_dnnl_work *w)
{
    if (!w)
        return;
    for (int r = 0; r < NROLES; r++)
        anamo_free(w->span[r]);
    free(w);
}

int conv_dnnl_create(layer *l, int max_batch, conv_dnnl_work *work, anamo_err *err)
{
    conv_dnnl *c = calloc(1, sizeof *c);
    if (!c)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "oneDNN layer: out of memory");
    c->work = work;
    dnnl_status_t st = dnnl_engine_create(&c->engine, dnnl_cpu, 0);
    if (st == dnnl_success)
        st = dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags);
    if (st == dnnl_success)
        st = set_build(c, l, max_batch, &c->sets[0]);
    if (st != dnnl_success) {
        conv_dnnl_free(c);
        return anamo_err_set(err, st == dnnl_out_of_memory ? ANAMO_ERR_NOMEM : ANAMO_ERR_ARG,
                             "oneDNN: no %s primitive for %d→%d channels, %d×%d → %d×%d, k %d, "
                             "stride %d, padding %d, batch %d: status %d",
                             l->kind == LAYER_CONV2D ? "convolution" : "deconvolution", l->in_c,
                             l->out_c, l->in_h, l->in_w, l->out_h, l->out_w, l->k, l->stride,
                             l->pad, max_batch, (int)st);
    }
    c->next = 1 % CONV_DNNL_SETS;
    l->dnnl = c;
    return ANAMO_OK;
}

const char *conv_dnnl_impl(const layer *l, int part)
{
    return l->dnnl && part >= 0 && part < NPARTS ? l->dnnl->impl[part] : "";
}
