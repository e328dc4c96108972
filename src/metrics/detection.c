/* Detection metrics: box IoU (torchvision.ops.box_iou), COCO mean average precision (the
 * algorithm of pycocotools' COCOeval for bboxes: evaluateImg's greedy matching, accumulate's
 * 101-point interpolated precision, summarize's means) and VOC AP at IoU 0.5 (voc_eval.py's
 * matching; VOC2007's 11-point and VOC2010+'s all-point areas). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/boxes.h"

void cv_box_iou(const double *a, size_t n, const double *b, size_t m, double *out)
{
    for (size_t i = 0; i < n; i++) {
        const double *p = a + 4 * i, ap = (p[2] - p[0]) * (p[3] - p[1]);
        for (size_t j = 0; j < m; j++) {
            const double *q = b + 4 * j, bq = (q[2] - q[0]) * (q[3] - q[1]);
            double w = fmin(p[2], q[2]) - fmax(p[0], q[0]), h = fmin(p[3], q[3]) - fmax(p[1], q[1]);
            double inter = (w > 0 ? w : 0) * (h > 0 ? h : 0);
            out[i * m + j] = inter / (ap + bq - inter);
        }
    }
}

/* pycocotools' maskApi bbIou: 0 without overlap; a crowd region divides by the detection's area */
static double coco_iou(const cv_det_box *d, const cv_det_box *g)
{
    double w = fmin(d->x2, g->x2) - fmax(d->x1, g->x1);
    if (w <= 0) return 0;
    double h = fmin(d->y2, g->y2) - fmax(d->y1, g->y1);
    if (h <= 0) return 0;
    double i = w * h;
    return i / (g->crowd ? d->barea : d->barea + g->barea - i);
}

/* voc_eval.py's overlap without its +1 pixel convention; 0 where the union is empty */
static double voc_iou(const cv_det_box *d, const cv_det_box *g)
{
    double w = fmax(fmin(d->x2, g->x2) - fmax(d->x1, g->x1), 0);
    double h = fmax(fmin(d->y2, g->y2) - fmax(d->y1, g->y1), 0);
    double u = d->barea + g->barea - w * h;
    return u > 0 ? w * h / u : 0;
}

/* ---- key order: numeric when every key is an integer, else byte order (COCO: sorted ids) ---- */

typedef struct {
    const char *s;
    long long v;
    int idx, numeric; /* numeric: the same for every key of one sort */
} keyref;

static int cmp_key(const void *pa, const void *pb)
{
    const keyref *a = pa, *b = pb;
    return a->numeric ? (a->v > b->v) - (a->v < b->v) : strcmp(a->s, b->s);
}

/* rank[i] = position of key i in sorted order; order[r] = key at rank r (may be NULL) */
static int rank_keys(char *const *keys, int n, int *rank, int *order)
{
    keyref *k = malloc((size_t)(n ? n : 1) * sizeof *k);
    if (!k) return -1;
    int ints = 1;
    for (int i = 0; i < n; i++) {
        const char *p = keys[i] + (keys[i][0] == '-');
        size_t len = strlen(p);
        k[i].s = keys[i];
        k[i].idx = i;
        k[i].v = strtoll(keys[i], NULL, 10);
        /* canonical decimal integers only ("7", "-3"; not "007" or "+7") */
        ints &= len >= 1 && len <= 18 && strspn(p, "0123456789") == len &&
                (p[0] != '0' || (len == 1 && p == keys[i]));
    }
    for (int i = 0; i < n; i++) k[i].numeric = ints;
    qsort(k, (size_t)n, sizeof *k, cmp_key);
    for (int r = 0; r < n; r++) {
        rank[k[r].idx] = r;
        if (order) order[r] = k[r].idx;
    }
    free(k);
    return 0;
}

/* ---- sorting boxes: (class rank, image rank, [-score,] file position) ---- */

typedef struct {
    int cls, img;
    double score;
    size_t idx;
} boxkey;

static int cmp_box(const void *pa, const void *pb)
{
    const boxkey *a = pa, *b = pb;
    if (a->cls != b->cls) return a->cls < b->cls ? -1 : 1;
    if (a->img != b->img) return a->img < b->img ? -1 : 1;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* one detection's outcome, appended per image in score order */
typedef struct {
    double score;
    int img, rank;
    uint16_t tp, ig; /* COCO: bit t = matched / ignored at IoU threshold t; VOC: bit 0 */
} outcome;

typedef struct {
    outcome *v;
    size_t n, cap;
} outvec;

static int out_push(outvec *o, const outcome *x)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        outcome *v = realloc(o->v, cap * sizeof *v);
        if (!v) return -1;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = *x;
    return 0;
}

/* global order within a class: score descending, then image order, then position in the image */
static int cmp_outcome(const void *pa, const void *pb)
{
    const outcome *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->img != b->img) return a->img < b->img ? -1 : 1;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

enum { T = 10, R = 101, A = 4, M = 3, MAXDET = 100 };
static const int max_dets[M] = {1, 10, 100};
static const double area_lo[A] = {0, 0, 32 * 32, 96 * 96};
static const double area_hi[A] = {1e10, 32 * 32, 96 * 96, 1e10};

/* np.linspace(start, stop, num)[i] */
static double linspace(double start, double stop, int num, int i)
{
    return i == num - 1 ? stop : i * ((stop - start) / (num - 1)) + start;
}

/* COCOeval.evaluateImg for one image and class at one area range: G ground-truth boxes (file
 * order), D detections (score order, at most 100), ious D×G. */
static int coco_image(const cv_det_box *const *gt, int G, const cv_det_box *const *dt, int D,
                      const double *ious, int a, const double *thr, int img, outvec *out,
                      double *npig, int *perm, uint8_t *gtm)
{
    double lo = area_lo[a], hi = area_hi[a];
    int np = 0;
    /* ignored ground truth (crowd, or outside the area range) goes last, stably */
    for (int pass = 0; pass < 2; pass++)
        for (int g = 0; g < G; g++) {
            int ig = gt[g]->crowd || gt[g]->area < lo || gt[g]->area > hi;
            if (ig == pass) perm[np++] = g;
        }
    for (int g = 0; g < G; g++)
        if (!(gt[g]->crowd || gt[g]->area < lo || gt[g]->area > hi)) (*npig)++;
    outcome o[MAXDET];
    for (int d = 0; d < D; d++) o[d] = (outcome){dt[d]->score, img, d, 0, 0};
    for (int t = 0; t < T; t++) {
        memset(gtm, 0, (size_t)G);
        for (int d = 0; d < D; d++) {
            double iou = fmin(thr[t], 1 - 1e-10);
            int m = -1, mig = 0;
            for (int j = 0; j < G; j++) {
                const cv_det_box *g = gt[perm[j]];
                int gig = g->crowd || g->area < lo || g->area > hi;
                if (gtm[j] && !g->crowd) continue;
                if (m > -1 && !mig && gig) break;
                double v = ious[(size_t)d * G + perm[j]];
                if (v < iou) continue;
                iou = v;
                m = j;
                mig = gig;
            }
            if (m == -1) {
                if (dt[d]->area < lo || dt[d]->area > hi) o[d].ig |= 1u << t;
                continue;
            }
            o[d].tp |= 1u << t;
            if (mig) o[d].ig |= 1u << t;
            gtm[m] = 1;
        }
    }
    for (int d = 0; d < D; d++)
        if (out_push(out, &o[d])) return -1;
    return 0;
}

/* COCOeval.accumulate for one class and area range: fills qsum[m][t] (sum over the 101 recall
 * thresholds of the interpolated precision) and rec[m][t]. */
static int coco_accumulate(outvec *o, double npig, const double *rthr, double qsum[M][T],
                           double rec[M][T])
{
    qsort(o->v, o->n, sizeof *o->v, cmp_outcome);
    double *rc = malloc((o->n + 1) * sizeof *rc), *pr = malloc((o->n + 1) * sizeof *pr);
    if (!rc || !pr) {
        free(rc);
        free(pr);
        return -1;
    }
    for (int m = 0; m < M; m++)
        for (int t = 0; t < T; t++) {
            double tp = 0, fp = 0;
            size_t nd = 0;
            for (size_t i = 0; i < o->n; i++) {
                const outcome *x = &o->v[i];
                if (x->rank >= max_dets[m]) continue;
                int ig = x->ig >> t & 1, hit = x->tp >> t & 1;
                tp += hit && !ig;
                fp += !hit && !ig;
                rc[nd] = tp / npig;
                pr[nd] = tp / (fp + tp + 2.220446049250313e-16); /* np.spacing(1) */
                nd++;
            }
            rec[m][t] = nd ? rc[nd - 1] : 0;
            for (size_t i = nd; i-- > 1;)
                if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
            double s = 0;
            size_t i = 0;
            for (int r = 0; r < R; r++) { /* np.searchsorted(rc, rthr, side='left') */
                while (i < nd && rc[i] < rthr[r]) i++;
                if (i == nd) break;
                s += pr[i];
            }
            qsum[m][t] = s;
        }
    free(rc);
    free(pr);
    return 0;
}

/* voc_eval.py's ap: 11-point (VOC2007) and all-point (VOC2010+) areas under the PR curve */
static void voc_ap(outvec *o, double npos, double *ap11, double *ap, double *scratch)
{
    qsort(o->v, o->n, sizeof *o->v, cmp_outcome);
    size_t n = 0;
    double tp = 0, fp = 0, *rc = scratch, *pr = scratch + o->n + 2;
    for (size_t i = 0; i < o->n; i++) {
        if (o->v[i].ig) continue; /* matched a difficult (crowd) box: neither tp nor fp */
        tp += o->v[i].tp;
        fp += !o->v[i].tp;
        rc[n] = tp / npos;
        pr[n] = tp / fmax(tp + fp, 2.220446049250313e-16);
        n++;
    }
    double s11 = 0;
    for (int k = 0; k <= 10; k++) {
        double t = k * 0.1, p = 0; /* np.arange(0., 1.1, 0.1) */
        for (size_t i = 0; i < n; i++)
            if (rc[i] >= t && pr[i] > p) p = pr[i];
        s11 += p / 11;
    }
    *ap11 = s11;
    /* mrec = [0, rc, 1], mpre = [0, pr, 0]; precision envelope; sum over recall steps */
    double env = 0, area = 0;
    for (size_t i = n + 1; i-- > 0;) {
        double r_hi = i == n ? 1 : rc[i], r_lo = i == 0 ? 0 : rc[i - 1];
        double p_hi = i == n ? 0 : pr[i];
        if (p_hi > env) env = p_hi;
        if (r_hi != r_lo) area += (r_hi - r_lo) * env;
    }
    *ap = area;
}

static double mean_valid(const double *v, const double *w, int K)
{
    double s = 0;
    int n = 0;
    for (int k = 0; k < K; k++)
        if (w[k] > 0) s += v[k], n++;
    return n ? s / n : NAN;
}

cv_status cv_det_evaluate(cv_ctx *ctx, const cv_det_set *gt, const cv_det_set *pred,
                          cv_metrics_result **out)
{
    *out = NULL;
    const int I = gt->imgs.n;
    cv_status st = CV_OK;
    cv_keytab U = {0};
    int *img_rank = NULL, *pimg = NULL, *gcls = NULL, *pcls = NULL, *crank = NULL, *corder = NULL,
        *perm = NULL;
    boxkey *gk = NULL, *pk = NULL;
    double *stats = NULL, *ious = NULL, *scratch = NULL;
    uint8_t *gtm = NULL;
    const cv_det_box **gl = NULL, **dl = NULL;
    outvec oc[A] = {{0}}, ov = {0};
    cv_metrics_result *r = NULL;
    char at[300];

    /* images: the ground truth's, in sorted order; a prediction elsewhere is an error */
    img_rank = malloc((size_t)(I ? I : 1) * sizeof *img_rank);
    pimg = malloc((size_t)(pred->imgs.n ? pred->imgs.n : 1) * sizeof *pimg);
    if (!img_rank || !pimg || rank_keys(gt->imgs.keys, I, img_rank, NULL)) goto oom;
    for (int i = 0; i < pred->imgs.n; i++)
        pimg[i] = cv_keytab_find(&gt->imgs, pred->imgs.keys[i], strlen(pred->imgs.keys[i]));
    for (size_t i = 0; i < pred->n; i++)
        if (pimg[pred->b[i].img] < 0) {
            cv_det_where(pred, pred->b[i].at, at, sizeof at);
            st = cv_fail(ctx, CV_ERR_FORMAT, "%s: image '%s' is not in the ground truth (%s)", at,
                         pred->imgs.keys[pred->b[i].img], gt->name);
            goto done;
        }
    /* classes: those of the ground truth, then any only predicted, in sorted order */
    gcls = malloc((size_t)(gt->cls.n + 1) * sizeof *gcls);
    pcls = malloc((size_t)(pred->cls.n + 1) * sizeof *pcls);
    if (!gcls || !pcls) goto oom;
    for (int c = 0; c < gt->cls.n; c++)
        if ((gcls[c] = cv_keytab_add(&U, gt->cls.keys[c], strlen(gt->cls.keys[c]))) < 0) goto oom;
    for (int c = 0; c < pred->cls.n; c++)
        if ((pcls[c] = cv_keytab_add(&U, pred->cls.keys[c], strlen(pred->cls.keys[c]))) < 0)
            goto oom;
    const int K = U.n;
    crank = malloc((size_t)(K + 1) * sizeof *crank);
    corder = malloc((size_t)(K + 1) * sizeof *corder);
    if (!crank || !corder || rank_keys(U.keys, K, crank, corder)) goto oom;

    gk = malloc((gt->n + 1) * sizeof *gk);
    pk = malloc((pred->n + 1) * sizeof *pk);
    if (!gk || !pk) goto oom;
    size_t maxg = 0, maxd = 0;
    for (size_t i = 0; i < gt->n; i++)
        gk[i] = (boxkey){crank[gcls[gt->b[i].cls]], img_rank[gt->b[i].img], 0, i};
    for (size_t i = 0; i < pred->n; i++)
        pk[i] = (boxkey){crank[pcls[pred->b[i].cls]], img_rank[pimg[pred->b[i].img]],
                         pred->b[i].score, i};
    qsort(gk, gt->n, sizeof *gk, cmp_box);
    qsort(pk, pred->n, sizeof *pk, cmp_box);
    /* the largest (class, image) groups size the scratch buffers */
    for (size_t i = 0, j; i < gt->n; i = j) {
        for (j = i; j < gt->n && gk[j].cls == gk[i].cls && gk[j].img == gk[i].img; j++) {
        }
        if (j - i > maxg) maxg = j - i;
    }
    for (size_t i = 0, j; i < pred->n; i = j) {
        for (j = i; j < pred->n && pk[j].cls == pk[i].cls && pk[j].img == pk[i].img; j++) {
        }
        if (j - i > maxd) maxd = j - i;
    }
    /* stats per class: [a][m][t] qsum, [a][m][t] recall, [a] npig, voc11, voc, support */
    enum { S_Q = 0, S_R = A * M * T, S_NPIG = 2 * A * M * T, S_V11 = S_NPIG + A, S_V, S_SUP, S_N };
    stats = calloc((size_t)(K ? K : 1) * S_N, sizeof *stats);
    ious = malloc((size_t)(maxg ? maxg : 1) * MAXDET * sizeof *ious);
    perm = malloc((maxg + 1) * sizeof *perm);
    gtm = malloc(maxg + 1);
    gl = malloc((maxg + 1) * sizeof *gl);
    dl = malloc((maxd + 1) * sizeof *dl);
    scratch = malloc((2 * pred->n + 4) * sizeof *scratch);
    uint8_t *used = malloc(maxg + 1);
    if (!stats || !ious || !perm || !gtm || !gl || !dl || !scratch || !used) {
        free(used);
        goto oom;
    }
    double iou_thr[T], rec_thr[R];
    for (int t = 0; t < T; t++) iou_thr[t] = linspace(0.5, 0.95, T, t);
    for (int q = 0; q < R; q++) rec_thr[q] = linspace(0, 1, R, q);

    size_t gi = 0, di = 0;
    for (int k = 0; k < K; k++) {
        double *S = stats + (size_t)k * S_N;
        for (int a = 0; a < A; a++) oc[a].n = 0;
        ov.n = 0;
        while ((gi < gt->n && gk[gi].cls == k) || (di < pred->n && pk[di].cls == k)) {
            /* the next image holding boxes of class k */
            int img = INT32_MAX;
            if (gi < gt->n && gk[gi].cls == k) img = gk[gi].img;
            if (di < pred->n && pk[di].cls == k && pk[di].img < img) img = pk[di].img;
            int G = 0, D = 0;
            for (; gi < gt->n && gk[gi].cls == k && gk[gi].img == img; gi++)
                gl[G++] = &gt->b[gk[gi].idx];
            for (; di < pred->n && pk[di].cls == k && pk[di].img == img; di++)
                dl[D++] = &pred->b[pk[di].idx];
            for (int g = 0; g < G; g++) S[S_SUP] += !gl[g]->crowd;
            /* COCO: the 100 best-scored detections of the image */
            int Dc = D < MAXDET ? D : MAXDET;
            for (int d = 0; d < Dc; d++)
                for (int g = 0; g < G; g++) ious[(size_t)d * G + g] = coco_iou(dl[d], gl[g]);
            for (int a = 0; a < A; a++)
                if (coco_image(gl, G, dl, Dc, ious, a, iou_thr, img, &oc[a], &S[S_NPIG + a], perm,
                               gtm)) {
                    free(used);
                    goto oom;
                }
            /* VOC: every detection, matched greedily in score order at IoU > 0.5 */
            memset(used, 0, (size_t)G);
            for (int d = 0; d < D; d++) {
                double best = -INFINITY;
                int j = -1;
                for (int g = 0; g < G; g++) {
                    double v = voc_iou(dl[d], gl[g]);
                    if (v > best) best = v, j = g;
                }
                outcome x = {dl[d]->score, img, d, 0, 0};
                if (j >= 0 && best > 0.5) {
                    if (gl[j]->crowd)
                        x.ig = 1;
                    else if (!used[j])
                        x.tp = used[j] = 1;
                }
                if (out_push(&ov, &x)) {
                    free(used);
                    goto oom;
                }
            }
        }
        for (int a = 0; a < A; a++)
            if (S[S_NPIG + a] > 0) {
                double q[M][T], rc[M][T];
                if (coco_accumulate(&oc[a], S[S_NPIG + a], rec_thr, q, rc)) {
                    free(used);
                    goto oom;
                }
                for (int m = 0; m < M; m++)
                    for (int t = 0; t < T; t++) {
                        S[S_Q + (a * M + m) * T + t] = q[m][t];
                        S[S_R + (a * M + m) * T + t] = rc[m][t];
                    }
            }
        if (S[S_SUP] > 0) voc_ap(&ov, S[S_SUP], &S[S_V11], &S[S_V], scratch);
    }
    free(used);

    /* summarize(): means over the classes with ground truth in the area range */
    r = cv_res_alloc(CV_TASK_DETECTION, K, (size_t)I);
    double *pc = calloc(6 * (size_t)(K ? K : 1), sizeof *pc);
    if (!r || !pc) {
        free(pc);
        goto oom;
    }
    double *vals = pc, *w = pc + K, *ap = pc + 2 * K, *ar = pc + 3 * K, *v11 = pc + 4 * K,
           *vall = pc + 5 * K;
    /* (name, area, maxDets index, IoU threshold index or -1 for all, precision or recall) */
    static const struct {
        const char *name;
        int a, m, t, prec;
    } sums[] = {
        {"map", 0, 2, -1, 1},       {"map_50", 0, 2, 0, 1},      {"map_75", 0, 2, 5, 1},
        {"map_small", 1, 2, -1, 1}, {"map_medium", 2, 2, -1, 1}, {"map_large", 3, 2, -1, 1},
        {"mar_1", 0, 0, -1, 0},     {"mar_10", 0, 1, -1, 0},     {"mar_100", 0, 2, -1, 0},
        {"mar_small", 1, 2, -1, 0}, {"mar_medium", 2, 2, -1, 0}, {"mar_large", 3, 2, -1, 0}};
    for (size_t s = 0; s < sizeof sums / sizeof sums[0]; s++) {
        for (int k = 0; k < K; k++) {
            const double *S = stats + (size_t)k * S_N;
            const double *src = S + (sums[s].prec ? S_Q : S_R) + (sums[s].a * M + sums[s].m) * T;
            double sum = 0;
            for (int t = 0; t < T; t++)
                if (sums[s].t < 0 || sums[s].t == t) sum += src[t];
            vals[k] = sum / ((sums[s].t < 0 ? T : 1) * (sums[s].prec ? R : 1));
            w[k] = S[S_NPIG + sums[s].a];
            if (s == 0) ap[k] = w[k] > 0 ? vals[k] : NAN;
            if (s == 8) ar[k] = w[k] > 0 ? vals[k] : NAN;
        }
        cv_res_scalar(r, sums[s].name, mean_valid(vals, w, K),
                      "undefined: no ground-truth boxes in this area range");
    }
    for (int k = 0; k < K; k++) {
        const double *S = stats + (size_t)k * S_N;
        v11[k] = S[S_SUP] > 0 ? S[S_V11] : NAN;
        vall[k] = S[S_SUP] > 0 ? S[S_V] : NAN;
        w[k] = S[S_SUP];
    }
    cv_res_scalar(r, "voc07_map_50", mean_valid(v11, w, K), "undefined: no ground-truth boxes");
    cv_res_scalar(r, "voc_map_50", mean_valid(vall, w, K), "undefined: no ground-truth boxes");
    if (K) {
        cv_res_vector(r, "map_per_class", ap, K);
        cv_res_vector(r, "mar_100_per_class", ar, K);
        cv_res_vector(r, "voc07_ap_50_per_class", v11, K);
        cv_res_vector(r, "voc_ap_50_per_class", vall, K);
        cv_res_vector(r, "support.per_class", w, K);
    }
    free(pc);
    if (r->oom) goto oom;
    if (K) {
        const char **names = malloc((size_t)K * sizeof *names);
        if (!names) goto oom;
        for (int k = 0; k < K; k++) names[k] = U.keys[corder[k]];
        st = cv_metrics_result_set_class_names(ctx, r, names, K);
        free(names);
        if (st) goto done;
    }
    *out = r;
    r = NULL;
    goto done;
oom:
    st = cv_fail(ctx, CV_ERR_NOMEM, "detection: out of memory");
done:
    cv_metrics_result_free(r);
    cv_keytab_free(&U);
    for (int a = 0; a < A; a++) free(oc[a].v);
    free(ov.v);
    free(img_rank);
    free(pimg);
    free(gcls);
    free(pcls);
    free(crank);
    free(corder);
    free(perm);
    free(gk);
    free(pk);
    free(stats);
    free(ious);
    free(scratch);
    free(gtm);
    free(gl);
    free(dl);
    return st;
}
