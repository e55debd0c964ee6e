/* main.c — the anamo command: one verb per job, one file per verb (darknet's layout). */
#include "cli.h"

#include <omp.h>
#include <string.h>

static const char USAGE[] =
    "usage: anamo COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [-o RUN_DIR] [--set section.key=value ...] [--resume RUN_DIR]\n"
    "                       train an autoencoder as CONFIG describes\n"
    "  eval MODEL --data SPEC            print the metrics of a trained model as JSON\n"
    "  encode MODEL --data SPEC -o codes.npy\n"
    "                       write the codes E(x) of every sample\n"
    "  reconstruct MODEL --data SPEC -o grid.png\n"
    "                       picture of samples (top) and their reconstructions (below)\n"
    "  compare CONFIG [-o DIR] [--quick] [--dry-run] [--set ...]\n"
    "                       run each [arm NAME] of CONFIG over its trials; tables, figures\n"
    "\n"
    "MODEL is a model.safetensors file or the run directory holding it. SPEC is mnist:train,\n"
    "mnist:test, fashion-mnist:train|test, cifar10:train|test, halves:train|test, steps\n"
    "(built-in step functions), "
    "or a .npy, .csv or IDX file; SPEC@N keeps the first N samples.\n"
    "Datasets are looked up in $ANAMO_DATA, then ./data. 'anamo COMMAND --help' for details.\n"
    "Exit codes: 0 success, 1 runtime error, 2 usage or configuration error.\n"
    "anamo --version: the version, the CPU, the BLAS kernel and the oneDNN in use.\n";

/* The version, and what the products run on: the user's first question about a speed. */
static int print_version(void)
{
    anamo_machine mc;
    anamo_machine_describe(&mc);
    printf("anamo %s\ncpu: %s (family %d, model %d)\ncpu features: %s\nblas: %s\n"
           "blas kernel: %s (%s; the CPU's features call for %s or better)\nconvolutions: %s\n"
           "openmp threads: %d\nopenmp wait: %s\nmpi: %s\n",
           ANAMO_VERSION_STRING, mc.cpu, mc.family, mc.model, mc.features, mc.blas, mc.kernel,
           mc.kernel_note, mc.best_kernel, mc.dnnl, omp_get_max_threads(), mc.omp_wait, mc.mpi);
    return EXIT_OK;
}

/* Runs the verb. Across ranks, a rank that fails ends the whole job (MPI_Abort): the others may
 * be waiting for it in a collective. Nothing is lost by it: a run's files are whole before any
 * rank leaves it (cli_run_training ends at a barrier). */
static int run_verb(int (*verb)(int, char **, anamo_dist *), int argc, char **argv, int everywhere)
{
    anamo_dist *dist = NULL;
    anamo_err err = {0};
    if (anamo_dist_open(&dist, &argc, &argv, &err))
        return cli_report(&err);
    int code = EXIT_OK;
    if (everywhere || anamo_dist_rank(dist) == 0)
        code = verb(argc, argv, everywhere ? dist : NULL);
    if (code != EXIT_OK && anamo_dist_size(dist) > 1)
        anamo_dist_abort(dist, code);
    if (anamo_dist_close(dist, &err) && code == EXIT_OK)
        code = cli_report(&err);
    return code;
}

int main(int argc, char **argv)
{
    anamo_program_setup(argv);
    if (argc >= 2 && !strcmp(argv[1], "--version"))
        return print_version();
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **, anamo_dist *);
        int everywhere; /* across ranks, every rank runs it (else rank 0 alone) */
    } COMMANDS[] = {{"train", cmd_train, 1},
                    {"eval", cmd_eval, 0},
                    {"encode", cmd_encode, 0},
                    {"reconstruct", cmd_reconstruct, 0},
                    {"compare", cmd_compare, 1}};
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name))
            return run_verb(COMMANDS[i].run, argc - 1, argv + 1, COMMANDS[i].everywhere);
    fprintf(stderr, "anamo: unknown command '%s'\n\n%s", argv[1], USAGE);
    return EXIT_USAGE;
}
