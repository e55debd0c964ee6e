/* trainer.h — the state of a training run: the scheme's phase cycle, the data order, the
 * optimizer step counts. Everything in train_progress (with the weights and optimizer states)
 * is what a checkpoint must hold for a resumed run to continue bit-identically. */
#ifndef ANAMO_TRAIN_TRAINER_H
#define ANAMO_TRAIN_TRAINER_H

#include "dist/comm.h"
#include "nn/model.h"
#include "optim/optim.h"

/* Visits the training set in a fresh order each pass; pass p's order depends on (seed, p)
 * alone, so a resumed run needs only (pass, offset) to continue it. */
typedef struct sampler {
    int64_t n;
    uint64_t seed;
    int64_t pass;  /* 0-based pass over the data = epoch − 1 */
    int64_t *perm; /* the order of this pass */
} sampler;

/* A decoder phase's code cache (code_cache.c): row i of the training set's codes as the mask
 * of its entries that are not +0.0 and those entries, packed in the order rows were put. */
typedef struct code_cache {
    int64_t n, dim, words; /* rows, entries a row, 32-bit mask words a row */
    int batch;             /* the most rows one put takes */
    int64_t *start;        /* (n): where row i begins in span */
    int64_t *kept;         /* (batch): span entries of each row a put takes */
    uint32_t *span;        /* rows one after another: mask words, then the kept entries' bits
                              (room for n·(words + dim)) */
    int64_t used;          /* span entries written since the last clear */
    int avx512;            /* pack and unpack with AVX-512 (the CPU has it) */
} code_cache;

typedef struct train_progress {
    int64_t pass, offset;   /* position in the data */
    int phase_idx;          /* current phase of the cycle */
    int64_t phase_iters;    /* steps done in the current phase */
    int64_t phase_samples;  /* samples seen in the current phase */
    int64_t iteration;      /* steps done in the run */
    int64_t samples;        /* samples seen in the run */
    int64_t steps[2];       /* optimizer updates of encoder [0] and decoder [1] */
    int opt_kind[2];        /* optimizer whose state each block holds; −1: none yet */
    double elapsed;         /* training seconds */
    double epoch_seconds;   /* training seconds of the completed epochs */
    double weights_updated; /* Σ over completed epochs of the parameters updated */
    double lipschitz[2];    /* backtracking's L of encoder [0] and decoder [1]; 0: unset */
    schedule_state sched[ANAMO_MAX_PHASES]; /* each phase's learning-rate schedule */
    int free_codes_ready;                   /* free codes initialised (ANAMO_PHASE_FREECODES) */
    int64_t resampled;                      /* code units re-initialized by resampling in the run */
    int finished;           /* the end-of-run work (binary codes' encoder fit) is done */
    double best_validation; /* the lowest validation loss after an epoch (INFINITY: none) */
    int64_t best_epoch;     /* its epoch (0: none) */
    int stopped_early;      /* early stopping ended the run */
    anamo_work work[2];     /* training work of encoder [0] and decoder [1] */
} train_progress;

/* A phase as the steps use it (phase.c). */
typedef struct phase_rt {
    optim_cfg opt; /* opt.lr follows the schedule */
    schedule_cfg sched;
    int backtrack; /* step sizes by Beck–Teboulle backtracking */
    float backtrack_eta;
} phase_rt;
int phase_compile(const anamo_phase *ph, phase_rt *rt, anamo_err *err);
/* The rows of the next batch at `offset` in a pass of n, after `samples` of the run: the
 * phase's batch size, never past the end of the pass or of the budget (phase.c). */
int64_t phase_batch_rows(const anamo_phase *ph, int64_t n, int64_t offset, int64_t samples,
                         int64_t budget);
/* Whether a phase is over after `iters` steps and `seen` samples, over passes of n. */
int phase_done(const anamo_phase *ph, int64_t n, int64_t iters, int64_t seen);

typedef struct epoch_acc {
    double loss, recon, l1, seconds;
    int64_t batches, steps[2], resampled;
    int64_t phase_samples[ANAMO_MAX_PHASES];
} epoch_acc;

/* The trainer across the ranks of a communicator (dist.c): each rank computes its share of
 * every batch, and what the ranks must agree on is summed, weighted by the shares. */
typedef struct train_dist {
    dist_comm *comm; /* the caller's; NULL: one process */
    int split;       /* inside a step whose batch the ranks share: the reductions are on */
    double share;    /* this rank's rows / the batch's, for that step (0: an empty share) */
    int64_t grad_bytes, grad_reductions, scalar_reductions; /* over the run */
    int codes_partial; /* the code cache holds only the rows of this rank's shares in the phase */
    anamo_err err;     /* the first failure of a reduction, which the step returns */
} train_dist;

typedef struct log_acc {
    double loss, recon, l1, seconds;
    int64_t iters, samples;
} log_acc;

struct anamo_trainer {
    anamo_model *m;
    anamo_train_spec spec;
    phase_rt rt[ANAMO_MAX_PHASES];
    const anamo_dataset *train, *test, *validation;
    train_progress p;
    sampler smp;
    int64_t budget;     /* samples in the whole run */
    float *dxhat;       /* (max_batch, in_dim) loss gradient */
    code_cache codes;   /* (N, code_dim): the training set's codes, decoder phases */
    int codes_valid;    /* codes are those of the current encoder */
    float *batch_codes; /* (max_batch, code_dim): the codes a step holds apart from
                                     the encoder's output: cached rows (NAM's decoder), H =
                                     E_θ(X_k) (ANAMO), V (free codes) */
    float *code_grad;   /* (max_batch, code_dim): ∂g/∂h in ANAMO's encoder prox */
    float *scratch[2];  /* (max block params) backtracking and ANAMO work spans */
    float *free_codes;  /* (N, code_dim): ANAMO_PHASE_FREECODES' codes H̃ */
    float *code_state;  /* (2·max_batch·code_dim + 1): FISTA state of a batch of codes */
    int phase_ready;    /* the current phase's set-up is done */
    int from_logits;
    norm_groups code_groups; /* the decoder's first-map groups (kind: the unit-norm
                                     constraint, NORM_NONE without one); count 0: none */
    float *unit_weight;      /* (code_dim) n_j of the decoder_l1 penalty */
    int64_t *last_active;    /* (code_dim) the last step (1-based) a unit was nonzero on
                                     some training sample; resampling only */
    epoch_acc ep;
    log_acc lg;
    train_dist dist;
};

int sampler_init(sampler *s, int64_t n, uint64_t seed, anamo_err *err);
void sampler_set_pass(sampler *s, int64_t pass);
void sampler_free(sampler *s);

int code_cache_init(code_cache *c, int64_t n, int64_t dim, int batch, anamo_err *err);
void code_cache_free(code_cache *c);
/* Forgets every row: the next rows are packed from the start of the span again. */
void code_cache_clear(code_cache *c);
/* Keeps the count rows of h (count × dim floats, count ≤ batch) as rows rows[0 …], or first,
 * first + 1, … where rows is NULL; each row at most once between clears. */
void code_cache_put_rows(code_cache *c, const int64_t *rows, int64_t first, int count,
                         const float *h);
/* Writes row `row`, as it was put, into h (dim floats). */
void code_cache_get(const code_cache *c, int64_t row, float *h);
/* Rows rows[0 … count) into h, one after another (count × dim floats). */
void code_cache_get_rows(const code_cache *c, const int64_t *rows, int count, float *h);

/* ---- the phases (scheme.c runs each through its scheme's entry, scheme.h) ------------------ */
typedef struct step_losses {
    double loss, recon, l1;
} step_losses;
/* Prepares phase_idx: optimizer state, and the code cache for a decoder phase. */
int train_enter_phase(anamo_trainer *t, int phase_idx, anamo_err *err);
/* One step of phase phase_idx on the training samples idx[0..B) (loaded here). Returns ANAMO_OK
 * or ANAMO_ERR_DIVERGED (nothing updated). */
int train_step(anamo_trainer *t, int phase_idx, const int64_t *idx, int B, step_losses *out,
               anamo_err *err);
/* Ends phase_idx: accelerated methods leave their iterate x_j, not y_j, in the parameters. */
void train_leave_phase(anamo_trainer *t, int phase_idx);
/* The end-of-run work of every phase that has some (free codes' encoder fit). */
int train_finish_phases(anamo_trainer *t, anamo_err *err);
/* Whether the phase being stepped keeps a code cache (recomputed when the encoder changes
 * outside its steps). */
int train_phase_uses_code_cache(const anamo_trainer *t);
/* nam.c: fills the decoder phases' code cache with the current encoder's codes. */
int train_compute_codes(anamo_trainer *t, anamo_err *err);

/* ---- objective.c: the objective every scheme shares --------------------------------------
 * F = loss(D_φ(h), x) + λ·g(h, φ) on a batch, g the code penalty. */
/* A mini-batch, as the steps and the objective take it. */
typedef struct train_batch {
    const int64_t *idx; /* its samples' indices in the training set (NULL: not drawn) */
    const float *x;     /* (B, in_dim) their rows, normalized as the model reads them */
    int B;
    /* across ranks: these B rows are rows [first, first + B) of a batch of `total` (idx − first
     * its indices); one process: first 0, total B */
    int first, total;
} train_batch;
/* f of a phase at the current parameters, as a backtracking search evaluates it: at(t, batch,
 * h) on the batch, with the codes h where the phase holds them fixed (else NULL). */
typedef struct train_objective {
    double (*at)(anamo_trainer *t, const train_batch *batch, const float *h);
    const train_batch *batch;
    const float *h;
} train_objective;
/* The reconstruction loss of the decoder on codes h against x (B rows; from the logits when a
 * final sigmoid meets BCE); its gradient goes to dxhat when not NULL. */
double train_decoder_loss(anamo_trainer *t, const float *h, const float *x, int B, float *dxhat);
/* The decoder's backward from t->dxhat (past a final sigmoid fused into BCE); returns ∂/∂h
 * when need_dh. */
float *train_decoder_backward(anamo_trainer *t, int B, int need_dh, int need_dw);
/* F at codes h of the batch: the loss (its gradient in t->dxhat), the code ℓ1, and F. */
void train_objective_at(anamo_trainer *t, const float *h, const train_batch *batch,
                        step_losses *out);
/* The same at the encoder's codes E_θ(x); returns them. */
const float *train_forward(anamo_trainer *t, const train_batch *batch, step_losses *out);
/* Its F alone, as a train_objective's `at` (h unused: the codes are E_θ(x)). */
double train_forward_loss(anamo_trainer *t, const train_batch *batch, const float *h);
/* The code penalty g (see objective.c): returns g(h) of the batch; adds ∂(λg)/∂h to dh when dh
 * is not NULL. */
double penalty_forward(anamo_trainer *t, const float *h, int B, float *dh);
/* Adds ∂g/∂h (without λ) to dh: n_j·sign(h_bj)/B. */
void penalty_subgradient(anamo_trainer *t, const float *h, int B, float *dh);
/* Adds ∂(λg)/∂W₁ to the decoder's grads (decoder_l1 only; a no-op for plain ℓ1). */
void penalty_decoder_backward(anamo_trainer *t, const float *h, int B);
/* The unit-norm constraint for a decoder step (NULL without one). */
const norm_groups *train_decoder_constraint(const anamo_trainer *t);
/* Blocks the phase updates train (batch norm: batch statistics, running ones updated); a
 * frozen block runs in evaluation mode (running statistics), so that a decoder phase over
 * cached codes and one that recomputes them see the same codes. */
void train_set_modes(anamo_trainer *t, int encoder_trains, int decoder_trains);
/* The divergence test: ANAMO_OK for a finite loss, else the message (phase, epoch, iteration,
 * loss) and ANAMO_ERR_DIVERGED. */
int train_check_loss(const anamo_trainer *t, int phase_idx, double loss, anamo_err *err);

/* ---- dist.c: the ranks' shares of a step ------------------------------------------------
 * Every function is the identity outside a shared step (one process, or work every rank does
 * alike: code caches, evaluation, the free codes' fit). */
/* The step's share of this rank: idx and B become its rows' (an empty share keeps one row, of
 * weight 0); batch->first and total say where they lie. */
void train_dist_split(anamo_trainer *t, const int64_t **idx, int *B, train_batch *batch);
void train_dist_unsplit(anamo_trainer *t);
/* A mean over the batch, from this rank's mean over its rows: Σ_r share_r · local_r. */
double train_dist_mean(anamo_trainer *t, double local);
/* The block's gradient of the batch's mean from its rows': grads ← Σ_r share_r · grads_r. */
void train_dist_reduce_grads(anamo_trainer *t, block *b);
/* Rows' gradients of per-sample variables (free codes) as the whole batch's mean weights
 * them: g ← share · g. */
void train_dist_scale(const anamo_trainer *t, float *g, int64_t n);
/* The batch's rows of `row` floats, this rank's at batch->first, from every rank. */
void train_dist_gather_rows(anamo_trainer *t, float *rows, const train_batch *batch, int64_t row);
/* The work the blocks counted since `before` as every rank's: each rank counts the whole
 * batch's (or code cache's), so that a FLOP budget stops every rank at the same step. */
void train_dist_count_work(anamo_trainer *t, const anamo_work before[2]);
/* Across ranks, a decoder phase's code cache: the codes of the rows this rank's shares will
 * read before the phase ends, and only those (one process: every row's). */
int train_dist_compute_codes(anamo_trainer *t, anamo_err *err);
/* v[0 … n) ← its sum over the ranks (in a shared step; else as it is). */
void train_dist_sum(anamo_trainer *t, double *v, int n);
/* Whether some rank asks to stop (so that every rank stops at the same step). */
int train_dist_any(anamo_trainer *t, int mine, anamo_err *err);
/* After a step: the ranks' failures, and rank 0's batch-norm statistics on every rank. */
int train_dist_after_step(anamo_trainer *t, anamo_err *err);
/* At an epoch's end: the parameters and optimizer states are the same on every rank. */
int train_dist_check_same(anamo_trainer *t, anamo_err *err);
/* last_active[0 … n) ← the latest over ranks (dead units are dead on every rank's rows). */
int train_dist_latest(anamo_trainer *t, int64_t *last_active, int64_t n, anamo_err *err);

/* resample.c: dead-unit resampling (see there). */
int resample_check(const anamo_model *m, const anamo_train_spec *spec, anamo_err *err);
/* Marks the code units nonzero on some row of h (B rows) as active at the current step. */
void resample_mark(anamo_trainer *t, const float *h, int B);
/* When the step count says so, re-initializes the dead units; returns how many. */
int resample_if_due(anamo_trainer *t, int64_t *count, anamo_err *err);

#endif
