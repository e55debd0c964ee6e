/* config.h — experiment configs: INI files (read by inih) plus "section.key=value" overrides,
 * and what they ask for, typed (the public face is anamo.h's anamo_config_* and anamo_run_*).
 *
 * Every key anamo knows is listed once, with its type, default and allowed values, in
 * config.c's KEYS table: that table validates configs (unknown sections and keys, bad values
 * are errors naming file:line, the key and what is allowed) and writes the resolved config. */
#ifndef ANAMO_CONFIG_CONFIG_H
#define ANAMO_CONFIG_CONFIG_H

#include "anamo.h"

#define CFG_SECTION_MAX 64
#define CFG_KEY_MAX 64
#define CFG_VALUE_MAX 1024
#define CFG_PATH_MAX 1024

typedef struct cfg_entry {
    char section[CFG_SECTION_MAX];
    char key[CFG_KEY_MAX];
    char value[CFG_VALUE_MAX];
    char origin[CFG_PATH_MAX + 16]; /* "file.ini:12" or "--set" */
} cfg_entry;

struct anamo_config {
    char path[CFG_PATH_MAX]; /* the file, or the origin of a text: messages name it */
    cfg_entry *entries;
    int n, cap;
};

/* Reads an INI file into a zeroed c (entries only; call config_validate afterwards). */
int config_load(anamo_config *c, const char *path, anamo_err *err);
/* Parses INI text into c (origin names it in messages). */
int config_load_text(anamo_config *c, const char *text, const char *origin, anamo_err *err);
/* Applies "section.key=value" (the section may contain spaces: "phase dec.lr=0.1"). */
int config_set(anamo_config *c, const char *assignment, const char *origin, anamo_err *err);
/* Checks every entry against the known sections and keys and every value against its type. */
int config_validate(const anamo_config *c, anamo_err *err);
/* Releases c's entries and zeroes it (not c itself). */
void config_free(anamo_config *c);
/* Copy of src into dst (for compare arms). */
int config_copy(anamo_config *dst, const anamo_config *src, anamo_err *err);

/* Value of section.key, or the table's default; NULL if neither. */
const char *config_get(const anamo_config *c, const char *section, const char *key);
const cfg_entry *config_find(const anamo_config *c, const char *section, const char *key);

/* The resolved config: every known key with its effective value. malloc'd. */
char *config_resolved_text(const anamo_config *c);

/* What a config asks for, typed. */
typedef struct run_settings {
    char train_spec[CFG_VALUE_MAX];
    char test_spec[CFG_VALUE_MAX];
    char validation_spec[CFG_VALUE_MAX]; /* a data spec, or "" (none, or a fraction) */
    double validation_fraction;          /* of train_spec held out; 0: none */
    uint64_t validation_seed;
    int standardize;
    char encoder[CFG_VALUE_MAX];
    char decoder[CFG_VALUE_MAX];
    anamo_model_spec model; /* input shape filled from the data */
    anamo_train_spec train;
    int threads;
    int checkpoint_every;          /* epochs between checkpoints; 0: only at the end */
    int64_t checkpoint_iterations; /* steps between checkpoints; 0: off */
    double checkpoint_seconds;     /* training seconds between checkpoints; 0: off */
    char scheme[16];
} run_settings;

/* The settings of c, which must be valid (config_validate); checks what spans keys (a phase
 * without block, early stopping without a validation set). */
int config_settings(const anamo_config *c, run_settings *s, anamo_err *err);

/* Applies arm NAME's overrides ("section.key = value" lines of [arm NAME]) to c. */
int config_apply_arm(anamo_config *c, const char *arm, anamo_err *err);
/* Applies the [quick] section's overrides (the config's short form); an error if none. */
int config_apply_quick(anamo_config *c, anamo_err *err);

/* Index of value in an "a|b|c" list, or -1. */
int config_enum_index(const char *allowed, const char *value);

/* Splits a comma list into trimmed items; returns the count. */
int split_list(const char *s, char items[][ANAMO_NAME_MAX], int max);

#endif
