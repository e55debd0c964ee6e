/* backtrack.c — the step-size search of FISTA with backtracking (Beck & Teboulle 2009, §4):
 * find the smallest L = L_prev·η^i (i = 0, 1, …) such that p = prox_{1/L}(y − ∇f(y)/L) obeys
 *     f(p) ≤ Q_L(p, y) = f(y) + ⟨p − y, ∇f(y)⟩ + (L/2)‖p − y‖²,
 * the sufficient-decrease condition that makes 1/L a safe step for the smooth part f. */
#include "optim/optim.h"

#include <stddef.h>

static double quadratic_model(const float *y, const float *grad, const float *p, double f_y,
                              double L, int64_t n)
{
    double lin = 0.0, sq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)p[i] - (double)y[i];
        lin += d * grad[i];
        sq += d * d;
    }
    return f_y + lin + 0.5 * L * sq;
}

double backtrack_step(const float *y, const float *grad, double f_y, double L_prev, double eta,
                      prox_kind prox, float prox_lambda, const norm_groups *unit_norm, float *out,
                      int64_t n, smooth_fn f_at, void *ctx, int max_tries, int *ok)
{
    double L = L_prev;
    *ok = 0;
    for (int tries = 0; tries < max_tries; tries++, L *= eta) {
        const float step = (float)(1.0 / L), tau = step * prox_lambda;
        for (int64_t i = 0; i < n; i++)
            out[i] = prox_scalar(prox, tau, y[i] - step * grad[i]);
        norm_groups_project(unit_norm, out);
        if (f_at(ctx, out) <= quadratic_model(y, grad, out, f_y, L, n)) {
            *ok = 1;
            return L;
        }
    }
    return L / eta; /* the last L tried */
}
