/* Plain-C kernels on NCHW data: the reference semantics of every op (PyTorch's), forward and
 * backward, used by the reference backend and as the fallback of faster backends for ops they
 * cannot express. The _f64 instances are the same code in double, for gradient checks. Backward
 * kernels accumulate (+=) into their outputs; NULL outputs are skipped. */
#ifndef CV_REF_KERNELS_H
#define CV_REF_KERNELS_H

#include <stdint.h>

#include "core/graph.h"

void ref_conv2d(const float *x, const float *w, const float *bias, float *y, const cv_shape4 *xs,
                const cv_shape4 *ys, int kh, int kw, const cv_attrs *a);
void ref_conv2d_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                         float *db, const cv_shape4 *xs, const cv_shape4 *ys, int kh, int kw,
                         const cv_attrs *a);
void ref_batchnorm(const float *x, float *y, const cv_shape4 *s, const float *weight,
                   const float *bias, const float *mean, const float *var, float eps);
void ref_batch_stats(const float *x, const cv_shape4 *s, float *mean, float *var);
void ref_batchnorm_backward(const float *x, const float *dy, float *dx, float *dweight,
                            float *dbias, const cv_shape4 *s, const float *weight,
                            const float *mean, const float *var, float eps);
float ref_act1(float v, cv_act act);
float ref_act_grad1(float v, cv_act act);
void ref_act(const float *x, float *y, int64_t n, cv_act act);
void ref_act_backward(const float *x, const float *dy, float *dx, int64_t n, cv_act act);
void ref_maxpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a);
void ref_maxpool_backward(const float *x, const float *dy, float *dx, const cv_shape4 *xs,
                          const cv_shape4 *ys, const cv_attrs *a);
void ref_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys,
                 const cv_attrs *a);
void ref_avgpool_backward(const float *dy, float *dx, const cv_shape4 *xs, const cv_shape4 *ys,
                          const cv_attrs *a);
void ref_adaptive_avgpool(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_adaptive_avgpool_backward(const float *dy, float *dx, const cv_shape4 *xs,
                                   const cv_shape4 *ys);
void ref_linear(const float *x, const float *w, const float *bias, float *y, int64_t n, int64_t in,
                int64_t out);
void ref_linear_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                         float *db, int64_t n, int64_t in, int64_t out);
void ref_binary(cv_op op, const float *a, const float *b, float *y, const cv_shape4 *as,
                const cv_shape4 *bs);
void ref_binary_backward(cv_op op, const float *a, const float *b, const float *dy, float *da,
                         float *db, const cv_shape4 *as, const cv_shape4 *bs);
void ref_softmax(const float *x, float *y, int64_t rows, int64_t cols);
void ref_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols);
void ref_slice(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys, int c0);
void ref_slice_backward(const float *dy, float *dx, const cv_shape4 *xs, const cv_shape4 *ys,
                        int c0);
void ref_shuffle(const float *x, float *y, const cv_shape4 *s, int groups);
void ref_shuffle_backward(const float *dy, float *dx, const cv_shape4 *s, int groups);
void ref_affine(const float *x, float *y, const cv_shape4 *s, const float *scale,
                const float *shift);
void ref_affine_backward(const float *dy, float *dx, const cv_shape4 *s, const float *scale);
void ref_layernorm(const float *x, float *y, const cv_shape4 *s, const float *weight,
                   const float *bias, float eps);
void ref_layernorm_backward(const float *x, const float *dy, float *dx, float *dweight,
                            float *dbias, const cv_shape4 *s, const float *weight, float eps);
void ref_channel_scale(const float *x, float *y, const cv_shape4 *s, const float *scale);
void ref_channel_scale_backward(const float *x, const float *dy, float *dx, float *dscale,
                                const cv_shape4 *s, const float *scale);

void ref_conv2d_f64(const double *x, const double *w, const double *bias, double *y,
                    const cv_shape4 *xs, const cv_shape4 *ys, int kh, int kw, const cv_attrs *a);
void ref_conv2d_backward_f64(const double *x, const double *w, const double *dy, double *dx,
                             double *dw, double *db, const cv_shape4 *xs, const cv_shape4 *ys,
                             int kh, int kw, const cv_attrs *a);
void ref_batchnorm_f64(const double *x, double *y, const cv_shape4 *s, const double *weight,
                       const double *bias, const double *mean, const double *var, double eps);
void ref_batch_stats_f64(const double *x, const cv_shape4 *s, double *mean, double *var);
void ref_batchnorm_backward_f64(const double *x, const double *dy, double *dx, double *dweight,
                                double *dbias, const cv_shape4 *s, const double *weight,
                                const double *mean, const double *var, double eps);
double ref_act1_f64(double v, cv_act act);
double ref_act_grad1_f64(double v, cv_act act);
void ref_act_f64(const double *x, double *y, int64_t n, cv_act act);
void ref_act_backward_f64(const double *x, const double *dy, double *dx, int64_t n, cv_act act);
void ref_maxpool_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys,
                     const cv_attrs *a);
void ref_maxpool_backward_f64(const double *x, const double *dy, double *dx, const cv_shape4 *xs,
                              const cv_shape4 *ys, const cv_attrs *a);
void ref_avgpool_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys,
                     const cv_attrs *a);
void ref_avgpool_backward_f64(const double *dy, double *dx, const cv_shape4 *xs,
                              const cv_shape4 *ys, const cv_attrs *a);
void ref_adaptive_avgpool_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_adaptive_avgpool_backward_f64(const double *dy, double *dx, const cv_shape4 *xs,
                                       const cv_shape4 *ys);
void ref_linear_f64(const double *x, const double *w, const double *bias, double *y, int64_t n,
                    int64_t in, int64_t out);
void ref_linear_backward_f64(const double *x, const double *w, const double *dy, double *dx,
                             double *dw, double *db, int64_t n, int64_t in, int64_t out);
void ref_binary_f64(cv_op op, const double *a, const double *b, double *y, const cv_shape4 *as,
                    const cv_shape4 *bs);
void ref_binary_backward_f64(cv_op op, const double *a, const double *b, const double *dy,
                             double *da, double *db, const cv_shape4 *as, const cv_shape4 *bs);
void ref_softmax_f64(const double *x, double *y, int64_t rows, int64_t cols);
void ref_softmax_backward_f64(const double *y, const double *dy, double *dx, int64_t rows,
                              int64_t cols);
void ref_slice_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys, int c0);
void ref_slice_backward_f64(const double *dy, double *dx, const cv_shape4 *xs, const cv_shape4 *ys,
                            int c0);
void ref_shuffle_f64(const double *x, double *y, const cv_shape4 *s, int groups);
void ref_shuffle_backward_f64(const double *dy, double *dx, const cv_shape4 *s, int groups);
void ref_affine_f64(const double *x, double *y, const cv_shape4 *s, const float *scale,
                    const float *shift);
void ref_affine_backward_f64(const double *dy, double *dx, const cv_shape4 *s, const float *scale);
void ref_layernorm_f64(const double *x, double *y, const cv_shape4 *s, const double *weight,
                       const double *bias, float eps);
void ref_layernorm_backward_f64(const double *x, const double *dy, double *dx, double *dweight,
                                double *dbias, const cv_shape4 *s, const double *weight, float eps);
void ref_channel_scale_f64(const double *x, double *y, const cv_shape4 *s, const double *scale);
void ref_channel_scale_backward_f64(const double *x, const double *dy, double *dx, double *dscale,
                                    const cv_shape4 *s, const double *scale);
void ref_tokens(const float *x, float *y, const cv_shape4 *xs, const float *cls, const float *pos);
void ref_tokens_backward(const float *dy, float *dx, float *dcls, float *dpos, const cv_shape4 *xs);
void ref_attention(const float *qkv, float *y, const cv_shape4 *xs, int heads);
void ref_attention_backward(const float *qkv, const float *dy, float *dqkv, const cv_shape4 *xs,
                            int heads);
void ref_take(const float *x, float *y, const cv_shape4 *xs, int token);
void ref_take_backward(const float *dy, float *dx, const cv_shape4 *xs, int token);
void ref_tokens_f64(const double *x, double *y, const cv_shape4 *xs, const double *cls,
                    const double *pos);
void ref_tokens_backward_f64(const double *dy, double *dx, double *dcls, double *dpos,
                             const cv_shape4 *xs);
void ref_attention_f64(const double *qkv, double *y, const cv_shape4 *xs, int heads);
void ref_attention_backward_f64(const double *qkv, const double *dy, double *dqkv,
                                const cv_shape4 *xs, int heads);
void ref_take_f64(const double *x, double *y, const cv_shape4 *xs, int token);
void ref_take_backward_f64(const double *dy, double *dx, const cv_shape4 *xs, int token);
void ref_pad(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_pad_backward(const float *dy, float *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_crop(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_crop_backward(const float *dy, float *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_merge(const float *x, float *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_merge_backward(const float *dy, float *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_window_attention(const float *qkv, float *y, const cv_shape4 *xs, int w, int shift,
                          int heads, const float *table);
void ref_window_attention_backward(const float *qkv, const float *dy, float *dqkv, float *dtable,
                                   const cv_shape4 *xs, int w, int shift, int heads,
                                   const float *table);
void ref_pad_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_pad_backward_f64(const double *dy, double *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_crop_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_crop_backward_f64(const double *dy, double *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_merge_f64(const double *x, double *y, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_merge_backward_f64(const double *dy, double *dx, const cv_shape4 *xs, const cv_shape4 *ys);
void ref_window_attention_f64(const double *qkv, double *y, const cv_shape4 *xs, int w, int shift,
                              int heads, const double *table);
void ref_window_attention_backward_f64(const double *qkv, const double *dy, double *dqkv,
                                       double *dtable, const cv_shape4 *xs, int w, int shift,
                                       int heads, const double *table);
/* Window (wy, wx) of an H x W map: Swin's (rolled by (sh, sw)) or, with grid, MaxViT's grid
 * window of w x w pixels (H/w, W/w) apart: each of its w*w tokens' pixel index (pos) and
 * shift-mask region (label), as the reference's window attention uses them. */
void attn_window_tokens(int64_t H, int64_t W, int w, int sh, int sw, int grid, int64_t wy,
                        int64_t wx, int64_t *pos, int *label);
/* Swin V2 (see kernels_impl.h): prm/grad = logit_scale, cpb_mlp.0.weight, cpb_mlp.0.bias,
 * cpb_mlp.2.weight, qkv.bias */
void ref_window_attention_v2(const float *qkv, float *y, const cv_shape4 *xs, int w, int shift,
                             int heads, int hidden, const float *const *prm);
void ref_window_attention_v2_backward(const float *qkv, const float *dy, float *dqkv,
                                      float *const *grad, const cv_shape4 *xs, int w, int shift,
                                      int heads, int hidden, const float *const *prm);
void ref_window_attention_v2_f64(const double *qkv, double *y, const cv_shape4 *xs, int w,
                                 int shift, int heads, int hidden, const double *const *prm);
void ref_window_attention_v2_backward_f64(const double *qkv, const double *dy, double *dqkv,
                                          double *const *grad, const cv_shape4 *xs, int w,
                                          int shift, int heads, int hidden,
                                          const double *const *prm);
/* Swin V2's parts (kernels_impl.h), for the oneDNN backend's channels-last path (cl = 1) */
void ref_cpb_table(int w, int heads, int hidden, const float *const *prm, float *table, float *hid);
void ref_cpb_table_backward(int w, int heads, int hidden, const float *const *prm,
                            const float *dtab, float *const *grad);
void ref_v2_prepare(const float *qkv, float *out, const cv_shape4 *xs, int heads,
                    const float *const *prm, int cl);
void ref_v2_prepare_backward(const float *qkv, const float *q, const float *dq, float *dqkv,
                             float *const *grad, const cv_shape4 *xs, int heads,
                             const float *const *prm, int cl);
void ref_partition_attention(const float *qkv, float *y, const cv_shape4 *xs, int w, int grid,
                             int heads, const float *table);
void ref_partition_attention_backward(const float *qkv, const float *dy, float *dqkv, float *dtable,
                                      const cv_shape4 *xs, int w, int grid, int heads,
                                      const float *table);
void ref_partition_attention_f64(const double *qkv, double *y, const cv_shape4 *xs, int w, int grid,
                                 int heads, const double *table);
void ref_partition_attention_backward_f64(const double *qkv, const double *dy, double *dqkv,
                                          double *dtable, const cv_shape4 *xs, int w, int grid,
                                          int heads, const double *table);
void ref_concat(const float *const *xs, const cv_shape4 *shapes, int n, float *y);
void ref_concat_backward(const float *dy, float *const *dxs, const cv_shape4 *shapes, int n);

#endif
