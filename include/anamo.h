/* anamo.h — the library's public header: anamo, a toolkit for training autoencoders by
 * Nested Alternating Minimization (NAM): encoder and decoder are two parameter blocks, each
 * minimized in turn by its own optimizer, or jointly by one. Programs (not libraries) also have
 * anamo_program.h: the environment a main() sets up first, and PNG grids.
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

#define ANAMO_VERSION_MAJOR 0
#define ANAMO_VERSION_MINOR 2
#define ANAMO_VERSION_PATCH 0
#define ANAMO_VERSION_STRING "0.2.0"

/* ---- errors ------------------------------------------------------------------------------ */
enum anamo_status {
    ANAMO_OK = 0,
    ANAMO_ERR_IO,         /* a file could not be opened, read or written */
    ANAMO_ERR_FORMAT,     /* a file's contents are not what its format requires */
    ANAMO_ERR_CONFIG,     /* a configuration key or value is not allowed */
    ANAMO_ERR_ARG,        /* an argument is out of range or inconsistent */
    ANAMO_ERR_NOMEM,      /* an allocation failed */
    ANAMO_ERR_DIVERGED,   /* training produced NaN or Inf */
    ANAMO_ERR_INTERRUPTED /* a stop was requested */
};

#define ANAMO_ERR_MSG_MAX 512
typedef struct anamo_err {
    int code;
    char msg[ANAMO_ERR_MSG_MAX];
} anamo_err;

/* Name of a status code, e.g. "format error". */
const char *anamo_status_name(int code);

#if defined(__GNUC__)
#define ANAMO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ANAMO_PRINTF(a, b)
#endif
/* Fills err (if not NULL) with code and the printf-formatted message, and returns code:
 *     return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %lld: ...", path, off);
 * for programs built on anamo that report their own errors the way it does. */
int anamo_err_set(anamo_err *err, int code, const char *fmt, ...) ANAMO_PRINTF(3, 4);
/* Prepends "prefix: " to err's message (context on the way up); returns err->code
 * (ANAMO_ERR_ARG when err is NULL, so it never reads as success). */
int anamo_err_context(anamo_err *err, const char *fmt, ...) ANAMO_PRINTF(2, 3);
void anamo_err_clear(anamo_err *err);

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

/* What the products run on: the CPU, its usable vector features, the BLAS and its kernel. */
typedef struct anamo_machine {
    char cpu[64];         /* cpuid's brand string */
    int family, model;    /* as /proc/cpuinfo shows them */
    char features[128];   /* "sse3 avx avx2 fma avx512f …", those the OS lets run */
    char blas[160];       /* the BLAS's own description (OpenBLAS: version, build, core) */
    char kernel[32];      /* the kernel in use ("Haswell", "SkylakeX", …) */
    char best_kernel[32]; /* the one the features call for ("none" without AVX) */
    char kernel_note[96]; /* who chose it: OpenBLAS, the user, or anamo over a fallback */
    char dnnl[96];        /* oneDNN (the convolutions): version, threading, the ISA it uses */
    char mpi[96];         /* MPI for data-parallel training: its library, or "not built in" */
    char omp_wait[96];    /* how idle OpenMP threads wait (spin count or policy), who chose it */
} anamo_machine;
void anamo_machine_describe(anamo_machine *out);

/* ---- random numbers ---------------------------------------------------------------------- */
/* xoshiro256** (Blackman & Vigna, 2018), seeded through splitmix64 so any 64-bit seed gives a
 * well-mixed state. Plain struct so callers can save and restore it. */
typedef struct anamo_rng {
    uint64_t s[4];
} anamo_rng;

void anamo_rng_seed(anamo_rng *rng, uint64_t seed);
uint64_t anamo_rng_next(anamo_rng *rng);
float anamo_rng_uniform(anamo_rng *rng); /* [0, 1), 24 random bits */
float anamo_rng_uniform_range(anamo_rng *rng, float lo, float hi);
float anamo_rng_normal(anamo_rng *rng);                   /* N(0, 1) by Box–Muller */
uint64_t anamo_rng_below(anamo_rng *rng, uint64_t bound); /* uniform in [0, bound), unbiased */

/* ---- datasets ---------------------------------------------------------------------------- */
typedef enum anamo_dtype { ANAMO_U8 = 0, ANAMO_F32 = 1 } anamo_dtype;

/* n samples of dim = c*h*w values each, row-major. Bytes (ANAMO_U8) are pixels, scaled to
 * [0, 1] by 1/255 when a batch is formed; floats are used as they are. */
typedef struct anamo_dataset {
    int64_t n;
    int c, h, w; /* per-sample shape; a plain table has c = columns, h = w = 1 */
    int64_t dim; /* c * h * w */
    anamo_dtype dtype;
    void *data;       /* n * dim elements of dtype */
    uint8_t *labels;  /* n labels, or NULL */
    char source[256]; /* where it came from, for messages */
    int borrowed;     /* data and labels are the caller's (anamo_dataset_wrap): free leaves
                           them alone */
} anamo_dataset;

/* Releases what anamo allocated (not a wrapped dataset's memory) and zeroes *ds. */
void anamo_dataset_free(anamo_dataset *ds);

/* A dataset over the caller's memory, without a copy: n samples of c·h·w values each,
 * row-major, of dtype (ANAMO_F32: 4-byte aligned), and n labels or NULL. The memory must
 * outlive the dataset and stay unchanged while anamo reads it; nothing anamo does writes to it
 * (a hold-out split of a wrapped set copies). A NULL or misaligned array, n < 1 or a
 * non-positive dimension is an ANAMO_ERR_ARG naming it. name (may be NULL) appears in
 * messages. */
int anamo_dataset_wrap(anamo_dataset *out, const void *data, anamo_dtype dtype, int64_t n, int c,
                       int h, int w, const uint8_t *labels, const char *name, anamo_err *err);
/* Rows [first, first+count) as floats in the scale training sees (bytes / 255), into out
 * (count × dim). */
int anamo_dataset_rows(const anamo_dataset *ds, int64_t first, int64_t count, float *out,
                       anamo_err *err);

/* Readers. Each validates the file before trusting it and fails with a message naming the file
 * and the offset or line at fault. */
int anamo_idx_read(const char *path, anamo_dataset *out, anamo_err *err); /* plain or .gz */
/* *labels is allocated with anamo_alloc; release it with anamo_free. */
int anamo_idx_read_labels(const char *path, uint8_t **labels, int64_t *n, anamo_err *err);
int anamo_npy_read(const char *path, anamo_dataset *out, anamo_err *err); /* u1, f4, f8; C order */
int anamo_csv_read(const char *path, anamo_dataset *out, anamo_err *err); /* numeric table */
/* Write an NPY v1.0 file (C order) of ndim (1..4) dimensions. */
int anamo_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                        anamo_err *err);
int anamo_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape,
                       anamo_err *err);

/* Opens a dataset by spec:
 *   mnist:train | mnist:test | fashion-mnist:train | fashion-mnist:test
 *       looked up under data_root/mnist/ (data_root/fashion-mnist/, then
 *       /usr/share/datasets/fashion-mnist/), plain or .gz IDX files;
 *   cifar10:train | cifar10:test
 *       the CIFAR-10 binary batches under data_root/cifar10/cifar-10-batches-bin/ (or
 *       data_root/cifar-10-batches-bin/), plain or .gz; labels kept;
 *   halves:train | halves:test | halves:N:SEED   a built-in generator (src/data/generate.c);
 *   steps | steps:N | steps:N:A   seed 002's step functions: all N + 1 steps of length N and
 *       amplitude A (defaults 128 and 5), sample p holding 0 before position p and A from it on
 *       (src/data/generate.c);
 *   PATH.idx[.gz] | PATH-idx3-ubyte[.gz] | PATH.npy | PATH.csv      a file of samples;
 *   any spec may end in @N to keep only the first N samples.
 * data_root may be NULL (then "data"). */
int anamo_dataset_open(const char *spec, const char *data_root, anamo_dataset *out, anamo_err *err);
/* Copies samples [first, first+count) into a new dataset (for train/validation splits);
 * out must not be ds. */
int anamo_dataset_slice(const anamo_dataset *ds, int64_t first, int64_t count, anamo_dataset *out,
                        anamo_err *err);

/* Moves a reproducible fraction of ds's samples into *validation (chosen uniformly without
 * replacement; which ones depends on (ds->n, fraction, seed) alone) and keeps the rest in ds;
 * both keep the original order, labels travel with their samples. Only the held-out part is
 * allocated; ds shrinks in place. At least one sample must be left on each side. */
int anamo_dataset_hold_out(anamo_dataset *ds, double fraction, uint64_t seed,
                           anamo_dataset *validation, anamo_err *err);

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

/* How Conv2d and ConvTranspose2d layers run. AUTO: on oneDNN's primitives where oneDNN has one
 * for the layer (every layer of the example models), im2col + sgemm otherwise; IM2COL: always
 * im2col + sgemm on the BLAS; DNNL: oneDNN, and a layer it cannot do is an error. The two give
 * the same results up to float rounding (bench/bench_conv_layers.c: which is faster). */
typedef enum anamo_conv_impl {
    ANAMO_CONV_AUTO = 0,
    ANAMO_CONV_IM2COL,
    ANAMO_CONV_DNNL
} anamo_conv_impl;

/* The two blocks of an autoencoder, as layers, tensors and parameter counts name them. */
typedef enum anamo_block { ANAMO_ENCODER = 0, ANAMO_DECODER = 1 } anamo_block;

typedef struct anamo_model_spec {
    int in_c, in_h, in_w; /* input sample shape */
    const char *encoder;  /* layer list, e.g. "linear 128, relu, linear 64, relu" */
    const char *decoder;  /* e.g. "linear 128, relu, linear 784, sigmoid" */
    anamo_init_kind init;
    float init_scale;     /* a for ANAMO_INIT_UNIFORM */
    uint64_t seed;        /* initial weights */
    int max_batch;        /* largest batch forward/backward will see */
    int binary_codes;     /* evaluate, encode and reconstruct with codes [E(x) ≥ 0.5]
                                 (binary-code encoders; training uses E(x) as it is) */
    anamo_conv_impl conv; /* how the convolutions run */
} anamo_model_spec;

int anamo_model_create(const anamo_model_spec *spec, anamo_model **out, anamo_err *err);
void anamo_model_free(anamo_model *m);
int64_t anamo_model_code_dim(const anamo_model *m);
int64_t anamo_model_input_dim(const anamo_model *m);
int64_t anamo_model_param_count(const anamo_model *m, anamo_block block);
/* How each convolution runs: "encoder.0 oneDNN (FORWARD, BACKWARD DATA, BACKWARD WEIGHTS
 * implementations); …" or "decoder.2 im2col"; "" when the model has none (truncated to size). */
void anamo_model_conv_impl(const anamo_model *m, char *out, size_t size);
/* Standardization (x − mean)/std applied to every batch; stats computed on ds (per feature). */
int anamo_model_fit_standardize(anamo_model *m, const anamo_dataset *ds, anamo_err *err);
/* Codes E(x) for rows [first, first+count) of ds, written to codes (count × code_dim). */
int anamo_model_encode(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                       float *codes, anamo_err *err);
/* Reconstructions D(E(x)) in the input's scale (normalization undone). */
int anamo_model_reconstruct(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                            float *recon, anamo_err *err);

/* The same three maps on the caller's arrays, n rows each (row-major float32, 4-byte aligned):
 * x is n × x_dim, codes n × code_dim, out n × out_dim. The dims are the caller's idea of the
 * shapes: one that does not match the model's (anamo_model_input_dim, anamo_model_code_dim) is
 * an ANAMO_ERR_ARG naming both, as is a NULL or misaligned array or n < 1. Results equal
 * anamo_model_encode / anamo_model_reconstruct on the same rows bit for bit. decode runs the
 * decoder on the codes as given (binary-code models too) and undoes the normalization. */
int anamo_encode(anamo_model *m, const float *x, int64_t n, int64_t x_dim, float *codes,
                 int64_t code_dim, anamo_err *err);
int anamo_decode(anamo_model *m, const float *codes, int64_t n, int64_t code_dim, float *out,
                 int64_t out_dim, anamo_err *err);
int anamo_reconstruct(anamo_model *m, const float *x, int64_t n, int64_t x_dim, float *out,
                      int64_t out_dim, anamo_err *err);

/* The model's state, by PyTorch's state_dict names and shapes ("encoder.0.weight",
 * "decoder.1.running_mean", "normalize.mean", …): parameters (with their gradients, as the
 * last backward left them), batch norm's buffers and the input normalization. The views point
 * into the model: writes to data change the model. */
typedef enum anamo_tensor_role {
    ANAMO_ROLE_PARAMETER = 0, /* trained; grad is its gradient */
    ANAMO_ROLE_BUFFER = 1,    /* batch norm's running statistics (float) */
    ANAMO_ROLE_COUNT = 2,     /* num_batches_tracked: one int64 at count, data NULL */
    ANAMO_ROLE_NORMALIZE = 3  /* normalize.mean, normalize.std (standardized models) */
} anamo_tensor_role;

typedef struct anamo_tensor_view {
    const char *name;
    anamo_tensor_role role;
    int block;      /* 0 encoder, 1 decoder, -1 neither */
    float *data;    /* NULL for a count */
    float *grad;    /* parameters only, else NULL */
    int64_t *count; /* ANAMO_ROLE_COUNT only */
    int ndim;
    int64_t shape[ANAMO_MAX_DIMS];
    int64_t numel;
} anamo_tensor_view;

/* How many named tensors the model has; the i-th (0 ≤ i < count) in state_dict order. */
int anamo_model_tensor_count(const anamo_model *m);
int anamo_model_tensor_at(anamo_model *m, int i, anamo_tensor_view *out, anamo_err *err);
/* The tensor called name; an unknown name is an ANAMO_ERR_ARG naming it. */
int anamo_model_tensor(anamo_model *m, const char *name, anamo_tensor_view *out, anamo_err *err);

/* The layers of a block (0 encoder, 1 decoder) as built: what each is, its shapes and its
 * parameters; for tools that count a model's work (bench/ceiling.h) or show it. */
typedef enum anamo_layer_kind {
    ANAMO_LAYER_LINEAR = 0,
    ANAMO_LAYER_ACTIVATION,
    ANAMO_LAYER_CONV2D,    /* nn.Conv2d */
    ANAMO_LAYER_CONVT2D,   /* nn.ConvTranspose2d */
    ANAMO_LAYER_BATCHNORM, /* nn.BatchNorm1d or nn.BatchNorm2d */
    ANAMO_LAYER_FLATTEN,
    ANAMO_LAYER_UNFLATTEN
} anamo_layer_kind;

typedef struct anamo_layer_info {
    char name[32]; /* PyTorch's module name, "encoder.0" */
    char item[96]; /* the layer as an item of its list, "conv2d 12 k4 s2 p1" */
    anamo_layer_kind kind;
    int block, index; /* index: position in its block (nn.Sequential numbering) */
    int in_c, in_h, in_w, out_c, out_h, out_w; /* features: (F, 1, 1) */
    int64_t in_dim, out_dim;
    int kernel, stride, padding, output_padding; /* convolutions only */
    int64_t params;                              /* weights and biases */
} anamo_layer_info;
int anamo_model_layer_count(const anamo_model *m, int block);
int anamo_model_layer(const anamo_model *m, int block, int i, anamo_layer_info *out,
                      anamo_err *err);

/* ---- evaluation -------------------------------------------------------------------------- */
/* The code penalty λ·(1/B) Σ_b Σ_j n_j·|h_bj|:
 *   ANAMO_PENALTY_L1           n_j = 1, the seeds' λ·‖E(x)‖₁
 *   ANAMO_PENALTY_DECODER_L1   n_j = ‖W₁[:, j]‖₂, the norm of the decoder's first-layer column
 *                              that reads code unit j (a transposed convolution: the kernel
 *                              slice of unit j's channel), so that shrinking the code while the
 *                              columns grow gains nothing (SAELens'
 *                              scale_sparsity_penalty_by_decoder_norm) */
typedef enum anamo_penalty_kind {
    ANAMO_PENALTY_L1 = 0,
    ANAMO_PENALTY_DECODER_L1 = 1
} anamo_penalty_kind;

/* Codes of the Jacobian-weighted ℓ1 are taken from this many evenly spaced samples of the set
 * (each costs code_dim tangent passes through the decoder) unless the spec says otherwise. */
#define ANAMO_JACOBIAN_SAMPLES 256

typedef struct anamo_eval_spec {
    anamo_loss_kind loss; /* the reconstruction loss the model was trained with */
    float lambda;         /* and its code penalty */
    anamo_penalty_kind penalty;
    int64_t jacobian_samples; /* 0: ANAMO_JACOBIAN_SAMPLES; < 0: not computed (NaN) */
} anamo_eval_spec;

typedef struct anamo_metrics {
    int64_t n;
    double loss;          /* reconstruction loss + λ · the penalty's code ℓ1 */
    double recon_loss;    /* the configured reconstruction loss */
    double mse;           /* mean squared error per element, whatever the loss */
    double bias;          /* (1/M) Σ ‖x − x̂‖₂, the seeds' reconstruction bias */
    double code_l1;       /* (1/M) Σ ‖E(x)‖₁ */
    double input_l1;      /* (1/M) Σ ‖x‖₁ */
    double zero_codes;    /* fraction of code entries exactly 0 */
    int64_t dead_units;   /* code units that are 0 on every sample */
    double dead_fraction; /* dead_units / code_dim */
    double l0;            /* (1/M) Σ #{j : h_j ≠ 0}: nonzero code entries per sample */
    /* Scale-aware measures (docs/MEASURES.md). NaN where they do not apply. */
    double code_l1_decoder; /* (1/M) Σ Σ_j ‖W₁[:, j]‖₂·|h_j|: weighted by the decoder's
                                first-layer column norms (a linear or transposed-convolution
                                first layer; NaN otherwise) */
    double code_l1_jacobian; /* (1/M') Σ Σ_j ‖∂z/∂h_j‖₂·|h_j| over jacobian_samples samples,
                                z the decoder's output before its final activation: invariant to
                                every rescaling the decoder cannot see */
    int64_t jacobian_samples; /* M' (evenly spaced over the set), 0 when not computed */
    double explained_variance; /* 1 − Σ‖x − x̂‖² / Σ‖x − x̄‖², x̄ the training set's mean (the
                                  evaluated set's own when the model holds none) */
    int mean_from_train; /* x̄ was the training set's */
    /* binary codes only (model spec binary_codes): bit usage */
    double ones;            /* fraction of code bits that are 1 */
    int64_t bits_used;      /* code units that are 1 on some samples and 0 on others */
    int64_t distinct_codes; /* different code words on the set (codes of ≤ 64 bits; −1 for
                               longer codes; 0 when codes are not binary) */
} anamo_metrics;

int anamo_evaluate(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                   anamo_metrics *out, anamo_err *err);
/* Remembers the mean of ds (the training set), per feature in the input's scale, as the x̄ of
 * explained variance; checkpoints keep it ("data.mean"). The trainer calls it. */
int anamo_model_fit_data_mean(anamo_model *m, const anamo_dataset *ds, anamo_err *err);

/* Latent linearity: R² of the least-squares fit target ≈ c₀ + Σ_k c_k code_k over n samples
 * (codes n × code_dim, row-major). For a 1-D code it is the squared correlation of code and
 * target, the R² of "code against step position" (seed 002). A constant target or code gives
 * r2 = 0. */
int anamo_latent_linearity(const float *codes, int64_t n, int64_t code_dim, const double *target,
                           double *r2, anamo_err *err);

/* ---- principal component analysis (seed 001's baseline) ----------------------------------- */
typedef struct anamo_pca {
    int64_t dim, k;
    double *mean;       /* dim: the training set's mean */
    double *components; /* k × dim: orthonormal rows, the top-k principal directions */
    double *variances; /* dim: eigenvalues of the covariance (1/N) Σ (x−μ)(x−μ)ᵀ, decreasing */
    double optimum_mse; /* Eckart–Young: Σ_{i>k} variances[i] / dim, the least mean squared error
                            per element of any rank-k affine reconstruction of the set */
} anamo_pca;

/* Fits the top-k principal subspace of ds (1 <= k <= dim) through LAPACK (dsyevd). */
int anamo_pca_fit(const anamo_dataset *ds, int64_t k, anamo_pca *out, anamo_err *err);
void anamo_pca_free(anamo_pca *p);
/* Mean squared error per element of x ≈ μ + P Pᵀ (x − μ) over ds. */
int anamo_pca_mse(const anamo_pca *p, const anamo_dataset *ds, double *mse, anamo_err *err);
/* Whether the model's decoder is affine (linear layers, identity, flatten/unflatten only), so
 * that its column space is defined. */
int anamo_model_decoder_is_affine(const anamo_model *m);
/* Principal angles (radians, ascending, k of them) between the column space of the affine
 * decoder's linear part, in the input's scale (normalization undone), and the PCA subspace.
 * Fails with ANAMO_ERR_ARG when the decoder is not affine or its code size is not p->k. It runs
 * the decoder on unit codes, so like anamo_evaluate it overwrites the model's forward buffers. */
int anamo_pca_principal_angles(const anamo_pca *p, anamo_model *m, double *angles, anamo_err *err);

/* ---- training ---------------------------------------------------------------------------- */
/* What a phase runs. Joint training is one JOINT phase; NAM is a cycle of ENCODER and DECODER
 * phases; ANAMO is one ANAMO phase; free codes one FREECODES phase. */
typedef enum anamo_phase_kind {
    ANAMO_PHASE_ENCODER = 0,  /* NAM: the encoder's optimizer steps, the decoder is held */
    ANAMO_PHASE_DECODER = 1,  /* NAM: the decoder's optimizer steps, the encoder is held */
    ANAMO_PHASE_JOINT = 2,    /* one optimizer step on every weight */
    ANAMO_PHASE_ANAMO = 3,    /* ANAMO (seed 000, Algorithm 1): per mini-batch, enc_iters FISTA
                                iterations on the encoder, then dec_iters accelerated-gradient
                                iterations on the decoder */
    ANAMO_PHASE_FREECODES = 4 /* binary codes, seed 000's third variant: free codes H̃ (N × m)
                                 learned by FISTA (soft threshold) alternating with the decoder;
                                 at the end h = [H̃ > 0] and the encoder is fitted to h */
} anamo_phase_kind;

/* What a phase's optimizer settings may name. The values are stored in checkpoints: append,
 * never renumber. */
typedef enum anamo_optimizer {
    ANAMO_OPT_SGD = 0,
    ANAMO_OPT_ADAM,
    ANAMO_OPT_MOMENTUM,    /* torch.optim.SGD(momentum=β) */
    ANAMO_OPT_ACCELERATED, /* accelerated gradient with the s_j sequence (FISTA without prox) */
    ANAMO_OPT_ADAGRAD,
    ANAMO_OPT_RMSPROP,
    ANAMO_OPT_FISTA,   /* proximal gradient with the s_j momentum (Beck & Teboulle 2009) */
    ANAMO_OPT_NESTEROV /* torch.optim.SGD(momentum=β, nesterov=True) */
} anamo_optimizer;
typedef enum anamo_prox {
    ANAMO_PROX_NONE = 0,
    ANAMO_PROX_L1,
    ANAMO_PROX_NONNEG,
    ANAMO_PROX_L1_NONNEG
} anamo_prox;
typedef enum anamo_restart {
    ANAMO_RESTART_NONE = 0,
    ANAMO_RESTART_FUNCTION,
    ANAMO_RESTART_GRADIENT
} anamo_restart;
typedef enum anamo_step_rule { ANAMO_STEP_FIXED = 0, ANAMO_STEP_BACKTRACK } anamo_step_rule;
typedef enum anamo_schedule {
    ANAMO_SCHEDULE_CONSTANT = 0,
    ANAMO_SCHEDULE_STEP,
    ANAMO_SCHEDULE_PLATEAU
} anamo_schedule;
typedef enum anamo_fit { ANAMO_FIT_AUTO = 0, ANAMO_FIT_LEAST_SQUARES, ANAMO_FIT_BCE } anamo_fit;

/* The names of every enumeration above, in one table each (src/core/names.c): configs, messages
 * and bindings read them from here. */
typedef enum anamo_enum {
    ANAMO_ENUM_LOSS = 0,     /* anamo_loss_kind: mse | mse_sum | bce */
    ANAMO_ENUM_INIT,         /* anamo_init_kind: pytorch | glorot | he | uniform */
    ANAMO_ENUM_CONV,         /* anamo_conv_impl: auto | im2col | dnnl */
    ANAMO_ENUM_PENALTY,      /* anamo_penalty_kind: l1 | decoder_l1 */
    ANAMO_ENUM_DECODER_NORM, /* anamo_decoder_norm: none | sphere | ball */
    ANAMO_ENUM_OPTIMIZER,    /* anamo_optimizer: sgd | momentum | nesterov | … */
    ANAMO_ENUM_PROX,         /* anamo_prox: none | l1 | nonneg | l1_nonneg */
    ANAMO_ENUM_RESTART,      /* anamo_restart: none | function | gradient */
    ANAMO_ENUM_STEP_RULE,    /* anamo_step_rule: fixed | backtrack */
    ANAMO_ENUM_SCHEDULE,     /* anamo_schedule: constant | step | plateau */
    ANAMO_ENUM_FIT,          /* anamo_fit: auto | least_squares | bce */
    ANAMO_ENUM_COUNT
} anamo_enum;
/* The name of value (NULL when it is not one), the value of name (-1 when it is not one), and
 * every name as "a|b|c" in the order users read them. */
const char *anamo_enum_name(anamo_enum e, int value);
int anamo_enum_parse(anamo_enum e, const char *name);
const char *anamo_enum_allowed(anamo_enum e);

#define ANAMO_MAX_PHASES 16
#define ANAMO_NAME_MAX 32

/* A block's optimizer: which method and its settings (PyTorch's names and defaults). */
typedef struct anamo_optim_settings {
    anamo_optimizer kind;
    float lr, beta1, beta2, eps, weight_decay;
    float momentum;  /* momentum and nesterov's β */
    float alpha;     /* RMSProp smoothing */
    anamo_prox prox; /* fista's proximal map, of prox_lambda·g */
    float prox_lambda;
    anamo_restart restart;     /* the accelerated methods' momentum restart */
    anamo_step_rule step_rule; /* backtrack: Beck–Teboulle (sgd, accelerated, fista) */
    float backtrack_eta;       /* L grows by this factor per trial */
} anamo_optim_settings;

/* The learning rate's schedule, applied at each epoch's end. */
typedef struct anamo_lr_schedule {
    anamo_schedule kind;
    int step_size; /* step: every step_size epochs, lr ·= gamma */
    float gamma;
    int patience;    /* plateau: after patience epochs without a relative improvement of */
    float threshold; /* threshold, lr ·= factor, down to min_lr */
    float factor, min_lr;
} anamo_lr_schedule;

/* An ANAMO phase's inner iterations: J_enc and J_dec, the steps e and d (the first guesses
 * when opt.step_rule backtracks), and the sub-gradient prox of λg: K iterations of prox_step.
 * The method itself is fixed (FISTA on the encoder, the accelerated method on the decoder);
 * opt.restart, opt.step_rule and opt.backtrack_eta apply to both. */
typedef struct anamo_anamo_settings {
    int enc_iters, dec_iters;
    float enc_lr, dec_lr;
    int prox_iters;
    float prox_step;
} anamo_anamo_settings;

/* A free-codes phase: code_iters FISTA iterations of step code_lr on the codes, dec_iters
 * accelerated iterations of step dec_lr on the decoder; then the encoder is fitted to the binary
 * codes (fit: auto, least squares for an affine encoder, else bce — fit_epochs of Adam at
 * fit_lr) and the decoder refitted to them for refit_epochs. */
typedef struct anamo_freecodes_settings {
    int code_iters, dec_iters;
    float code_lr, dec_lr;
    anamo_fit fit;
    int fit_epochs, refit_epochs;
    float fit_lr;
} anamo_freecodes_settings;

/* One phase of a scheme: what it runs, with which optimizer, for how long, on what batches.
 * The length is in epochs (a phase of E epochs lasts until E·N samples have passed) or, if
 * iterations > 0, in steps (mini-batches). */
typedef struct anamo_phase {
    char name[ANAMO_NAME_MAX]; /* shown in logs, e.g. "decoder" */
    anamo_phase_kind kind;
    anamo_optim_settings opt;
    anamo_lr_schedule schedule;
    int batch;
    double epochs;
    int64_t iterations;
    anamo_anamo_settings anamo;         /* kind ANAMO_PHASE_ANAMO only */
    anamo_freecodes_settings freecodes; /* kind ANAMO_PHASE_FREECODES only */
} anamo_phase;

/* Unit-norm decoder: after every decoder update the decoder's first-layer columns (per code
 * unit; a transposed convolution: per input channel) lie on the unit sphere or in the unit ball
 * (docs/MEASURES.md says which to choose and why). */
typedef enum anamo_decoder_norm {
    ANAMO_DECODER_NORM_NONE = 0,
    ANAMO_DECODER_NORM_SPHERE = 1,
    ANAMO_DECODER_NORM_BALL = 2
} anamo_decoder_norm;

/* anamo_train_spec.cache_codes: cache where the codes are read more than once (the config's
 * default, train.cache_codes = auto) */
#define ANAMO_CACHE_CODES_AUTO 2

typedef struct anamo_train_spec {
    anamo_loss_kind loss;
    float lambda;               /* code penalty λ·(1/B)Σ_b Σ_j n_j·|h_bj| */
    anamo_penalty_kind penalty; /* n_j = 1 or the decoder's column norms */
    anamo_decoder_norm decoder_norm;
    /* Dead-unit resampling (Anthropic, "Towards Monosemanticity", 2023): every resample_every
     * steps (0: never) the code units that were zero on every training sample of the last
     * resample_window steps are re-initialized (src/train/resample.c) */
    int64_t resample_every, resample_window;
    int64_t jacobian_samples; /* for the per-epoch and final metrics (see anamo_eval_spec) */
    int nphases;
    anamo_phase phases[ANAMO_MAX_PHASES]; /* run in order, cycling, until the budget is spent */
    double epochs; /* total budget: epochs·N training samples, over all phases */
    uint64_t seed; /* shuffling: epoch e's order is a function of (seed, e) alone */
    int log_every; /* iterations per log row */
    /* 1: a decoder phase computes the training set's codes at its start and reuses them; 0: it
     * computes each batch's; ANAMO_CACHE_CODES_AUTO: 1 only where some decoder phase reads a
     * row's codes more than once before the encoder changes (see anamo_trainer_create) */
    int cache_codes;
    int eval_every_epoch; /* evaluate the test set after each epoch */
    /* With a validation set (anamo_trainer_set_validation): stop when its loss has not improved
     * on its best for this many epochs (0: never). The plateau schedule monitors it too. */
    int early_stopping;
    /* Stop once the training work (anamo_trainer_work, both blocks) reaches this many FLOP,
     * after the step that reaches it (0: no limit): arms compared at equal compute. */
    double flop_budget;
} anamo_train_spec;

/* A phase with PyTorch's defaults for the optimizer's other settings, a constant schedule, and
 * the iteration counts of the configs' [anamo] and [freecodes] defaults, their steps at lr. */
anamo_phase anamo_phase_default(const char *name, anamo_phase_kind kind, anamo_optimizer optimizer,
                                float lr, int batch, double epochs);

typedef struct anamo_log_row {
    int64_t epoch;     /* 1-based */
    int64_t iteration; /* 1-based, over the whole run */
    const char *phase;
    anamo_phase_kind kind;            /* the phase's */
    double loss, recon_loss, code_l1; /* means over the iterations since the last row */
    double elapsed;                   /* training seconds so far */
    double samples_per_s;             /* since the last row */
    double progress;                  /* fraction of the budget done */
} anamo_log_row;

typedef struct anamo_epoch_row {
    int64_t epoch;
    const char *phase;                                  /* the phase that ran most of the epoch */
    double train_loss, train_recon_loss, train_code_l1; /* means over the epoch's batches */
    int has_test;
    anamo_metrics test;
    int has_validation;
    anamo_metrics validation; /* without the Jacobian measure (jacobian_samples 0) */
    double flop;              /* training FLOP of the run so far (both blocks) */
    double seconds;           /* training time of this epoch (evaluation excluded) */
    int64_t weights_updated;  /* parameters that some step of the epoch changed */
    int64_t encoder_steps, decoder_steps;
    int64_t resampled; /* code units re-initialized by resampling in this epoch */
} anamo_epoch_row;

typedef struct anamo_train_hooks {
    void *ctx;
    void (*on_log)(void *ctx, const anamo_log_row *row);
    int (*on_epoch)(void *ctx, const anamo_epoch_row *row); /* nonzero stops the run */
    /* after every step, the run's position updated (a checkpoint written here resumes
     * exactly); nonzero stops the run */
    int (*on_step)(void *ctx, int64_t iteration, double elapsed);
    volatile int *stop; /* when it becomes nonzero, the run stops after the current step */
} anamo_train_hooks;

typedef struct anamo_trainer anamo_trainer;

/* Work done by one block: samples passed forward and backward through it (a partial pass
 * counts as one), and the FLOP of the matrix products those passes ran — 2 per multiply-add of
 * each linear, Conv2d and ConvTranspose2d layer's forward, input gradient and weight gradient,
 * each only when it ran; elementwise work (activations, batch norm, the optimizer) is not
 * counted. */
typedef struct anamo_work {
    int64_t forward_samples, backward_samples;
    double flop;
} anamo_work;

int anamo_trainer_create(anamo_model *m, const anamo_train_spec *spec, const anamo_dataset *train,
                         const anamo_dataset *test, anamo_trainer **out, anamo_err *err);
void anamo_trainer_free(anamo_trainer *t);
/* A held-out set evaluated after every epoch: what the plateau schedule monitors (its loss,
 * penalty included; else the epoch's mean training loss) and early stopping watches. Kept by
 * pointer, like train and test. */
int anamo_trainer_set_validation(anamo_trainer *t, const anamo_dataset *validation, anamo_err *err);
/* The epoch of the best validation loss so far (0: none) and that loss; whether early stopping
 * ended the run. */
int64_t anamo_trainer_best_epoch(const anamo_trainer *t, double *best_loss);
int anamo_trainer_stopped_early(const anamo_trainer *t);
/* The training work of the run so far, resumed parts included, encoder [0] and decoder [1]:
 * every pass of the steps, of a decoder phase's code cache, of line searches and of the
 * free-codes fit; none of evaluation. */
void anamo_trainer_work(const anamo_trainer *t, anamo_work out[2]);
/* Trains until the budget is spent (ANAMO_OK), a stop is requested (ANAMO_ERR_INTERRUPTED),
 * the loss turns NaN/Inf (ANAMO_ERR_DIVERGED: the message names phase, epoch, iteration and
 * block; the parameters are those of the last good step), or an error. */
int anamo_trainer_run(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_err *err);
int anamo_trainer_done(const anamo_trainer *t);

/* The step-level loop, for callers who drive training themselves. anamo_trainer_run is
 *     while (!anamo_trainer_done(t)) anamo_trainer_step(t, hooks, NULL, err);
 *     anamo_trainer_finish(t, err);
 * with the same results bit for bit. A step is one mini-batch of the current phase (phase set
 * up on entry, left at its end, the epoch's evaluation and hooks at a pass's end). hooks may
 * be NULL. */
typedef struct anamo_step_info {
    int64_t epoch;                    /* 1-based epoch the step belonged to */
    int64_t iteration;                /* 1-based, over the run */
    const char *phase;                /* its phase's name */
    anamo_phase_kind kind;            /* the phase's */
    int batch;                        /* samples in the step */
    double loss, recon_loss, code_l1; /* the step's objective before its update */
    int epoch_end;                    /* the step finished a pass over the training set */
} anamo_step_info;
int anamo_trainer_step(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_step_info *info,
                       anamo_err *err);
/* Steps to the end of the current epoch (or of the budget). */
int anamo_trainer_epoch(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_err *err);
/* The end-of-run work, once the budget is spent or the caller stops: an accelerated method's
 * phase leaves its iterate, and a free-codes scheme fits its encoder. Idempotent. */
int anamo_trainer_finish(anamo_trainer *t, anamo_err *err);
double anamo_trainer_seconds(const anamo_trainer *t); /* training seconds so far */
int64_t anamo_trainer_epochs_done(const anamo_trainer *t);
int64_t anamo_trainer_iterations(const anamo_trainer *t); /* steps done in the run */
/* Over all completed epochs of the run, resumed parts included: training seconds, and the sum
 * over epochs of the parameters some step of the epoch updated. */
double anamo_trainer_epoch_seconds(const anamo_trainer *t);
double anamo_trainer_weights_updated(const anamo_trainer *t);
/* Code units re-initialized by dead-unit resampling over the run, resumed parts included. */
int64_t anamo_trainer_resampled(const anamo_trainer *t);
/* The evaluation spec of the run's objective (loss, λ, penalty, Jacobian samples). */
anamo_eval_spec anamo_trainer_eval_spec(const anamo_trainer *t);

/* ---- across processes: data-parallel training over MPI ------------------------------------
 * Started by mpirun (mpiexec) in a build with MPI (anamo_dist_built_with_mpi), N processes each
 * train the same model on the same data: every rank draws the same batch and computes its
 * share of the rows (ranks 0 … B mod N − 1 one row more), and the ranks sum their gradients,
 * weighted by their shares, in place on the flat gradient buffer of the block the step updates
 * (NAM: one block; joint: both), so that each takes the same step. Losses that a decision
 * reads (divergence, backtracking, restarts) and stop requests are reduced alike. Batch norm
 * uses each rank's batch statistics (PyTorch DDP's default); the running statistics are rank
 * 0's, broadcast after every step. Parameters and optimizer states are checked equal at every
 * epoch's end. Run as a plain program, anamo_dist_open gives rank 0 of 1 and training is what
 * it is without it, bit for bit. */
typedef struct anamo_dist anamo_dist;
int anamo_dist_built_with_mpi(void);
/* Joins the processes mpirun started (MPI_Init_thread, FUNNELED), or opens rank 0 of 1; argc
 * and argv may be NULL. */
int anamo_dist_open(anamo_dist **out, int *argc, char ***argv, anamo_err *err);
/* Collective: every rank closes; the last use of MPI in the process. NULL is a no-op. */
int anamo_dist_close(anamo_dist *d, anamo_err *err);
int anamo_dist_rank(const anamo_dist *d); /* NULL: 0 */
int anamo_dist_size(const anamo_dist *d); /* NULL: 1 */
/* Waits until every rank has called it. */
int anamo_dist_barrier(const anamo_dist *d, anamo_err *err);
/* Ends every process of the job with code (MPI_Abort); without MPI, exits. For a program's main
 * after an error on one rank, which the others could otherwise wait on forever. */
void anamo_dist_abort(const anamo_dist *d, int code);
/* Trains across d's ranks from now on (d outlives t). Collective: checks that the ranks start
 * from the same parameters. */
int anamo_trainer_set_dist(anamo_trainer *t, anamo_dist *d, anamo_err *err);
/* What a run's steps reduced so far: gradient bytes (4 per parameter of each block summed, per
 * step), gradient all-reduces, and scalar ones (losses, stops, work counts). */
typedef struct anamo_dist_stats {
    int ranks;
    int64_t grad_bytes, grad_reductions, scalar_reductions;
} anamo_dist_stats;
void anamo_trainer_dist_stats(const anamo_trainer *t, anamo_dist_stats *out);
/* anamo_evaluate across d's ranks, collective: each rank passes over its shard of ds (and of
 * the Jacobian's samples), and every rank gets the whole set's metrics. NULL d: anamo_evaluate.
 * The trainer's own evaluations after each epoch are split so once it has a communicator. */
int anamo_evaluate_dist(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                        anamo_dist *d, anamo_metrics *out, anamo_err *err);

/* ---- checkpoints (safetensors) ------------------------------------------------------------
 * Tensors "encoder.N.weight" … "decoder.N.bias" (PyTorch state_dict names and shapes),
 * "optim.encoder.state"/"optim.decoder.state" (flat optimizer state), "normalize.mean" and
 * "normalize.std"; __metadata__ holds the model spec, the training progress and, verbatim, the
 * config text the caller passes. */
int anamo_checkpoint_save(const anamo_model *m, const anamo_trainer *t, const char *config_text,
                          const char *path, anamo_err *err);
/* Rebuilds the model a checkpoint holds, for evaluation (max_batch: largest batch to run). */
int anamo_checkpoint_load_model(const char *path, int max_batch, anamo_model **out, anamo_err *err);
/* Restores weights, optimizer states and progress into an existing model and trainer built
 * from the same configuration. */
int anamo_checkpoint_restore(anamo_model *m, anamo_trainer *t, const char *path, anamo_err *err);
/* The config text stored in a checkpoint (malloc'd; free it), or NULL with err set. */
char *anamo_checkpoint_config(const char *path, anamo_err *err);
/* The objective a checkpoint's model was trained with, from its stored config: loss, λ,
 * penalty and train.jacobian_samples. out is always filled: when the stored config cannot be
 * read, with MSE, λ 0, ℓ1 and the default Jacobian samples, and the error is returned. */
int anamo_checkpoint_eval_spec(const char *path, anamo_eval_spec *out, anamo_err *err);

/* ---- configs: a run described by an INI file ----------------------------------------------
 * The experiment configs the anamo command reads (docs/CONFIG.md): every key is checked
 * against one table of sections, keys, types and allowed values, and an error names file:line,
 * the key and what is allowed. */
typedef struct anamo_config anamo_config;

/* Reads and validates an INI file. */
int anamo_config_load(const char *path, anamo_config **out, anamo_err *err);
/* The same from text (origin names it in messages). */
int anamo_config_parse(const char *text, const char *origin, anamo_config **out, anamo_err *err);
void anamo_config_free(anamo_config *c);
/* A copy of c (compare's arms and trials start from one config); free it with
 * anamo_config_free. */
int anamo_config_copy(const anamo_config *c, anamo_config **out, anamo_err *err);
/* Applies "section.key=value" ("phase dec.lr=0.1") and validates it; origin names it in
 * messages (NULL: "--set"). On failure the config is left as it was. */
int anamo_config_set(anamo_config *c, const char *assignment, const char *origin, anamo_err *err);
/* The arms of a compare config ([compare] arms), into names; returns how many (≤ max). */
int anamo_config_arms(const anamo_config *c, char names[][ANAMO_NAME_MAX], int max);
/* The comma list section.key ([compare] sweep_values), trimmed, empty items dropped, into
 * items; returns how many (≤ max). */
int anamo_config_list(const anamo_config *c, const char *section, const char *key,
                      char items[][ANAMO_NAME_MAX], int max);
/* Applies arm NAME's overrides ([arm NAME]); the [quick] section's (the short form). */
int anamo_config_use_arm(anamo_config *c, const char *arm, anamo_err *err);
int anamo_config_use_quick(anamo_config *c, anamo_err *err);
/* The value of section.key (the table's default when unset), or NULL when neither. */
const char *anamo_config_get(const anamo_config *c, const char *section, const char *key);
const char *anamo_config_path(const anamo_config *c);
/* Every known key with its effective value, as INI text (malloc'd; free it). */
char *anamo_config_text(const anamo_config *c);

/* A run as a config describes it, ready to train: the data opened (validation held out), the
 * model built (standardization fitted) and the trainer created. data_root: where dataset specs
 * are looked up (NULL: $ANAMO_DATA, else "data"). */
typedef struct anamo_run {
    anamo_dataset train, test, validation;
    int has_test, has_validation;
    anamo_model *model;
    anamo_trainer *trainer;
    anamo_model_spec model_spec; /* its layer strings point into the run */
    anamo_train_spec train_spec;
    int threads;     /* train.threads (0: OpenMP's default) */
    char scheme[16]; /* joint | nam | anamo | freecodes */
    char encoder[1024], decoder[1024];
} anamo_run;
/* A failed open leaves *out closed and zeroed. An open run must not be moved or copied: the
 * trainer keeps pointers to its datasets, and the model's layer strings point into it. */
int anamo_run_open(const anamo_config *c, const char *data_root, anamo_run *out, anamo_err *err);
void anamo_run_close(anamo_run *r);
/* Opens a dataset spec as anamo_run_open does: under data_root (NULL: $ANAMO_DATA, else
 * "data"); when a named dataset (a spec with ':') is not found, the message says which data
 * root was searched and how to change it. */
int anamo_run_open_data(const char *spec, const char *data_root, anamo_dataset *out,
                        anamo_err *err);

#ifdef __cplusplus
}
#endif
#endif
