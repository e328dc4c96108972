/* SVG chart writers used by the HTML report. */
#ifndef CV_REPORT_SVG_H
#define CV_REPORT_SVG_H

#include <stdio.h>

typedef struct {
    const char *label;
    const double *x, *y; /* x may be NULL for bars */
    int n;
} cv_svg_series;

const char *cv_svg_color(int i);
void cv_svg_escape(FILE *f, const char *s);
/* Curves in the unit square (ROC, PR); diagonal draws the chance line. */
void cv_svg_lines(FILE *f, const char *title, const char *xl, const char *yl,
                  const cv_svg_series *s, int ns, int diagonal);
/* K×K heatmap coloured by the row-normalised values, labelled with the counts. */
void cv_svg_heatmap(FILE *f, const char *title, const double *counts, const double *norm, int K);
/* Grouped bars in [0, 1]: one group per class, one bar per series (y[c]). */
void cv_svg_bars(FILE *f, const char *title, const cv_svg_series *s, int ns, int K);
/* A scatter plot of n labelled points on axes fitted to the data (ticks at 1, 2 or 5 times a power
 * of ten), with the line y = slope * x + intercept across the x range when slope is finite. */
void cv_svg_scatter(FILE *f, const char *title, const char *xl, const char *yl, const double *x,
                    const double *y, const char *const *labels, int n, double slope,
                    double intercept);
void cv_svg_reliability(FILE *f, const char *title, const double *lo, const double *hi,
                        const double *count, const double *acc, int nb);

#endif
