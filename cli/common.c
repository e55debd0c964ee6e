/* common.c — error reporting, data lookup and paths for the subcommands. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_report(const anamo_err *err)
{
    fprintf(stderr, "anamo: %s\n", err->msg[0] ? err->msg : anamo_status_name(err->code));
    return err->code == ANAMO_ERR_CONFIG || err->code == ANAMO_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("anamo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    fputs(usage, stderr);
    return EXIT_USAGE;
}

int cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_mkdir_p(const char *path, anamo_err *err)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) && errno != EEXIST)
            return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot create directory: %s", buf,
                                 strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) && errno != EEXIST)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot create directory: %s", buf,
                             strerror(errno));
    if (!cli_is_dir(buf))
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: exists and is not a directory", buf);
    return ANAMO_OK;
}

void cli_model_path(const char *model, char *out, size_t size)
{
    if (cli_is_dir(model))
        snprintf(out, size, "%s/model.safetensors", model);
    else
        snprintf(out, size, "%s", model);
}

int cli_model_args(int argc, char **argv, const char *usage, model_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage, stdout);
            return -1;
        } else if (!strcmp(arg, "--data") && more) {
            a->data = argv[++i];
        } else if (!strcmp(arg, "-o") && more) {
            a->out = argv[++i];
        } else if ((!strcmp(arg, "--count") || !strcmp(arg, "--cols")) && more) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 100000)
                return cli_usage_error(usage, "%s %s: expected a positive integer", arg, argv[i]);
            *(arg[2] == 'c' && arg[3] == 'o' && arg[4] == 'u' ? &a->count : &a->cols) = (int)v;
        } else if (!strcmp(arg, "--jacobian-samples") && more) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1000000000)
                return cli_usage_error(usage,
                                       "%s %s: expected an integer in 0..1000000000 "
                                       "(0: not computed)",
                                       arg, argv[i]);
            a->jacobian_samples = v ? v : -1;
        } else if (arg[0] != '-' && !a->model) {
            a->model = arg;
        } else {
            return cli_usage_error(usage, "unexpected argument or missing value: %s", arg);
        }
    }
    if (!a->model || !a->data)
        return cli_usage_error(usage, "missing %s", !a->model ? "MODEL" : "--data SPEC");
    return 0;
}

#define CLI_EVAL_BATCH 256

int cli_load_model_data(const model_args *a, anamo_model **m, anamo_dataset *ds)
{
    char path[4096];
    anamo_err err = {0};
    cli_model_path(a->model, path, sizeof path);
    int rc = anamo_checkpoint_load_model(path, CLI_EVAL_BATCH, m, &err);
    if (!rc && (rc = anamo_run_open_data(a->data, NULL, ds, &err)))
        anamo_model_free(*m), *m = NULL;
    if (!rc && ds->dim != anamo_model_input_dim(*m)) {
        rc = anamo_err_set(&err, ANAMO_ERR_ARG, "%s: samples have %lld values; %s takes %lld",
                           a->data, (long long)ds->dim, path, (long long)anamo_model_input_dim(*m));
        anamo_model_free(*m), *m = NULL;
        anamo_dataset_free(ds);
    }
    return rc ? cli_report(&err) : EXIT_OK;
}

int cli_first_weights(anamo_model *m, int conv, anamo_layer_info *layer, const float **weights,
                      anamo_err *err)
{
    *weights = NULL;
    for (int i = 0; i < anamo_model_layer_count(m, 0); i++) {
        int rc = anamo_model_layer(m, 0, i, layer, err);
        if (rc)
            return rc;
        if (layer->kind != ANAMO_LAYER_LINEAR && !(conv && layer->kind == ANAMO_LAYER_CONV2D))
            continue;
        char name[sizeof layer->name + 8];
        anamo_tensor_view w;
        snprintf(name, sizeof name, "%s.weight", layer->name);
        rc = anamo_model_tensor(m, name, &w, err);
        *weights = rc ? NULL : w.data;
        return rc;
    }
    return ANAMO_OK;
}

/* The rename of a file into dir is durable once dir's entry is on disk. EINVAL: the file
 * system cannot sync directories (nothing more to do). */
static int fsync_dir_of(const char *path, anamo_err *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
             slash ? path : ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int e = fd < 0 ? errno : fsync(fd) == 0 || errno == EINVAL ? 0 : errno;
    if (fd >= 0)
        close(fd);
    return e ? anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: written, but syncing directory '%s' failed: "
                             "%s",
                             path, dir, strerror(e))
             : ANAMO_OK;
}

int cli_write_file_atomic(const char *path, const char *text, anamo_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    errno = 0;
    FILE *f = fopen(tmp, "w");
    int e = f ? 0 : errno;
    if (f && (fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0))
        e = errno;
    if (f && fclose(f) != 0 && !e)
        e = errno ? errno : EIO;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e || !f) {
        remove(tmp);
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write: %s", path,
                             strerror(e ? e : EIO));
    }
    return fsync_dir_of(path, err);
}

FILE *cli_text_open(char **buf, size_t cap)
{
    *buf = calloc(cap, 1);
    FILE *f = *buf ? fmemopen(*buf, cap, "w") : NULL;
    if (!f) {
        free(*buf);
        *buf = NULL;
    }
    return f;
}

int cli_text_close(FILE *f, char **buf, size_t cap)
{
    const int bad = ferror(f) != 0;
    const int closed = fclose(f) == 0;
    /* the last byte must still be 0: a text that filled the buffer may have been cut */
    if (bad || !closed || (*buf)[cap - 1] != '\0') {
        free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

int cli_read_json(const char *path, cJSON **out, anamo_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    for (size_t n; mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0;)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    if (mem)
        fclose(mem);
    *out = buf ? cJSON_Parse(buf) : NULL;
    free(buf);
    return *out ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: not JSON", path);
}
