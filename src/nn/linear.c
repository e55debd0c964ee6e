/* linear.c — the dense (fully connected) layer, PyTorch's nn.Linear:
 *     out (B, OUT) = in (B, IN) · Wᵀ + b,   W (OUT, IN), b (OUT)
 * and its backward
 *     dW = doutᵀ · in,   db = Σ_rows dout,   din = dout · W.
 * The products go to nn_gemm (oneDNN's sgemm); gradients overwrite (they are per-batch, not
 * accumulated).
 *
 * Threads: every thread of a region makes its own block of each result (out and din: rows of
 * the batch; dW and db: rows of W) with a one-thread sgemm. No thread waits for another inside
 * the region and the blocks are equal, so none idles at its end long enough to fall asleep
 * (libgomp's spin is short, src/program/setup.c, and waking a thread costs more than a small
 * layer's work). Each element is a whole sum over k made by one thread; whether it has the bits
 * of the whole product depends on the kernel oneDNN picks for the block's size. With oneDNN 2.6
 * on an Intel Xeon the main job's 62- and 63-row blocks (2 threads) do, so it trains to the
 * weights 1 thread gives; 16- and 8-row blocks of its first layer took another kernel. */
#include "nn/layer.h"

#include <string.h>

/* Below this many multiply-adds a pass runs as one call and oneDNN threads it as it sees fit:
 * a region costs ~2 µs, the product less. */
#define LINEAR_SPLIT_MIN_MACS (1 << 18)

/* Columns of db a thread sums at a time (4 cache lines), each over every row of dout. */
#define BIAS_COLS 64

int linear_worth_threads(const layer *l, int B)
{
    return (int64_t)B * l->in_dim * l->out_dim >= LINEAR_SPLIT_MIN_MACS;
}

void linear_forward_rows(layer *l, const float *in, int first, int end)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    float *out = l->out;
    if (end <= first)
        return;
    /* start every row at the bias, then accumulate the product into it (beta = 1) */
    for (int b = first; b < end; b++)
        memcpy(out + (int64_t)b * OUT, l->bias, (size_t)OUT * sizeof(float));
    nn_gemm('N', 'T', end - first, OUT, IN, in + (int64_t)first * IN, IN, l->weight, IN, 1.0f,
            out + (int64_t)first * OUT, OUT);
}

void linear_weight_grad_rows(layer *l, const float *in, const float *dout, int B, int first,
                             int end)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    if (end <= first)
        return;
    /* rows [first, end) of dW (OUT, IN) = doutᵀ (OUT, B) · in (B, IN): columns [first, end)
     * of dout times in */
    nn_gemm('T', 'N', end - first, IN, B, dout + first, OUT, in, IN, 0.0f,
            l->dweight + (int64_t)first * IN, IN);
    /* db[first, end): each column summed over the rows in order, BIAS_COLS at a time */
    for (int c0 = first; c0 < end; c0 += BIAS_COLS) {
        const int c1 = c0 + BIAS_COLS < end ? c0 + BIAS_COLS : end;
        memset(l->dbias + c0, 0, (size_t)(c1 - c0) * sizeof(float));
        for (int b = 0; b < B; b++) {
            const float *row = dout + (int64_t)b * OUT;
            for (int o = c0; o < c1; o++)
                l->dbias[o] += row[o];
        }
    }
}

void linear_input_grad_rows(const layer *l, const float *dout, float *din, int first, int end)
{
    const int IN = (int)l->in_dim, OUT = (int)l->out_dim;
    if (end <= first)
        return;
    /* rows [first, end) of din (B, IN) = dout (B, OUT) · W (OUT, IN) */
    nn_gemm('N', 'N', end - first, IN, OUT, dout + (int64_t)first * OUT, OUT, l->weight, IN, 0.0f,
            din + (int64_t)first * IN, IN);
}

void linear_forward(layer *l, const float *in, int B)
{
#pragma omp parallel if (linear_worth_threads(l, B))
    {
        int first, end;
        omp_rows(B, &first, &end);
        linear_forward_rows(l, in, first, end);
    }
}

void linear_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                     int need_dw)
{
#pragma omp parallel if (linear_worth_threads(l, B))
    {
        int first, end;
        if (need_dw) {
            omp_rows((int)l->out_dim, &first, &end);
            linear_weight_grad_rows(l, in, dout, B, first, end);
        }
        if (need_din) {
            omp_rows(B, &first, &end);
            linear_input_grad_rows(l, dout, din, first, end);
        }
    }
}
