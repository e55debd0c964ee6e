/* scaling_model.c — what data-parallel training over N processes could gain, by the cost model
 * of docs/SCALING.md, for the model a config describes, joint and NAM.
 *
 * Each step of data-parallel training all-reduces the gradient of the block(s) the step trains:
 * joint both blocks, a NAM encoder or decoder phase its own block alone (a decoder phase reads
 * the codes cached at its start, or runs the encoder forward only: the encoder's gradient is
 * never needed there). With a ring all-reduce of V bytes over N processes on links of
 * bandwidth β and per-message latency α,
 *     S(N) = T1 / (T1/N + 2(N−1)/N · V/β + 2(N−1)·α),
 * T1 the one-process step time, which this program measures (the median over --steps steps of
 * each phase, after --warmup steps of it, each timed around anamo_trainer_step on the config's
 * own data) or takes from --step-ms. Public API only: anamo.h's config, run, parameter counts
 * and step, anamo_program.h's setup. The tables it prints are docs/SCALING.md's. */
#include "anamo.h"
#include "anamo_program.h" /* anamo_program_setup */

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TIMED 1000
#define MAX_SETS 16
#define DEFAULT_STEPS 40
#define DEFAULT_WARMUP 5
#define DEFAULT_LATENCY_US 5.0 /* one message between two hosts: a typical MPI ping (TCP: more) */
#define NPHASES 3              /* joint, decoder, encoder */

static const char *const PHASE_NAMES[NPHASES] = {"joint", "decoder", "encoder"};
static const int PROCS[] = {2, 4, 8, 16, 32, 64};
static const double LINK_GBPS[] = {10.0, 100.0};
#define NPROCS ((int)(sizeof PROCS / sizeof PROCS[0]))
#define NLINKS ((int)(sizeof LINK_GBPS / sizeof LINK_GBPS[0]))

typedef struct args {
    const char *config;
    int steps, warmup;
    double latency_us;
    double step_ms[NPHASES]; /* given on the command line; 0: measure */
    const char *sets[MAX_SETS];
    int nsets;
} args;

/* What one phase costs: parameters all-reduced per step, and T1. */
typedef struct phase_cost {
    int64_t params;
    double step_ms;
    int timed;        /* steps the median is over; 0: step_ms was given */
    double spread[2]; /* the timed steps' 10th and 90th percentiles (ms) */
    double mean_ms;   /* their mean */
} phase_cost;

static const char USAGE[] =
    "usage: scaling_model CONFIG [--steps N] [--warmup N] [--latency-us A]\n"
    "                     [--step-ms joint=MS,decoder=MS,encoder=MS] [--set section.key=value]\n"
    "Prints the bytes all-reduced per step and the predicted speedup of data-parallel training\n"
    "on N = 2 … 64 processes, for joint training and each NAM phase (docs/SCALING.md).\n"
    "T1 is measured on the config's data ($ANAMO_DATA) unless --step-ms gives it.\n";

static int phase_index(const char *name)
{
    for (int p = 0; p < NPHASES; p++)
        if (!strcmp(name, PHASE_NAMES[p]))
            return p;
    return -1;
}

/* "joint=2.1,decoder=1.0" into a->step_ms; 0, or -1 when malformed. */
static int parse_step_ms(const char *text, args *a)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *item = strtok(buf, ","); item; item = strtok(NULL, ",")) {
        char *eq = strchr(item, '='), *end;
        if (!eq)
            return -1;
        *eq = '\0';
        const int p = phase_index(item);
        const double ms = strtod(eq + 1, &end);
        if (p < 0 || *end || !(ms > 0.0))
            return -1;
        a->step_ms[p] = ms;
    }
    return 0;
}

static int parse_args(int argc, char **argv, args *a)
{
    *a = (args){.steps = DEFAULT_STEPS, .warmup = DEFAULT_WARMUP, .latency_us = DEFAULT_LATENCY_US};
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "--steps") && more)
            a->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && more)
            a->warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latency-us") && more)
            a->latency_us = atof(argv[++i]);
        else if (!strcmp(argv[i], "--step-ms") && more) {
            if (parse_step_ms(argv[++i], a))
                return -1;
        } else if (!strcmp(argv[i], "--set") && more && a->nsets < MAX_SETS)
            a->sets[a->nsets++] = argv[++i];
        else if (argv[i][0] != '-' && !a->config)
            a->config = argv[i];
        else
            return -1;
    }
    if (!a->config || a->steps < 1 || a->steps > MAX_TIMED || a->warmup < 0 || a->latency_us < 0.0)
        return -1;
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static int cmp_double(const void *x, const void *y)
{
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Sorts t[0 … n) and sets the median, the 10th/90th percentiles and the mean of c. */
static void summarize(double *t, int n, phase_cost *c)
{
    c->mean_ms = 0.0;
    for (int i = 0; i < n; i++)
        c->mean_ms += t[i] / n;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    c->step_ms = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    c->spread[0] = t[(n - 1) / 10];
    c->spread[1] = t[(n - 1) - (n - 1) / 10];
    c->timed = n;
}

/* Steps the run until every phase in want[] has a->steps timed steps (each after a->warmup
 * untimed ones of it; a step that ends an epoch is not timed) or the budget ends. */
static int time_steps(anamo_trainer *t, const args *a, const int want[NPHASES],
                      phase_cost cost[NPHASES], anamo_err *err)
{
    double times[NPHASES][MAX_TIMED];
    int seen[NPHASES] = {0}, n[NPHASES] = {0};
    for (;;) {
        int missing = 0;
        for (int p = 0; p < NPHASES; p++)
            missing |= want[p] && n[p] < a->steps;
        if (!missing || anamo_trainer_done(t))
            break;
        anamo_step_info info;
        const double t0 = now_ms();
        int rc = anamo_trainer_step(t, NULL, &info, err);
        const double dt = now_ms() - t0;
        if (rc)
            return rc;
        const int p = phase_index(info.phase);
        if (p < 0 || !want[p] || info.epoch_end || seen[p]++ < a->warmup || n[p] >= a->steps)
            continue;
        times[p][n[p]++] = dt;
    }
    for (int p = 0; p < NPHASES; p++)
        if (want[p] && n[p] > 0)
            summarize(times[p], n[p], &cost[p]);
    return ANAMO_OK;
}

/* Opens the config's run under scheme, records the parameter counts of the phases it has and,
 * where --step-ms gave none, measures their step times. */
static int cost_of_scheme(const anamo_config *base, const args *a, const char *scheme,
                          phase_cost cost[NPHASES], int *batch, int *threads, anamo_err *err)
{
    anamo_config *c = NULL;
    anamo_run run;
    char set[64];
    snprintf(set, sizeof set, "train.scheme=%s", scheme);
    int rc = anamo_config_copy(base, &c, err);
    if (!rc)
        rc = anamo_config_set(c, set, "scaling_model", err);
    if (!rc) /* the epoch-end evaluation is not part of a step */
        rc = anamo_config_set(c, "train.eval_every_epoch=false", "scaling_model", err);
    for (int i = 0; !rc && i < a->nsets; i++)
        rc = anamo_config_set(c, a->sets[i], "--set", err);
    if (!rc)
        rc = anamo_run_open(c, NULL, &run, err);
    if (rc) {
        anamo_config_free(c);
        return rc;
    }
    if (run.threads > 0)
        omp_set_num_threads(run.threads);
    *threads = omp_get_max_threads();
    *batch = run.train_spec.phases[0].batch;
    const int64_t enc = anamo_model_param_count(run.model, ANAMO_ENCODER);
    const int64_t dec = anamo_model_param_count(run.model, ANAMO_DECODER);
    const int joint = !strcmp(scheme, "joint");
    const int want[NPHASES] = {joint && !a->step_ms[0], !joint && !a->step_ms[1],
                               !joint && !a->step_ms[2]};
    cost[0].params = enc + dec, cost[1].params = dec, cost[2].params = enc;
    rc = time_steps(run.trainer, a, want, cost, err);
    anamo_run_close(&run);
    anamo_config_free(c);
    return rc;
}

/* S(N) for T1 ms and bytes per step on a link of gbps Gb/s. */
static double speedup(double t1_ms, double bytes, int n, double gbps, double latency_us)
{
    const double comm_ms = 2.0 * (n - 1) / n * bytes / (gbps * 1e9 / 8.0) * 1e3 +
                           2.0 * (n - 1) * latency_us * 1e-3;
    return t1_ms / (t1_ms / n + comm_ms);
}

static void print_costs(const phase_cost cost[NPHASES])
{
    printf("| phase | parameters all-reduced | bytes per step | T1 (ms per step) |\n"
           "|---|---:|---:|---|\n");
    for (int p = 0; p < NPHASES; p++) {
        printf("| %s | %lld | %lld | %.3f", p ? PHASE_NAMES[p] : "joint (both blocks)",
               (long long)cost[p].params, (long long)(4 * cost[p].params), cost[p].step_ms);
        if (cost[p].timed)
            printf(" (median of %d steps; 10–90%%: %.3f–%.3f; mean %.3f)", cost[p].timed,
                   cost[p].spread[0], cost[p].spread[1], cost[p].mean_ms);
        else
            printf(" (given: --step-ms)");
        printf(" |\n");
    }
}

/* One table row: the speedups of a set of phases run for equal step counts (a NAM cycle: its
 * decoder and encoder phases), whose T1 and bytes are summed term by term. */
static void print_row(const char *name, const phase_cost *const *ph, int nph, double gbps,
                      const args *a)
{
    printf("| %s | %g Gb/s |", name, gbps);
    for (int k = 0; k < NPROCS; k++) {
        double t1 = 0.0, tn = 0.0;
        for (int i = 0; i < nph; i++) {
            const double s = speedup(ph[i]->step_ms, 4.0 * (double)ph[i]->params, PROCS[k], gbps,
                                     a->latency_us);
            t1 += ph[i]->step_ms, tn += ph[i]->step_ms / s;
        }
        printf(" %.2f |", t1 / tn);
    }
    printf("\n");
}

/* The table's head, and the largest share of the batch a rank computes (its step sets the
 * pace; the model's T1/N takes every rank's work as an even 1/N of the batch's). */
static void print_head(int batch)
{
    printf("\n| phase | link |");
    for (int k = 0; k < NPROCS; k++)
        printf(" N=%d |", PROCS[k]);
    printf("\n|---|---|");
    for (int k = 0; k < NPROCS; k++)
        printf("---:|");
    printf("\n| (samples on the busiest rank) | |");
    for (int k = 0; k < NPROCS; k++)
        printf(" %d |", (batch + PROCS[k] - 1) / PROCS[k]);
    printf("\n");
}

static void print_speedups(const phase_cost cost[NPHASES], int batch, const args *a)
{
    print_head(batch);
    const phase_cost *joint[] = {&cost[0]}, *dec[] = {&cost[1]}, *enc[] = {&cost[2]};
    const phase_cost *cycle[] = {&cost[1], &cost[2]};
    for (int l = 0; l < NLINKS; l++) {
        print_row("joint", joint, 1, LINK_GBPS[l], a);
        print_row("NAM decoder phase", dec, 1, LINK_GBPS[l], a);
        print_row("NAM encoder phase", enc, 1, LINK_GBPS[l], a);
        print_row("NAM cycle (decoder + encoder epoch)", cycle, 2, LINK_GBPS[l], a);
    }
}

int main(int argc, char **argv)
{
    anamo_program_setup(argv);
    args a;
    if (parse_args(argc, argv, &a))
        return fputs(USAGE, stderr), 2;
    anamo_err err = {0};
    anamo_config *base = NULL;
    phase_cost cost[NPHASES] = {{0}};
    int batch = 0, threads = 0;
    for (int p = 0; p < NPHASES; p++)
        cost[p].step_ms = a.step_ms[p];
    int rc = anamo_config_load(a.config, &base, &err);
    if (!rc)
        rc = cost_of_scheme(base, &a, "joint", cost, &batch, &threads, &err);
    if (!rc)
        rc = cost_of_scheme(base, &a, "nam", cost, &batch, &threads, &err);
    anamo_config_free(base);
    if (rc)
        return fprintf(stderr, "scaling_model: %s\n", err.msg), rc == ANAMO_ERR_CONFIG ? 2 : 1;
    for (int p = 0; p < NPHASES; p++)
        if (!(cost[p].step_ms > 0.0))
            return fprintf(stderr, "scaling_model: no %s step was timed\n", PHASE_NAMES[p]), 1;
    double load[1] = {-1.0};
    getloadavg(load, 1); /* T1 is only as good as the machine was idle */
    printf("config: %s (batch %d, %d OpenMP threads, one process; load average %.2f)\n", a.config,
           batch, threads, load[0]);
    printf("cost model: S(N) = T1 / (T1/N + 2(N-1)/N * bytes/bandwidth + 2(N-1) * %g us)\n\n",
           a.latency_us);
    print_costs(cost);
    print_speedups(cost, batch, &a);
    return 0;
}
