/* linear.c — the dense (fully connected) layer, PyTorch's nn.Linear:
 *     out (B, OUT) = in (B, IN) · Wᵀ + b,   W (OUT, IN), b (OUT)
 * and its backward
 *     dW = doutᵀ · in,   db = Σ_rows dout,   din = dout · W.
 * The products go to nn_gemm (oneDNN's sgemm); gradients overwrite (they are per-batch, not
 * accumulated). */
#include "nn/layer.h"

#include <string.h>

/* Below this many elements an OpenMP fork costs more than the loop it splits. */
#define LINEAR_OMP_MIN 32768

void linear_forward(layer *l, const float *in, int B)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    float *out = l->out;
    /* start every row at the bias, then accumulate the product into it (beta = 1) */
#pragma omp parallel for if ((int64_t)B * OUT > LINEAR_OMP_MIN)
    for (int b = 0; b < B; b++)
        memcpy(out + (int64_t)b * OUT, l->bias, (size_t)OUT * sizeof(float));
    nn_gemm('N', 'T', B, OUT, IN, in, IN, l->weight, IN, 1.0f, out, OUT);
}

/* Columns of db a thread sums at a time: 4 cache lines, so no two threads write one line. */
#define BIAS_COLS 64

/* db = Σ_rows dout, the columns split across threads. Each column is summed over the rows in
 * order, as one thread would: the same sums at any thread count. In parallel so that the other
 * thread, idle between the two products around it, does not fall asleep and need waking. */
static void bias_backward(float *dbias, const float *dout, int B, int OUT)
{
#pragma omp parallel for schedule(static) if ((int64_t)B * OUT > LINEAR_OMP_MIN)
    for (int first = 0; first < OUT; first += BIAS_COLS) {
        const int end = first + BIAS_COLS < OUT ? first + BIAS_COLS : OUT;
        memset(dbias + first, 0, (size_t)(end - first) * sizeof(float));
        for (int b = 0; b < B; b++) {
            const float *row = dout + (int64_t)b * OUT;
            for (int o = first; o < end; o++)
                dbias[o] += row[o];
        }
    }
}

void linear_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                     int need_dw)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    if (need_dw) {
        /* dW (OUT, IN) = doutᵀ (OUT, B) · in (B, IN) */
        nn_gemm('T', 'N', OUT, IN, B, dout, OUT, in, IN, 0.0f, l->dweight, IN);
        bias_backward(l->dbias, dout, B, OUT);
    }
    if (need_din) {
        /* din (B, IN) = dout (B, OUT) · W (OUT, IN) */
        nn_gemm('N', 'N', B, IN, OUT, dout, OUT, l->weight, IN, 0.0f, din, IN);
    }
}
