/* anamo.h — the one public header of anamo, a toolkit for training autoencoders by
 * Nested Alternating Minimization (NAM): encoder and decoder are two parameter blocks, each
 * minimized in turn by its own optimizer, or jointly by one.
 *
 * Every public name starts with anamo_. Functions that can fail return an int status
 * (ANAMO_OK = 0) and, when given a non-NULL anamo_err, fill it with a one-line message that
 * names what failed and where (file, offset or line, key, value). The library never exits and
 * never prints; the caller decides. */
#ifndef ANAMO_H
#define ANAMO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------------------ */
enum anamo_status {
    ANAMO_OK = 0,
    ANAMO_ERR_IO,       /* a file could not be opened, read or written */
    ANAMO_ERR_FORMAT,   /* a file's contents are not what its format requires */
    ANAMO_ERR_CONFIG,   /* a configuration key or value is not allowed */
    ANAMO_ERR_ARG,      /* an argument is out of range or inconsistent */
    ANAMO_ERR_NOMEM,    /* an allocation failed */
    ANAMO_ERR_DIVERGED, /* training produced NaN or Inf */
    ANAMO_ERR_INTERRUPTED /* a stop was requested */
};

#define ANAMO_ERR_MSG_MAX 512
typedef struct anamo_err {
    int code;
    char msg[ANAMO_ERR_MSG_MAX];
} anamo_err;

/* Name of a status code, e.g. "format error". */
const char *anamo_status_name(int code);

/* ---- tensors ----------------------------------------------------------------------------- */
#define ANAMO_MAX_DIMS 4
typedef struct anamo_tensor {
    float *data; /* row-major (C order), 64-byte aligned when allocated by anamo */
    int ndim;
    int64_t shape[ANAMO_MAX_DIMS];
} anamo_tensor;

int64_t anamo_tensor_numel(const anamo_tensor *t);
/* Allocates a zeroed tensor; free with anamo_tensor_free. */
int anamo_tensor_alloc(anamo_tensor *t, int ndim, const int64_t *shape, anamo_err *err);
void anamo_tensor_free(anamo_tensor *t);

/* 64-byte aligned allocation (for SIMD and cache lines); free with anamo_free. */
void *anamo_alloc(size_t bytes);
void anamo_free(void *p);

/* ---- random numbers ---------------------------------------------------------------------- */
/* xoshiro256** (Blackman & Vigna, 2018), seeded through splitmix64 so any 64-bit seed gives a
 * well-mixed state. Plain struct so callers can save and restore it. */
typedef struct anamo_rng {
    uint64_t s[4];
} anamo_rng;

void anamo_rng_seed(anamo_rng *rng, uint64_t seed);
uint64_t anamo_rng_next(anamo_rng *rng);
float anamo_rng_uniform(anamo_rng *rng);                 /* [0, 1), 24 random bits */
float anamo_rng_uniform_range(anamo_rng *rng, float lo, float hi);
float anamo_rng_normal(anamo_rng *rng);                  /* N(0, 1) by Box–Muller */
uint64_t anamo_rng_below(anamo_rng *rng, uint64_t bound); /* uniform in [0, bound), unbiased */

/* ---- datasets ---------------------------------------------------------------------------- */
typedef enum anamo_dtype { ANAMO_U8 = 0, ANAMO_F32 = 1 } anamo_dtype;

/* n samples of dim = c*h*w values each, row-major. Bytes (ANAMO_U8) are pixels, scaled to
 * [0, 1] by 1/255 when a batch is formed; floats are used as they are. */
typedef struct anamo_dataset {
    int64_t n;
    int c, h, w;        /* per-sample shape; a plain table has c = columns, h = w = 1 */
    int64_t dim;        /* c * h * w */
    anamo_dtype dtype;
    void *data;         /* n * dim elements of dtype */
    uint8_t *labels;    /* n labels, or NULL */
    char source[256];   /* where it came from, for messages */
} anamo_dataset;

void anamo_dataset_free(anamo_dataset *ds);

/* Readers. Each validates the file before trusting it and fails with a message naming the file
 * and the offset or line at fault. */
int anamo_idx_read(const char *path, anamo_dataset *out, anamo_err *err);   /* plain or .gz */
int anamo_idx_read_labels(const char *path, uint8_t **labels, int64_t *n, anamo_err *err);
int anamo_npy_read(const char *path, anamo_dataset *out, anamo_err *err);   /* u1, f4, f8; C order */
int anamo_csv_read(const char *path, anamo_dataset *out, anamo_err *err);   /* numeric table */
/* Writes a float32 array of shape (rows, cols) (cols = 0: 1-D of rows). */
int anamo_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                        anamo_err *err);
int anamo_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape,
                       anamo_err *err);

/* Opens a dataset by spec:
 *   mnist:train | mnist:test | fashion-mnist:train | fashion-mnist:test
 *       looked up under data_root/mnist/ (data_root/fashion-mnist/, then
 *       /usr/share/datasets/fashion-mnist/), plain or .gz IDX files;
 *   PATH.idx[.gz] | PATH-idx3-ubyte[.gz] | PATH.npy | PATH.csv      a file of samples;
 *   any spec may end in @N to keep only the first N samples.
 * data_root may be NULL (then "data"). */
int anamo_dataset_open(const char *spec, const char *data_root, anamo_dataset *out,
                       anamo_err *err);
/* Copies samples [first, first+count) into a new dataset (for train/validation splits). */
int anamo_dataset_slice(const anamo_dataset *ds, int64_t first, int64_t count,
                        anamo_dataset *out, anamo_err *err);

/* ---- models ------------------------------------------------------------------------------ */
typedef struct anamo_model anamo_model; /* encoder block, decoder block, normalization */

typedef enum anamo_loss_kind {
    ANAMO_LOSS_MSE = 0,     /* mean over elements: (1/(B·D)) Σ (x̂ − x)² */
    ANAMO_LOSS_MSE_SUM = 1, /* the seeds' form: (1/B) Σ ‖x̂ − x‖² */
    ANAMO_LOSS_BCE = 2      /* mean over elements of binary cross-entropy */
} anamo_loss_kind;

typedef enum anamo_init_kind {
    ANAMO_INIT_PYTORCH = 0, /* nn.Linear default: W, b ~ U(−1/√fan_in, 1/√fan_in) */
    ANAMO_INIT_GLOROT,      /* W ~ U(±√(6/(fan_in+fan_out))), b = 0 */
    ANAMO_INIT_HE,          /* W ~ N(0, 2/fan_in), b = 0 */
    ANAMO_INIT_UNIFORM      /* W, b ~ U(−a, a), a = init_scale ("near zero") */
} anamo_init_kind;

typedef struct anamo_model_spec {
    int in_c, in_h, in_w;     /* input sample shape */
    const char *encoder;      /* layer list, e.g. "linear 128, relu, linear 64, relu" */
    const char *decoder;      /* e.g. "linear 128, relu, linear 784, sigmoid" */
    anamo_init_kind init;
    float init_scale;         /* a for ANAMO_INIT_UNIFORM */
    uint64_t seed;            /* initial weights */
    int max_batch;            /* largest batch forward/backward will see */
} anamo_model_spec;

int anamo_model_create(const anamo_model_spec *spec, anamo_model **out, anamo_err *err);
void anamo_model_free(anamo_model *m);
int64_t anamo_model_code_dim(const anamo_model *m);
int64_t anamo_model_input_dim(const anamo_model *m);
int64_t anamo_model_param_count(const anamo_model *m, int block); /* 0 encoder, 1 decoder */
/* Standardization (x − mean)/std applied to every batch; stats computed on ds (per feature). */
int anamo_model_fit_standardize(anamo_model *m, const anamo_dataset *ds, anamo_err *err);
/* Codes E(x) for rows [first, first+count) of ds, written to codes (count × code_dim). */
int anamo_model_encode(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                       float *codes, anamo_err *err);
/* Reconstructions D(E(x)) in the input's scale (normalization undone). */
int anamo_model_reconstruct(anamo_model *m, const anamo_dataset *ds, int64_t first,
                            int64_t count, float *recon, anamo_err *err);

/* ---- evaluation -------------------------------------------------------------------------- */
typedef struct anamo_metrics {
    int64_t n;
    double loss;          /* reconstruction loss + λ · code ℓ1 */
    double recon_loss;    /* the configured reconstruction loss */
    double mse;           /* mean squared error per element, whatever the loss */
    double bias;          /* (1/M) Σ ‖x − x̂‖₂, the seeds' reconstruction bias */
    double code_l1;       /* (1/M) Σ ‖E(x)‖₁ */
    double input_l1;      /* (1/M) Σ ‖x‖₁ */
    double zero_codes;    /* fraction of code entries exactly 0 */
    int64_t dead_units;   /* code units that are 0 on every sample */
} anamo_metrics;

int anamo_evaluate(anamo_model *m, const anamo_dataset *ds, anamo_loss_kind loss, float lambda,
                   anamo_metrics *out, anamo_err *err);

#ifdef __cplusplus
}
#endif
#endif
