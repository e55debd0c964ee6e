/* block.c — building a block from its layer list, pointing its layers into the flat buffers,
 * and running forward and backward through it. */
#include "nn/block.h"

#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

/* Copies item [p, p+len) without surrounding blanks. */
static void trimmed(char *out, size_t size, const char *p, size_t len)
{
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    snprintf(out, size, "%.*s", (int)len, p);
}

static int parse_spec(block *b, const char *spec, anamo_err *err)
{
    int c = b->in_c, h = b->in_h, w = b->in_w, cm = 0;
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[128];
        if (len >= sizeof item)
            return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: layer item too long in '%s'", b->name,
                                 spec);
        trimmed(item, sizeof item, p, len);
        if (!item[0])
            return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: empty item in layer list '%s'",
                                 b->name, spec);
        int rc = spec_add_layer(b, item, &c, &h, &w, &cm, err);
        if (rc)
            return rc;
        p += len + (comma ? 1 : 0);
        if (comma && !p[strspn(p, " \t")])
            return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: layer list '%s' ends in a comma",
                                 b->name, spec);
    }
    if (b->nlayers == 0)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: empty layer list", b->name);
    b->out_c = c, b->out_h = h, b->out_w = w;
    b->out_dim = (int64_t)c * h * w;
    return ANAMO_OK;
}

static param_ref *add_param(block *b, const layer *l, const char *what, int ndim,
                            const int64_t *shape, param_role role)
{
    param_ref *p = &b->params_ref[b->nparams_tensors++];
    char prefix[sizeof b->name];
    memcpy(prefix, b->name, sizeof prefix);
    snprintf(p->name, sizeof p->name, "%s.%d.%s", prefix, l->index, what);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= shape[i];
    }
    p->offset = b->nparams;
    p->role = role;
    p->is_bias = role == PARAM_BIAS;
    b->nparams += p->numel;
    return p;
}

/* The weight and bias of a layer that has them, with the fans PyTorch's init uses (for a
 * transposed convolution, PyTorch takes fan_in from the weight's dim 1: out_c·k·k). */
static void add_layer_params(block *b, const layer *l)
{
    const int64_t kk = (int64_t)l->k * l->k;
    param_ref *w = NULL, *bias;
    if (l->kind == LAYER_LINEAR) {
        int64_t shape[2] = {l->out_dim, l->in_dim};
        w = add_param(b, l, "weight", 2, shape, PARAM_WEIGHT);
        w->fan_in = l->in_dim, w->fan_out = l->out_dim;
    } else if (l->kind == LAYER_CONV2D || l->kind == LAYER_CONVT2D) {
        int t = l->kind == LAYER_CONVT2D;
        int64_t shape[4] = {t ? l->in_c : l->out_c, t ? l->out_c : l->in_c, l->k, l->k};
        w = add_param(b, l, "weight", 4, shape, PARAM_WEIGHT);
        w->fan_in = shape[1] * kk, w->fan_out = shape[0] * kk;
    } else if (l->kind == LAYER_BATCHNORM) {
        int64_t c = l->in_c;
        add_param(b, l, "weight", 1, &c, PARAM_ONES);
        add_param(b, l, "bias", 1, &c, PARAM_ZEROS);
        return;
    } else {
        return;
    }
    int64_t nb = l->out_c;
    bias = add_param(b, l, "bias", 1, &nb, PARAM_BIAS);
    bias->fan_in = w->fan_in, bias->fan_out = w->fan_out;
}

static void add_buffer(block *b, const layer *l, const char *what, int64_t numel, int count)
{
    buffer_ref *r = &b->buffers_ref[b->nbuffers++];
    char prefix[sizeof b->name];
    memcpy(prefix, b->name, sizeof prefix);
    snprintf(r->name, sizeof r->name, "%s.%d.%s", prefix, l->index, what);
    r->is_count = count;
    r->numel = count ? 1 : numel;
    if (!count) {
        r->data = (float *)(uintptr_t)b->nbuffer_floats; /* an offset until allocation */
        b->nbuffer_floats += numel;
    } else {
        r->count = &b->counts[l->index];
    }
}

static int64_t layer_widest(const layer *l)
{
    return l->in_dim > l->out_dim ? l->in_dim : l->out_dim;
}

/* A convolution on oneDNN (block conv_impl auto or dnnl): ANAMO_OK with l->dnnl set, or with
 * it NULL where oneDNN has no primitive for the layer and auto keeps im2col. */
static int use_dnnl(block *b, layer *l, anamo_err *err)
{
    if (b->conv_impl == ANAMO_CONV_IM2COL)
        return ANAMO_OK;
    if (!b->dnnl_work && !(b->dnnl_work = conv_dnnl_work_create()))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", b->name);
    anamo_err why = {0};
    int rc = conv_dnnl_create(l, b->max_batch, b->dnnl_work, &why);
    if (rc == ANAMO_ERR_NOMEM || (rc && b->conv_impl == ANAMO_CONV_DNNL))
        return anamo_err_set(err, rc, "%s.%d: %s", b->name, l->index, why.msg);
    return ANAMO_OK;
}

/* The layer's own work spans: activations, im2col (or oneDNN's), batch statistics. */
static int alloc_layer(block *b, layer *l, int i, anamo_err *err)
{
    const int64_t B = b->max_batch;
    const int conv = l->kind == LAYER_CONV2D || l->kind == LAYER_CONVT2D;
    if (conv && use_dnnl(b, l, err))
        return err->code;
    l->out = anamo_alloc((size_t)(B * l->out_dim) * sizeof(float));
    if (l->kind == LAYER_CONV2D && !l->dnnl)
        l->col = anamo_alloc((size_t)((int64_t)l->in_c * l->k * l->k * B * l->out_h * l->out_w) *
                             sizeof(float));
    if (l->kind == LAYER_CONVT2D) { /* its forward runs here even on oneDNN (conv.c) */
        l->col = anamo_alloc((size_t)convt2d_col_floats(l, (int)B, &l->col_slots) * sizeof(float));
        if (!l->in_cm && !(l->inbuf = anamo_alloc((size_t)(B * l->in_dim) * sizeof(float))))
            return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate layer %d", b->name, i);
    }
    if (l->kind == LAYER_BATCHNORM) {
        l->save_mean = anamo_alloc((size_t)l->in_c * sizeof(float));
        l->save_invstd = anamo_alloc((size_t)l->in_c * sizeof(float));
        if (!l->save_mean || !l->save_invstd)
            return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate layer %d", b->name, i);
    }
    if (!l->out || (conv && (!l->dnnl || l->kind == LAYER_CONVT2D) && !l->col))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate layer %d", b->name, i);
    return ANAMO_OK;
}

/* Points each layer's weights, gradients and running statistics into the block's spans. */
static void point_layers(block *b)
{
    int p = 0, r = 0;
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        int has_params = l->kind == LAYER_LINEAR || l->kind == LAYER_CONV2D ||
                         l->kind == LAYER_CONVT2D || l->kind == LAYER_BATCHNORM;
        if (has_params) {
            l->weight = b->params + b->params_ref[p].offset;
            l->dweight = b->grads + b->params_ref[p++].offset;
            l->bias = b->params + b->params_ref[p].offset;
            l->dbias = b->grads + b->params_ref[p++].offset;
        }
        if (l->kind == LAYER_BATCHNORM) {
            for (int k = 0; k < 2; k++, r++)
                b->buffers_ref[r].data = b->buffers + (uintptr_t)b->buffers_ref[r].data;
            l->running_mean = b->buffers_ref[r - 2].data;
            l->running_var = b->buffers_ref[r - 1].data;
            for (int64_t c = 0; c < l->in_c; c++)
                l->running_var[c] = 1.0f;
            l->num_batches_tracked = b->buffers_ref[r++].count;
        }
    }
}

/* Lays every parameter tensor out in one span, then points the layers into it. */
static int allocate(block *b, anamo_err *err)
{
    int64_t widest = b->in_dim;
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        add_layer_params(b, l);
        if (l->kind == LAYER_BATCHNORM) {
            add_buffer(b, l, "running_mean", l->in_c, 0);
            add_buffer(b, l, "running_var", l->in_c, 0);
            add_buffer(b, l, "num_batches_tracked", 1, 1);
        }
        widest = layer_widest(l) > widest ? layer_widest(l) : widest;
        int rc = alloc_layer(b, l, i, err);
        if (rc)
            return rc;
    }
    b->params = anamo_alloc((size_t)b->nparams * sizeof(float));
    b->grads = anamo_alloc((size_t)b->nparams * sizeof(float));
    b->buffers = anamo_alloc((size_t)b->nbuffer_floats * sizeof(float));
    for (int k = 0; k < 2; k++) {
        b->scratch[k] = anamo_alloc((size_t)(b->max_batch * widest) * sizeof(float));
        b->rows[k] = anamo_alloc((size_t)(b->max_batch * widest) * sizeof(float));
    }
    if (!b->params || !b->grads || !b->buffers || !b->scratch[0] || !b->scratch[1] || !b->rows[0] ||
        !b->rows[1])
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld parameters", b->name,
                             (long long)b->nparams);
    point_layers(b);
    return ANAMO_OK;
}

int block_create(block *b, const char *name, const char *spec, int in_c, int in_h, int in_w,
                 int max_batch, anamo_conv_impl conv_impl, anamo_err *err)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    if (in_c < 1 || in_h < 1 || in_w < 1 || max_batch < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: input shape %d×%d×%d, max batch %d", name,
                             in_c, in_h, in_w, max_batch);
    b->in_c = in_c, b->in_h = in_h, b->in_w = in_w;
    b->in_dim = (int64_t)in_c * in_h * in_w;
    b->max_batch = max_batch;
    b->conv_impl = conv_impl;
    int rc = parse_spec(b, spec ? spec : "", err);
    if (!rc)
        rc = allocate(b, err);
    if (rc)
        block_free(b);
    return rc;
}

int block_plan(block *b, const char *name, const char *spec, int in_c, int in_h, int in_w,
               anamo_err *err)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    if (in_c < 1 || in_h < 1 || in_w < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: input shape %d×%d×%d", name, in_c, in_h,
                             in_w);
    b->in_c = in_c, b->in_h = in_h, b->in_w = in_w;
    b->in_dim = (int64_t)in_c * in_h * in_w;
    b->max_batch = 1;
    int rc = parse_spec(b, spec ? spec : "", err);
    for (int i = 0; !rc && i < b->nlayers; i++)
        add_layer_params(b, &b->layers[i]);
    return rc;
}

void block_free(block *b)
{
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        anamo_free(l->out);
        anamo_free(l->col);
        anamo_free(l->inbuf);
        conv_dnnl_free(l->dnnl);
        anamo_free(l->save_mean);
        anamo_free(l->save_invstd);
    }
    conv_dnnl_work_free(b->dnnl_work);
    anamo_free(b->params);
    anamo_free(b->grads);
    anamo_free(b->buffers);
    anamo_free(b->opt_state);
    for (int k = 0; k < 2; k++) {
        anamo_free(b->scratch[k]);
        anamo_free(b->rows[k]);
    }
    memset(b, 0, sizeof *b);
}

int block_alloc_state(block *b, int64_t nstate, anamo_err *err)
{
    if (b->opt_state && b->nstate == nstate)
        return ANAMO_OK;
    anamo_free(b->opt_state);
    b->opt_state = NULL;
    b->nstate = nstate;
    if (nstate == 0)
        return ANAMO_OK;
    b->opt_state = anamo_alloc((size_t)nstate * sizeof(float));
    if (!b->opt_state)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate optimizer state", b->name);
    return ANAMO_OK;
}

void block_set_training(block *b, int on)
{
    b->training = on;
    for (int i = 0; i < b->nlayers; i++)
        b->layers[i].training = on;
}

/* Flatten turns a channel-major batch into sample-major rows; otherwise a copy. */
static void reshape_forward(layer *l, const float *in, int B)
{
    const int64_t P = (int64_t)l->in_h * l->in_w;
    if (l->in_cm)
        layout_convert(in, 1, l->out, 0, B, l->in_c, P);
    else
        memcpy(l->out, in, (size_t)(B * l->in_dim) * sizeof(float));
}

static void reshape_backward(layer *l, const float *dout, float *din, int B)
{
    const int64_t P = (int64_t)l->in_h * l->in_w;
    if (l->in_cm)
        layout_convert(dout, 0, din, 1, B, l->in_c, P);
    else
        memcpy(din, dout, (size_t)(B * l->in_dim) * sizeof(float));
}

static void layer_forward(layer *l, const float *in, int B)
{
    switch (l->kind) {
    case LAYER_LINEAR: linear_forward(l, in, B); break;
    case LAYER_CONV2D: conv2d_forward(l, in, B); break;
    case LAYER_CONVT2D: convt2d_forward(l, in, B); break;
    case LAYER_BATCHNORM: batchnorm_forward(l, in, B); break;
    case LAYER_FLATTEN:
    case LAYER_UNFLATTEN: reshape_forward(l, in, B); break;
    case LAYER_ACT:
    default: act_forward(l, in, B); break;
    }
}

static void layer_backward(layer *l, const float *in, const float *dout, float *din, int B,
                           int need_din, int need_dw)
{
    switch (l->kind) {
    case LAYER_LINEAR: linear_backward(l, in, dout, din, B, need_din, need_dw); break;
    case LAYER_CONV2D: conv2d_backward(l, in, dout, din, B, need_din, need_dw); break;
    case LAYER_CONVT2D: convt2d_backward(l, in, dout, din, B, need_din, need_dw); break;
    case LAYER_BATCHNORM: batchnorm_backward(l, in, dout, din, B, need_din, need_dw); break;
    case LAYER_FLATTEN:
    case LAYER_UNFLATTEN:
        if (need_din)
            reshape_backward(l, dout, din, B);
        break;
    case LAYER_ACT:
    default:
        if (need_din)
            act_backward(l, in, dout, din, B);
        break;
    }
}

/* Layer i's output as sample-major rows (converted into rows[k] when channel-major). */
static const float *output_rows(block *b, int i, int B, int k)
{
    const layer *l = &b->layers[i];
    if (!l->out_cm)
        return l->out;
    layout_convert(l->out, 1, b->rows[k], 0, B, l->out_c, (int64_t)l->out_h * l->out_w);
    return b->rows[k];
}

/* FLOP per sample of a layer's matrix product, forward (the input and weight gradients take as
 * many each): 2 per multiply-add; 0 for layers without one. */
static double product_flop(const layer *l)
{
    switch (l->kind) {
    case LAYER_LINEAR: return 2.0 * (double)l->in_dim * (double)l->out_dim;
    case LAYER_CONV2D:
        return 2.0 * l->out_c * (double)l->out_h * l->out_w * (double)l->in_c * l->k * l->k;
    case LAYER_CONVT2D:
        return 2.0 * l->in_c * (double)l->in_h * l->in_w * (double)l->out_c * l->k * l->k;
    default: return 0.0;
    }
}

/* A layer that makes each row of its output, and of its input gradient, from the same row of
 * its input (of its output gradient) alone: a dense layer, or an activation on sample-major
 * rows. A run of them goes through a batch on each thread's own rows, one region for the run
 * (linear.c says why regions, and waits, are dear). */
static int row_local(const layer *l)
{
    return l->kind == LAYER_LINEAR || (l->kind == LAYER_ACT && !l->in_cm && !l->out_cm);
}

/* The end of the run of row-local layers from i on (i itself when layer i is not one). */
static int run_end(const block *b, int i, int upto)
{
    while (i < upto && row_local(&b->layers[i]))
        i++;
    return i;
}

/* Whether a run's products are worth splitting across threads: any of its dense layers is. */
static int run_worth_threads(const block *b, int i0, int i1, int B)
{
    for (int i = i0; i < i1; i++)
        if (b->layers[i].kind == LAYER_LINEAR && linear_worth_threads(&b->layers[i], B))
            return 1;
    return 0;
}

/* Layers [i0, i1), row-local, forward: each thread its own rows through all of them. */
static void forward_run(block *b, const float *in, int B, int i0, int i1)
{
#pragma omp parallel if (run_worth_threads(b, i0, i1, B))
    {
        int first, end;
        omp_rows(B, &first, &end);
        const float *x = in;
        for (int i = i0; i < i1; i++) {
            layer *l = &b->layers[i];
            if (l->kind == LAYER_LINEAR)
                linear_forward_rows(l, x, first, end);
            else
                act_forward_rows(l, x, first, end);
            x = l->out;
        }
    }
}

const float *block_forward_upto(block *b, const float *x, int B, int upto)
{
    b->input = x;
    const float *in = x;
    b->work.forward_samples += upto > 0 ? B : 0;
    for (int i = 0; i < upto;) {
        int end = run_end(b, i, upto);
        if (end == i) {
            layer_forward(&b->layers[i], in, B);
            end = i + 1;
        } else {
            forward_run(b, in, B, i, end);
        }
        for (; i < end; i++)
            b->work.flop += B * product_flop(&b->layers[i]);
        in = b->layers[end - 1].out;
    }
    return upto ? output_rows(b, upto - 1, B, upto == b->nlayers ? 0 : 1) : x;
}

const float *block_forward(block *b, const float *x, int B)
{
    b->output = block_forward_upto(b, x, B, b->nlayers);
    return b->output;
}

const float *block_last_input(block *b, int B)
{
    return b->nlayers > 1 ? output_rows(b, b->nlayers - 2, B, 1) : b->input;
}

static int has_weights(const layer *l)
{
    return l->kind == LAYER_LINEAR || l->kind == LAYER_CONV2D || l->kind == LAYER_CONVT2D ||
           l->kind == LAYER_BATCHNORM;
}

/* the input gradient of layer i is needed if the caller wants dx, or if a layer before i has
 * weights whose gradient is wanted */
static int needs_din(int i, int need_dx, int need_dw, int first_weighted)
{
    return need_dx || (need_dw && first_weighted < i);
}

/* The start of the run of row-local layers that ends at end (end itself when layer end − 1 is
 * not one), no lower than first. */
static int run_start(const block *b, int first, int end)
{
    while (end > first && row_local(&b->layers[end - 1]))
        end--;
    return end;
}

static int is_scratch(const block *b, const float *p)
{
    return p == b->scratch[0] || p == b->scratch[1];
}

/* Layers hi − 1 down to lo, row-local, backward: each thread its own rows through all of them.
 * The gradient dout arrives in; the result goes to b->scratch[*k ^ 1] (*k: the buffer to write
 * next, as in block_backward_span), or is dout itself.
 *   Rows are not memory a thread owns: row r of a gradient D wide is elements [r·D, (r+1)·D),
 * and D changes from layer to layer. So the threads meet before a dense layer writes its input
 * gradient into a scratch buffer this region has used (someone may still be reading it, at
 * another width), and before a weight gradient, which sums over every row of the gradient
 * above it (made by all of them). An activation's gradient is made in place, in the buffer
 * that holds its output gradient, at that buffer's width: only the thread's own elements. */
static float *backward_run(block *b, int lo, int hi, float *dout, int *k, int B, int need_dx,
                           int need_dw, int first_weighted)
{
    float *result = dout;
    int k_after = *k;
#pragma omp parallel if (run_worth_threads(b, lo, hi, B))
    {
        int first, end, next = *k;
        int used[2] = {dout == b->scratch[0], dout == b->scratch[1]};
        omp_rows(B, &first, &end);
        float *g = dout;
        for (int i = hi - 1; i >= lo; i--) {
            layer *l = &b->layers[i];
            const float *in = i ? b->layers[i - 1].out : b->input;
            const int need_din = needs_din(i, need_dx, need_dw, first_weighted);
            float *din = b->scratch[next];
            if (l->kind == LAYER_LINEAR) {
                if (need_dw || (need_din && used[next])) {
#pragma omp barrier
                }
                if (need_dw) {
                    int o0, o1;
                    omp_rows((int)l->out_dim, &o0, &o1);
                    linear_weight_grad_rows(l, in, g, B, o0, o1);
                }
                if (need_din)
                    linear_input_grad_rows(l, g, din, first, end);
            } else {
                if (is_scratch(b, g))
                    din = g;
                if (need_din)
                    act_backward_rows(l, in, g, din, first, end);
            }
            if (!need_din)
                break;
            if (din != g) {
                used[next] = 1;
                next ^= 1;
            }
            g = din;
        }
        if (omp_get_thread_num() == 0) {
            result = g;
            k_after = next;
        }
    }
    *k = k_after;
    return result;
}

float *block_backward_from(block *b, int last, const float *dout, int B, int need_dx, int need_dw)
{
    return block_backward_span(b, 0, last, dout, B, need_dx, need_dw);
}

float *block_backward_span(block *b, int first, int last, const float *dout, int B, int need_dx,
                           int need_dw)
{
    int first_weighted = b->nlayers;
    for (int i = 0; i < b->nlayers; i++)
        if (has_weights(&b->layers[i])) {
            first_weighted = i;
            break;
        }
    float *g = (float *)dout; /* returned as is when no layer runs */
    int k = 0;
    b->work.backward_samples += last > first ? B : 0;
    if (last > 0 && b->layers[last - 1].out_cm) { /* the gradient arrives as NCHW rows */
        const layer *l = &b->layers[last - 1];
        layout_convert(dout, 0, b->scratch[k], 1, B, l->out_c, (int64_t)l->out_h * l->out_w);
        g = b->scratch[k];
        k ^= 1;
    }
    for (int i = last - 1; i >= first;) {
        int lo = run_start(b, first, i + 1);
        if (lo <= i) {
            g = backward_run(b, lo, i + 1, g, &k, B, need_dx, need_dw, first_weighted);
        } else {
            layer *l = &b->layers[i];
            const float *in = i ? b->layers[i - 1].out : b->input;
            float *din = b->scratch[k];
            layer_backward(l, in, g, din, B, needs_din(i, need_dx, need_dw, first_weighted),
                           need_dw);
            g = din;
            k ^= 1;
            lo = i;
        }
        for (; i >= lo; i--) {
            const int need_din = needs_din(i, need_dx, need_dw, first_weighted);
            b->work.flop += B * product_flop(&b->layers[i]) *
                            ((need_din ? 1 : 0) + (need_dw && has_weights(&b->layers[i])));
            if (!need_din)
                return NULL;
        }
    }
    return g;
}

float *block_backward(block *b, const float *dout, int B, int need_dx, int need_dw)
{
    return block_backward_from(b, b->nlayers, dout, B, need_dx, need_dw);
}
