/*
 * eval_report.c — the evaluator's HTML report: one self-contained file (no scripts, no external
 * assets) with the metrics table and inline SVG drawn here from the metrics JSON: the
 * per-category radar of balanced accuracy (as the LlavaGuard paper's figure), ROC and
 * precision-recall curves, the reliability diagram and the category confusion heat map.
 */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define W 360
#define H 360
#define PAD 40

static double num(const json_t *j, double dflt) {
    return json_is_number(j) ? json_number_value(j) : dflt;
}

static void fig(FILE *f, const json_t *v) {
    if (json_is_number(v))
        fprintf(f, "%.4f", json_number_value(v));
    else
        fputs("&ndash;", f);
}

static void axes(FILE *f, const char *xl, const char *yl) {
    fprintf(f,
            "<rect x='%d' y='%d' width='%d' height='%d' fill='#fff' stroke='#444'/>"
            "<text x='%d' y='%d' text-anchor='middle'>%s</text>"
            "<text x='12' y='%d' text-anchor='middle' transform='rotate(-90 12 %d)'>%s</text>",
            PAD, PAD / 2, W - PAD - 10, H - PAD - PAD / 2, W / 2, H - 8, xl, H / 2, H / 2, yl);
    for (int t = 0; t <= 4; t++) {
        double x = PAD + (W - PAD - 10) * t / 4.0, y = H - PAD - (H - PAD - PAD / 2) * t / 4.0;
        fprintf(f, "<text x='%.1f' y='%d' font-size='10' text-anchor='middle'>%.2f</text>", x,
                H - PAD + 12, t / 4.0);
        fprintf(f, "<text x='%d' y='%.1f' font-size='10' text-anchor='end'>%.2f</text>", PAD - 3,
                y + 3, t / 4.0);
    }
}

static double px(double v) {
    return PAD + (W - PAD - 10) * v;
}
static double py(double v) {
    return H - PAD - (H - PAD - PAD / 2) * v;
}

static void curve(FILE *f, const char *id, const char *title, const json_t *pts, const char *xl,
                  const char *yl, bool diagonal) {
    fprintf(f,
            "<figure><figcaption>%s</figcaption><svg id='%s' class='plot' width='%d' "
            "height='%d' viewBox='0 0 %d %d' xmlns='http://www.w3.org/2000/svg'>",
            title, id, W, H, W, H);
    axes(f, xl, yl);
    if (diagonal)
        fprintf(f,
                "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#bbb' "
                "stroke-dasharray='4'/>",
                px(0), py(0), px(1), py(1));
    fputs("<polyline class='curve' fill='none' stroke='#c0392b' stroke-width='2' points='", f);
    size_t i;
    json_t *p;
    json_array_foreach(pts, i, p) fprintf(f, "%.2f,%.2f ", px(num(json_array_get(p, 0), 0)),
                                          py(num(json_array_get(p, 1), 0)));
    fputs("'/>", f);
    if (!json_array_size(pts))
        fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>no scores</text>", W / 2, H / 2);
    fputs("</svg></figure>\n", f);
}

static void radar(FILE *f, const json_t *per) {
    const double cx = W / 2.0, cy = H / 2.0, r = W / 2.0 - 50;
    fprintf(f,
            "<figure><figcaption>Balanced accuracy per category</figcaption><svg id='radar' "
            "class='plot' width='%d' height='%d' viewBox='0 0 %d %d' "
            "xmlns='http://www.w3.org/2000/svg'>",
            W, H, W, H);
    for (int ring = 1; ring <= 4; ring++) {
        fputs("<polygon fill='none' stroke='#ddd' points='", f);
        for (int k = 0; k < 9; k++) {
            double a = -M_PI / 2 + 2 * M_PI * k / 9;
            fprintf(f, "%.1f,%.1f ", cx + r * ring / 4 * cos(a), cy + r * ring / 4 * sin(a));
        }
        fputs("'/>", f);
    }
    char code[4];
    for (int k = 0; k < 9; k++) {
        double a = -M_PI / 2 + 2 * M_PI * k / 9;
        snprintf(code, sizeof code, "O%d", k + 1);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#ccc'/>", cx, cy,
                cx + r * cos(a), cy + r * sin(a));
        fprintf(f, "<text x='%.1f' y='%.1f' text-anchor='middle'>%s</text>", cx + (r + 20) * cos(a),
                cy + (r + 20) * sin(a) + 4, code);
    }
    fputs("<polygon class='values' fill='rgba(192,57,43,0.25)' stroke='#c0392b' points='", f);
    for (int k = 0; k < 9; k++) {
        double a = -M_PI / 2 + 2 * M_PI * k / 9;
        snprintf(code, sizeof code, "O%d", k + 1);
        double v = num(json_object_get(json_object_get(per, code), "balanced_accuracy"), 0);
        fprintf(f, "%.1f,%.1f ", cx + r * v * cos(a), cy + r * v * sin(a));
    }
    fputs("'/></svg></figure>\n", f);
}

static void reliability(FILE *f, const json_t *cal) {
    fprintf(f, "<figure><figcaption>Reliability diagram (ECE ");
    fig(f, json_object_get(cal, "ece"));
    fprintf(f,
            ")</figcaption><svg id='reliability' class='plot' width='%d' height='%d' "
            "viewBox='0 0 %d %d' xmlns='http://www.w3.org/2000/svg'>",
            W, H, W, H);
    axes(f, "mean P(unsafe)", "fraction Unsafe");
    fprintf(f,
            "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#bbb' "
            "stroke-dasharray='4'/>",
            px(0), py(0), px(1), py(1));
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(cal, "bins"), i, b) {
        const json_t *fr = json_object_get(b, "frac_unsafe");
        if (!json_is_number(fr)) continue;
        double lo = num(json_object_get(b, "lo"), 0), hi = num(json_object_get(b, "hi"), 0);
        double v = json_number_value(fr);
        fprintf(f,
                "<rect class='bin' x='%.1f' y='%.1f' width='%.1f' height='%.1f' "
                "fill='#2e86c1' opacity='0.7'/>",
                px(lo) + 1, py(v), px(hi) - px(lo) - 2, py(0) - py(v));
    }
    fputs("</svg></figure>\n", f);
}

static void heatmap(FILE *f, const json_t *conf) {
    const json_t *labels = json_object_get(conf, "labels"), *m = json_object_get(conf, "matrix");
    size_t n = json_array_size(labels);
    double maxv = 1;
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++)
            maxv = fmax(maxv, num(json_array_get(json_array_get(m, a), b), 0));
    const int cell = 26, off = 50, size = off + cell * (int)n + 10;
    fprintf(f,
            "<figure><figcaption>Category confusion (rows: label, columns: prediction)"
            "</figcaption><svg id='confusion' class='plot' width='%d' height='%d' "
            "viewBox='0 0 %d %d' xmlns='http://www.w3.org/2000/svg'>",
            size, size, size, size);
    for (size_t a = 0; a < n; a++) {
        const char *la = json_string_value(json_array_get(labels, a));
        fprintf(f, "<text x='%d' y='%zu' font-size='10' text-anchor='end'>%s</text>", off - 4,
                off + cell * a + 17, la);
        fprintf(f, "<text x='%zu' y='%d' font-size='10' text-anchor='middle'>%s</text>",
                off + cell * a + cell / 2, off - 6, la);
        for (size_t b = 0; b < n; b++) {
            double v = num(json_array_get(json_array_get(m, a), b), 0);
            fprintf(f,
                    "<rect class='cell' x='%zu' y='%zu' width='%d' height='%d' "
                    "fill='rgb(%d,%d,255)' stroke='#fff'/>",
                    off + cell * b, off + cell * a, cell, cell, (int)(255 - 200 * v / maxv),
                    (int)(255 - 150 * v / maxv));
            if (v > 0)
                fprintf(f, "<text x='%zu' y='%zu' font-size='9' text-anchor='middle'>%.0f</text>",
                        off + cell * b + cell / 2, off + cell * a + 17, v);
        }
    }
    fputs("</svg></figure>\n", f);
}

static void table_row(FILE *f, const char *name, const json_t *all, const json_t *def,
                      const char *key) {
    fprintf(f, "<tr><th>%s</th><td>", name);
    fig(f, json_object_get(all, key));
    fputs("</td><td>", f);
    fig(f, json_object_get(def, key));
    fputs("</td></tr>\n", f);
}

static void tables(FILE *f, const json_t *m) {
    const json_t *def = json_object_get(m, "default_policy");
    fprintf(f,
            "<table id='metrics'><tr><th>figure</th><th>all</th><th>default policy</th></tr>\n"
            "<tr><th>n (valid)</th><td>%lld</td><td>%lld</td></tr>"
            "<tr><th>invalid</th><td>%lld</td><td></td></tr>\n",
            (long long)json_integer_value(json_object_get(m, "n")),
            (long long)json_integer_value(json_object_get(def, "n")),
            (long long)json_integer_value(json_object_get(m, "invalid")));
    static const char *const keys[] = {"balanced_accuracy",
                                       "recall",
                                       "specificity",
                                       "precision",
                                       "accuracy",
                                       "f1",
                                       "f2",
                                       "fpr",
                                       "fnr"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) table_row(f, keys[i], m, def, keys[i]);
    fputs("<tr><th>policy-exception rate</th><td>", f);
    fig(f, json_object_get(m, "per"));
    const json_t *th = json_object_get(m, "thresholds");
    fputs("</td><td></td></tr><tr><th>ROC AUC</th><td>", f);
    fig(f, json_object_get(th, "roc_auc"));
    fputs("</td><td></td></tr><tr><th>average precision</th><td>", f);
    fig(f, json_object_get(th, "average_precision"));
    fputs("</td><td></td></tr></table>\n", f);
    const json_t *bs = json_object_get(m, "bootstrap");
    if (bs) {
        fputs("<p>Bootstrap 95% intervals: balanced accuracy [", f);
        fig(f, json_array_get(json_object_get(bs, "balanced_accuracy"), 0));
        fputs(", ", f);
        fig(f, json_array_get(json_object_get(bs, "balanced_accuracy"), 1));
        fputs("], recall [", f);
        fig(f, json_array_get(json_object_get(bs, "recall"), 0));
        fputs(", ", f);
        fig(f, json_array_get(json_object_get(bs, "recall"), 1));
        fputs("]</p>\n", f);
    }
    const json_t *per = json_object_get(m, "per_category");
    fputs("<table id='categories'><tr><th>category</th><th>n</th><th>balanced accuracy</th>"
          "<th>recall</th></tr>\n",
          f);
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)per, k, e) {
        fprintf(f, "<tr><th>%s</th><td>%lld</td><td>", k,
                (long long)json_integer_value(json_object_get(e, "n")));
        fig(f, json_object_get(e, strcmp(k, "NA") ? "balanced_accuracy" : "accuracy"));
        fputs("</td><td>", f);
        fig(f, json_object_get(e, "recall"));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

bool eval_write_report(const char *path, const json_t *m, char *err) {
    FILE *f = fopen(path, "w");
    if (!f) return snprintf(err, 256, "%s: cannot write", path), false;
    fputs("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
          "<title>llavaguard eval</title><style>"
          "body{font-family:'Liberation Sans',Arial,sans-serif;margin:24px;color:#222}"
          "table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;"
          "padding:3px 8px;text-align:right}figure{display:inline-block;margin:8px}"
          "figcaption{font-weight:bold;text-align:center}svg text{font-size:12px}"
          "</style></head><body>\n<h1>llavaguard eval</h1>\n",
          f);
    tables(f, m);
    const json_t *th = json_object_get(m, "thresholds");
    radar(f, json_object_get(m, "per_category"));
    curve(f, "roc", "ROC curve", json_object_get(th, "roc"), "false positive rate",
          "true positive rate", true);
    curve(f, "pr", "Precision-recall curve", json_object_get(th, "pr"), "recall", "precision",
          false);
    reliability(f, json_object_get(m, "calibration"));
    heatmap(f, json_object_get(m, "confusion"));
    fputs("</body></html>\n", f);
    bool ok = fclose(f) == 0;
    if (!ok) snprintf(err, 256, "%s: write failed", path);
    return ok;
}
