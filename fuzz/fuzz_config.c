/* fuzz_config.c — libFuzzer target for experiment configs (src/config/ through inih): the
 * input is INI text, parsed with config_load_text, then validated and, when valid, turned into
 * run settings and the resolved text, as anamo train does. Inputs holding a NUL byte are cut
 * there (config_load refuses such files before parsing).
 *
 * The oracle is --resume's promise: a run directory's config.ini is the resolved text, and the
 * run it resumes is the run it started. So for a config whose settings resolve:
 *   - the resolved text loads, validates and resolves to settings again;
 *   - those settings are the first ones, field by field (floats bit for bit: %a), and the
 *     resolved text of the resolved text is the resolved text itself (a fixed point). */
#include "fuzz_util.h"

#include "config/config.h"

#define FUZZ_ORIGIN "fuzz.ini"
#define RESOLVED_ORIGIN "resolved.ini"
#define DUMP_MAX (64 << 10)

/* dump_settings below names every field; a new field must be added there, or resolving could
 * lose it unseen. These sizes are those of the structs it was written for (x86-64). */
_Static_assert(sizeof(anamo_phase) == 192, "anamo_phase changed: update dump_phase");
_Static_assert(sizeof(anamo_train_spec) == 3160, "anamo_train_spec changed: update dump_settings");
_Static_assert(sizeof(anamo_model_spec) == 64, "anamo_model_spec changed: update dump_settings");
_Static_assert(sizeof(run_settings) == 8408, "run_settings changed: update dump_settings");

typedef struct dump {
    char *s;
    size_t len;
} dump;

static void put(dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(dump *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->s + d->len, DUMP_MAX - d->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= DUMP_MAX - d->len)
        abort();
    d->len += (size_t)n;
}

static void dump_phase(dump *d, const anamo_phase *p)
{
    const anamo_optim_settings *o = &p->opt;
    const anamo_lr_schedule *s = &p->schedule;
    const anamo_anamo_settings *a = &p->anamo;
    const anamo_freecodes_settings *f = &p->freecodes;
    put(d,
        "phase '%s' kind %d optimizer %d lr %a beta1 %a beta2 %a eps %a wd %a mom %a "
        "alpha %a\n",
        p->name, (int)p->kind, (int)o->kind, (double)o->lr, (double)o->beta1, (double)o->beta2,
        (double)o->eps, (double)o->weight_decay, (double)o->momentum, (double)o->alpha);
    put(d,
        "  prox %d %a restart %d step %d eta %a schedule %d step_size %d patience %d "
        "gamma %a factor %a threshold %a min_lr %a\n",
        (int)o->prox, (double)o->prox_lambda, (int)o->restart, (int)o->step_rule,
        (double)o->backtrack_eta, (int)s->kind, s->step_size, s->patience, (double)s->gamma,
        (double)s->factor, (double)s->threshold, (double)s->min_lr);
    put(d, "  batch %d epochs %a iterations %lld\n", p->batch, p->epochs, (long long)p->iterations);
    put(d, "  anamo enc %d %a dec %d %a prox %d %a\n", a->enc_iters, (double)a->enc_lr,
        a->dec_iters, (double)a->dec_lr, a->prox_iters, (double)a->prox_step);
    put(d, "  freecodes codes %d %a dec %d %a fit %d %d %d %a\n", f->code_iters, (double)f->code_lr,
        f->dec_iters, (double)f->dec_lr, (int)f->fit, f->fit_epochs, f->refit_epochs,
        (double)f->fit_lr);
}

/* Every field of s as text, so that two settings compare with strcmp. */
static void dump_settings(dump *d, const run_settings *s)
{
    const anamo_model_spec *m = &s->model;
    const anamo_train_spec *t = &s->train;
    put(d, "train '%s' test '%s' standardize %d scheme '%s' threads %d\n", s->train_spec,
        s->test_spec, s->standardize, s->scheme, s->threads);
    put(d, "checkpoints every %d epochs, %lld steps, %a s\n", s->checkpoint_every,
        (long long)s->checkpoint_iterations, s->checkpoint_seconds);
    put(d,
        "model %d %d %d encoder '%s' decoder '%s' init %d %a seed %llu max_batch %d "
        "binary %d conv %d\n",
        m->in_c, m->in_h, m->in_w, m->encoder ? m->encoder : "(null)",
        m->decoder ? m->decoder : "(null)", (int)m->init, (double)m->init_scale,
        (unsigned long long)m->seed, m->max_batch, m->binary_codes, (int)m->conv);
    if (strcmp(s->encoder, m->encoder) || strcmp(s->decoder, m->decoder))
        fuzz_fail("config_settings: model.encoder/decoder are not the settings' own strings");
    put(d,
        "loss %d lambda %a penalty %d norm %d resample %lld %lld jacobian %lld epochs %a "
        "seed %llu log %d cache %d eval %d phases %d\n",
        (int)t->loss, (double)t->lambda, (int)t->penalty, (int)t->decoder_norm,
        (long long)t->resample_every, (long long)t->resample_window, (long long)t->jacobian_samples,
        t->epochs, (unsigned long long)t->seed, t->log_every, t->cache_codes, t->eval_every_epoch,
        t->nphases);
    put(d, "early_stopping %d flop_budget %a validation '%s' fraction %a seed %llu\n",
        t->early_stopping, t->flop_budget, s->validation_spec, s->validation_fraction,
        (unsigned long long)s->validation_seed);
    if (t->nphases < 0 || t->nphases > ANAMO_MAX_PHASES)
        fuzz_fail("config_settings: %d phases", t->nphases);
    for (int i = 0; i < t->nphases; i++)
        dump_phase(d, &t->phases[i]);
}

static void check(int rc, const anamo_err *err)
{
    fuzz_check_error(rc, err, NULL);
    if (rc && !strstr(err->msg, FUZZ_ORIGIN) && !strstr(err->msg, "--set")) {
        fprintf(stderr, "fuzz: message does not name the config: '%s'\n", err->msg);
        abort();
    }
}

/* The resolved text must load, validate and give the same settings and the same text. */
static void check_resolved(const anamo_config *c, const run_settings *s)
{
    char *text = config_resolved_text(c);
    if (!text)
        fuzz_fail("config_resolved_text returned NULL");
    anamo_config again = {0};
    anamo_err err = {0};
    int rc = config_load_text(&again, text, RESOLVED_ORIGIN, &err);
    if (!rc)
        rc = config_validate(&again, &err);
    run_settings s2;
    if (!rc)
        rc = config_settings(&again, &s2, &err);
    if (rc)
        fuzz_fail("the resolved config does not load: %s\n---\n%s---", err.msg, text);
    dump a = {malloc(DUMP_MAX), 0}, b = {malloc(DUMP_MAX), 0};
    if (!a.s || !b.s)
        abort();
    dump_settings(&a, s);
    dump_settings(&b, &s2);
    if (strcmp(a.s, b.s))
        fuzz_fail("resolving changed the settings:\n--- first\n%s--- resolved\n%s--- text\n%s", a.s,
                  b.s, text);
    char *text2 = config_resolved_text(&again);
    if (!text2 || strcmp(text, text2))
        fuzz_fail("the resolved text resolves to another text:\n--- first\n%s--- then\n%s", text,
                  text2 ? text2 : "(null)");
    free(text2);
    free(a.s);
    free(b.s);
    config_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    anamo_config c = {0};
    anamo_err err = {0};
    int rc = config_load_text(&c, text, FUZZ_ORIGIN, &err);
    check(rc, &err);
    if (!rc) {
        rc = config_validate(&c, &err);
        check(rc, &err);
    }
    if (!rc) {
        run_settings s;
        rc = config_settings(&c, &s, &err);
        check(rc, &err);
        if (!rc)
            check_resolved(&c, &s);
    }
    config_free(&c);
    free(text);
    return 0;
}
