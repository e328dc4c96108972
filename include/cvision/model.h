/* Models: torchvision's architectures by constructor name, with torchvision's state_dict keys. */
#ifndef CVISION_MODEL_H
#define CVISION_MODEL_H

#include "cvision/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cv_model cv_model;

typedef enum {
    CV_BACKEND_CPU = 0, /* oneDNN, with conv+BN folding and fused post-ops */
    CV_BACKEND_REF,     /* plain C, op by op: the ground truth for tests */
} cv_backend_kind;

/* Architectures cvision can build, in a stable order. */
int cv_arch_count(void);
const char *cv_arch_name(int i);

/* Builds `arch` with a head of `num_classes` outputs (torchvision's num_classes argument).
 * Parameters start as PyTorch's fresh modules would be before init (zeros; BN weight 1, var 1):
 * call cv_model_init_weights or load a state to get something useful. */
cv_status cv_model_create(cv_ctx *ctx, const char *arch, int num_classes, cv_model **out);
void cv_model_free(cv_model *m);
const char *cv_model_arch(const cv_model *m);
int cv_model_num_classes(const cv_model *m);
/* The model's parameters and buffers by state_dict name, in torchvision's order. Writing into
 * these tensors is allowed; call cv_model_params_changed afterwards. */
cv_state *cv_model_params(cv_model *m);
void cv_model_params_changed(cv_model *m);
/* The names of the classifier head's parameters ("fc.weight", "fc.bias", ...). */
int cv_model_head_count(const cv_model *m);
const char *cv_model_head_name(const cv_model *m, int i);
/* The class count of a checkpoint for this architecture: the rows of its head's weight, found
 * under the names the checkpoint may use (old or timm spellings); 0 if it has none. */
int64_t cv_model_state_classes(const cv_model *m, const cv_state *st);

/* torchvision's initialisation: convolutions kaiming-normal (fan_out, relu), batch norm weight 1
 * and bias 0, linear layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. Seeded. */
cv_status cv_model_init_weights(cv_ctx *ctx, cv_model *m, uint64_t seed);

typedef enum {
    CV_LOAD_STRICT = 0,    /* every key present, no extra keys, shapes equal */
    CV_LOAD_NONSTRICT = 1, /* missing and unexpected keys allowed (load_state_dict(strict=False)) */
    CV_LOAD_SKIP_HEAD = 2, /* the head's keys in the file are ignored (fine-tuning a new head) */
} cv_load_flags;

/* Copies tensors from `st` by name. Errors list the missing/unexpected/mismatched keys. A missing
 * num_batches_tracked (checkpoints from PyTorch < 0.4.1) is always tolerated. Float64/16 tensors
 * are converted to float32. */
cv_status cv_model_load_state(cv_ctx *ctx, cv_model *m, const cv_state *st, int flags);

cv_status cv_model_set_backend(cv_ctx *ctx, cv_model *m, cv_backend_kind kind);

/* Forward: x is float32 [N, 3, H, W]; *out becomes a new float32 [N, num_classes]. In eval mode
 * (the default) batch norm uses its running statistics and dropout is off; in training mode batch
 * norm uses the batch's statistics and updates the running ones (as PyTorch does) and dropout is
 * on. */
cv_status cv_model_forward(cv_ctx *ctx, cv_model *m, const cv_tensor *x, cv_tensor **out);

/* Profiling: with `on`, every later forward adds each step's time to a table (cleared now) by
 * the graph op it belongs to and how it ran: "oneDNN" primitives, "reorder"s between layouts, the
 * backend's "own" kernels, or "reference" kernels (the CPU backend's fallback). The reference
 * backend records nothing. Off (0) frees the table. The timing itself costs a little. */
typedef struct {
    const char *op, *how;
    double seconds;
    int64_t calls;
} cv_profile_row;
cv_status cv_model_profile(cv_ctx *ctx, cv_model *m, int on);
/* Fills up to `max` rows (ops in graph-op order); returns how many there are. */
int cv_model_profile_rows(const cv_model *m, cv_profile_row *rows, int max);

/* ---- training ---- */
/* model.train() / model.eval(). */
cv_status cv_model_set_training(cv_ctx *ctx, cv_model *m, int training);
int cv_model_training(const cv_model *m);
/* Freezes (0) or unfreezes (1) every parameter whose name starts with `prefix` ("" = all).
 * All float parameters train by default; buffers never do. */
cv_status cv_model_set_trainable(cv_ctx *ctx, cv_model *m, const char *prefix, int trainable);
int cv_model_trainable(const cv_model *m, const char *name);
/* After a training-mode forward: back-propagates dout (d loss / d output, float32 like the
 * output) and accumulates the gradients of the trainable parameters. */
cv_status cv_model_backward(cv_ctx *ctx, cv_model *m, const cv_tensor *dout);
/* Gradients by parameter name (trainable parameters only; float32, the parameter's shape),
 * allocated (zeroed) on first use; NULL if that allocation fails. */
cv_state *cv_model_grads(cv_model *m);
void cv_model_zero_grad(cv_model *m);
/* Sets the probability of every dropout layer (torchvision's `dropout` constructor argument). */
cv_status cv_model_set_dropout(cv_ctx *ctx, cv_model *m, float p);
/* Mixed precision for training: "bf16" runs convolutions and linear layers in bfloat16 through
 * oneDNN (bf16 inputs and weights, float32 outputs and gradients); parameters, optimizer state,
 * batch norm and the loss stay float32. "off" (or NULL) is full float32. The first training
 * forward fails on a CPU without AVX512-BF16 or on the ref backend. Eval plans stay float32. */
cv_status cv_model_set_amp(cv_ctx *ctx, cv_model *m, const char *amp);
/* Seeds dropout; each training forward then draws from (seed, step). */
void cv_model_set_seed(cv_model *m, uint64_t seed);
/* During each cv_model_backward, fn(user, grad) is called once for every gradient tensor of
 * cv_model_grads as soon as it is final (data-parallel training overlaps its averaging with the
 * rest of backward). NULL: no calls. */
void cv_model_set_grad_hook(cv_model *m, void (*fn)(void *user, const cv_tensor *grad), void *user);
/* Synchronised batch norm for data-parallel training: training-mode batch norms take their
 * statistics over all ranks' batches, summing per-channel terms with sum(user, buf, n) (in place
 * over the ranks; 0 on success). Both backends (docs/distributed.md). NULL: off. */
cv_status cv_model_set_sync_bn(cv_ctx *ctx, cv_model *m, int (*sum)(void *user, double *buf, int n),
                               void *user);

#ifdef __cplusplus
}
#endif
#endif
