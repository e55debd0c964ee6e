/* generate.h — built-in datasets (see generate.c for the exact generators). */
#ifndef ANAMO_DATA_GENERATE_H
#define ANAMO_DATA_GENERATE_H

#include "anamo.h"

int data_is_generated(const char *spec);
int data_generate(const char *spec, anamo_dataset *out, anamo_err *err);

#endif
