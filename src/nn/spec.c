/* spec.c — reading a layer list such as
 *     "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, flatten, linear 64"
 * into layers with their shapes and layouts. Items (PyTorch's modules, in its argument order):
 *     linear N [w=VALUE] [b=VALUE]   nn.Linear(in, N); w= (b=) starts every weight (bias) at
 *                                    that constant instead of the model's init kind
 *     conv2d C kK [sS] [pP]          nn.Conv2d(in, C, K, stride=S, padding=P)
 *     convtranspose2d C kK [sS] [pP] [opO]   nn.ConvTranspose2d(…, output_padding=O)
 *     batchnorm [EPS]                nn.BatchNorm1d / nn.BatchNorm2d by the input's shape
 *     flatten | unflatten C H W      nn.Flatten() | nn.Unflatten(1, (C, H, W))
 *     identity | relu | sigmoid | tanh | step | step_ste | smoothstep [EPS] */
#include "nn/block.h"

#include "core/err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *word;
    act_kind act;
} ACT_WORDS[] = {{"identity", ACT_IDENTITY}, {"relu", ACT_RELU}, {"sigmoid", ACT_SIGMOID},
                 {"tanh", ACT_TANH},         {"step", ACT_STEP}, {"smoothstep", ACT_SMOOTHSTEP},
                 {"step_ste", ACT_STEP_STE}};

#define SPEC_ALLOWED                                                                    \
    "linear N [w=VALUE] [b=VALUE] | conv2d C kK [sS] [pP] | "                           \
    "convtranspose2d C kK [sS] [pP] [opO] | batchnorm | "                               \
    "flatten | unflatten C H W | identity | relu | sigmoid | tanh | step | step_ste | " \
    "smoothstep [EPS]"

#define SPEC_MAX_ARGS 4
#define SPEC_MAX_DIM (1 << 24)

/* One item: its word, its plain numbers, and its named numbers (k4, s2, p1, op1, eps=…,
 * w=…, b=…). */
typedef struct item_args {
    char word[32];
    double num[SPEC_MAX_ARGS];
    int nnum;
    double k, s, p, op;
    int has_k;
    double w, b; /* constant initial weight and bias of a linear layer */
    int has_w, has_b;
} item_args;

/* "w=VALUE" or "b=VALUE" (the '=' required, so no other key is read as one): 0 when read,
 * 1 when tok is not one of them, -1 when it is but its value is bad or repeated. */
static int constant_init(item_args *a, const char *tok)
{
    if ((tok[0] != 'w' && tok[0] != 'b') || tok[1] != '=')
        return 1;
    char *end;
    double x = strtod(tok + 2, &end);
    int *has = tok[0] == 'w' ? &a->has_w : &a->has_b;
    if (end == tok + 2 || *end || !isfinite(x) || !isfinite((float)x) || *has)
        return -1;
    *has = 1;
    *(tok[0] == 'w' ? &a->w : &a->b) = x;
    return 0;
}

static int named_number(item_args *a, const char *tok)
{
    int rc = constant_init(a, tok);
    if (rc <= 0)
        return rc;
    static const char *const KEYS[] = {"op", "k", "s", "p", "eps"};
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++) {
        size_t n = strlen(KEYS[i]);
        if (strncmp(tok, KEYS[i], n))
            continue;
        const char *v = tok + n + (tok[n] == '=');
        char *end;
        double x = strtod(v, &end);
        if (end == v || *end)
            return -1;
        if (i == 0)
            a->op = x;
        else if (i == 1)
            a->k = x, a->has_k = 1;
        else if (i == 2)
            a->s = x;
        else if (i == 3)
            a->p = x;
        else if (a->nnum < SPEC_MAX_ARGS)
            a->num[a->nnum++] = x;
        return 0;
    }
    return -1;
}

static int parse_item(const char *item, item_args *a)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", item);
    memset(a, 0, sizeof *a);
    a->s = 1;
    char *save = NULL, *tok = strtok_r(buf, " \t", &save);
    if (!tok)
        return -1;
    snprintf(a->word, sizeof a->word, "%s", tok);
    for (char *w = a->word; *w; w++)
        *w = (char)tolower((unsigned char)*w);
    while ((tok = strtok_r(NULL, " \t", &save))) {
        char *end;
        double x = strtod(tok, &end);
        if (end != tok && !*end) {
            if (a->nnum == SPEC_MAX_ARGS)
                return -1;
            a->num[a->nnum++] = x;
        } else if (named_number(a, tok)) {
            return -1;
        }
    }
    return 0;
}

static int positive_int(double x) { return x >= 1 && x <= SPEC_MAX_DIM && x == (int64_t)x; }

static int set_conv(layer *l, const item_args *a, int transposed)
{
    if (a->nnum != 1 || !positive_int(a->num[0]) || !a->has_k || !positive_int(a->k) ||
        !positive_int(a->s) || a->p < 0 || a->p != (int)a->p || a->op < 0 || a->op != (int)a->op ||
        (a->op >= a->s && a->op > 0) || (!transposed && a->op > 0))
        return -1;
    l->kind = transposed ? LAYER_CONVT2D : LAYER_CONV2D;
    l->out_c = (int)a->num[0];
    l->k = (int)a->k, l->stride = (int)a->s, l->pad = (int)a->p, l->out_pad = (int)a->op;
    if (transposed) {
        l->out_h = (l->in_h - 1) * l->stride - 2 * l->pad + l->k + l->out_pad;
        l->out_w = (l->in_w - 1) * l->stride - 2 * l->pad + l->k + l->out_pad;
    } else {
        l->out_h = (l->in_h + 2 * l->pad - l->k) / l->stride + 1;
        l->out_w = (l->in_w + 2 * l->pad - l->k) / l->stride + 1;
        if (l->in_h + 2 * l->pad < l->k || l->in_w + 2 * l->pad < l->k)
            l->out_h = 0;
    }
    l->out_cm = 1;
    return l->out_h >= 1 && l->out_w >= 1 ? 0 : -2;
}

static int set_activation(layer *l, const item_args *a)
{
    size_t k, nwords = sizeof ACT_WORDS / sizeof ACT_WORDS[0];
    for (k = 0; k < nwords && strcmp(a->word, ACT_WORDS[k].word); k++)
        ;
    if (k == nwords ||
        !(a->nnum == 0 || (ACT_WORDS[k].act == ACT_SMOOTHSTEP && a->nnum == 1 && a->num[0] > 0)))
        return -1;
    l->kind = LAYER_ACT;
    l->act = ACT_WORDS[k].act;
    l->eps = a->nnum ? (float)a->num[0] : 1.0f;
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w, l->out_cm = l->in_cm;
    return 0;
}

/* Fills l's kind, arguments and output shape from the item; -1: bad item, -2: bad shape,
 * -3: w=/b= on a layer that is not linear. */
static int set_layer(layer *l, const item_args *a)
{
    const char *w = a->word;
    if (!strcmp(w, "linear")) {
        if (a->nnum != 1 || !positive_int(a->num[0]) || a->has_k)
            return -1;
        if (l->in_cm)
            return -2; /* a convolution's output: flatten first (a block's NCHW input is
                          taken as its C·H·W features, as a flattened image) */
        l->kind = LAYER_LINEAR, l->out_c = (int)a->num[0], l->out_h = l->out_w = 1;
        l->has_const_weight = a->has_w, l->const_weight = (float)a->w;
        l->has_const_bias = a->has_b, l->const_bias = (float)a->b;
        return 0;
    }
    if (a->has_w || a->has_b)
        return -3;
    if (!strcmp(w, "conv2d"))
        return set_conv(l, a, 0);
    if (!strcmp(w, "convtranspose2d") || !strcmp(w, "convt2d"))
        return set_conv(l, a, 1);
    if (!strcmp(w, "batchnorm")) {
        if (a->nnum > 1 || a->has_k)
            return -1;
        l->kind = LAYER_BATCHNORM, l->eps = a->nnum ? (float)a->num[0] : 1e-5f;
        l->momentum = 0.1f;
        l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w, l->out_cm = l->in_cm;
        return 0;
    }
    if (!strcmp(w, "flatten") && a->nnum == 0) {
        l->kind = LAYER_FLATTEN;
        l->out_c = l->in_c * l->in_h * l->in_w, l->out_h = l->out_w = 1;
        return 0;
    }
    if (!strcmp(w, "unflatten")) {
        if (a->nnum != 3 || !positive_int(a->num[0]) || !positive_int(a->num[1]) ||
            !positive_int(a->num[2]))
            return -1;
        l->kind = LAYER_UNFLATTEN;
        l->out_c = (int)a->num[0], l->out_h = (int)a->num[1], l->out_w = (int)a->num[2];
        return (int64_t)l->out_c * l->out_h * l->out_w == l->in_dim && !l->in_cm ? 0 : -2;
    }
    return set_activation(l, a);
}

int spec_add_layer(block *b, const char *item, int *c, int *h, int *w, int *cm, anamo_err *err)
{
    item_args a;
    if (b->nlayers == BLOCK_MAX_LAYERS)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: more than %d layers", b->name,
                             BLOCK_MAX_LAYERS);
    layer *l = &b->layers[b->nlayers];
    memset(l, 0, sizeof *l);
    l->index = b->nlayers;
    l->in_c = *c, l->in_h = *h, l->in_w = *w, l->in_cm = *cm;
    l->in_dim = (int64_t)*c * *h * *w;
    int rc = parse_item(item, &a) ? -1 : set_layer(l, &a);
    if (rc == -1)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: layer %d: cannot read '%s' (allowed: %s)",
                             b->name, l->index, item, SPEC_ALLOWED);
    if (rc == -3)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: layer %d '%s': w= and b= (constant initial weights) are allowed "
                             "on linear layers only",
                             b->name, l->index, item);
    if (rc == -2)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: layer %d '%s' does not fit its input of shape %d×%d×%d%s",
                             b->name, l->index, item, *c, *h, *w,
                             l->kind == LAYER_LINEAR ? " (put 'flatten' before a linear layer)"
                                                     : "");
    l->out_dim = (int64_t)l->out_c * l->out_h * l->out_w;
    *c = l->out_c, *h = l->out_h, *w = l->out_w, *cm = l->out_cm;
    b->nlayers++;
    return ANAMO_OK;
}

/* "linear N", with its constants in a form that reads back to the same floats. */
static int describe_linear(const layer *l, char *buf, size_t size)
{
    char w[32] = "", b[32] = "";
    if (l->has_const_weight)
        snprintf(w, sizeof w, " w=%.9g", (double)l->const_weight);
    if (l->has_const_bias)
        snprintf(b, sizeof b, " b=%.9g", (double)l->const_bias);
    return snprintf(buf, size, "linear %d%s%s", l->out_c, w, b);
}

int layer_describe(const layer *l, char *buf, size_t size)
{
    switch (l->kind) {
    case LAYER_LINEAR: return describe_linear(l, buf, size);
    case LAYER_CONV2D:
    case LAYER_CONVT2D:
        return snprintf(buf, size, "%s %d k%d s%d p%d%s%.0d",
                        l->kind == LAYER_CONV2D ? "conv2d" : "convtranspose2d", l->out_c, l->k,
                        l->stride, l->pad, l->out_pad ? " op" : "", l->out_pad);
    case LAYER_BATCHNORM: return snprintf(buf, size, "batchnorm");
    case LAYER_FLATTEN: return snprintf(buf, size, "flatten");
    case LAYER_UNFLATTEN:
        return snprintf(buf, size, "unflatten %d %d %d", l->out_c, l->out_h, l->out_w);
    case LAYER_ACT:
    default:
        if (l->act == ACT_SMOOTHSTEP)
            return snprintf(buf, size, "smoothstep %g", (double)l->eps);
        return snprintf(buf, size, "%s", act_name(l->act));
    }
}

void block_describe(const block *b, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < b->nlayers && used + 2 < size; i++) {
        if (i)
            used += (size_t)snprintf(buf + used, size - used, ", ");
        int n = layer_describe(&b->layers[i], buf + used, size - used);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}
