/* figures_steps.c — placeholder until the step-function figures land. */
#include "cli.h"
#include "figures.h"

int figures_steps(const compare_set *cs, anamo_err *err)
{
    (void)cs;
    (void)err;
    return ANAMO_OK;
}
