/* bench_sgemm.c — OpenBLAS's cblas_sgemm against oneDNN's dnnl_sgemm on the models' own
 * product shapes (ceiling.h's lists: the dense main model's 12 calls, the conv model's im2col
 * calls), alternating in one run, median over rounds of the best per round; and whether a row
 * of a product depends on the batch around it (what decides if cached codes equal recomputed
 * ones bit for bit). What the lines mean: bench/README.md. */
#include "ceiling.h"
#include "machine.h"

#include <dnnl.h>
#include <omp.h>

#define ROUNDS_MAX 15
enum { LIB_OPENBLAS = 0, LIB_DNNL, NLIBS };
static const char *const LIB_NAMES[NLIBS] = {"openblas", "dnnl"};

typedef struct model_shapes {
    const char *name, *encoder, *decoder;
    int c, h, w;
} model_shapes;

static void call(int lib, const ceiling *c, const product *p, const float *a, float *out)
{
    if (lib == LIB_OPENBLAS)
        cblas_sgemm(CblasRowMajor, p->ta, p->tb, p->M, p->N, p->K, 1.0f, a, p->lda, c->b, p->ldb,
                    p->beta, out, p->ldc);
    else
        dnnl_sgemm(p->ta == CblasNoTrans ? 'N' : 'T', p->tb == CblasNoTrans ? 'N' : 'T', p->M, p->N,
                   p->K, 1.0f, a, p->lda, c->b, p->ldb, p->beta, out, p->ldc);
}

static double seconds_per_call(int lib, const ceiling *c, const product *p)
{
    call(lib, c, p, c->a, c->c);
    double t0 = ceiling_now();
    long calls = 0;
    do {
        call(lib, c, p, c->a, c->c);
        calls++;
    } while (ceiling_now() - t0 < CEILING_MIN_SECONDS);
    return (ceiling_now() - t0) / (double)calls;
}

/* For a forward product (row b of out = row b of A · op(B)): 1 if rows 3 … 10 computed as a
 * batch of their own differ in any bit from the same rows inside the whole batch (on one
 * thread), that is, if a sample's result depends on the batch around it. */
#define SUB_FIRST 3
#define SUB_ROWS 8
static int row_depends_on_batch(int lib, const ceiling *c, const product *p)
{
    if (p->M < SUB_FIRST + SUB_ROWS + 1)
        return 0;
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    float *full = calloc((size_t)p->M * (size_t)p->ldc, sizeof *full);
    float *sub = calloc((size_t)SUB_ROWS * (size_t)p->ldc, sizeof *sub);
    int differs = -1;
    if (full && sub) {
        product part = *p;
        part.M = SUB_ROWS;
        call(lib, c, p, c->a, full);
        call(lib, c, &part, c->a + (size_t)SUB_FIRST * (size_t)p->lda, sub);
        differs = memcmp(full + (size_t)SUB_FIRST * (size_t)p->ldc, sub,
                         (size_t)SUB_ROWS * (size_t)p->ldc * sizeof *full) != 0;
    }
    omp_set_num_threads(threads);
    free(full), free(sub);
    return differs;
}

static void run_model(const model_shapes *ms, int rounds)
{
    static ceiling c;
    if (ceiling_create(&c, ms->encoder, ms->decoder, ms->c, ms->h, ms->w))
        exit(1);
    static double sec[NLIBS][CEILING_MAX_PRODUCTS][ROUNDS_MAX];
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < c.n; i++)
            for (int lib = 0; lib < NLIBS; lib++)
                sec[lib][i][r] = seconds_per_call(lib, &c, &c.p[i]);
    double flop = 0.0, total[NLIBS] = {0};
    for (int i = 0; i < c.n; i++) {
        const product *p = &c.p[i];
        flop += p->flop;
        printf("%s_%s_%s (%s, %s) %dx%dx%d:", ms->name, p->layer, PART_NAMES[p->part],
               trans_name(p->ta), trans_name(p->tb), p->M, p->N, p->K);
        for (int lib = 0; lib < NLIBS; lib++) {
            const double med = bench_median(sec[lib][i], rounds);
            total[lib] += med;
            printf(" %s %.1f", LIB_NAMES[lib], p->flop / med * 1e-9);
        }
        printf(" GFLOP/s\n");
    }
    for (int lib = 0; lib < NLIBS; lib++)
        printf("%s_mix_%s: %.1f GFLOP/s\n", ms->name, LIB_NAMES[lib], flop / total[lib] * 1e-9);
    printf("%s_dnnl_over_openblas: %.2f\n", ms->name, total[LIB_OPENBLAS] / total[LIB_DNNL]);
    for (int lib = 0; lib < NLIBS; lib++) {
        int rows = 0, forward = 0;
        for (int i = 0; i < c.n; i++)
            if (c.p[i].part == PART_FORWARD && c.p[i].ta == CblasNoTrans) {
                forward++;
                rows += row_depends_on_batch(lib, &c, &c.p[i]) == 1;
            }
        printf("%s_row_depends_on_batch_%s: %d of %d forward products\n", ms->name, LIB_NAMES[lib],
               rows, forward);
    }
    ceiling_free(&c);
}

int main(int argc, char **argv)
{
    int rounds = 5, threads = 2;
    if (bench_rounds_args(argc, argv, "bench_sgemm", ROUNDS_MAX, &rounds, &threads))
        return 2;
    anamo_program_setup(argv);
    omp_set_num_threads(threads);
    print_machine();
    printf("threads: %d\nbatch: %d\nrounds: %d\n", threads, BATCH, rounds);
    static const model_shapes MODELS[] = {
        {"dense", "linear 128, relu, linear 64, relu", "linear 128, relu, linear 784, sigmoid", 784,
         1, 1},
        {"conv", "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, conv2d 48 k4 s2 p1, relu",
         "convtranspose2d 24 k4 s2 p1, relu, convtranspose2d 12 k4 s2 p1, relu, "
         "convtranspose2d 3 k4 s2 p1, sigmoid",
         3, 32, 32}};
    for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++)
        run_model(&MODELS[m], rounds);
    return 0;
}
