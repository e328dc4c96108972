/* The model graph: a flat list of nodes, each producing one value, built once by a model
 * definition (src/models/) and planned for a given input size by a backend (src/backend/).
 *
 * Parameters live in the model's cv_state under torchvision's state_dict names; nodes refer to
 * them by index into that table (indices are stable: parameters are only ever replaced). */
#ifndef CV_GRAPH_H
#define CV_GRAPH_H

#include "cvision/core.h"

typedef enum {
    OP_INPUT = 0,
    OP_CONV,    /* in: x; params: weight [O, I/g, kh, kw], bias? */
    OP_BN,      /* in: x; params: weight, bias, running_mean, running_var, num_batches_tracked */
    OP_ACT,     /* in: x; a.act */
    OP_MAXPOOL, /* in: x; kernel/stride/pad/dilation/ceil_mode */
    OP_AVGPOOL, /* in: x; kernel/stride/pad/ceil_mode/count_include_pad */
    OP_ADAPTIVE_AVGPOOL, /* in: x; a.out_h, a.out_w */
    OP_LINEAR,           /* in: x [N, F]; params: weight [O, F], bias? */
    OP_ADD,              /* in: a, b (same shape) */
    OP_MUL,              /* in: a [N,C,H,W], b [N,C,H,W] or [N,C,1,1] (broadcast) */
    OP_CONCAT,           /* in: n values, along channels */
    OP_FLATTEN,          /* in: x [N, C, H, W] -> [N, C*H*W] */
    OP_DROPOUT,          /* identity in eval; a.p; a.rows: one mask value per sample */
    OP_SOFTMAX,          /* in: x [N, F], along F */
    OP_SLICE,            /* in: x; channels [a.start, a.start + channels) (torch.chunk) */
    OP_SHUFFLE,          /* in: x; channel shuffle with a.groups groups (ShuffleNet) */
    OP_AFFINE,           /* in: x (<= 4 channels); y = x * a.scale[c] + a.shift[c], constants */
    OP_LAYERNORM,        /* in: x; over the channels at each position (channels-last LayerNorm,
                            LayerNorm2d); params: weight, bias; a.eps */
    OP_CHANNEL_SCALE,    /* in: x; params: scale (C values, e.g. ConvNeXt's layer_scale [C,1,1]) */
    /* Token sequences are [N, D, L, 1] values (features as channels, tokens along H). */
    OP_TOKENS,    /* in: patches [N, D, h, w]; params: class_token [1,1,D], pos_embedding
                     [1, 1+h*w, D]; out [N, D, 1+h*w, 1]: the class token, then the patches in
                     row-major order, plus the position embeddings */
    OP_ATTENTION, /* in: qkv [N, 3D, L, 1] (q, k, v stacked along channels); a.groups heads;
                     out [N, D, L, 1]: softmax(q k^T / sqrt(D/heads)) v per head */
    OP_TAKE,      /* in: [N, D, L, 1]; out [N, D, 1, 1]: token a.start */
    OP_PAD,       /* in: x; zeros at the bottom/right up to multiples of a.kh (Swin's windows) */
    OP_CROP,      /* in: x, like; x's top-left part of like's height and width */
    OP_MERGE,     /* Swin's patch merging: [N, C, H, W] -> [N, 4C, ceil(H/2), ceil(W/2)], the
                     (0,0), (1,0), (0,1), (1,1) pixels of each 2x2 block (odd sizes zero-padded) */
    OP_WINDOW_ATTENTION,    /* in: qkv [N, 3C, H, W] (H, W multiples of a.kh); a.kh window, a.sh
                               shift (zeroed along a side no larger than the window), a.groups
                               heads; params: relative_position_bias_table [(2w-1)^2, heads],
                               relative_position_index (the buffer; the kernel computes it);
                               out [N, C, H, W]: Swin's shifted-window attention */
    OP_WINDOW_ATTENTION_V2, /* as OP_WINDOW_ATTENTION with Swin V2's cosine attention: in: qkv
                               from a projection without bias; params: logit_scale [heads,1,1],
                               cpb_mlp.0.weight [a.kw, 2], cpb_mlp.0.bias, cpb_mlp.2.weight
                               [heads, a.kw], qkv.bias [3C] (its k part unused, as torchvision
                               zeroes it); the relative_coords_table and relative_position_index
                               buffers are kept in the state, the kernel computes both */
    OP_PARTITION_ATTENTION, /* MaxViT: in: qkv [N, 3C, H, W] (H, W multiples of a.kh);
                               a.grid: 0 block attention in a.kh x a.kh windows, 1 grid attention
                               over a.kh x a.kh pixels H/a.kh, W/a.kh apart; a.groups heads;
                               params: relative_position_bias_table, relative_position_index
                               [a.kh^2, a.kh^2] (the kernel computes it); scale C^-0.5 */
    OP_COUNT
} cv_op;

typedef enum {
    ACT_NONE = 0,
    ACT_RELU,
    ACT_RELU6,
    ACT_HARDSWISH,
    ACT_HARDSIGMOID,
    ACT_SILU,
    ACT_GELU,
    ACT_SIGMOID,
    ACT_TANH,
} cv_act;

#define CV_MAX_INPUTS 8
#define CV_MAX_PARAMS 5

typedef struct {
    int kh, kw, sh, sw, ph, pw, dh, dw, groups;
    int ceil_mode, count_include_pad;
    int out_h, out_w;         /* adaptive pooling */
    int start;                /* slice: first channel */
    int rows;                 /* dropout: one mask value per sample (stochastic depth) */
    int grid;                 /* partition attention: grid (1) or block (0) */
    float scale[4], shift[4]; /* affine: per-channel constants */
    cv_act act;
    float eps, momentum, p;
} cv_attrs;

typedef struct {
    cv_op op;
    int nin, in[CV_MAX_INPUTS];       /* producing node indices */
    int nparam, param[CV_MAX_PARAMS]; /* indices into the model's cv_state, -1 = absent */
    cv_attrs a;
    int channels; /* output channels (features for 2-D values), known at build time */
    int rank;     /* 4 (N,C,H,W) or 2 (N,F) */
} cv_node;

typedef struct cv_graph {
    cv_node *nodes;
    int n, cap;
    int output; /* the node whose value is the model's output */
} cv_graph;

/* A builder turns model definitions into graph nodes and parameters whose names come out as
 * torchvision's by construction: a scope stack ("layer1", "0", "conv1") prefixes every name. */
typedef struct cv_builder {
    cv_ctx *ctx;
    cv_graph *g;
    cv_state *params;
    char scope[512];
    int scope_len[32];
    int depth;
    cv_status err; /* sticky: once set, every builder call returns -1 */
} cv_builder;

void graph_free(cv_graph *g);

void b_push(cv_builder *b, const char *name);
void b_pushi(cv_builder *b, int index);
void b_pop(cv_builder *b);

int b_input(cv_builder *b, int channels);
/* conv2d(in -> out, k, stride, padding, dilation, groups, bias) named <scope>.<name> */
int b_conv(cv_builder *b, int x, const char *name, int out, int k, int stride, int pad,
           int dilation, int groups, int bias);
int b_conv2(cv_builder *b, int x, const char *name, int out, int kh, int kw, int sh, int sw, int ph,
            int pw, int groups, int bias);
int b_bn(cv_builder *b, int x, const char *name, float eps);
int b_act(cv_builder *b, int x, cv_act act);
int b_maxpool(cv_builder *b, int x, int k, int stride, int pad, int ceil_mode);
int b_avgpool(cv_builder *b, int x, int k, int stride, int pad, int ceil_mode,
              int count_include_pad);
int b_adaptive_avgpool(cv_builder *b, int x, int out_h, int out_w);
int b_linear(cv_builder *b, int x, const char *name, int out, int bias);
int b_add(cv_builder *b, int x, int y);
int b_mul(cv_builder *b, int x, int y);
int b_concat(cv_builder *b, int n, const int *xs);
int b_flatten(cv_builder *b, int x);
int b_dropout(cv_builder *b, int x, float p);
/* torchvision's StochasticDepth(p, "row"): drops whole samples in training, identity in eval */
int b_stochastic_depth(cv_builder *b, int x, float p);
int b_softmax(cv_builder *b, int x);
/* channels [start, start + len) of x */
int b_slice(cv_builder *b, int x, int start, int len);
/* view(N, groups, C/groups, H, W).transpose(1, 2): ShuffleNet's channel_shuffle */
int b_shuffle(cv_builder *b, int x, int groups);
/* x * scale[c] + shift[c] with constants (GoogLeNet/Inception's transform_input); <= 4 channels */
int b_affine(cv_builder *b, int x, const float *scale, const float *shift);
/* nn.Linear applied to a channels-last view (x.permute(0, 2, 3, 1)): a 1x1 convolution whose
 * weight parameter keeps Linear's [out, in] shape */
int b_pointwise(cv_builder *b, int x, const char *name, int out, int bias);
/* nn.LayerNorm over the channels at every position of an NCHW value (or the features of [N, F]) */
int b_layernorm(cv_builder *b, int x, const char *name, float eps);
/* x * <scope>.<leaf> where the parameter holds one value per channel with the given shape */
int b_channel_scale(cv_builder *b, int x, const char *leaf, int ndim, const int64_t *shape);
/* b_pointwise with explicit leaf names (nn.MultiheadAttention's in_proj_weight/in_proj_bias) */
int b_pointwise_named(cv_builder *b, int x, const char *wleaf, const char *bleaf, int out);
/* ViT's class token and position embeddings: parameters <cls_scope>.class_token ("" = root)
 * and <pos_scope>.pos_embedding for `tokens` = 1 + patches */
int b_tokens(cv_builder *b, int x, const char *cls_scope, const char *pos_scope, int tokens);
int b_attention(cv_builder *b, int qkv, int heads);
int b_take(cv_builder *b, int x, int token);
int b_pad(cv_builder *b, int x, int multiple);
int b_crop(cv_builder *b, int x, int like);
int b_merge(cv_builder *b, int x);
int b_window_attention(cv_builder *b, int qkv, int window, int shift, int heads);
/* Swin V2's attention; registers <scope>.logit_scale, the buffers, cpb_mlp.* and qkv.bias */
int b_window_attention_v2(cv_builder *b, int qkv, int window, int shift, int heads);
/* MaxViT's block (grid 0) or grid (grid 1) attention over window x window tokens */
int b_partition_attention(cv_builder *b, int qkv, int window, int grid, int heads);
/* Parameters that are buffers (running statistics, constant tables): never trained. */
int graph_is_buffer(const char *name);

/* ---- shapes ---- */
typedef struct {
    int64_t d[4]; /* N, C, H, W (rank 4) or N, F (rank 2) */
    int rank;
} cv_shape4;

/* Infers every node's output shape for an input of n x c x h x w. Fails with a message naming the
 * node when the input is too small for the architecture. `shapes` has g->n entries. */
cv_status graph_infer_shapes(cv_ctx *ctx, const cv_graph *g, const cv_state *params, int64_t n,
                             int64_t c, int64_t h, int64_t w, cv_shape4 *shapes);
int64_t shape_numel(const cv_shape4 *s);
/* PyTorch's pooling output size, including ceil_mode's rule that the last window must start
 * inside the input or left padding. */
int64_t pool_out_size(int64_t in, int k, int s, int p, int d, int ceil_mode);

const char *op_name(cv_op op);

#endif
