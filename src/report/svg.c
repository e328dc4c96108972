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
