/* model_api.c — the model on the caller's memory: encode, decode and reconstruct arrays, and
 * the model's tensors by their state_dict names. Every argument is checked before it is read:
 * a caller's mistake is an error naming it, never a crash. */
#include "core/err.h"
#include "nn/model.h"

#include <stdio.h>
#include <string.h>

/* A float array of n rows of dim values the caller says it holds, against the model's. */
static int check_array(const float *a, const char *what, int64_t n, int64_t dim, int64_t model_dim,
                       const char *model_what, anamo_err *err)
{
    if (!a)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: the array is NULL", what);
    if ((uintptr_t)a % sizeof(float))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: the float32 array at %p is not 4-byte "
                             "aligned",
                             what, (const void *)a);
    if (n < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %lld rows (at least 1)", what, (long long)n);
    if (dim != model_dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: rows of %lld values, the model's %s has "
                             "%lld",
                             what, (long long)dim, model_what, (long long)model_dim);
    return ANAMO_OK;
}

static int check_model(const anamo_model *m, const char *verb, anamo_err *err)
{
    return m ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_ARG, "%s: the model is NULL", verb);
}

/* The rows as a dataset of floats, without a copy (the same path anamo_model_encode reads). */
static int wrap_rows(const anamo_model *m, const float *x, int64_t n, anamo_dataset *ds,
                     anamo_err *err)
{
    return anamo_dataset_wrap(ds, x, ANAMO_F32, n, m->in_c, m->in_h, m->in_w, NULL, "input x", err);
}

int anamo_encode(anamo_model *m, const float *x, int64_t n, int64_t x_dim, float *codes,
                 int64_t code_dim, anamo_err *err)
{
    int rc = check_model(m, "encode", err);
    if (!rc)
        rc = check_array(x, "encode: input x", n, x_dim, m->in_dim, "input", err);
    if (!rc)
        rc = check_array(codes, "encode: codes out", n, code_dim, m->enc.out_dim, "code", err);
    anamo_dataset ds;
    if (!rc)
        rc = wrap_rows(m, x, n, &ds, err);
    return rc ? rc : anamo_model_encode(m, &ds, 0, n, codes, err);
}

int anamo_reconstruct(anamo_model *m, const float *x, int64_t n, int64_t x_dim, float *out,
                      int64_t out_dim, anamo_err *err)
{
    int rc = check_model(m, "reconstruct", err);
    if (!rc)
        rc = check_array(x, "reconstruct: input x", n, x_dim, m->in_dim, "input", err);
    if (!rc)
        rc = check_array(out, "reconstruct: out", n, out_dim, m->in_dim, "input", err);
    anamo_dataset ds;
    if (!rc)
        rc = wrap_rows(m, x, n, &ds, err);
    return rc ? rc : anamo_model_reconstruct(m, &ds, 0, n, out, err);
}

int anamo_decode(anamo_model *m, const float *codes, int64_t n, int64_t code_dim, float *out,
                 int64_t out_dim, anamo_err *err)
{
    int rc = check_model(m, "decode", err);
    if (!rc)
        rc = check_array(codes, "decode: codes", n, code_dim, m->enc.out_dim, "code", err);
    if (!rc)
        rc = check_array(out, "decode: out", n, out_dim, m->in_dim, "input", err);
    if (rc)
        return rc;
    const int64_t K = m->enc.out_dim, D = m->in_dim;
    model_set_eval(m);
    for (int64_t done = 0; done < n; done += m->max_batch) {
        const int B = (int)(n - done < m->max_batch ? n - done : m->max_batch);
        const float *xhat = block_forward(&m->dec, codes + done * K, B);
        memcpy(out + done * D, xhat, (size_t)(B * D) * sizeof(float));
        model_denormalize(m, out + done * D, B);
    }
    return ANAMO_OK;
}

/* ---- tensors by name --------------------------------------------------------------------- */

static const block *block_of(const anamo_model *m, int which) { return which ? &m->dec : &m->enc; }

static int block_tensors(const block *b) { return b->nparams_tensors + b->nbuffers; }

static void view_param(const block *b, int which, int i, anamo_tensor_view *v)
{
    const param_ref *p = &b->params_ref[i];
    *v = (anamo_tensor_view){.name = p->name,
                             .role = ANAMO_ROLE_PARAMETER,
                             .block = which,
                             .data = b->params + p->offset,
                             .grad = b->grads + p->offset,
                             .ndim = p->ndim,
                             .numel = p->numel};
    memcpy(v->shape, p->shape, sizeof v->shape);
}

static void view_buffer(const block *b, int which, int i, anamo_tensor_view *v)
{
    const buffer_ref *r = &b->buffers_ref[i];
    *v = (anamo_tensor_view){.name = r->name, .block = which, .numel = r->is_count ? 1 : r->numel};
    if (r->is_count) {
        v->role = ANAMO_ROLE_COUNT;
        v->count = r->count;
        return; /* a 0-d int64, as PyTorch's num_batches_tracked */
    }
    v->role = ANAMO_ROLE_BUFFER;
    v->data = r->data;
    v->ndim = 1;
    v->shape[0] = r->numel;
}

static void view_normalize(const anamo_model *m, int i, anamo_tensor_view *v)
{
    *v = (anamo_tensor_view){.name = i ? "normalize.std" : "normalize.mean",
                             .role = ANAMO_ROLE_NORMALIZE,
                             .block = -1,
                             .data = i ? m->norm_std : m->norm_mean,
                             .ndim = 1,
                             .shape = {m->in_dim},
                             .numel = m->in_dim};
}

int anamo_model_tensor_count(const anamo_model *m)
{
    return m ? block_tensors(&m->enc) + block_tensors(&m->dec) + (m->standardize ? 2 : 0) : 0;
}

int anamo_model_tensor_at(anamo_model *m, int i, anamo_tensor_view *out, anamo_err *err)
{
    if (!m || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "tensor_at: %s is NULL", m ? "out" : "the model");
    const int count = anamo_model_tensor_count(m);
    if (i < 0 || i >= count)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "tensor_at: index %d is not within the model's "
                             "%d tensors",
                             i, count);
    for (int which = 0; which < 2; which++) {
        const block *b = block_of(m, which);
        if (i < b->nparams_tensors) {
            view_param(b, which, i, out);
            return ANAMO_OK;
        }
        i -= b->nparams_tensors;
        if (i < b->nbuffers) {
            view_buffer(b, which, i, out);
            return ANAMO_OK;
        }
        i -= b->nbuffers;
    }
    view_normalize(m, i, out);
    return ANAMO_OK;
}

int anamo_model_tensor(anamo_model *m, const char *name, anamo_tensor_view *out, anamo_err *err)
{
    if (!m || !name || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "tensor: %s is NULL",
                             !m      ? "the model"
                             : !name ? "the name"
                                     : "out");
    const int count = anamo_model_tensor_count(m);
    for (int i = 0; i < count; i++) {
        int rc = anamo_model_tensor_at(m, i, out, err);
        if (rc)
            return rc;
        if (!strcmp(out->name, name))
            return ANAMO_OK;
    }
    memset(out, 0, sizeof *out);
    return anamo_err_set(err, ANAMO_ERR_ARG, "no tensor '%.200s' in the model (it has %s … %s)",
                         name, m->enc.nparams_tensors ? m->enc.params_ref[0].name : "none",
                         m->dec.nparams_tensors ? m->dec.params_ref[m->dec.nparams_tensors - 1].name
                                                : "none");
}

/* ---- layers ------------------------------------------------------------------------------ */

_Static_assert((int)ANAMO_LAYER_LINEAR == (int)LAYER_LINEAR &&
                   (int)ANAMO_LAYER_ACTIVATION == (int)LAYER_ACT &&
                   (int)ANAMO_LAYER_CONV2D == (int)LAYER_CONV2D &&
                   (int)ANAMO_LAYER_CONVT2D == (int)LAYER_CONVT2D &&
                   (int)ANAMO_LAYER_BATCHNORM == (int)LAYER_BATCHNORM &&
                   (int)ANAMO_LAYER_FLATTEN == (int)LAYER_FLATTEN &&
                   (int)ANAMO_LAYER_UNFLATTEN == (int)LAYER_UNFLATTEN,
               "anamo_layer_kind mirrors layer_kind");

int anamo_model_layer_count(const anamo_model *m, int which)
{
    return m && (which == 0 || which == 1) ? block_of(m, which)->nlayers : 0;
}

static int64_t layer_params(const layer *l)
{
    switch (l->kind) {
    case LAYER_LINEAR: return l->in_dim * l->out_dim + l->out_dim;
    case LAYER_CONV2D: return (int64_t)l->out_c * l->in_c * l->k * l->k + l->out_c;
    case LAYER_CONVT2D: return (int64_t)l->in_c * l->out_c * l->k * l->k + l->out_c;
    case LAYER_BATCHNORM: return 2 * (int64_t)l->out_c;
    default: return 0;
    }
}

int anamo_model_layer(const anamo_model *m, int which, int i, anamo_layer_info *out, anamo_err *err)
{
    if (!m || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "layer: %s is NULL", m ? "out" : "the model");
    const int count = anamo_model_layer_count(m, which);
    if (i < 0 || i >= count)
        return anamo_err_set(err, ANAMO_ERR_ARG, "layer: block %d has no layer %d (it has %d)",
                             which, i, count);
    const block *b = block_of(m, which);
    const layer *l = &b->layers[i];
    const int conv = l->kind == LAYER_CONV2D || l->kind == LAYER_CONVT2D;
    *out = (anamo_layer_info){.kind = (anamo_layer_kind)l->kind,
                              .block = which,
                              .index = l->index,
                              .in_c = l->in_c,
                              .in_h = l->in_h,
                              .in_w = l->in_w,
                              .out_c = l->out_c,
                              .out_h = l->out_h,
                              .out_w = l->out_w,
                              .in_dim = l->in_dim,
                              .out_dim = l->out_dim,
                              .kernel = conv ? l->k : 0,
                              .stride = conv ? l->stride : 0,
                              .padding = conv ? l->pad : 0,
                              .output_padding = conv ? l->out_pad : 0,
                              .params = layer_params(l)};
    snprintf(out->name, sizeof out->name, "%s.%d", b->name, l->index);
    layer_describe(l, out->item, sizeof out->item);
    return ANAMO_OK;
}
