/* constraint.c — unit-norm groups: the decoder's first-layer columns held on the unit sphere or
 * in the unit ball, so that the code's scale cannot be traded against the decoder's (dividing
 * h by c and multiplying the columns by c changes nothing the decoder outputs). As SAELens'
 * normalize_sae_decoder (sphere) and dictionary learning's ‖d_j‖ ≤ 1 (ball). */
#include "optim/optim.h"

#include <math.h>

static float *element(const norm_groups *g, float *theta, int64_t group, int64_t i)
{
    return theta + g->offset + group * g->group_stride + i * g->elem_stride;
}

double norm_groups_norm(const norm_groups *g, const float *theta, int64_t group)
{
    double sq = 0.0;
    for (int64_t i = 0; i < g->len; i++) {
        double v = *element(g, (float *)theta, group, i);
        sq += v * v;
    }
    return sqrt(sq);
}

void norm_groups_project_one(const norm_groups *g, float *theta, int64_t k)
{
    if (!g || g->kind == NORM_NONE)
        return;
    double norm = norm_groups_norm(g, theta, k);
    if (norm == 0.0 || (g->kind == NORM_BALL && norm <= 1.0))
        return;
    const float scale = (float)(1.0 / norm);
    for (int64_t i = 0; i < g->len; i++)
        *element(g, theta, k, i) *= scale;
}

void norm_groups_project(const norm_groups *g, float *theta)
{
    if (!g || g->kind == NORM_NONE)
        return;
#pragma omp parallel for if (g->count * g->len > 65536)
    for (int64_t k = 0; k < g->count; k++)
        norm_groups_project_one(g, theta, k);
}

void norm_groups_tangent(const norm_groups *g, const float *theta, float *grad)
{
    if (!g || g->kind != NORM_SPHERE)
        return;
#pragma omp parallel for if (g->count * g->len > 65536)
    for (int64_t k = 0; k < g->count; k++) {
        double dot = 0.0, sq = 0.0;
        for (int64_t i = 0; i < g->len; i++) {
            double w = *element(g, (float *)theta, k, i);
            dot += w * *element(g, grad, k, i);
            sq += w * w;
        }
        if (sq == 0.0)
            continue;
        const float along = (float)(dot / sq);
        for (int64_t i = 0; i < g->len; i++)
            *element(g, grad, k, i) -= along * *element(g, (float *)theta, k, i);
    }
}
