/* test_figures.c — the figures of anamo compare, run as a user runs it (fork/exec of
 * $ANAMO_BIN) on tiny data: the built-in 10×10 grey "halves" images, and 6×6 colour images from
 * an NPY file written here. What the figures must show is checked against the runs' own files,
 * not against cli/figures.c: the training-loss curves against every run's metrics.csv (its
 * block column gives the colour), the labelled reconstruction grid against the pixels of the
 * unlabelled reconstructions.png and that grid's geometry (1-pixel gaps, a band per arm). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stb_image.h>

#include "test_util.h"

#define PATH_CAP TEST_UTIL_PATH_CAP
#define TIMEOUT_S 60.0 /* a compare here takes well under a second; a minute means it hangs */

/* the block colours of seed 000's Figure 1: decoder blue, encoder red, joint green */
static const struct {
    const char *block, *title, *rgb;
} BLOCKS[] = {{"decoder", "decoder phase", "#1f77b4"},
              {"encoder", "encoder phase", "#d62728"},
              {"both", "joint step", "#2ca02c"}};

/* 2 epochs of 10 steps, a row logged every 2 steps, 2 trials (the curves are means) */
#define GREY_DATA                                        \
    "[data]\ntrain = halves:200:1\ntest = halves:20:2\n" \
    "[model]\nencoder = linear 10, relu\ndecoder = linear 100, sigmoid\nseed = 2\n"
#define TRAIN "[train]\nepochs = 2\nbatch = 20\nlog_every = 2\nseed = 2\n"
#define ARMS "[arm joint]\ntrain.scheme = joint\n[arm nam]\ntrain.scheme = nam\n"
#define RGB_N 40 /* colour images in colour.npy, 3 × 6 × 6 each */
static const char *const CONFIGS[][2] = {
    {"grey.ini", GREY_DATA TRAIN "[compare]\narms = joint, nam\ntrials = 2\n" ARMS},
    /* 2 families × 4 values: 8 arms on one axis */
    {"many.ini", GREY_DATA TRAIN "[compare]\narms = joint, nam\ntrials = 1\n"
                                 "sweep = loss.lambda\nsweep_values = 0, 1e-4, 1e-3, 1e-2\n" ARMS},
    /* a linear autoencoder starts far from the data: its losses span more than a decade */
    {"colour.ini", "[data]\ntrain = colour.npy\ntest = colour.npy\n[model]\n"
                   "encoder = linear 8\ndecoder = linear 108\nseed = 1\n"
                   "[train]\nepochs = 20\nbatch = 10\nlog_every = 1\nseed = 1\n"
                   "[joint]\nlr = 1e-2\n[nam]\ndecoder_lr = 1e-2\nencoder_lr = 1e-2\n"
                   "[compare]\narms = joint, nam\ntrials = 1\n" ARMS},
};

typedef struct fixture {
    char bin[PATH_CAP], dir[256];
    int ran[3]; /* CONFIGS[i] compared into DIR/out-i */
} fixture;

/* ---- setup: the configs and the colour images ----------------------------------------------- */

static int write_text(const char *dir, const char *name, const char *text)
{
    char path[PATH_CAP];
    join_path(path, sizeof path, dir, name);
    FILE *f = fopen(path, "w");
    return f && fputs(text, f) >= 0 && fclose(f) == 0 ? 0 : -1;
}

/* DIR/colour.npy: RGB_N float32 images (3, 6, 6), each a random colour on its top half and
 * another on its bottom half, so that the channels differ. */
static int write_colour_npy(const char *dir)
{
    char header[128], path[PATH_CAP];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (%d, 3, 6, 6), }",
                     RGB_N);
    while ((10 + n + 1) % 64) /* magic, version, length, dict, '\n': a multiple of 64 */
        header[n++] = ' ';
    header[n++] = '\n';
    static float px[RGB_N][3][6][6];
    anamo_rng rng;
    anamo_rng_seed(&rng, 7);
    for (int i = 0; i < RGB_N; i++)
        for (int half = 0; half < 2; half++)
            for (int c = 0; c < 3; c++) {
                float v = anamo_rng_uniform_range(&rng, 0.0f, 1.0f);
                for (int y = 3 * half; y < 3 * half + 3; y++)
                    for (int x = 0; x < 6; x++)
                        px[i][c][y][x] = v;
            }
    join_path(path, sizeof path, dir, "colour.npy");
    FILE *f = fopen(path, "wb");
    const unsigned char len[2] = {(unsigned char)(n & 0xff), (unsigned char)(n >> 8)};
    int ok = f && fwrite("\x93NUMPY\x01\x00", 1, 8, f) == 8 && fwrite(len, 1, 2, f) == 2 &&
             fwrite(header, 1, (size_t)n, f) == (size_t)n && fwrite(px, sizeof px, 1, f) == 1;
    return f && fclose(f) == 0 && ok ? 0 : -1;
}

static int group_setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || find_anamo_bin(fx->bin, sizeof fx->bin, "test_figures") != 0 ||
        make_temp_dir(fx->dir, sizeof fx->dir, "/tmp/anamo_test_figures_XXXXXX") != 0) {
        free(fx);
        return -1;
    }
    int rc = write_colour_npy(fx->dir);
    for (size_t i = 0; !rc && i < sizeof CONFIGS / sizeof CONFIGS[0]; i++)
        rc = write_text(fx->dir, CONFIGS[i][0], CONFIGS[i][1]);
    if (rc) {
        remove_tree(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int group_teardown(void **state)
{
    fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* out (PATH_CAP) = DIR/out-k/file, after anamo compare CONFIGS[k] -o DIR/out-k (run once; the
 * colour data are found from DIR, the working directory's stand-in: an absolute path) */
static char *output(fixture *fx, int k, const char *file, char *out)
{
    char dir[PATH_CAP], cfg[PATH_CAP], set_train[PATH_CAP], set_test[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/out-%d", fx->dir, k);
    if (!fx->ran[k]) {
        join_path(cfg, sizeof cfg, fx->dir, CONFIGS[k][0]);
        snprintf(set_train, sizeof set_train, "data.train=%s/colour.npy", fx->dir);
        snprintf(set_test, sizeof set_test, "data.test=%s/colour.npy", fx->dir);
        const char *args[] = {"compare", cfg,     "-o",     dir, "--set",
                              set_train, "--set", set_test, NULL};
        if (!strstr(CONFIGS[k][1], "colour.npy"))
            args[4] = NULL;
        cli_result r = run_cli(fx->bin, fx->dir, args, TIMEOUT_S);
        if (r.code != 0)
            fail_msg("compare %s: exit %d: %s", CONFIGS[k][0], r.code, r.err);
        cli_free(&r);
        fx->ran[k] = 1;
    }
    snprintf(out, PATH_CAP, "%s/%s", dir, file);
    return out;
}

static char *must_read(const char *path)
{
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s: missing", path);
    return text;
}

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

/* ---- the gnuplot script: its plot commands, split into clauses ------------------------------- */

#define MAX_CLAUSES 128
#define MAX_PLOTS 4

typedef struct plot_cmd {
    int n;
    char *clause[MAX_CLAUSES]; /* "'training-loss.dat' index 0 using 1:2:4 with ..." */
} plot_cmd;

/* The script's plot commands (continuation lines joined), each split at the commas outside
 * quotes; text is changed in place. Returns how many. */
static int plot_commands(char *text, plot_cmd *plots)
{
    for (char *p = text; (p = strstr(p, "\\\n")) != NULL;) /* join continued lines */
        p[0] = p[1] = ' ';
    int nplots = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "plot ", 5))
            continue;
        assert_true(nplots < MAX_PLOTS);
        plot_cmd *pc = &plots[nplots++];
        pc->n = 0;
        char *start = line + 5, quote = 0;
        for (char *p = start;; p++) {
            if (quote && *p == quote)
                quote = 0;
            else if (!quote && (*p == '\'' || *p == '"'))
                quote = *p;
            else if ((!quote && *p == ',') || !*p) {
                const int end = !*p;
                *p = '\0';
                while (*start == ' ')
                    start++;
                assert_true(pc->n < MAX_CLAUSES);
                pc->clause[pc->n++] = start;
                start = p + 1;
                if (end)
                    break;
            }
        }
    }
    return nplots;
}

/* The integer after " KEY " in a clause, or -1. */
static int attr(const char *clause, const char *key)
{
    char want[32];
    snprintf(want, sizeof want, " %s ", key);
    const char *p = strstr(clause, want);
    return p ? atoi(p + strlen(want)) : -1;
}

/* The clause titled exactly 'title', or NULL. */
static const char *titled(const plot_cmd *pc, const char *title)
{
    char want[160];
    snprintf(want, sizeof want, "title '%s'", title);
    for (int i = 0; i < pc->n; i++) {
        const char *t = strstr(pc->clause[i], want);
        if (t && !t[strlen(want)])
            return pc->clause[i];
    }
    return NULL;
}

/* The clause drawing the line of block `index` (not its markers: those say "with points"). */
static const char *curve_of(const plot_cmd *pc, int index)
{
    char want[32];
    snprintf(want, sizeof want, " index %d ", index);
    for (int i = 0; i < pc->n; i++)
        if (strstr(pc->clause[i], want) && strstr(pc->clause[i], "with lines"))
            return pc->clause[i];
    return NULL;
}

/* ---- the data file ---------------------------------------------------------------------------- */

/* The rows of block b (after its b-th '#' line, blocks 2 blank lines apart) of a gnuplot .dat
 * file, columns as numbers; header (256) gets the block's '#' line. Returns the row count. */
#define MAX_ROWS 256
static int dat_block(const char *path, int b, double rows[][4], char *header)
{
    char *text = must_read(path), *save = NULL;
    int block = -1, n = 0;
    header[0] = '\0';
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int blanks = 0; /* strtok_r ended the line before with '\0': these were skipped */
        for (const char *q = line - 1; q >= text && *q == '\n'; q--)
            blanks++;
        if (line[0] == '#') {
            if (++block > 0 && blanks != 2)
                fail_msg("%s: %d blank lines before block %d, not 2", path, blanks, block);
            if (block == b)
                snprintf(header, 256, "%s", line);
            continue;
        }
        if (block != b)
            continue;
        assert_true(n < MAX_ROWS);
        if (sscanf(line, "%lf %lf %lf %lf", &rows[n][0], &rows[n][1], &rows[n][2], &rows[n][3]) !=
            4)
            fail_msg("%s: block %d row %d is not 4 numbers: %s", path, b, n, line);
        n++;
    }
    free(text);
    return n;
}

/* Trial 0's metrics.csv of an arm: each row's iteration and block. Returns the row count. */
static int metrics_rows(const char *path, double *iteration, char (*block)[16])
{
    char *text = must_read(path), *save = NULL;
    int n = -1, it_col = -1, block_col = -1;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int col = 0;
        for (char *s = NULL, *f = strtok_r(line, ",", &s); f; f = strtok_r(NULL, ",", &s), col++)
            if (n < 0) {
                it_col = strcmp(f, "iteration") ? it_col : col;
                block_col = strcmp(f, "block") ? block_col : col;
            } else if (col == it_col) {
                iteration[n] = strtod(f, NULL);
            } else if (col == block_col) {
                snprintf(block[n], 16, "%s", f);
            }
        if (n < 0 && (it_col < 0 || block_col < 0))
            fail_msg("%s: no iteration or block column", path);
        assert_true(++n < MAX_ROWS);
    }
    free(text);
    return n;
}

/* ---- the tests -------------------------------------------------------------------------------- */

/* Every arm of compare k in ONE plot of training-loss.gp: each arm's curve coloured by the
 * data's block column, arms apart by line style, a key entry per arm and per block colour. */
static void expect_one_axis(fixture *fx, int k, const char *const *arms, int narms)
{
    char p[PATH_CAP];
    char *gp = must_read(output(fx, k, "training-loss.gp", p));
    for (const char *s = gp; (s = strstr(s, "set multiplot")) != NULL; s++)
        if (s == gp || s[-1] == '\n')
            fail_msg("%s: a multiplot (panels), not one axis", p);
    plot_cmd plots[MAX_PLOTS];
    assert_int_equal(plot_commands(gp, plots), 2); /* one plot, once for PNG, once for SVG */
    const plot_cmd *pc = &plots[0];
    assert_int_equal(plots[1].n, pc->n);
    int dash[64], point[64];
    assert_true(narms <= 64);
    for (int a = 0; a < narms; a++) {
        const char *curve = curve_of(pc, a), *key = titled(pc, arms[a]);
        if (!curve || !key)
            fail_msg("%s: arm %s (block %d) has no curve or no key entry", p, arms[a], a);
        assert_non_null(strstr(curve, "using 1:2:4"));     /* loss by iteration, */
        assert_non_null(strstr(curve, "lc rgb variable")); /* coloured by block */
        dash[a] = attr(curve, "dt"), point[a] = attr(key, "pt");
        assert_int_equal(attr(key, "dt"), dash[a]); /* the key shows the arm's line style */
        assert_true(point[a] >= 0);
        for (int b = 0; b < a; b++)
            if (dash[a] == dash[b] && point[a] == point[b])
                fail_msg("%s: arms %s and %s look the same (dt %d, pt %d)", p, arms[b], arms[a],
                         dash[a], point[a]);
    }
    assert_null(curve_of(pc, narms)); /* no other block */
    for (int i = 0; i < 3; i++) {     /* the colour key */
        const char *c = titled(pc, BLOCKS[i].title);
        if (!c || !strstr(c, BLOCKS[i].rgb))
            fail_msg("%s: no key entry '%s' in %s", p, BLOCKS[i].title, BLOCKS[i].rgb);
    }
    free(gp);
}

/* The y axis of compare k's training-loss figure is logarithmic exactly when its narms blocks'
 * means are all positive and span more than a decade, which they do when decade says so. */
static void expect_y_axis(fixture *fx, int k, int narms, int decade)
{
    static double rows[MAX_ROWS][4];
    char p[PATH_CAP], header[256];
    double lo = INFINITY, hi = -INFINITY;
    output(fx, k, "training-loss.dat", p);
    for (int a = 0; a < narms; a++)
        for (int r = 0, n = dat_block(p, a, rows, header); r < n; r++)
            lo = fmin(lo, rows[r][1]), hi = fmax(hi, rows[r][1]);
    const int logy = lo > 0 && hi > 10 * lo;
    if (logy != decade) /* the config no longer shows the case it is here for */
        fail_msg("%s: means in [%g, %g]: %s a decade", p, lo, hi, logy ? "over" : "under");
    char *gp = must_read(output(fx, k, "training-loss.gp", p));
    if (!!strstr(gp, "\nset logscale y") != logy)
        fail_msg("%s: means in [%g, %g], yet the y axis is %s", p, lo, hi,
                 logy ? "linear" : "logarithmic");
    free(gp);
}

/* 1. Two arms, two trials: one axis; the data hold every arm's rows with the block colours of
 * trial 0's metrics.csv; the y axis is linear for these means (within a decade) and
 * logarithmic for the colour compare's (over a decade). */
static void test_training_loss_one_axis(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS2[] = {"joint", "nam"};
    expect_one_axis(fx, 0, ARMS2, 2);
    char p[PATH_CAP], header[256], want[64], blocks[MAX_ROWS][16];
    static double rows[MAX_ROWS][4], iteration[MAX_ROWS];
    int used[3] = {0};
    for (int a = 0; a < 2; a++) {
        int n = dat_block(output(fx, 0, "training-loss.dat", p), a, rows, header);
        snprintf(want, sizeof want, "# %s:", ARMS2[a]);
        assert_int_equal(strncmp(header, want, strlen(want)), 0);
        snprintf(want, sizeof want, "%s/trial-0/metrics.csv", ARMS2[a]);
        assert_int_equal(metrics_rows(output(fx, 0, want, p), iteration, blocks), n);
        assert_int_equal(n, 10); /* 20 steps, a row every 2 */
        for (int r = 0; r < n; r++) {
            int b = 0;
            while (b < 3 && strcmp(blocks[r], BLOCKS[b].block))
                b++;
            if (b == 3)
                fail_msg("%s row %d: block %s", p, r, blocks[r]);
            assert_true(rows[r][0] == iteration[r]);
            assert_int_equal((long)rows[r][3], strtol(BLOCKS[b].rgb + 1, NULL, 16));
            used[b]++;
        }
    }
    assert_true(used[0] > 0 && used[1] > 0 && used[2] == 10); /* NAM: both phases */
    assert_int_equal(dat_block(p, 2, rows, header), 0);       /* a block per arm, no more */
    expect_y_axis(fx, 0, 2, 0);
    expect_y_axis(fx, 2, 2, 1);
    if (have_gnuplot()) {
        int w, h, comp;
        if (stbi_info(output(fx, 0, "training-loss.png", p), &w, &h, &comp) != 1)
            fail_msg("%s: no PNG though gnuplot is installed", p);
    }
}

/* 2. A sweep: eight arms, still one axis, every arm its own look; the key outside the plot,
 * its names as written (no enhanced-text subscripts from the '_' in "nam_lambda=0"). */
static void test_training_loss_many_arms(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS8[] = {"joint_lambda=0",    "joint_lambda=1e-4",
                                        "joint_lambda=1e-3", "joint_lambda=1e-2",
                                        "nam_lambda=0",      "nam_lambda=1e-4",
                                        "nam_lambda=1e-3",   "nam_lambda=1e-2"};
    expect_one_axis(fx, 1, ARMS8, 8);
    char p[PATH_CAP];
    char *gp = must_read(output(fx, 1, "training-loss.gp", p));
    const char *key = strstr(gp, "\nset key ");
    assert_non_null(key);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(key + 1, "\n"), key + 1);
    if (!strstr(line, "outside") || !strstr(line, "noenhanced"))
        fail_msg("%s: '%s': the key is not outside the plot or names are enhanced text", p, line);
    free(gp);
}

/* The labels of the grid's bands: 'TEXT' at graph 0, first Y (Y a row of the magnified
 * image). Returns how many, in script order, up to the first plot. */
static int band_labels(const char *gp, char (*text)[96], double *y)
{
    int n = 0;
    const char *end = strstr(gp, "\nplot ");
    for (const char *s = gp; (s = strstr(s, "\nset label '")) != NULL && s < end; s++) {
        const char *t = s + strlen("\nset label '"), *q = strchr(t, '\'');
        const char *at = q ? strstr(q, "' at graph 0, first ") : NULL;
        if (!at || at != q || memchr(t, '\n', (size_t)(q - t)))
            continue; /* a label elsewhere (the title) */
        assert_true(n < 16);
        snprintf(text[n], 96, "%.*s", (int)(q - t), t);
        y[n++] = strtod(at + strlen("' at graph 0, first "), NULL);
    }
    return n;
}

/* The labelled reconstruction grid of compare k: its script labels the bands "original" then
 * each arm, each label beside its band; its data are reconstructions.png's pixels magnified by
 * an integer; gnuplot draws them one to one (crisp: no pixel smoothed). */
static void expect_labelled_grid(fixture *fx, int k, const char *const *arms, int narms,
                                 int channels)
{
    char p[PATH_CAP], text[16][96];
    double y[16];
    int gw, gh, comp, W = 0, H = 0;
    unsigned char *grid = stbi_load(output(fx, k, "reconstructions.png", p), &gw, &gh, &comp, 3);
    if (!grid)
        fail_msg("%s: not a PNG", p);
    assert_int_equal(comp, channels);
    char *gp = must_read(output(fx, k, "reconstructions-labelled.gp", p));
    assert_int_equal(band_labels(gp, text, y), narms + 1);
    const char *arr = strstr(gp, "binary array=(");
    assert_true(arr && sscanf(arr, "binary array=(%d,%d)", &W, &H) == 2);
    const int s = W / gw, tile = (gh - 1) / (narms + 1) - 1; /* 1-pixel gaps */
    assert_true(s >= 1 && W == s * gw && H == s * gh);
    for (int i = 0; i <= narms; i++) {
        assert_string_equal(text[i], i ? arms[i - 1] : "original");
        const double top = s * (1 + i * (tile + 1)), bottom = top + s * tile;
        if (!(y[i] >= top && y[i] <= bottom))
            fail_msg("%s: label '%s' at row %g, its band is rows %g to %g", p, text[i], y[i], top,
                     bottom);
    }
    size_t len;
    uint8_t *rgb = read_whole(output(fx, k, "reconstructions-labelled.rgb", p), &len);
    assert_int_equal(len, (size_t)3 * W * H);
    int coloured = 0;
    for (int r = 0; r < H; r++)
        for (int c = 0; c < W; c++) {
            const uint8_t *got = rgb + 3 * ((size_t)r * W + c);
            const uint8_t *want = grid + 3 * ((size_t)(r / s) * gw + c / s);
            if (memcmp(got, want, 3))
                fail_msg("%s: pixel (%d, %d) is not reconstructions.png's (%d, %d)", p, c, r, c / s,
                         r / s);
            coloured += got[0] != got[1] || got[1] != got[2];
        }
    assert_true(channels == 3 ? coloured > 0 : coloured == 0);
    free(rgb);
    stbi_image_free(grid);
    free(gp);
}

/* Where gnuplot drew the data pixels in DIR/out-k/reconstructions-labelled.png: the plot area
 * from the script's margins (screen fractions of its terminal size). */
static void expect_crisp(fixture *fx, int k)
{
    char p[PATH_CAP];
    char *gp = must_read(output(fx, k, "reconstructions-labelled.gp", p));
    int tw = 0, th = 0, W = 0, H = 0, pw, ph, comp;
    double lm = 0, tm = 0;
    const char *term = strstr(gp, "set terminal pngcairo size "), *arr = strstr(gp, "array=(");
    const char *l = strstr(gp, "set lmargin at screen "), *t = strstr(gp, "set tmargin at screen ");
    assert_true(term && sscanf(term, "set terminal pngcairo size %d,%d", &tw, &th) == 2);
    assert_true(arr && sscanf(arr, "array=(%d,%d)", &W, &H) == 2);
    assert_true(l && sscanf(l, "set lmargin at screen %lf", &lm) == 1);
    assert_true(t && sscanf(t, "set tmargin at screen %lf", &tm) == 1);
    free(gp);
    unsigned char *png = stbi_load(output(fx, k, "reconstructions-labelled.png", p), &pw, &ph,
                                   &comp, 3);
    if (!png)
        fail_msg("%s: no PNG though gnuplot is installed", p);
    assert_int_equal(pw, tw);
    assert_int_equal(ph, th);
    size_t len;
    uint8_t *rgb = read_whole(output(fx, k, "reconstructions-labelled.rgb", p), &len);
    /* the image's outermost pixels are a gap, blended by cairo's edge; inside, every pixel
     * is exact at one offset near the margins' (±2 for rounding) */
    const int x0 = (int)lround(lm * tw), y0 = (int)lround((1 - tm) * th);
    long best = -1, total = 3L * (W - 2) * (H - 2);
    for (int oy = y0 - 2; oy <= y0 + 2; oy++)
        for (int ox = x0 - 2; ox <= x0 + 2; ox++) {
            long same = 0;
            for (int r = 1; r < H - 1 && oy + r < ph && oy + r >= 0; r++)
                for (int c = 1; c < W - 1 && ox + c < pw && ox + c >= 0; c++)
                    for (int ch = 0; ch < 3; ch++)
                        same += png[3 * ((size_t)(oy + r) * pw + ox + c) + ch] ==
                                rgb[3 * ((size_t)r * W + c) + ch];
            best = same > best ? same : best;
        }
    if (best != total)
        fail_msg("%s: at best %ld of %ld bytes of the grid drawn as they are (smoothed?)", p, best,
                 total);
    free(rgb);
    stbi_image_free(png);
}

/* 3. Grey images: the rows say "original", "joint", "nam"; the picture is crisp. */
static void test_reconstructions_labelled_grey(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS2[] = {"joint", "nam"};
    expect_labelled_grid(fx, 0, ARMS2, 2, 1);
    char p[PATH_CAP];
    int w, h, comp;
    assert_int_equal(stbi_info(output(fx, 0, "reconstructions.png", p), &w, &h, &comp), 1);
    assert_int_equal(h, 1 + 3 * 31); /* the unlabelled grid stays as it is: 10×10 tiles, 3× */
    if (have_gnuplot()) {
        expect_crisp(fx, 0);
        char *svg = must_read(output(fx, 0, "reconstructions-labelled.svg", p));
        assert_non_null(strstr(svg, "</svg>"));
        free(svg);
    }
}

/* 4. Colour images: the labelled grid keeps the channels apart. */
static void test_reconstructions_labelled_colour(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS2[] = {"joint", "nam"};
    expect_labelled_grid(fx, 2, ARMS2, 2, 3);
    if (have_gnuplot())
        expect_crisp(fx, 2);
}

/* 5. A sweep's eight arms each label their band. */
static void test_reconstructions_labelled_many(void **state)
{
    fixture *fx = *state;
    static const char *const ARMS8[] = {"joint_lambda=0",    "joint_lambda=1e-4",
                                        "joint_lambda=1e-3", "joint_lambda=1e-2",
                                        "nam_lambda=0",      "nam_lambda=1e-4",
                                        "nam_lambda=1e-3",   "nam_lambda=1e-2"};
    expect_labelled_grid(fx, 1, ARMS8, 8, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_training_loss_one_axis),
        cmocka_unit_test(test_training_loss_many_arms),
        cmocka_unit_test(test_reconstructions_labelled_grey),
        cmocka_unit_test(test_reconstructions_labelled_colour),
        cmocka_unit_test(test_reconstructions_labelled_many),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
