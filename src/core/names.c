/* names.c — the names of the public enumerations, one table each: configs check values
 * against them, messages list them, bindings show them. A table lists its names in the order
 * users read them ("sgd|momentum|…"), each with its value. */
#include "anamo.h"

#include <stddef.h>
#include <string.h>

typedef struct enum_name {
    const char *name;
    int value;
} enum_name;

typedef struct enum_table {
    const enum_name *names;
    int count;
    const char *allowed; /* the names joined by '|', in table order */
} enum_table;

static const enum_name LOSS[] = {{"mse", ANAMO_LOSS_MSE},
                                 {"mse_sum", ANAMO_LOSS_MSE_SUM},
                                 {"bce", ANAMO_LOSS_BCE}};
static const enum_name INIT[] = {{"pytorch", ANAMO_INIT_PYTORCH},
                                 {"glorot", ANAMO_INIT_GLOROT},
                                 {"he", ANAMO_INIT_HE},
                                 {"uniform", ANAMO_INIT_UNIFORM}};
static const enum_name CONV[] = {{"auto", ANAMO_CONV_AUTO},
                                 {"im2col", ANAMO_CONV_IM2COL},
                                 {"dnnl", ANAMO_CONV_DNNL}};
static const enum_name PENALTY[] = {{"l1", ANAMO_PENALTY_L1},
                                    {"decoder_l1", ANAMO_PENALTY_DECODER_L1}};
static const enum_name DECODER_NORM[] = {{"none", ANAMO_DECODER_NORM_NONE},
                                         {"sphere", ANAMO_DECODER_NORM_SPHERE},
                                         {"ball", ANAMO_DECODER_NORM_BALL}};
static const enum_name OPTIMIZER[] = {{"sgd", ANAMO_OPT_SGD},
                                      {"momentum", ANAMO_OPT_MOMENTUM},
                                      {"nesterov", ANAMO_OPT_NESTEROV},
                                      {"adagrad", ANAMO_OPT_ADAGRAD},
                                      {"rmsprop", ANAMO_OPT_RMSPROP},
                                      {"adam", ANAMO_OPT_ADAM},
                                      {"accelerated", ANAMO_OPT_ACCELERATED},
                                      {"fista", ANAMO_OPT_FISTA}};
static const enum_name PROX[] = {{"none", ANAMO_PROX_NONE},
                                 {"l1", ANAMO_PROX_L1},
                                 {"nonneg", ANAMO_PROX_NONNEG},
                                 {"l1_nonneg", ANAMO_PROX_L1_NONNEG}};
static const enum_name RESTART[] = {{"none", ANAMO_RESTART_NONE},
                                    {"function", ANAMO_RESTART_FUNCTION},
                                    {"gradient", ANAMO_RESTART_GRADIENT}};
static const enum_name STEP_RULE[] = {{"fixed", ANAMO_STEP_FIXED},
                                      {"backtrack", ANAMO_STEP_BACKTRACK}};
static const enum_name SCHEDULE[] = {{"constant", ANAMO_SCHEDULE_CONSTANT},
                                     {"step", ANAMO_SCHEDULE_STEP},
                                     {"plateau", ANAMO_SCHEDULE_PLATEAU}};
static const enum_name FIT[] = {{"auto", ANAMO_FIT_AUTO},
                                {"least_squares", ANAMO_FIT_LEAST_SQUARES},
                                {"bce", ANAMO_FIT_BCE}};

#define TABLE(t, allowed)                         \
    {                                             \
        t, (int)(sizeof t / sizeof t[0]), allowed \
    }
/* The allowed strings are spelled out (C cannot join at compile time); a test checks each
 * against its table. */
static const enum_table TABLES[ANAMO_ENUM_COUNT] = {
    [ANAMO_ENUM_LOSS] = TABLE(LOSS, "mse|mse_sum|bce"),
    [ANAMO_ENUM_INIT] = TABLE(INIT, "pytorch|glorot|he|uniform"),
    [ANAMO_ENUM_CONV] = TABLE(CONV, "auto|im2col|dnnl"),
    [ANAMO_ENUM_PENALTY] = TABLE(PENALTY, "l1|decoder_l1"),
    [ANAMO_ENUM_DECODER_NORM] = TABLE(DECODER_NORM, "none|sphere|ball"),
    [ANAMO_ENUM_OPTIMIZER] = TABLE(OPTIMIZER,
                                   "sgd|momentum|nesterov|adagrad|rmsprop|adam|accelerated|fista"),
    [ANAMO_ENUM_PROX] = TABLE(PROX, "none|l1|nonneg|l1_nonneg"),
    [ANAMO_ENUM_RESTART] = TABLE(RESTART, "none|function|gradient"),
    [ANAMO_ENUM_STEP_RULE] = TABLE(STEP_RULE, "fixed|backtrack"),
    [ANAMO_ENUM_SCHEDULE] = TABLE(SCHEDULE, "constant|step|plateau"),
    [ANAMO_ENUM_FIT] = TABLE(FIT, "auto|least_squares|bce"),
};

static const enum_table *table_of(anamo_enum e)
{
    return (unsigned)e < ANAMO_ENUM_COUNT ? &TABLES[e] : NULL;
}

const char *anamo_enum_name(anamo_enum e, int value)
{
    const enum_table *t = table_of(e);
    for (int i = 0; t && i < t->count; i++)
        if (t->names[i].value == value)
            return t->names[i].name;
    return NULL;
}

int anamo_enum_parse(anamo_enum e, const char *name)
{
    const enum_table *t = table_of(e);
    for (int i = 0; t && name && i < t->count; i++)
        if (!strcmp(t->names[i].name, name))
            return t->names[i].value;
    return -1;
}

const char *anamo_enum_allowed(anamo_enum e)
{
    const enum_table *t = table_of(e);
    return t ? t->allowed : "";
}
