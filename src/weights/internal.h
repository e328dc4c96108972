/* Shared between the weight readers: each format's loader works on a buffer in memory. */
#ifndef CV_WEIGHTS_INTERNAL_H
#define CV_WEIGHTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cvision/weights.h"

/* torch.save archives (zip) and legacy files; `entry` as in cv_weights_load_entry. */
cv_status cv_pth_load_zip(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                          const char *entry, int nested, cv_state **out);
cv_status cv_pth_load_legacy(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                             const char *entry, cv_state **out);
cv_status cv_safetensors_load_mem(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                                  cv_state **out);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
int cv_utf8_valid(const uint8_t *s, size_t n);

/* The format a buffer's first bytes announce. */
typedef enum { WF_UNKNOWN, WF_ZIP, WF_LEGACY, WF_SAFETENSORS, WF_TAR } cv_weights_format;
cv_weights_format cv_weights_sniff(const uint8_t *buf, size_t len);

/* Loads with a nesting level (a zip holding one legacy file is loaded at level 1). */
cv_status cv_weights_load_buf(cv_ctx *ctx, const char *name, const uint8_t *buf, size_t len,
                              const char *entry, int nested, cv_state **out);

#endif
