/* fuzz_config.c — libFuzzer target for experiment configs (cli/config.c through inih): the
 * input is INI text, parsed with config_load_text, then validated and, when valid, turned into
 * run settings and the resolved text, as anamo train does. Inputs holding a NUL byte are cut
 * there (config_load refuses such files before parsing). A config that validates must resolve
 * to one that validates again. */
#include "fuzz_util.h"

#include "config.h"

#define FUZZ_ORIGIN "fuzz.ini"

static void check(int rc, const anamo_err *err)
{
    fuzz_check_error(rc, err, NULL);
    if (rc && !strstr(err->msg, FUZZ_ORIGIN) && !strstr(err->msg, "--set")) {
        fprintf(stderr, "fuzz: message does not name the config: '%s'\n", err->msg);
        abort();
    }
}

/* The resolved text must parse and validate: it is what a run directory's config.ini holds
 * and what --resume reads back. */
static void check_resolved(const config *c)
{
    char *text = config_resolved_text(c);
    if (!text)
        return;
    config again = {0};
    anamo_err err = {0};
    snprintf(again.path, sizeof again.path, "%s", "resolved.ini");
    int rc = config_load_text(&again, text, "resolved.ini", &err);
    if (!rc)
        rc = config_validate(&again, &err);
    if (rc) {
        fprintf(stderr, "fuzz: resolved config does not load: %s\n---\n%s---\n", err.msg, text);
        abort();
    }
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
    config c = {0};
    snprintf(c.path, sizeof c.path, "%s", FUZZ_ORIGIN);
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
            check_resolved(&c);
    }
    config_free(&c);
    free(text);
    return 0;
}
