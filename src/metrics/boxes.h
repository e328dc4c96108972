/* Internals of the detection metrics: the box set read from CSV or COCO JSON. */
#ifndef CV_METRICS_BOXES_H
#define CV_METRICS_BOXES_H

#include <stddef.h>

#include "metrics/metrics_internal.h"

/* Strings interned to dense indices in order of first appearance (open addressing). */
typedef struct {
    char **keys;
    int n;
    int *slots;
    size_t nslots;
} cv_keytab;

int cv_keytab_find(const cv_keytab *t, const char *s, size_t len); /* -1: absent */
int cv_keytab_add(cv_keytab *t, const char *s, size_t len);        /* -1: out of memory */
void cv_keytab_free(cv_keytab *t);

typedef struct {
    int img, cls;          /* indices into the set's imgs and cls tables */
    double x1, y1, x2, y2; /* corners (JSON: x + width, as pycocotools computes them) */
    double barea;          /* the box's own area, used by IoU (width × height as given) */
    double area;           /* the area compared with COCO's size ranges (JSON: "area" if given) */
    double score;          /* predictions */
    int crowd;             /* ground truth: iscrowd */
    size_t at;             /* CSV line, or index in the JSON list, for messages */
} cv_det_box;

struct cv_det_set {
    char *name;
    int pred, json;
    int has_images;   /* JSON ground truth with an "images" list: it alone defines the images */
    const char *list; /* JSON: "annotations" or "results" */
    cv_keytab imgs, cls;
    cv_det_box *b;
    size_t n, cap;
};

/* "file:LINE" or "file: annotations[i]" for box `at`. */
void cv_det_where(const cv_det_set *d, size_t at, char *buf, size_t size);

#endif
