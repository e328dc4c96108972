/* Inline SVG charts for the HTML report: heatmap, grouped bars, line plots, reliability bars.
 * Plain SVG 1.1, no script, so the page renders offline anywhere. */
#include <math.h>
#include <stdio.h>

#include "report/svg.h"

static const char *palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

const char *cv_svg_color(int i)
{
    return palette[i % 10];
}

void cv_svg_escape(FILE *f, const char *s)
{
    for (; *s; s++) switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
}

/* A unit-square plot area with axes, ticks at 0, .25, ... 1 and labels. */
static void unit_axes(FILE *f, const char *xl, const char *yl)
{
    fprintf(f, "<rect x=\"50\" y=\"10\" width=\"300\" height=\"300\" fill=\"#fff\" "
               "stroke=\"#888\"/>\n");
    for (int i = 0; i <= 4; i++) {
        double t = i / 4.0;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"10\" x2=\"%.1f\" y2=\"310\" stroke=\"#eee\"/>"
                "<line x1=\"50\" y1=\"%.1f\" x2=\"350\" y2=\"%.1f\" stroke=\"#eee\"/>\n"
                "<text x=\"%.1f\" y=\"325\" font-size=\"10\" text-anchor=\"middle\">%.2f</text>"
                "<text x=\"45\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f</text>\n",
                50 + 300 * t, 50 + 300 * t, 310 - 300 * t, 310 - 300 * t, 50 + 300 * t, t,
                313 - 300 * t, t);
    }
    fprintf(f, "<text x=\"200\" y=\"345\" font-size=\"12\" text-anchor=\"middle\">");
    cv_svg_escape(f, xl);
    fprintf(f, "</text><text x=\"14\" y=\"160\" font-size=\"12\" text-anchor=\"middle\" "
               "transform=\"rotate(-90 14 160)\">");
    cv_svg_escape(f, yl);
    fprintf(f, "</text>\n");
}

void cv_svg_lines(FILE *f, const char *title, const char *xl, const char *yl,
                  const cv_svg_series *s, int ns, int diagonal)
{
    fprintf(f, "<figure><figcaption>");
    cv_svg_escape(f, title);
    fprintf(f,
            "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"360\" viewBox=\"0 0 %d 360\">\n",
            ns > 1 ? 470 : 370, ns > 1 ? 470 : 370);
    unit_axes(f, xl, yl);
    if (diagonal)
        fprintf(f, "<line x1=\"50\" y1=\"310\" x2=\"350\" y2=\"10\" stroke=\"#aaa\" "
                   "stroke-dasharray=\"4 3\"/>\n");
    for (int k = 0; k < ns; k++) {
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"%s\" points=\"",
                cv_svg_color(k));
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            fprintf(f, "%.1f,%.1f ", 50 + 300 * x, 310 - 300 * y);
        }
        fprintf(f, "\"/>\n");
        if (ns > 1) {
            fprintf(f,
                    "<rect x=\"360\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                    "<text x=\"375\" y=\"%d\" font-size=\"11\">",
                    12 + 15 * k, cv_svg_color(k), 21 + 15 * k);
            cv_svg_escape(f, s[k].label);
            fprintf(f, "</text>\n");
        }
    }
    fprintf(f, "</svg></figure>\n");
}

void cv_svg_heatmap(FILE *f, const char *title, const double *counts, const double *norm, int K)
{
    int cell = K <= 10 ? 40 : K <= 30 ? 16 : 6, size = cell * K;
    fprintf(f, "<figure><figcaption>");
    cv_svg_escape(f, title);
    fprintf(f,
            "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            size + 80, size + 70, size + 80, size + 70);
    for (int t = 0; t < K; t++)
        for (int p = 0; p < K; p++) {
            double v = norm[t * K + p];
            int shade = (int)lround(255 * (1 - v));
            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\">"
                    "<title>true %d, predicted %d: %.0f (%.3f of the true class)</title></rect>\n",
                    60 + p * cell, 20 + t * cell, cell, cell, shade, shade, t, p, counts[t * K + p],
                    v);
            if (cell >= 40)
                fprintf(f,
                        "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
                        "fill=\"%s\">%.0f</text>\n",
                        60 + p * cell + cell / 2, 20 + t * cell + cell / 2 + 4,
                        v > 0.5 ? "#fff" : "#000", counts[t * K + p]);
        }
    if (cell >= 16)
        for (int c = 0; c < K; c++)
            fprintf(f,
                    "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\">%d</text>"
                    "<text x=\"55\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%d</text>\n",
                    60 + c * cell + cell / 2, 14, c, 20 + c * cell + cell / 2 + 4, c);
    fprintf(f,
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">predicted "
            "class</text><text x=\"12\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 12 %d)\">true class</text>\n",
            60 + size / 2, size + 45, 20 + size / 2, 20 + size / 2);
    fprintf(f, "</svg></figure>\n");
}

void cv_svg_bars(FILE *f, const char *title, const cv_svg_series *s, int ns, int K)
{
    int group = ns * 8 + 6, w = 60 + group * K + 120;
    fprintf(f, "<figure><figcaption>");
    cv_svg_escape(f, title);
    fprintf(f,
            "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"260\" viewBox=\"0 0 %d 260\">\n",
            w, w);
    for (int i = 0; i <= 4; i++)
        fprintf(f,
                "<line x1=\"50\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"45\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.2f</text>\n",
                210 - 50.0 * i, 60 + group * K, 210 - 50.0 * i, 213 - 50.0 * i, i / 4.0);
    for (int c = 0; c < K; c++) {
        for (int k = 0; k < ns; k++) {
            double v = s[k].y[c];
            if (!isfinite(v)) continue;
            fprintf(f,
                    "<rect x=\"%d\" y=\"%.1f\" width=\"7\" height=\"%.1f\" fill=\"%s\">"
                    "<title>class %d %s: %.4f</title></rect>\n",
                    60 + c * group + k * 8, 210 - 200 * v, 200 * v, cv_svg_color(k), c, s[k].label,
                    v);
        }
        if (K <= 40)
            fprintf(f,
                    "<text x=\"%d\" y=\"225\" font-size=\"10\" text-anchor=\"middle\">%d</text>\n",
                    60 + c * group + ns * 4, c);
    }
    for (int k = 0; k < ns; k++) {
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                "<text x=\"%d\" y=\"%d\" font-size=\"11\">",
                70 + group * K, 12 + 15 * k, cv_svg_color(k), 85 + group * K, 21 + 15 * k);
        cv_svg_escape(f, s[k].label);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg></figure>\n");
}

void cv_svg_reliability(FILE *f, const char *title, const double *lo, const double *hi,
                        const double *count, const double *acc, int nb)
{
    fprintf(f, "<figure><figcaption>");
    cv_svg_escape(f, title);
    fprintf(f, "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"370\" "
               "height=\"360\" viewBox=\"0 0 370 360\">\n");
    unit_axes(f, "confidence", "accuracy");
    for (int b = 0; b < nb; b++) {
        if (count[b] <= 0 || !isfinite(acc[b])) continue;
        double x0 = lo[b], x1 = hi[b] > lo[b] ? hi[b] : lo[b] + 0.01;
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f77b4\" "
                "fill-opacity=\"0.7\" stroke=\"#fff\"><title>[%.3f, %.3f]: %.0f samples, "
                "accuracy %.3f</title></rect>\n",
                50 + 300 * x0, 310 - 300 * acc[b], 300 * (x1 - x0), 300 * acc[b], lo[b], hi[b],
                count[b], acc[b]);
    }
    fprintf(f, "<line x1=\"50\" y1=\"310\" x2=\"350\" y2=\"10\" stroke=\"#d62728\" "
               "stroke-dasharray=\"4 3\"/>\n</svg></figure>\n");
}

/* Axis range [lo, hi] widened to whole ticks of a 1/2/5 step giving about 5 intervals. */
static double nice_axis(double *lo, double *hi)
{
    if (!(*hi > *lo)) {
        double pad = *lo != 0 ? fabs(*lo) * 0.05 : 0.5;
        *lo -= pad, *hi += pad;
    }
    double raw = (*hi - *lo) / 5, mag = pow(10, floor(log10(raw))), step = mag;
    if (raw / mag > 5)
        step = 10 * mag;
    else if (raw / mag > 2)
        step = 5 * mag;
    else if (raw / mag > 1)
        step = 2 * mag;
    *lo = floor(*lo / step) * step;
    *hi = ceil(*hi / step) * step;
    return step;
}

/* Decimals that show a tick step exactly (0.05 → 2). */
static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

void cv_svg_scatter(FILE *f, const char *title, const char *xl, const char *yl, const double *x,
                    const double *y, const char *const *labels, int n, double slope,
                    double intercept)
{
    const double L = 60, T = 15, W = 420, H = 300; /* plot area; 80 px right for labels */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        x0 = fmin(x0, x[i]), x1 = fmax(x1, x[i]), y0 = fmin(y0, y[i]), y1 = fmax(y1, y[i]);
    }
    if (x0 > x1) x0 = y0 = 0, x1 = y1 = 1; /* no point: empty axes */
    double xs = nice_axis(&x0, &x1), ys = nice_axis(&y0, &y1);
    int xd = step_decimals(xs), yd = step_decimals(ys);
#define PX(v) (L + W * ((v)-x0) / (x1 - x0))
#define PY(v) (T + H * (1 - ((v)-y0) / (y1 - y0)))
    fprintf(f, "<figure><figcaption>");
    cv_svg_escape(f, title);
    fprintf(f,
            "</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\" "
            "stroke=\"#888\"/>\n",
            L + W + 80, T + H + 50, L + W + 80, T + H + 50, L, T, W, H);
    for (int i = 0; i < 50 && x0 + i * xs <= x1 + xs * 1e-9; i++) {
        double v = x0 + i * xs;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                "<text x=\"%.1f\" y=\"%.0f\" font-size=\"10\" text-anchor=\"middle\">%.*f</text>\n",
                PX(v), T, PX(v), T + H, PX(v), T + H + 14, xd, v);
    }
    for (int i = 0; i < 50 && y0 + i * ys <= y1 + ys * 1e-9; i++) {
        double v = y0 + i * ys;
        fprintf(f,
                "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                "<text x=\"%.0f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\">%.*f</text>\n",
                L, PY(v), L + W, PY(v), L - 5, PY(v) + 3, yd, v);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\">", L + W / 2,
            T + H + 36);
    cv_svg_escape(f, xl);
    fprintf(f,
            "</text><text x=\"14\" y=\"%.0f\" font-size=\"12\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 14 %.0f)\">",
            T + H / 2, T + H / 2);
    cv_svg_escape(f, yl);
    fprintf(f, "</text>\n");
    if (isfinite(slope) && isfinite(intercept)) {
        /* the fitted line over the data's x range, clipped to the plot's y range */
        double a = x0, b = x1, ya = slope * a + intercept, yb = slope * b + intercept;
        if (slope != 0) {
            double lo = (y0 - intercept) / slope, hi = (y1 - intercept) / slope;
            if (lo > hi) {
                double t = lo;
                lo = hi, hi = t;
            }
            a = fmax(a, lo), b = fmin(b, hi);
            ya = slope * a + intercept, yb = slope * b + intercept;
        }
        if (a < b)
            fprintf(f,
                    "<line class=\"fit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                    "stroke=\"#d62728\" stroke-width=\"1.5\"/>\n",
                    PX(a), PY(ya), PX(b), PY(yb));
    }
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) continue;
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"><title>", PX(x[i]),
                PY(y[i]), cv_svg_color(0));
        cv_svg_escape(f, labels[i]);
        fprintf(f, ": %g, %g</title></circle><text x=\"%.1f\" y=\"%.1f\" font-size=\"9\">", x[i],
                y[i], PX(x[i]) + 5, PY(y[i]) - 5);
        cv_svg_escape(f, labels[i]);
        fprintf(f, "</text>\n");
    }
#undef PX
#undef PY
    fprintf(f, "</svg></figure>\n");
}
