/* cmd_compare.c — anamo compare: run every arm of a config over N trials and tabulate them.
 *
 * Arms are the [arm NAME] sections listed in [compare] arms; with [compare] sweep = section.key
 * and sweep_values = v1, v2, … every arm runs once per value ("nam_lambda=1e-4"). Trial t of
 * every arm adds t to model.seed and train.seed, so the arms of a trial start from the same
 * weights and see the same batches. Each run lives in DIR/ARM/trial-T; a run whose
 * summary.json exists is read back instead of trained, and one with a checkpoint is resumed,
 * so an interrupted compare continues where it stopped. --quick applies the config's [quick]
 * section (fewer trials and epochs) first.
 *
 * Under mpirun, every run is data-parallel across the ranks; with --spread the ranks take
 * whole runs instead, each as it frees up, and train it alone (see claim_run). */
#include "cli.h"
#include "compare.h"
#include "figures.h"
#include "live.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SETS 64

static const char USAGE[] =
    "usage: anamo compare CONFIG [-o DIR] [--quick] [--dry-run] [--set section.key=value ...]\n"
    "                     [--live [PORT]]\n"
    "\n"
    "Runs each arm named in CONFIG's [compare] arms (overrides in [arm NAME]) over\n"
    "[compare] trials seeds into DIR/ARM/trial-T, then writes DIR/results.md (mean ± standard\n"
    "deviation and min–max per metric per arm), DIR/results.json and the figures.\n"
    "An interrupted compare run again continues where it stopped.\n"
    "  -o DIR    output directory (default results/CONFIG-NAME, results/CONFIG-NAME-quick)\n"
    "  --quick   apply the config's [quick] section: the short form of the experiment\n"
    "  --dry-run check every run's config and list the runs (new, resumed or finished)\n"
    "  --set     override a key in every arm, after the arm's own overrides\n"
    "  --live [PORT]  watch every run on one page at http://127.0.0.1:PORT/ (no PORT or 0: a\n"
    "            free one; ADDRESS:PORT listens there instead)\n"
    "  --spread  under mpirun: hand whole runs to the ranks as they free up (each trains its\n"
    "            runs alone), instead of training every run across all the ranks\n";

typedef struct compare_args {
    const char *config_path, *dir;
    const char *live; /* --live's address ("" for a free port), or NULL */
    const char *sets[MAX_SETS];
    int nsets, quick, dry_run, spread;
} compare_args;

void compare_run_dir(const compare_set *cs, int arm, int trial, char *out, size_t size)
{
    snprintf(out, size, "%s/%s/trial-%d", cs->dir, cs->arms[arm].name, trial);
}

/* A sweep's key as run names show it: "loss.lambda" → "lambda", "anamo.enc_lr+anamo.dec_lr" →
 * "enc_lr+dec_lr". */
static void short_key_of(const char *sweep, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *key = sweep; *key && used + 1 < size;) {
        const size_t n = strcspn(key, "+");
        const char *name = key;
        for (size_t i = 0; i < n; i++)
            name = key[i] == '.' ? key + i + 1 : name;
        used += (size_t)snprintf(out + used, size - used, "%s%.*s", used ? "+" : "",
                                 (int)(key + n - name), name);
        key += n + (key[n] == '+');
    }
}

/* One family's runs: the arm NAME once per value of its sweep ([compare] sweep and
 * sweep_values, which its [arm NAME] may set for itself), appended to arms[*narms...]. */
static int plan_family(const anamo_config *c, const char *name, compare_arm *arms, int *narms,
                       anamo_err *err)
{
    char values[COMPARE_MAX_ARMS][ANAMO_NAME_MAX], sweep[2 * COMPARE_KEY_MAX];
    anamo_config *arm = NULL;
    int rc = anamo_config_copy(c, &arm, err);
    if (!rc)
        rc = anamo_config_use_arm(arm, name, err);
    snprintf(sweep, sizeof sweep, "%s", rc ? "" : anamo_config_get(arm, "compare", "sweep"));
    int nvalues = *sweep
                      ? anamo_config_list(arm, "compare", "sweep_values", values, COMPARE_MAX_ARMS)
                      : 0;
    anamo_config_free(arm);
    if (rc)
        return rc;
    if (*sweep && nvalues < 1)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: arm %s sweeps %s but sweep_values lists "
                             "no value",
                             anamo_config_path(c), name, sweep);
    if (*narms + (nvalues ? nvalues : 1) > COMPARE_MAX_ARMS)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: more than %d runs per trial (arms × their "
                             "sweep values)",
                             anamo_config_path(c), COMPARE_MAX_ARMS);
    char short_key[sizeof sweep];
    short_key_of(sweep, short_key, sizeof short_key);
    for (int v = 0; v < (nvalues ? nvalues : 1); v++) {
        compare_arm *a = &arms[(*narms)++];
        snprintf(a->family, sizeof a->family, "%s", name);
        snprintf(a->sweep_key, sizeof a->sweep_key, "%s", sweep);
        snprintf(a->sweep_value, sizeof a->sweep_value, "%s", nvalues ? values[v] : "");
        if (nvalues)
            snprintf(a->name, sizeof a->name, "%s_%s=%s", name, short_key, values[v]);
        else
            snprintf(a->name, sizeof a->name, "%s", name);
    }
    return ANAMO_OK;
}

/* Whether every family sweeps the same key over the same values (one table, one figure). */
static int sweeps_agree(const compare_arm *arms, int narms)
{
    int per_family = 0;
    while (per_family < narms && !strcmp(arms[per_family].family, arms[0].family))
        per_family++;
    if (narms % per_family)
        return 0;
    for (int a = 0; a < narms; a++)
        if (strcmp(arms[a].sweep_key, arms[a % per_family].sweep_key) ||
            strcmp(arms[a].sweep_value, arms[a % per_family].sweep_value))
            return 0;
    return 1;
}

/* The arms: each [compare] arms name, times each value of its sweep. */
static int plan_arms(const anamo_config *c, compare_set *cs, compare_arm *arms, anamo_err *err)
{
    char names[COMPARE_MAX_ARMS][ANAMO_NAME_MAX];
    int nnames = anamo_config_arms(c, names, COMPARE_MAX_ARMS);
    if (nnames < 1)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "%s: [compare] arms lists no arm",
                             anamo_config_path(c));
    cs->narms = 0;
    for (int i = 0; i < nnames; i++) {
        int rc = plan_family(c, names[i], arms, &cs->narms, err);
        if (rc)
            return rc;
    }
    int swept = 0;
    for (int a = 0; a < cs->narms; a++)
        swept |= arms[a].sweep_key[0] != '\0';
    cs->sweep_key = swept && sweeps_agree(arms, cs->narms) ? arms[0].sweep_key : "";
    cs->select = anamo_config_get(c, "compare", "select");
    if (cs->select[0] && strncmp(cs->select, "validation.", 11))
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: compare.select = %s: selection reads "
                             "validation metrics only (validation.loss, validation.mse, ...), so "
                             "that no test figure is chosen on test data",
                             anamo_config_path(c), cs->select);
    if (cs->select[0] && !anamo_config_get(c, "data", "validation")[0])
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: compare.select = %s, but there is no "
                             "validation set (data.validation)",
                             anamo_config_path(c), cs->select);
    return ANAMO_OK;
}

/* Adds trial to the integer key section.key of c. */
static int offset_seed(anamo_config *c, const char *section, const char *key, int trial,
                       anamo_err *err)
{
    char assignment[128];
    long long base = strtoll(anamo_config_get(c, section, key), NULL, 10);
    snprintf(assignment, sizeof assignment, "%s.%s=%lld", section, key, base + trial);
    return anamo_config_set(c, assignment, "compare trial", err);
}

/* The config of one run: base, the arm's overrides, its sweep value, --set, the trial seeds;
 * each step is validated as it is applied. *c to anamo_config_free, even on failure. */
static int trial_config(const anamo_config *base, const compare_arm *arm, const compare_args *a,
                        int trial, anamo_config **c, anamo_err *err)
{
    int rc = anamo_config_copy(base, c, err);
    if (!rc)
        rc = anamo_config_use_arm(*c, arm->family, err);
    /* "a.x+b.y" sets every key named to the value (ANAMO's two steps swept as one) */
    for (const char *key = arm->sweep_key; !rc && arm->sweep_value[0] && *key;) {
        const size_t n = strcspn(key, "+");
        char assignment[COMPARE_VALUE_MAX];
        snprintf(assignment, sizeof assignment, "%.*s=%s", (int)n, key, arm->sweep_value);
        rc = anamo_config_set(*c, assignment, "[compare] sweep_values", err);
        key += n + (key[n] == '+');
    }
    for (int i = 0; !rc && i < a->nsets; i++)
        rc = anamo_config_set(*c, a->sets[i], "--set", err);
    if (!rc)
        rc = offset_seed(*c, "model", "seed", trial, err);
    if (!rc)
        rc = offset_seed(*c, "train", "seed", trial, err);
    return rc;
}

/* Whether a resolved-config line belongs to the training: [compare], [arm NAME] and [quick]
 * only choose runs, so adding an arm keeps the runs already made. */
static int training_section(const char *header)
{
    return strncmp(header, "[compare]", 9) && strncmp(header, "[arm ", 5) &&
           strncmp(header, "[quick]", 7);
}

/* Keys that say how a run is kept or how fast it goes, not what it computes: changing them
 * between a run and its continuation is allowed. */
static int bookkeeping_key(const char *line)
{
    static const char *const KEYS[] = {"checkpoint_every ", "checkpoint_iterations ",
                                       "checkpoint_seconds ", "threads "};
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        if (!strncmp(line, KEYS[i], strlen(KEYS[i])))
            return 1;
    return 0;
}

/* The next line of the training sections of a resolved config at *p, into line; 0 at the end. */
static int next_training_line(const char **p, int *in_training, char *line, size_t size)
{
    while (**p) {
        size_t n = strcspn(*p, "\n");
        snprintf(line, size, "%.*s", (int)n, *p);
        *p += n + ((*p)[n] == '\n');
        if (line[0] == '[')
            *in_training = training_section(line);
        if (*in_training && line[0] && line[0] != ';' && !bookkeeping_key(line))
            return 1;
    }
    return 0;
}

/* A run made earlier in run_dir must have been made by this config (its training part): else
 * compare would read its results as this config's. */
static int check_same_config(const char *run_dir, const anamo_config *c, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/config.ini", run_dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ANAMO_OK; /* nothing made there yet */
    char *old = calloc(1, (size_t)1 << 20), *now = anamo_config_text(c);
    size_t n = old ? fread(old, 1, ((size_t)1 << 20) - 1, f) : 0;
    fclose(f);
    int rc = old && now ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_NOMEM, "compare: out of memory");
    const char *p = old, *q = now;
    int in_p = 1, in_q = 1, more_p = 1, more_q = 1;
    char a[COMPARE_VALUE_MAX + 2 * COMPARE_KEY_MAX], b[sizeof a];
    while (!rc && n && (more_p || more_q)) {
        more_p = next_training_line(&p, &in_p, a, sizeof a);
        more_q = next_training_line(&q, &in_q, b, sizeof b);
        if ((more_p || more_q) && (more_p != more_q || strcmp(a, b)))
            rc = anamo_err_set(err, ANAMO_ERR_CONFIG,
                               "%s was made by another config ('%s' there, '%s' now): move it away "
                               "or choose another -o",
                               run_dir, more_p ? a : "(end)", more_q ? b : "(end)");
    }
    free(old), free(now);
    return rc;
}

/* Checks one run as training would before writing anything; with print, says what would happen
 * to the run. */
static int check_trial(const anamo_config *base, const compare_set *cs, const compare_args *a,
                       int arm, int trial, int print, anamo_err *err)
{
    char run_dir[4096], path[4200];
    compare_run_dir(cs, arm, trial, run_dir, sizeof run_dir);
    anamo_config *c = NULL;
    int rc = trial_config(base, &cs->arms[arm], a, trial, &c, err);
    /* trials differ only in their seeds: the settings, the data and the model are checked on
     * trial 0 (which every arm passes before any trial 1 is looked at) */
    if (!rc && trial == 0)
        rc = cli_check_run(c, err);
    if (!rc)
        rc = check_same_config(run_dir, c, err);
    anamo_config_free(c);
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    int finished = cli_file_exists(path);
    snprintf(path, sizeof path, "%s/model.safetensors", run_dir);
    if (!rc && print)
        printf("%-40s %s\n", run_dir,
               finished                ? "finished"
               : cli_file_exists(path) ? "resume"
                                       : "new");
    return rc;
}

/* ---- --spread: whole runs to the ranks ---------------------------------------------------
 * A rank takes a run by creating its claim, DIR/.claims/ARM.T, with O_EXCL: on one file system
 * exactly one rank succeeds, and every rank walks the runs in the same order, so each takes the
 * next one nobody has as soon as it is free. Rank 0 clears the claims of an earlier, stopped
 * compare before any rank looks (a finished run is known by its summary.json, not its claim),
 * and once every rank is done. */
static void claims_dir(const compare_set *cs, char *out, size_t size)
{
    snprintf(out, size, "%s/.claims", cs->dir);
}

static int clear_claims(const compare_set *cs, anamo_err *err)
{
    char dir[4200], path[4600];
    claims_dir(cs, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? ANAMO_OK
                               : anamo_err_set(err, ANAMO_ERR_IO, "%s: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && unlink(path))
            return closedir(d), anamo_err_set(err, ANAMO_ERR_IO, "%s: %s", path, strerror(errno));
    }
    closedir(d);
    return rmdir(dir) ? anamo_err_set(err, ANAMO_ERR_IO, "%s: %s", dir, strerror(errno)) : 0;
}

/* Rank 0 clears old claims and makes the folder; every rank waits for it. */
static int start_claims(const compare_set *cs, anamo_dist *dist, anamo_err *err)
{
    char dir[4200];
    claims_dir(cs, dir, sizeof dir);
    int rc = anamo_dist_rank(dist) == 0 ? clear_claims(cs, err) : ANAMO_OK;
    if (!rc && anamo_dist_rank(dist) == 0)
        rc = cli_mkdir_p(dir, err);
    return rc ? rc : anamo_dist_barrier(dist, err);
}

/* Whether this rank takes the run (it created the claim first). */
static int claim_run(const compare_set *cs, int arm, int trial, int *mine, anamo_err *err)
{
    char path[4400];
    claims_dir(cs, path, sizeof path);
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, "/%s.%d", cs->arms[arm].name, trial);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    *mine = fd >= 0;
    if (fd >= 0)
        return close(fd) ? anamo_err_set(err, ANAMO_ERR_IO, "%s: %s", path, strerror(errno)) : 0;
    return errno == EEXIST
               ? ANAMO_OK
               : anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot claim: %s", path, strerror(errno));
}

/* Runs (or resumes, or skips when finished) one trial of one arm. */
static int run_trial(const anamo_config *base, const compare_set *cs, const compare_args *a,
                     int arm, int trial, cli_live *live, anamo_dist *dist, anamo_err *err)
{
    char run_dir[4096], label[160], path[4200];
    compare_run_dir(cs, arm, trial, run_dir, sizeof run_dir);
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    if (cli_file_exists(path)) {
        if (anamo_dist_rank(dist) == 0)
            fprintf(stderr, "[%s trial %d/%d] finished earlier: %s\n", cs->arms[arm].name,
                    trial + 1, cs->trials, path);
        return ANAMO_OK;
    }
    anamo_config *c = NULL;
    int rc = trial_config(base, &cs->arms[arm], a, trial, &c, err);
    snprintf(path, sizeof path, "%s/model.safetensors", run_dir);
    snprintf(label, sizeof label, "[%s trial %d/%d] ", cs->arms[arm].name, trial + 1, cs->trials);
    run_result r;
    if (!rc)
        rc = cli_run_training(c, run_dir, cli_file_exists(path), label, live, dist, &r, err);
    if (rc == ANAMO_ERR_DIVERGED) { /* a diverged run is a result, not a failure */
        if (anamo_dist_rank(dist) == 0)
            fprintf(stderr, "%s%s\n", label, err->msg);
        rc = ANAMO_OK;
    }
    if (rc == ANAMO_ERR_INTERRUPTED) { /* the run saved its checkpoint */
        char msg[ANAMO_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        rc = anamo_err_set(err, ANAMO_ERR_INTERRUPTED,
                           "%s; the same anamo compare command "
                           "continues every run where it stopped",
                           msg);
    }
    anamo_config_free(c);
    return rc;
}

static int parse_args(int argc, char **argv, compare_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(USAGE, stdout), -1;
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            a->dir = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            a->quick = 1;
        else if (!strcmp(argv[i], "--dry-run"))
            a->dry_run = 1;
        else if (!strcmp(argv[i], "--spread"))
            a->spread = 1;
        else if (!strcmp(argv[i], "--live"))
            a->live = i + 1 < argc && cli_live_value(argv[i + 1]) ? argv[++i] : "";
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && a->nsets < MAX_SETS)
            a->sets[a->nsets++] = argv[++i];
        else if (argv[i][0] != '-' && !a->config_path)
            a->config_path = argv[i];
        else
            return cli_usage_error(USAGE, "compare: unexpected argument '%s'", argv[i]);
    }
    return a->config_path ? 0 : cli_usage_error(USAGE, "compare: missing CONFIG");
}

static void default_dir(const compare_args *a, char *dir, size_t size)
{
    const char *base = strrchr(a->config_path, '/');
    base = base ? base + 1 : a->config_path;
    if (a->dir)
        snprintf(dir, size, "%s", a->dir);
    else
        snprintf(dir, size, "results/%.*s%s", (int)strcspn(base, "."), base,
                 a->quick ? "-quick" : "");
}

/* --live: the page, with every run of the plan (those finished earlier with their logs). */
static int start_live(const compare_args *a, const compare_set *cs, cli_live **live, anamo_err *err)
{
    char title[4200], run_dir[4096], name[256], path[4200];
    snprintf(title, sizeof title, "anamo compare %s%s → %s", a->config_path,
             a->quick ? " --quick" : "", cs->dir);
    int rc = cli_live_start(a->live, title, live, err);
    for (int t = 0; !rc && t < cs->trials; t++)
        for (int i = 0; !rc && i < cs->narms; i++) {
            compare_run_dir(cs, i, t, run_dir, sizeof run_dir);
            snprintf(name, sizeof name, "%s/trial-%d", cs->arms[i].name, t);
            snprintf(path, sizeof path, "%s/summary.json", run_dir);
            rc = cli_live_plan(*live, name, cs->arms[i].name, t, run_dir, cli_file_exists(path));
        }
    return rc;
}

/* Every run, then the tables and the figures. */
static int run_compare(const compare_args *a, anamo_config **config, const char *dir,
                       anamo_dist *dist, anamo_err *err)
{
    static compare_arm arms[COMPARE_MAX_ARMS];
    compare_set cs = {.dir = dir, .arms = arms};
    int rc = anamo_config_load(a->config_path, config, err);
    anamo_config *c = *config;
    if (!rc && a->quick)
        rc = anamo_config_use_quick(c, err);
    for (int i = 0; !rc && i < a->nsets; i++) /* here too, for [compare] and [data] keys */
        rc = anamo_config_set(c, a->sets[i], "--set", err);
    if (!rc)
        rc = plan_arms(c, &cs, arms, err);
    if (rc)
        return rc;
    cs.trials = (int)strtol(anamo_config_get(c, "compare", "trials"), NULL, 10);
    cs.test_spec = anamo_config_get(c, "data", "test");
    cs.train_spec = anamo_config_get(c, "data", "train");
    /* every run's config is checked before the first one starts (a typo in the last arm is
     * not found after hours of training); --dry-run stops there */
    for (int t = 0; !rc && t < cs.trials; t++)
        for (int i = 0; !rc && i < cs.narms; i++)
            rc = check_trial(c, &cs, a, i, t, a->dry_run && anamo_dist_rank(dist) == 0, err);
    if (rc || a->dry_run)
        return rc;
    cli_live *live = NULL;
    const int writes = anamo_dist_rank(dist) == 0; /* across ranks, rank 0 writes the results */
    if (a->live && writes)
        rc = start_live(a, &cs, &live, err);
    const int spread = a->spread && anamo_dist_size(dist) > 1;
    if (!rc && spread)
        rc = start_claims(&cs, dist, err);
    /* trial by trial, so a stopped compare has every arm's first trials */
    for (int t = 0; !rc && t < cs.trials; t++)
        for (int i = 0; !rc && i < cs.narms; i++) {
            int mine = 1;
            if (spread)
                rc = claim_run(&cs, i, t, &mine, err);
            if (!rc && mine)
                rc = run_trial(c, &cs, a, i, t, live, spread ? NULL : dist, err);
        }
    cli_live_stop(live);
    if (!rc && spread) /* every run is written before rank 0 reads them back */
        rc = anamo_dist_barrier(dist, err);
    if (!rc && spread && writes)
        rc = clear_claims(&cs, err);
    if (rc || !writes)
        return rc;
    rc = compare_write_results(&cs, stdout, err);
    if (!rc)
        rc = figures_compare(&cs, err);
    if (!rc)
        printf("\nwritten: %s/results.md, results.json and the figures (*.png, *.svg, their "
               "data *.dat and gnuplot scripts *.gp)\n",
               dir);
    return rc;
}

int cmd_compare(int argc, char **argv, anamo_dist *dist)
{
    compare_args a;
    int code = parse_args(argc, argv, &a);
    if (code)
        return code < 0 ? EXIT_OK : code;
    char dir[4096];
    default_dir(&a, dir, sizeof dir);
    anamo_config *c = NULL;
    anamo_err err = {0};
    int rc = run_compare(&a, &c, dir, dist, &err);
    anamo_config_free(c);
    return rc ? cli_report(&err) : EXIT_OK;
}
