/* block.c — building a block from its layer list, pointing its layers into the flat buffers,
 * and running forward and backward through it. */
#include "nn/block.h"

#include "core/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *word;
    act_kind act;
} ACT_WORDS[] = {{"identity", ACT_IDENTITY}, {"relu", ACT_RELU},  {"sigmoid", ACT_SIGMOID},
                 {"tanh", ACT_TANH},         {"step", ACT_STEP},  {"smoothstep", ACT_SMOOTHSTEP},
                 {"step_ste", ACT_STEP_STE}};

#define SPEC_ALLOWED                                                                           \
    "linear N | identity | relu | sigmoid | tanh | step | step_ste | smoothstep [EPS]"

/* Splits one item ("linear 128") into its word and its numeric arguments. */
static int parse_item(const char *item, char *word, size_t wsize, double *args, int *nargs)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", item);
    *nargs = 0;
    char *save = NULL;
    char *tok = strtok_r(buf, " \t", &save);
    if (!tok)
        return -1;
    snprintf(word, wsize, "%s", tok);
    for (char *w = word; *w; w++)
        *w = (char)tolower((unsigned char)*w);
    while ((tok = strtok_r(NULL, " \t", &save))) {
        if (*nargs == 4)
            return -1;
        if (!strncmp(tok, "eps=", 4) && !strcmp(word, "smoothstep"))
            tok += 4;
        char *end;
        args[*nargs] = strtod(tok, &end);
        if (*end)
            return -1;
        (*nargs)++;
    }
    return 0;
}

static int add_layer(block *b, const char *item, int64_t *dim, anamo_err *err)
{
    char word[32];
    double args[4];
    int nargs;
    if (b->nlayers == BLOCK_MAX_LAYERS)
        return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: more than %d layers", b->name,
                          BLOCK_MAX_LAYERS);
    if (parse_item(item, word, sizeof word, args, &nargs))
        return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: cannot read layer '%s' (allowed: %s)",
                          b->name, item, SPEC_ALLOWED);
    layer *l = &b->layers[b->nlayers];
    memset(l, 0, sizeof *l);
    l->index = b->nlayers;
    l->in_dim = *dim;
    if (!strcmp(word, "linear")) {
        if (nargs != 1 || args[0] < 1 || args[0] > (1 << 24) || args[0] != (int64_t)args[0])
            return anamo_fail(err, ANAMO_ERR_CONFIG,
                              "%s: layer %d '%s': linear needs one positive integer width",
                              b->name, l->index, item);
        l->kind = LAYER_LINEAR;
        l->out_dim = (int64_t)args[0];
    } else {
        size_t k, nwords = sizeof ACT_WORDS / sizeof ACT_WORDS[0];
        for (k = 0; k < nwords && strcmp(word, ACT_WORDS[k].word); k++)
            ;
        int ok = k < nwords && (nargs == 0 || (ACT_WORDS[k].act == ACT_SMOOTHSTEP && nargs == 1 &&
                                               args[0] > 0));
        if (!ok)
            return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: unknown layer '%s' (allowed: %s)",
                              b->name, item, SPEC_ALLOWED);
        l->kind = LAYER_ACT;
        l->act = ACT_WORDS[k].act;
        l->eps = nargs ? (float)args[0] : 1.0f;
        l->out_dim = *dim;
    }
    *dim = l->out_dim;
    b->nlayers++;
    return ANAMO_OK;
}

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
    int64_t dim = b->in_dim;
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[128];
        if (len >= sizeof item)
            return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: layer item too long in '%s'", b->name,
                              spec);
        trimmed(item, sizeof item, p, len);
        if (!item[0])
            return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: empty item in layer list '%s'",
                              b->name, spec);
        int rc = add_layer(b, item, &dim, err);
        if (rc)
            return rc;
        p += len + (comma ? 1 : 0);
        if (comma && !p[strspn(p, " \t")])
            return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: layer list '%s' ends in a comma",
                              b->name, spec);
    }
    if (b->nlayers == 0)
        return anamo_fail(err, ANAMO_ERR_CONFIG, "%s: empty layer list (allowed items: %s)",
                          b->name, SPEC_ALLOWED);
    b->out_dim = dim;
    return ANAMO_OK;
}

static void add_param(block *b, const layer *l, const char *what, int ndim, const int64_t *shape,
                      int is_bias)
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
    p->fan_in = l->in_dim;
    p->fan_out = l->out_dim;
    p->is_bias = is_bias;
    b->nparams += p->numel;
}

/* Lays every parameter tensor out in one span, then points the layers into it. */
static int allocate(block *b, anamo_err *err)
{
    int64_t widest = b->in_dim;
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        if (l->kind == LAYER_LINEAR) {
            int64_t wshape[2] = {l->out_dim, l->in_dim};
            add_param(b, l, "weight", 2, wshape, 0);
            add_param(b, l, "bias", 1, &l->out_dim, 1);
        }
        if (l->out_dim > widest)
            widest = l->out_dim;
        l->out = anamo_alloc((size_t)(b->max_batch * l->out_dim) * sizeof(float));
        if (!l->out)
            return anamo_fail(err, ANAMO_ERR_NOMEM, "%s: cannot allocate activations", b->name);
    }
    b->params = anamo_alloc((size_t)b->nparams * sizeof(float));
    b->grads = anamo_alloc((size_t)b->nparams * sizeof(float));
    for (int k = 0; k < 2; k++)
        b->scratch[k] = anamo_alloc((size_t)(b->max_batch * widest) * sizeof(float));
    if (!b->params || !b->grads || !b->scratch[0] || !b->scratch[1])
        return anamo_fail(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld parameters", b->name,
                          (long long)b->nparams);
    int p = 0;
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        if (l->kind != LAYER_LINEAR)
            continue;
        l->weight = b->params + b->params_ref[p].offset;
        l->dweight = b->grads + b->params_ref[p].offset;
        p++;
        l->bias = b->params + b->params_ref[p].offset;
        l->dbias = b->grads + b->params_ref[p].offset;
        p++;
    }
    return ANAMO_OK;
}

int block_create(block *b, const char *name, const char *spec, int64_t in_dim, int max_batch,
                 anamo_err *err)
{
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    if (in_dim < 1 || max_batch < 1)
        return anamo_fail(err, ANAMO_ERR_ARG, "%s: input width %lld, max batch %d", name,
                          (long long)in_dim, max_batch);
    b->in_dim = in_dim;
    b->max_batch = max_batch;
    int rc = parse_spec(b, spec ? spec : "", err);
    if (!rc)
        rc = allocate(b, err);
    if (rc)
        block_free(b);
    return rc;
}

void block_free(block *b)
{
    for (int i = 0; i < b->nlayers; i++)
        anamo_free(b->layers[i].out);
    anamo_free(b->params);
    anamo_free(b->grads);
    anamo_free(b->opt_state);
    anamo_free(b->scratch[0]);
    anamo_free(b->scratch[1]);
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
        return anamo_fail(err, ANAMO_ERR_NOMEM, "%s: cannot allocate optimizer state", b->name);
    return ANAMO_OK;
}

const float *block_forward_upto(block *b, const float *x, int B, int upto)
{
    b->input = x;
    const float *in = x;
    for (int i = 0; i < upto; i++) {
        layer *l = &b->layers[i];
        if (l->kind == LAYER_LINEAR)
            linear_forward(l, in, B);
        else
            act_forward(l, in, B);
        in = l->out;
    }
    return in;
}

const float *block_forward(block *b, const float *x, int B)
{
    return block_forward_upto(b, x, B, b->nlayers);
}

float *block_backward_from(block *b, int last, const float *dout, int B, int need_dx,
                                 int need_dw)
{
    /* the input gradient of layer i is needed if the caller wants dx, or if a layer before i
     * has weights whose gradient is wanted */
    int first_weighted = b->nlayers;
    for (int i = 0; i < b->nlayers; i++)
        if (b->layers[i].kind == LAYER_LINEAR) {
            first_weighted = i;
            break;
        }
    float *g = (float *)dout; /* returned as is when no layer runs */
    int k = 0;
    for (int i = last - 1; i >= 0; i--) {
        layer *l = &b->layers[i];
        const float *in = i ? b->layers[i - 1].out : b->input;
        int need_din = need_dx || (need_dw && first_weighted < i);
        float *din = b->scratch[k];
        if (l->kind == LAYER_LINEAR)
            linear_backward(l, in, g, din, B, need_din, need_dw);
        else if (need_din)
            act_backward(l, in, g, din, B);
        if (!need_din)
            return NULL;
        g = din;
        k ^= 1;
    }
    return g;
}

float *block_backward(block *b, const float *dout, int B, int need_dx, int need_dw)
{
    return block_backward_from(b, b->nlayers, dout, B, need_dx, need_dw);
}

void block_describe(const block *b, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < b->nlayers && used < size; i++) {
        const layer *l = &b->layers[i];
        const char *sep = i ? ", " : "";
        int n;
        if (l->kind == LAYER_LINEAR)
            n = snprintf(buf + used, size - used, "%slinear %lld", sep, (long long)l->out_dim);
        else if (l->act == ACT_SMOOTHSTEP)
            n = snprintf(buf + used, size - used, "%ssmoothstep %g", sep, (double)l->eps);
        else
            n = snprintf(buf + used, size - used, "%s%s", sep, act_name(l->act));
        if (n < 0)
            return;
        used += (size_t)n;
    }
}
