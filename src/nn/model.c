/* model.c — creating an autoencoder, normalizing its inputs, encoding and reconstructing. */
#include "nn/model.h"

#include "core/err.h"
#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_alloc_norm(anamo_model *m, anamo_err *err)
{
    if (!m->norm_mean)
        m->norm_mean = anamo_alloc((size_t)m->in_dim * sizeof(float));
    if (!m->norm_std)
        m->norm_std = anamo_alloc((size_t)m->in_dim * sizeof(float));
    if (!m->norm_mean || !m->norm_std)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "model: cannot allocate normalization");
    for (int64_t j = 0; j < m->in_dim; j++) {
        m->norm_mean[j] = 0.0f;
        m->norm_std[j] = 1.0f;
    }
    return ANAMO_OK;
}

int anamo_model_create(const anamo_model_spec *spec, anamo_model **out, anamo_err *err)
{
    *out = NULL;
    anamo_model *m = calloc(1, sizeof *m);
    if (!m)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "model: out of memory");
    m->in_c = spec->in_c;
    m->in_h = spec->in_h > 0 ? spec->in_h : 1;
    m->in_w = spec->in_w > 0 ? spec->in_w : 1;
    m->in_dim = (int64_t)m->in_c * m->in_h * m->in_w;
    m->max_batch = spec->max_batch > 0 ? spec->max_batch : 256;
    m->init = spec->init;
    m->init_scale = spec->init_scale;
    m->seed = spec->seed;
    m->binary_codes = spec->binary_codes;
    snprintf(m->encoder_spec, sizeof m->encoder_spec, "%s", spec->encoder ? spec->encoder : "");
    snprintf(m->decoder_spec, sizeof m->decoder_spec, "%s", spec->decoder ? spec->decoder : "");
    int rc = block_create(&m->enc, "encoder", m->encoder_spec, m->in_c, m->in_h, m->in_w,
                          m->max_batch, spec->conv, err);
    if (!rc)
        rc = block_create(&m->dec, "decoder", m->decoder_spec, m->enc.out_c, m->enc.out_h,
                          m->enc.out_w, m->max_batch, spec->conv, err);
    if (!rc && m->dec.out_dim != m->in_dim)
        rc = anamo_err_set(err, ANAMO_ERR_CONFIG,
                           "decoder: output width %lld (%d×%d×%d) does not match the input width "
                           "%lld (%d×%d×%d)",
                           (long long)m->dec.out_dim, m->dec.out_c, m->dec.out_h, m->dec.out_w,
                           (long long)m->in_dim, m->in_c, m->in_h, m->in_w);
    if (!rc)
        rc = model_alloc_norm(m, err);
    if (!rc && !(m->xbuf = anamo_alloc((size_t)(m->max_batch * m->in_dim) * sizeof(float))))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "model: cannot allocate the batch buffer");
    if (!rc && !(m->codebuf = anamo_alloc((size_t)(m->max_batch * m->enc.out_dim) * sizeof(float))))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "model: cannot allocate the code buffer");
    if (rc) {
        anamo_model_free(m);
        return rc;
    }
    anamo_rng rng;
    anamo_rng_seed(&rng, spec->seed);
    block_init(&m->enc, spec->init, spec->init_scale, &rng);
    block_init(&m->dec, spec->init, spec->init_scale, &rng);
    *out = m;
    return ANAMO_OK;
}

void anamo_model_free(anamo_model *m)
{
    if (!m)
        return;
    block_free(&m->enc);
    block_free(&m->dec);
    anamo_free(m->norm_mean);
    anamo_free(m->norm_std);
    anamo_free(m->data_mean);
    anamo_free(m->xbuf);
    anamo_free(m->codebuf);
    free(m);
}

int64_t anamo_model_code_dim(const anamo_model *m) { return m->enc.out_dim; }
int64_t anamo_model_input_dim(const anamo_model *m) { return m->in_dim; }
int64_t anamo_model_param_count(const anamo_model *m, anamo_block which)
{
    return which == ANAMO_ENCODER ? m->enc.nparams : m->dec.nparams;
}

void anamo_model_conv_impl(const anamo_model *m, char *out, size_t size)
{
    size_t used = 0;
    if (size)
        out[0] = '\0';
    for (int k = 0; k < 2; k++) {
        const block *b = k ? &m->dec : &m->enc;
        for (int i = 0; i < b->nlayers; i++) {
            const layer *l = &b->layers[i];
            if (l->kind != LAYER_CONV2D && l->kind != LAYER_CONVT2D)
                continue;
            /* a ConvTranspose2d's forward runs on sgemm + col2im even on oneDNN (conv.c) */
            const char *fwd = l->kind == LAYER_CONVT2D ? "sgemm+col2im" : conv_dnnl_impl(l, 0);
            int n = l->dnnl ? snprintf(out + used, size - used, "%s%s.%d oneDNN (%s, %s, %s)",
                                       used ? "; " : "", b->name, l->index, fwd,
                                       conv_dnnl_impl(l, 1), conv_dnnl_impl(l, 2))
                            : snprintf(out + used, size - used, "%s%s.%d im2col", used ? "; " : "",
                                       b->name, l->index);
            if (n < 0 || (size_t)n >= size - used)
                return;
            used += (size_t)n;
        }
    }
}

int anamo_model_fit_standardize(anamo_model *m, const anamo_dataset *ds, anamo_err *err)
{
    if (ds->dim != m->in_dim || ds->n < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %lld features, the model takes %lld",
                             ds->source, (long long)ds->dim, (long long)m->in_dim);
    double *sum = calloc((size_t)m->in_dim, sizeof *sum),
           *sq = calloc((size_t)m->in_dim, sizeof *sq);
    float *row = malloc((size_t)m->in_dim * sizeof *row);
    if (!sum || !sq || !row) {
        free(sum), free(sq), free(row);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "standardize: out of memory");
    }
    for (int64_t i = 0; i < ds->n; i++) {
        data_rows(ds, i, 1, row);
        for (int64_t j = 0; j < m->in_dim; j++) {
            sum[j] += row[j];
            sq[j] += (double)row[j] * row[j];
        }
    }
    for (int64_t j = 0; j < m->in_dim; j++) {
        double mean = sum[j] / ds->n, var = sq[j] / ds->n - mean * mean;
        m->norm_mean[j] = (float)mean;
        /* a constant feature (MNIST's border pixels) keeps scale 1, as sklearn does */
        m->norm_std[j] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
    m->standardize = 1;
    free(sum), free(sq), free(row);
    return ANAMO_OK;
}

int anamo_model_fit_data_mean(anamo_model *m, const anamo_dataset *ds, anamo_err *err)
{
    if (ds->dim != m->in_dim || ds->n < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %lld features, the model takes %lld",
                             ds->source, (long long)ds->dim, (long long)m->in_dim);
    double *sum = calloc((size_t)m->in_dim, sizeof *sum);
    float *row = malloc((size_t)m->in_dim * sizeof *row);
    if (!m->data_mean)
        m->data_mean = anamo_alloc((size_t)m->in_dim * sizeof(float));
    if (!sum || !row || !m->data_mean) {
        free(sum), free(row);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "data mean: out of memory");
    }
    for (int64_t i = 0; i < ds->n; i++) {
        data_rows(ds, i, 1, row);
        for (int64_t j = 0; j < m->in_dim; j++)
            sum[j] += row[j];
    }
    for (int64_t j = 0; j < m->in_dim; j++)
        m->data_mean[j] = (float)(sum[j] / (double)ds->n);
    free(sum), free(row);
    return ANAMO_OK;
}

static int is_reshape(const layer *l)
{
    return l->kind == LAYER_FLATTEN || l->kind == LAYER_UNFLATTEN ||
           (l->kind == LAYER_ACT && l->act == ACT_IDENTITY);
}

static const char *layer_word(const layer *l)
{
    static const char *const WORDS[] = {"linear",    "an activation", "conv2d",   "convtranspose2d",
                                        "batchnorm", "flatten",       "unflatten"};
    return (unsigned)l->kind < sizeof WORDS / sizeof WORDS[0] ? WORDS[l->kind] : "?";
}

int model_code_groups(const anamo_model *m, norm_groups *g, int *layer_index, const char **what)
{
    const block *dec = &m->dec;
    int i = 0;
    while (i < dec->nlayers && is_reshape(&dec->layers[i]))
        i++;
    if (i == dec->nlayers) {
        *what = "no layer";
        return -1;
    }
    const layer *l = &dec->layers[i];
    *what = layer_word(l);
    if (l->kind != LAYER_LINEAR && l->kind != LAYER_CONVT2D)
        return -1;
    memset(g, 0, sizeof *g);
    g->offset = l->weight - dec->params;
    if (l->kind == LAYER_LINEAR) { /* weight (out, in): column j, stride in */
        g->count = l->in_dim, g->len = l->out_dim;
        g->group_stride = 1, g->elem_stride = l->in_dim;
    } else { /* weight (in_c, out_c, k, k): input channel c's slice is contiguous */
        g->count = l->in_c, g->len = (int64_t)l->out_c * l->k * l->k;
        g->group_stride = g->len, g->elem_stride = 1;
    }
    *layer_index = i;
    return 0;
}

void model_normalize(const anamo_model *m, float *x, int B)
{
    if (!m->standardize)
        return;
    const int64_t D = m->in_dim;
#pragma omp parallel for if ((int64_t)B * D > 65536)
    for (int b = 0; b < B; b++)
        for (int64_t j = 0; j < D; j++)
            x[b * D + j] = (x[b * D + j] - m->norm_mean[j]) / m->norm_std[j];
}

void model_denormalize(const anamo_model *m, float *x, int B)
{
    if (!m->standardize)
        return;
    const int64_t D = m->in_dim;
    for (int b = 0; b < B; b++)
        for (int64_t j = 0; j < D; j++)
            x[b * D + j] = x[b * D + j] * m->norm_std[j] + m->norm_mean[j];
}

void model_load_batch(anamo_model *m, const anamo_dataset *ds, const int64_t *idx, int64_t first,
                      int B)
{
    if (idx)
        data_gather(ds, idx, B, m->xbuf);
    else
        data_rows(ds, first, B, m->xbuf);
    model_normalize(m, m->xbuf, B);
}

int model_bce_from_logits(const anamo_model *m, anamo_loss_kind loss)
{
    const layer *last = &m->dec.layers[m->dec.nlayers - 1];
    return loss == ANAMO_LOSS_BCE && last->kind == LAYER_ACT && last->act == ACT_SIGMOID;
}

static int check_rows(const anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                      anamo_err *err)
{
    if (ds->dim != m->in_dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: samples have %lld values, the model takes %lld", ds->source,
                             (long long)ds->dim, (long long)m->in_dim);
    if (first < 0 || count < 0 || first + count > ds->n)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: rows %lld..%lld outside 0..%lld", ds->source,
                             (long long)first, (long long)(first + count), (long long)ds->n);
    return ANAMO_OK;
}

const float *model_codes(anamo_model *m, int B, int binarize)
{
    const float *h = block_forward(&m->enc, m->xbuf, B);
    if (!binarize)
        return h;
    const int64_t n = (int64_t)B * m->enc.out_dim;
    for (int64_t i = 0; i < n; i++)
        m->codebuf[i] = h[i] >= 0.5f ? 1.0f : 0.0f;
    return m->codebuf;
}

void model_set_eval(anamo_model *m)
{
    block_set_training(&m->enc, 0);
    block_set_training(&m->dec, 0);
}

int model_encode_rows(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                      float *codes, int binarize, anamo_err *err)
{
    int rc = check_rows(m, ds, first, count, err);
    model_set_eval(m); /* batch norm: running statistics */
    const int64_t code_dim = m->enc.out_dim;
    for (int64_t done = 0; !rc && done < count; done += m->max_batch) {
        int B = (int)(count - done < m->max_batch ? count - done : m->max_batch);
        model_load_batch(m, ds, NULL, first + done, B);
        const float *h = model_codes(m, B, binarize);
        memcpy(codes + done * code_dim, h, (size_t)(B * code_dim) * sizeof(float));
    }
    return rc;
}

int anamo_model_encode(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                       float *codes, anamo_err *err)
{
    return model_encode_rows(m, ds, first, count, codes, m->binary_codes, err);
}

int anamo_model_reconstruct(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                            float *recon, anamo_err *err)
{
    int rc = check_rows(m, ds, first, count, err);
    const int64_t D = m->in_dim;
    model_set_eval(m);
    for (int64_t done = 0; !rc && done < count; done += m->max_batch) {
        int B = (int)(count - done < m->max_batch ? count - done : m->max_batch);
        model_load_batch(m, ds, NULL, first + done, B);
        const float *h = model_codes(m, B, m->binary_codes);
        const float *xhat = block_forward(&m->dec, h, B);
        float *dst = recon + done * D;
        memcpy(dst, xhat, (size_t)(B * D) * sizeof(float));
        model_denormalize(m, dst, B);
    }
    return rc;
}

const char *init_name(anamo_init_kind init)
{
    const char *name = anamo_enum_name(ANAMO_ENUM_INIT, (int)init);
    return name ? name : "?";
}
