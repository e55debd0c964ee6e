/* gemm.c — the matrix products of linear.c and conv.c's im2col path: oneDNN's sgemm, which
 * dispatches on the CPU's features and on the models' shapes ran 1.4–2.3× OpenBLAS 0.3.21's
 * on a Zen 3 (bench/bench_sgemm.c). */
#include "nn/layer.h"

#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>

/* Row-major C = op(A)·op(B) + beta·C. dnnl_sgemm fails only on arguments no caller here can
 * pass (negative sizes, leading dimensions below a row's length), so a failure is a bug. */
void nn_gemm(char ta, char tb, int M, int N, int K, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc)
{
    dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success) {
        fprintf(stderr, "anamo: %s:%d: dnnl_sgemm(%c, %c, %d, %d, %d) failed: status %d\n",
                __FILE__, __LINE__, ta, tb, M, N, K, (int)st);
        abort();
    }
}
