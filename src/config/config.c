/* config.c — reading, checking and resolving experiment configs (docs/CONFIG.md), and the
 * public anamo_config_* functions over them (at the end). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum vtype { V_STR, V_INT, V_FLOAT, V_BOOL, V_ENUM } vtype;

typedef struct key_spec {
    const char *section; /* "phase *" matches any [phase NAME] */
    const char *key;
    vtype type;
    const char *deflt;   /* NULL: no default (required where used) */
    const char *allowed; /* V_ENUM: "a|b|c"; numbers: a description of the range */
    double min, max;     /* numbers */
} key_spec;

/* A key whose values are every name of a public enumeration points its allowed at that
 * enumeration's slot here, and key_allowed reads the names from their one table (anamo.h's
 * anamo_enum_allowed). */
static const char ENUM_SLOTS[ANAMO_ENUM_COUNT][1];
#define NAMES(e) ENUM_SLOTS[e], 0, 0

static const char *key_allowed(const key_spec *k)
{
    if (k->type == V_BOOL)
        return "true|false";
    for (int e = 0; e < ANAMO_ENUM_COUNT; e++)
        if (k->allowed == ENUM_SLOTS[e])
            return anamo_enum_allowed((anamo_enum)e);
    return k->allowed;
}

#define BIG 1e30
/* The default of a key that depends on the section's optimizer: OPTIMIZER_DEFAULTS has it. */
static const char BY_OPTIMIZER[] = "(the optimizer's)";
/* The keys of one optimizer, for [joint] and each [phase NAME] (see optim.h). */
#define OPTIMIZER_KEYS(S)                                                                       \
    {S, "optimizer", V_ENUM, "adam", NAMES(ANAMO_ENUM_OPTIMIZER)},                              \
        {S, "lr", V_FLOAT, BY_OPTIMIZER, "learning rate > 0", 1e-30, BIG},                      \
        {S, "beta1", V_FLOAT, "0.9", "Adam's beta1 in [0, 1)", 0, 0.999999},                    \
        {S, "beta2", V_FLOAT, "0.999", "Adam's beta2 in [0, 1)", 0, 0.999999999},               \
        {S, "eps", V_FLOAT, BY_OPTIMIZER, "> 0 (Adam, AdaGrad, RMSProp)", 0, BIG},              \
        {S, "weight_decay", V_FLOAT, "0", ">= 0", 0, BIG},                                      \
        {S, "momentum", V_FLOAT, "0.9", "momentum and nesterov's beta in [0, 1)", 0, 0.999999}, \
        {S, "alpha", V_FLOAT, "0.99", "RMSProp smoothing in [0, 1)", 0, 0.999999},              \
        {S, "prox", V_ENUM, "none", NAMES(ANAMO_ENUM_PROX)},                                    \
        {S, "prox_lambda", V_FLOAT, "0", "weight of the prox term >= 0", 0, BIG},               \
        {S, "restart", V_ENUM, "none", "none|gradient", 0, 0},                                  \
        {S, "step", V_ENUM, "fixed", NAMES(ANAMO_ENUM_STEP_RULE)},                              \
        {S, "backtrack_eta", V_FLOAT, "2", "> 1", 1.000001, 1e3},                               \
        {S, "schedule", V_ENUM, "constant", NAMES(ANAMO_ENUM_SCHEDULE)},                        \
        {S, "step_size", V_INT, "1", "epochs per step decay >= 1", 1, 1e9},                     \
        {S, "gamma", V_FLOAT, "0.1", "step decay factor in (0, 1]", 1e-9, 1},                   \
        {S, "factor", V_FLOAT, "0.1", "plateau factor in (0, 1)", 1e-9, 0.999999},              \
        {S, "patience", V_INT, "10", "plateau patience in epochs >= 0", 0, 1e9},                \
        {S, "threshold", V_FLOAT, "1e-4", "plateau relative threshold >= 0", 0, 1},             \
    {                                                                                           \
        S, "min_lr", V_FLOAT, "0", "plateau floor >= 0", 0, BIG                                 \
    }

/* PyTorch's lr and eps for each optimizer (optim_default_lr and optim_defaults in optim.h; a
 * test checks the two agree): Adam 1e-3 and 1e-8, Adagrad 1e-2 and 1e-10, RMSprop 1e-2 and
 * 1e-8. torch.optim.SGD has no default lr: sgd, momentum, nesterov and the accelerated methods
 * take anamo's 1e-3 (their eps is unused). */
typedef struct optimizer_default {
    const char *optimizer, *lr, *eps;
} optimizer_default;
static const optimizer_default OPTIMIZER_DEFAULTS[] = {
    {"adam", "1e-3", "1e-8"},
    {"adagrad", "1e-2", "1e-10"},
    {"rmsprop", "1e-2", "1e-8"},
};
#define OPTIMIZER_DEFAULT_OTHERS \
    {                            \
        "", "1e-3", "1e-8"       \
    }

static const key_spec KEYS[] = {
    {"data", "train", V_STR, "mnist:train", "a data spec: mnist:train, FILE.npy, FILE.csv, ...", 0,
     0},
    {"data", "test", V_STR, "mnist:test", "a data spec, or empty for none", 0, 0},
    {"data", "validation", V_STR, "",
     "a fraction in (0, 1) of data.train held out, a data spec, or empty for none", 0, 0},
    {"data", "validation_seed", V_INT, "0",
     "which samples the fraction holds out (the same in every trial)", 0, BIG},
    {"data", "standardize", V_BOOL, "false", "true|false", 0, 0},
    {"model", "encoder", V_STR, "linear 128, relu, linear 64, relu", "a layer list", 0, 0},
    {"model", "decoder", V_STR, "linear 128, relu, linear 784, sigmoid", "a layer list", 0, 0},
    {"model", "init", V_ENUM, "pytorch", NAMES(ANAMO_ENUM_INIT)},
    {"model", "init_scale", V_FLOAT, "0.01", "a in U(-a, a) for init = uniform", 0, BIG},
    {"model", "seed", V_INT, "0", "initial weights' seed", 0, BIG},
    {"model", "binary_codes", V_BOOL, "false", "true|false: evaluate with codes [E(x) >= 0.5]", 0,
     0},
    {"model", "conv", V_ENUM, "auto", NAMES(ANAMO_ENUM_CONV)},
    {"loss", "type", V_ENUM, "mse", NAMES(ANAMO_ENUM_LOSS)},
    {"loss", "lambda", V_FLOAT, "0", "code penalty weight >= 0", 0, BIG},
    {"loss", "penalty", V_ENUM, "l1", NAMES(ANAMO_ENUM_PENALTY)},
    {"train", "scheme", V_ENUM, "joint", "joint|nam|anamo|freecodes", 0, 0},
    {"train", "epochs", V_FLOAT, "10", "epochs > 0", 1e-9, 1e9},
    {"train", "batch", V_INT, "125", "batch size >= 1", 1, 1 << 20},
    {"train", "seed", V_INT, "0", "shuffling seed", 0, BIG},
    {"train", "log_every", V_INT, "50", "iterations per metrics row", 1, BIG},
    {"train", "threads", V_INT, "0", "OpenMP threads, 0 = default", 0, 1024},
    {"train", "cache_codes", V_ENUM, "auto", "auto|true|false", 0, 0},
    {"train", "decoder_norm", V_ENUM, "none", NAMES(ANAMO_ENUM_DECODER_NORM)},
    {"train", "resample_every", V_INT, "0", "steps between dead-unit resamplings, 0 = off", 0, BIG},
    {"train", "resample_window", V_INT, NULL,
     "steps a unit stays zero to be dead, >= 1 (default resample_every)", 1, BIG},
    {"train", "jacobian_samples", V_INT, "256",
     "samples of the Jacobian-weighted code l1, 0 = none", 0, BIG},
    {"train", "eval_every_epoch", V_BOOL, "true", "true|false", 0, 0},
    {"train", "early_stopping", V_INT, "0",
     "stop after this many epochs without a better validation loss, 0 = off", 0, 1e9},
    {"train", "flop_budget", V_FLOAT, "0",
     "stop once training has done this many FLOP (summary.json compute.flop), 0 = off", 0, BIG},
    {"train", "checkpoint_every", V_INT, "1", "epochs between checkpoints, 0 = at the end", 0, BIG},
    {"train", "checkpoint_iterations", V_INT, "0", "steps between checkpoints, 0 = off", 0, BIG},
    {"train", "checkpoint_seconds", V_FLOAT, "0", "seconds between checkpoints, 0 = off", 0, BIG},
    OPTIMIZER_KEYS("joint"),
    {"nam", "start", V_ENUM, "decoder", "decoder|encoder", 0, 0},
    {"nam", "optimizer", V_ENUM, "adam", "sgd|adam", 0, 0},
    {"nam", "decoder_lr", V_FLOAT, "1e-2", "learning rate > 0", 1e-30, BIG},
    {"nam", "encoder_lr", V_FLOAT, "1e-3", "learning rate > 0", 1e-30, BIG},
    {"nam", "epochs_per_phase", V_FLOAT, "1", "epochs > 0", 1e-9, 1e9},
    {"nam", "phases", V_STR, "", "names of [phase NAME] sections, in cycle order", 0, 0},
    {"phase *", "block", V_ENUM, NULL, "encoder|decoder|both", 0, 0},
    OPTIMIZER_KEYS("phase *"),
    {"phase *", "batch", V_INT, NULL, "batch size >= 1 (default train.batch)", 1, 1 << 20},
    {"phase *", "epochs", V_FLOAT, "1", "epochs > 0", 1e-9, 1e9},
    {"phase *", "iterations", V_INT, "0", "steps; > 0 overrides epochs", 0, BIG},
    {"anamo", "enc_iters", V_INT, "5", "J_enc: FISTA iterations on the encoder per batch", 0, 1e6},
    {"anamo", "dec_iters", V_INT, "15", "J_dec: accelerated iterations on the decoder per batch", 0,
     1e6},
    {"anamo", "enc_lr", V_FLOAT, "0.1", "e: encoder step (first guess when backtracking)", 1e-30,
     BIG},
    {"anamo", "dec_lr", V_FLOAT, "0.1", "d: decoder step (first guess when backtracking)", 1e-30,
     BIG},
    {"anamo", "prox_iters", V_INT, "10", "K: sub-gradient iterations of the encoder's prox", 0,
     1e6},
    {"anamo", "prox_step", V_FLOAT, "0.5", "eta: step of those iterations, in (0, 1]", 1e-9, 1},
    {"anamo", "step", V_ENUM, "fixed", NAMES(ANAMO_ENUM_STEP_RULE)},
    {"anamo", "backtrack_eta", V_FLOAT, "2", "> 1", 1.000001, 1e3},
    {"anamo", "restart", V_ENUM, "none", NAMES(ANAMO_ENUM_RESTART)},
    {"anamo", "batch", V_INT, NULL, "batch size (default train.batch)", 1, 1 << 20},
    {"freecodes", "code_iters", V_INT, "5", "FISTA iterations on a batch's codes", 0, 1e6},
    {"freecodes", "dec_iters", V_INT, "15", "accelerated iterations on the decoder per batch", 0,
     1e6},
    {"freecodes", "code_lr", V_FLOAT, "0.5", "step on the codes > 0", 1e-30, BIG},
    {"freecodes", "dec_lr", V_FLOAT, "0.5", "decoder step > 0", 1e-30, BIG},
    {"freecodes", "restart", V_ENUM, "none", "none|gradient", 0, 0},
    {"freecodes", "fit", V_ENUM, "auto", NAMES(ANAMO_ENUM_FIT)},
    {"freecodes", "fit_epochs", V_INT, "20", "epochs of the bce fit", 0, 1e6},
    {"freecodes", "fit_lr", V_FLOAT, "1e-3", "Adam's lr in the bce fit", 1e-30, BIG},
    {"freecodes", "refit_epochs", V_INT, "2", "decoder passes over the binary codes", 0, 1e6},
    {"freecodes", "batch", V_INT, NULL, "batch size (default train.batch)", 1, 1 << 20},
    {"compare", "arms", V_STR, "", "names of [arm NAME] sections", 0, 0},
    {"compare", "trials", V_INT, "1", "trials per arm >= 1 (trial t adds t to the seeds)", 1,
     10000},
    {"compare", "sweep", V_STR, "",
     "section.key swept over sweep_values in every arm (an [arm NAME] may set its own)", 0, 0},
    {"compare", "sweep_values", V_STR, "", "comma list of values for sweep", 0, 0},
    {"compare", "select", V_STR, "",
     "validation.METRIC: report each arm at the sweep value of its lowest mean", 0, 0},
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static int section_matches(const char *pattern, const char *section)
{
    size_t n = strlen(pattern);
    if (n > 2 && pattern[n - 1] == '*')
        return !strncmp(pattern, section, n - 1) && section[n - 1] != '\0';
    return !strcmp(pattern, section);
}

static const key_spec *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (section_matches(KEYS[i].section, section) && !strcmp(KEYS[i].key, key))
            return &KEYS[i];
    return NULL;
}

static int known_section(const char *section)
{
    if ((!strncmp(section, "arm ", 4) && section[4]) || !strcmp(section, "quick"))
        return 1;
    for (size_t i = 0; i < NKEYS; i++)
        if (section_matches(KEYS[i].section, section))
            return 1;
    return 0;
}

/* ---- storing entries --------------------------------------------------------------------- */

static int put(anamo_config *c, const char *section, const char *key, const char *value,
               const char *origin, anamo_err *err)
{
    if (strlen(section) >= CFG_SECTION_MAX || strlen(key) >= CFG_KEY_MAX ||
        strlen(value) >= CFG_VALUE_MAX)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: [%s] %s: name or value too long", origin,
                             section, key);
    cfg_entry *e = (cfg_entry *)config_find(c, section, key);
    if (!e) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 32;
            cfg_entry *grown = realloc(c->entries, (size_t)cap * sizeof *grown);
            if (!grown)
                return anamo_err_set(err, ANAMO_ERR_NOMEM, "config: out of memory");
            c->entries = grown;
            c->cap = cap;
        }
        e = &c->entries[c->n++];
        snprintf(e->section, sizeof e->section, "%s", section);
        snprintf(e->key, sizeof e->key, "%s", key);
    }
    snprintf(e->value, sizeof e->value, "%s", value);
    snprintf(e->origin, sizeof e->origin, "%s", origin);
    return ANAMO_OK;
}

typedef struct parse_ctx {
    anamo_config *c;
    const char *name;
    const char *text; /* the rest of the text to read */
    int line;
    anamo_err *err;
    int failed;
} parse_ctx;

/* inih's reader: hands it one line at a time and counts lines, so the handler knows where
 * each key came from. */
static char *read_line(char *str, int num, void *stream)
{
    parse_ctx *p = stream;
    if (!*p->text)
        return NULL;
    const char *nl = strchr(p->text, '\n');
    size_t len = nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    p->line++;
    if (len >= (size_t)num) {
        if (!p->failed)
            anamo_err_set(p->err, ANAMO_ERR_CONFIG, "%s:%d: line longer than %d characters",
                          p->name, p->line, num - 2);
        p->failed = 1;
        len = 0;
    }
    for (size_t i = 0; i < len && !p->failed; i++) {
        unsigned char ch = (unsigned char)p->text[i];
        int line_end = ch == '\n' || (ch == '\r' && (i + 1 == len || p->text[i + 1] == '\n'));
        if ((ch < 0x20 && ch != '\t' && !line_end) || ch == 0x7f) {
            anamo_err_set(p->err, ANAMO_ERR_CONFIG,
                          "%s:%d: column %zu: control character 0x%02x "
                          "(a config is plain text)",
                          p->name, p->line, i + 1, ch);
            p->failed = 1;
            len = 0;
        }
    }
    memcpy(str, p->text, len);
    str[len] = '\0';
    p->text += nl ? (size_t)(nl - p->text) + 1 : strlen(p->text);
    return str;
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *p = user;
    char origin[CFG_PATH_MAX + 16];
    snprintf(origin, sizeof origin, "%s:%d", p->name, p->line);
    if (!*section) {
        if (!p->failed)
            anamo_err_set(p->err, ANAMO_ERR_CONFIG, "%s: key '%s' outside any [section]", origin,
                          key);
        p->failed = 1;
        return 0;
    }
    if (!p->failed && put(p->c, section, key, value ? value : "", origin, p->err))
        p->failed = 1;
    return !p->failed;
}

int config_load_text(anamo_config *c, const char *text, const char *origin, anamo_err *err)
{
    /* a heap line buffer: inih allocates ini_initial_alloc bytes (200 by default) and, without
     * ini_allow_realloc, never more, whatever ini_max_line says */
    ini_use_stack = false;
    ini_max_line = CFG_VALUE_MAX + CFG_KEY_MAX + 8;
    ini_initial_alloc = ini_max_line;
    ini_allow_multiline = false;
    ini_stop_on_first_error = true;                  /* the first fault is the one to name */
    snprintf(c->path, sizeof c->path, "%s", origin); /* what the config's own messages name */
    parse_ctx p = {.c = c, .name = origin, .text = text, .err = err};
    int rc = ini_parse_stream(read_line, &p, on_entry, &p);
    if (p.failed)
        return ANAMO_ERR_CONFIG;
    if (rc > 0)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s:%d: cannot parse this line (expected [section], key = value, or a "
                             "; comment)",
                             origin, rc);
    if (rc < 0)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", origin);
    return ANAMO_OK;
}

int config_load(anamo_config *c, const char *path, anamo_err *err)
{
    snprintf(c->path, sizeof c->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open config: %s", path,
                             strerror(errno));
    char *text = NULL;
    size_t size = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (size + got + 1 > cap) {
            cap = 2 * (size + got + 1);
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text), fclose(f);
                return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
            }
            text = grown;
        }
        memcpy(text + size, chunk, got);
        size += got;
    }
    int read_failed = ferror(f);
    fclose(f);
    if (read_failed) { /* a directory opens but does not read */
        free(text);
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot read config (is it a directory?)",
                             path);
    }
    if (!text || memchr(text, '\0', size)) {
        free(text);
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: empty or not a text file", path);
    }
    text[size] = '\0';
    int rc = config_load_text(c, text, path, err);
    free(text);
    return rc;
}

static void trim(char *s)
{
    char *start = s;
    while (isspace((unsigned char)*start))
        start++;
    memmove(s, start, strlen(start) + 1);
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}

int config_set(anamo_config *c, const char *assignment, const char *origin, anamo_err *err)
{
    const char *eq = strchr(assignment, '=');
    char lhs[CFG_SECTION_MAX + CFG_KEY_MAX], value[CFG_VALUE_MAX];
    const char *dot = NULL;
    if (eq) {
        snprintf(lhs, sizeof lhs, "%.*s", (int)(eq - assignment), assignment);
        dot = strrchr(lhs, '.');
    }
    if (!eq || !dot || dot == lhs || !dot[1])
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s '%s': expected section.key=value (e.g. train.epochs=2)", origin,
                             assignment);
    char section[CFG_SECTION_MAX], key[CFG_KEY_MAX];
    snprintf(section, sizeof section, "%.*s", (int)(dot - lhs), lhs);
    snprintf(key, sizeof key, "%s", dot + 1);
    snprintf(value, sizeof value, "%s", eq + 1);
    trim(section), trim(key), trim(value);
    char where[CFG_PATH_MAX + 16];
    snprintf(where, sizeof where, "%s %s", origin, assignment);
    return put(c, section, key, value, where, err);
}

const cfg_entry *config_find(const anamo_config *c, const char *section, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->entries[i].section, section) && !strcmp(c->entries[i].key, key))
            return &c->entries[i];
    return NULL;
}

/* The default of section.key that depends on the section's optimizer (lr, eps). */
static const char *optimizer_default_of(const anamo_config *c, const char *section, const char *key)
{
    static const optimizer_default others = OPTIMIZER_DEFAULT_OTHERS;
    const char *name = config_get(c, section, "optimizer");
    const optimizer_default *d = &others;
    for (size_t i = 0; name && i < sizeof OPTIMIZER_DEFAULTS / sizeof *OPTIMIZER_DEFAULTS; i++)
        if (!strcmp(OPTIMIZER_DEFAULTS[i].optimizer, name))
            d = &OPTIMIZER_DEFAULTS[i];
    return !strcmp(key, "lr") ? d->lr : d->eps;
}

const char *config_get(const anamo_config *c, const char *section, const char *key)
{
    const cfg_entry *e = config_find(c, section, key);
    if (e)
        return e->value;
    const key_spec *k = find_key(section, key);
    if (k && k->deflt == BY_OPTIMIZER)
        return optimizer_default_of(c, section, key);
    return k ? k->deflt : NULL;
}

void config_free(anamo_config *c)
{
    free(c->entries);
    memset(c, 0, sizeof *c);
}

int config_copy(anamo_config *dst, const anamo_config *src, anamo_err *err)
{
    *dst = *src;
    dst->entries = malloc((size_t)(src->cap ? src->cap : 1) * sizeof *dst->entries);
    if (!dst->entries)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "config: out of memory");
    memcpy(dst->entries, src->entries, (size_t)src->n * sizeof *dst->entries);
    return ANAMO_OK;
}

/* ---- checking values --------------------------------------------------------------------- */

int config_enum_index(const char *allowed, const char *value)
{
    int i = 0;
    size_t n = strlen(value);
    for (const char *p = allowed; *p; i++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, value, n))
            return i;
        p += len + (bar ? 1 : 0);
    }
    return -1;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    return *s && !*end && errno == 0 && isfinite(*out);
}

static int check_value(const key_spec *k, const cfg_entry *e, anamo_err *err)
{
    double v;
    switch (k->type) {
    case V_ENUM:
    case V_BOOL:
        if (config_enum_index(key_allowed(k), e->value) >= 0)
            return ANAMO_OK;
        break;
    case V_INT:
    case V_FLOAT:
        if (parse_number(e->value, &v) && v >= k->min && v <= k->max &&
            (k->type == V_FLOAT || v == floor(v)))
            return ANAMO_OK;
        break;
    case V_STR:
    default: return ANAMO_OK;
    }
    if (k->type == V_ENUM || k->type == V_BOOL)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: [%s] %s = '%s' is not allowed (expected %s)", e->origin,
                             e->section, e->key, e->value, key_allowed(k));
    char range[96]; /* the limits themselves, not only what they mean */
    if (k->max >= BIG)
        snprintf(range, sizeof range, ">= %.10g", k->min);
    else
        snprintf(range, sizeof range, "from %.10g to %.10g", k->min, k->max);
    return anamo_err_set(err, ANAMO_ERR_CONFIG,
                         "%s: [%s] %s = '%s' is not allowed (expected %s %s: %s)", e->origin,
                         e->section, e->key, e->value, k->type == V_INT ? "an integer" : "a number",
                         range, k->allowed);
}

static void allowed_keys(const char *section, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NKEYS && used < size; i++)
        if (section_matches(KEYS[i].section, section)) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", KEYS[i].key);
            used += n > 0 ? (size_t)n : 0;
        }
}

static int check_entry(const cfg_entry *e, anamo_err *err)
{
    const key_spec *k = find_key(e->section, e->key);
    if (!k) {
        char allowed[512];
        allowed_keys(e->section, allowed, sizeof allowed);
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: unknown key '%s' in [%s] (allowed: %s)",
                             e->origin, e->key, e->section, allowed);
    }
    return check_value(k, e, err);
}

/* An [arm NAME] or [quick] line "section.key = value": the key and value are checked here, as
 * the line would be in its own section (a typo in the last arm is found before any run). */
static int check_override(const cfg_entry *e, anamo_err *err)
{
    const char *dot = strrchr(e->key, '.');
    if (!dot || dot == e->key || !dot[1])
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: '%s' in [%s]: expected section.key = value", e->origin, e->key,
                             e->section);
    cfg_entry as_set = *e;
    snprintf(as_set.section, sizeof as_set.section, "%.*s", (int)(dot - e->key), e->key);
    snprintf(as_set.key, sizeof as_set.key, "%s", dot + 1);
    if (!known_section(as_set.section) || !strncmp(as_set.section, "arm ", 4) ||
        !strcmp(as_set.section, "quick"))
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: '%s' in [%s]: unknown section [%s]",
                             e->origin, e->key, e->section, as_set.section);
    return check_entry(&as_set, err);
}

int config_validate(const anamo_config *c, anamo_err *err)
{
    for (int i = 0; i < c->n; i++) {
        const cfg_entry *e = &c->entries[i];
        if (!known_section(e->section))
            return anamo_err_set(err, ANAMO_ERR_CONFIG,
                                 "%s: unknown section [%s] (allowed: data, model, loss, train, "
                                 "joint, nam, anamo, freecodes, phase NAME, compare, arm NAME, "
                                 "quick)",
                                 e->origin, e->section);
        int rc = !strncmp(e->section, "arm ", 4) || !strcmp(e->section, "quick")
                     ? check_override(e, err)
                     : check_entry(e, err);
        if (rc)
            return rc;
    }
    return ANAMO_OK;
}

/* ---- the resolved config ----------------------------------------------------------------- */

/* Appends text; when the buffer cannot grow it is freed and stays NULL, so the caller gets
 * NULL rather than a config with keys left out. */
static void append(char **buf, size_t *len, size_t *cap, const char *text)
{
    size_t n = strlen(text);
    if (*len && !*buf)
        return; /* an earlier append failed */
    if (*len + n + 1 > *cap) {
        size_t grown_cap = 2 * (*len + n + 1);
        char *grown = realloc(*buf, grown_cap);
        if (!grown) {
            free(*buf);
            *buf = NULL;
            *len = *cap = 1; /* marks the failure */
            return;
        }
        *buf = grown;
        *cap = grown_cap;
    }
    memcpy(*buf + *len, text, n + 1);
    *len += n;
}

static void append_section(const anamo_config *c, const char *section, const char *pattern,
                           char **buf, size_t *len, size_t *cap)
{
    char line[CFG_VALUE_MAX + 2 * CFG_KEY_MAX];
    snprintf(line, sizeof line, "%s[%s]\n", *len ? "\n" : "", section);
    append(buf, len, cap, line);
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(KEYS[i].section, pattern))
            continue;
        const char *v = config_get(c, section, KEYS[i].key);
        if (!v)
            continue;
        snprintf(line, sizeof line, "%s =%s%s\n", KEYS[i].key, v[0] == ';' ? "" : " ", v);
        append(buf, len, cap, line);
    }
    for (int i = 0; !strcmp(pattern, "arm *") && i < c->n; i++)
        if (!strcmp(c->entries[i].section, section)) {
            /* inih keeps "k =;x" as ";x", but "k = ;x" as a comment: no space before a ';' */
            snprintf(line, sizeof line, "%s =%s%s\n", c->entries[i].key,
                     c->entries[i].value[0] == ';' ? "" : " ", c->entries[i].value);
            append(buf, len, cap, line);
        }
}

char *config_resolved_text(const anamo_config *c)
{
    static const char *const FIXED[] = {"data", "model", "loss",      "train",  "joint",
                                        "nam",  "anamo", "freecodes", "compare"};
    char *buf = NULL;
    size_t len = 0, cap = 0;
    append(&buf, &len, &cap, "; resolved by anamo: every key with its effective value\n");
    for (size_t s = 0; s < sizeof FIXED / sizeof FIXED[0]; s++)
        append_section(c, FIXED[s], FIXED[s], &buf, &len, &cap);
    for (int i = 0; i < c->n; i++) { /* each named section once, in file order */
        const char *sec = c->entries[i].section;
        int first = 1;
        for (int j = 0; j < i; j++)
            first &= strcmp(c->entries[j].section, sec) != 0;
        if (first && !strncmp(sec, "phase ", 6))
            append_section(c, sec, "phase *", &buf, &len, &cap);
        if (first && !strncmp(sec, "arm ", 4))
            append_section(c, sec, "arm *", &buf, &len, &cap);
    }
    return buf;
}

int split_list(const char *s, char items[][ANAMO_NAME_MAX], int max)
{
    int n = 0;
    while (s && *s && n < max) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        snprintf(items[n], ANAMO_NAME_MAX, "%.*s", (int)len, s);
        trim(items[n]);
        if (items[n][0])
            n++;
        s += len + (comma ? 1 : 0);
    }
    return n;
}

/* Applies the "section.key = value" lines of [section] to c; returns how many there were. */
static int apply_overrides(anamo_config *c, const char *section, int *count, anamo_err *err)
{
    *count = 0;
    for (int i = 0; i < c->n; i++) {
        if (strcmp(c->entries[i].section, section))
            continue;
        cfg_entry e = c->entries[i]; /* put() may move the array */
        char assignment[CFG_KEY_MAX + CFG_VALUE_MAX + 2];
        snprintf(assignment, sizeof assignment, "%s=%s", e.key, e.value);
        int rc = config_set(c, assignment, e.origin, err);
        if (rc)
            return rc;
        ++*count;
    }
    return ANAMO_OK;
}

int config_apply_arm(anamo_config *c, const char *arm, anamo_err *err)
{
    char section[CFG_SECTION_MAX];
    snprintf(section, sizeof section, "arm %s", arm);
    int found = 0, rc = apply_overrides(c, section, &found, err);
    if (rc)
        return rc;
    if (!found)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: [compare] arms names '%s' but there is no "
                             "[arm %s] section",
                             c->path, arm, arm);
    return config_validate(c, err);
}

int config_apply_quick(anamo_config *c, anamo_err *err)
{
    int found = 0, rc = apply_overrides(c, "quick", &found, err);
    if (rc)
        return rc;
    if (!found)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: --quick, but the config has no [quick] "
                             "section",
                             c->path);
    return config_validate(c, err);
}

/* ---- the public API (anamo.h): configs on the heap, valid whenever a call succeeds ---------- */

/* A new config read from the file path, or from text (path then names it), validated. */
static int config_new(anamo_config **out, const char *path, const char *text, anamo_err *err)
{
    if (!out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config: out is NULL");
    *out = NULL;
    anamo_config *c = calloc(1, sizeof *c);
    if (!c)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    int rc = text ? config_load_text(c, text, path, err) : config_load(c, path, err);
    if (!rc)
        rc = config_validate(c, err);
    if (rc) {
        anamo_config_free(c);
        return rc;
    }
    *out = c;
    return ANAMO_OK;
}

int anamo_config_load(const char *path, anamo_config **out, anamo_err *err)
{
    if (!path)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config: the path is NULL");
    return config_new(out, path, NULL, err);
}

int anamo_config_parse(const char *text, const char *origin, anamo_config **out, anamo_err *err)
{
    if (!text)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config: the text is NULL");
    return config_new(out, origin ? origin : "(config text)", text, err);
}

int anamo_config_copy(const anamo_config *c, anamo_config **out, anamo_err *err)
{
    if (!c || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config copy: %s is NULL",
                             c ? "out" : "the config");
    *out = calloc(1, sizeof **out);
    int rc = *out ? config_copy(*out, c, err)
                  : anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", c->path);
    if (rc)
        free(*out), *out = NULL;
    return rc;
}

void anamo_config_free(anamo_config *c)
{
    if (!c)
        return;
    config_free(c);
    free(c);
}

/* A failed assignment leaves c as it was: a caller may go on with the config it had. */
int anamo_config_set(anamo_config *c, const char *assignment, const char *origin, anamo_err *err)
{
    if (!c || !assignment)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config set: %s is NULL",
                             c ? "the assignment" : "the config");
    anamo_config before;
    int rc = config_copy(&before, c, err);
    if (!rc)
        rc = config_set(c, assignment, origin ? origin : "--set", err);
    if (!rc)
        rc = config_validate(c, err);
    if (rc && before.entries) {
        config_free(c);
        *c = before;
    } else {
        config_free(&before);
    }
    return rc;
}

int anamo_config_list(const anamo_config *c, const char *section, const char *key,
                      char items[][ANAMO_NAME_MAX], int max)
{
    return c && section && key && items ? split_list(config_get(c, section, key), items, max) : 0;
}

int anamo_config_arms(const anamo_config *c, char names[][ANAMO_NAME_MAX], int max)
{
    return anamo_config_list(c, "compare", "arms", names, max);
}

int anamo_config_use_arm(anamo_config *c, const char *arm, anamo_err *err)
{
    if (!c || !arm)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config arm: %s is NULL",
                             c ? "the arm" : "the config");
    return config_apply_arm(c, arm, err);
}

int anamo_config_use_quick(anamo_config *c, anamo_err *err)
{
    if (!c)
        return anamo_err_set(err, ANAMO_ERR_ARG, "config quick: the config is NULL");
    return config_apply_quick(c, err);
}

const char *anamo_config_get(const anamo_config *c, const char *section, const char *key)
{
    return c && section && key ? config_get(c, section, key) : NULL;
}

const char *anamo_config_path(const anamo_config *c) { return c ? c->path : NULL; }

char *anamo_config_text(const anamo_config *c) { return c ? config_resolved_text(c) : NULL; }
