/* linear.c — the dense (fully connected) layer, PyTorch's nn.Linear:
 *     out (B, OUT) = in (B, IN) · Wᵀ + b,   W (OUT, IN), b (OUT)
 * and its backward
 *     dW = doutᵀ · in,   db = Σ_rows dout,   din = dout · W.
 * The products go to oneDNN's sgemm, which on this model's shapes (batch 125, widths 64–784)
 * ran 1.4–1.75× OpenBLAS 0.3.21's on a Zen 3 (bench/bench_sgemm.c); gradients overwrite (they
 * are per-batch, not accumulated). */
#include "nn/layer.h"

#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Row-major C = op(A)·op(B) + beta·C. dnnl_sgemm fails only on arguments no caller here can
 * pass (negative sizes, leading dimensions below a row's length), so a failure is a bug. */
static void gemm(char ta, char tb, int M, int N, int K, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc)
{
    dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success) {
        fprintf(stderr, "anamo: %s:%d: dnnl_sgemm(%c, %c, %d, %d, %d) failed: status %d\n",
                __FILE__, __LINE__, ta, tb, M, N, K, (int)st);
        abort();
    }
}

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
    gemm('N', 'T', B, OUT, IN, in, IN, l->weight, IN, 1.0f, out, OUT);
}

static void bias_backward(float *dbias, const float *dout, int B, int OUT)
{
    memset(dbias, 0, (size_t)OUT * sizeof(float));
    for (int b = 0; b < B; b++) {
        const float *row = dout + (int64_t)b * OUT;
        for (int o = 0; o < OUT; o++)
            dbias[o] += row[o];
    }
}

void linear_backward(layer *l, const float *in, const float *dout, float *din, int B,
                     int need_din, int need_dw)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    if (need_dw) {
        /* dW (OUT, IN) = doutᵀ (OUT, B) · in (B, IN) */
        gemm('T', 'N', OUT, IN, B, dout, OUT, in, IN, 0.0f, l->dweight, IN);
        bias_backward(l->dbias, dout, B, OUT);
    }
    if (need_din) {
        /* din (B, IN) = dout (B, OUT) · W (OUT, IN) */
        gemm('N', 'N', B, IN, OUT, dout, OUT, l->weight, IN, 0.0f, din, IN);
    }
}
