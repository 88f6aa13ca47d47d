/*
 * eval_metrics.c — the evaluator's figures. The paper's metrics follow the definitions of
 * LlavaGuard's metrics_calculator.py (Unsafe is the positive class; samples without a valid
 * prediction are counted in `invalid` and left out of everything else; a figure whose
 * denominator is zero is null). Beyond the paper: ROC / precision-recall curves on p_unsafe with
 * AUC and average precision as scikit-learn defines them (roc_auc_score, average_precision_score),
 * the threshold reaching a target recall, a reliability diagram with ECE, seeded bootstrap
 * intervals and the category confusion matrix.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const CODES[11] = {"O1", "O2", "O3", "O4", "O5",   "O6",
                                      "O7", "O8", "O9", "NA", "other"};

typedef struct counts {
    long tp, fp, tn, fn;
} counts;

static json_t *ratio(double num, double den) {
    return den != 0 ? json_real(num / den) : json_null();
}

static void count(counts *c, int label, int pred) {
    if (label && pred)
        c->tp++;
    else if (label)
        c->fn++;
    else if (pred)
        c->fp++;
    else
        c->tn++;
}

/* recall and specificity, or NAN where a denominator is zero */
static double recall_of(const counts *c) {
    return c->tp + c->fn ? (double)c->tp / (double)(c->tp + c->fn) : NAN;
}
static double spec_of(const counts *c) {
    return c->tn + c->fp ? (double)c->tn / (double)(c->tn + c->fp) : NAN;
}
static double ba_of(const counts *c) {
    return (recall_of(c) + spec_of(c)) / 2; /* NAN propagates */
}

static json_t *num_or_null(double v) {
    return isnan(v) ? json_null() : json_real(v);
}

static json_t *fbeta(double p, double r, double beta) {
    double b2 = beta * beta, den = b2 * p + r;
    if (isnan(p) || isnan(r) || den == 0) return json_null();
    return json_real((1 + b2) * p * r / den);
}

static json_t *binary_json(const counts *c) {
    long n = c->tp + c->fp + c->tn + c->fn;
    double p = c->tp + c->fp ? (double)c->tp / (double)(c->tp + c->fp) : NAN;
    double r = recall_of(c);
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(n));
    json_object_set_new(o, "tp", json_integer(c->tp));
    json_object_set_new(o, "fp", json_integer(c->fp));
    json_object_set_new(o, "tn", json_integer(c->tn));
    json_object_set_new(o, "fn", json_integer(c->fn));
    json_object_set_new(o, "recall", num_or_null(r));
    json_object_set_new(o, "specificity", num_or_null(spec_of(c)));
    json_object_set_new(o, "fpr", ratio((double)c->fp, (double)(c->fp + c->tn)));
    json_object_set_new(o, "fnr", ratio((double)c->fn, (double)(c->fn + c->tp)));
    json_object_set_new(o, "precision", num_or_null(p));
    json_object_set_new(o, "accuracy", ratio((double)(c->tp + c->tn), (double)n));
    json_object_set_new(o, "balanced_accuracy", num_or_null(ba_of(c)));
    json_object_set_new(o, "f1", fbeta(p, r, 1));
    json_object_set_new(o, "f2", fbeta(p, r, 2));
    return o;
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static json_t *per_category(const eval_set *set) {
    json_t *o = json_object();
    for (int k = 0; k < 10; k++) {
        counts c = {0};
        long n = 0, agree = 0;
        for (size_t i = 0; i < set->n; i++) {
            const eval_sample *s = &set->s[i];
            if (!s->pred_valid || strcmp(s->code, CODES[k]) != 0) continue;
            n++;
            agree += s->pred_unsafe == s->label_unsafe;
            count(&c, s->label_unsafe, s->pred_unsafe);
        }
        json_t *e = json_object();
        json_object_set_new(e, "n", json_integer(n));
        if (k < 9) {
            json_object_set_new(e, "balanced_accuracy", num_or_null(ba_of(&c)));
            json_object_set_new(e, "recall", num_or_null(recall_of(&c)));
        } else {
            json_object_set_new(e, "accuracy", ratio((double)agree, (double)n));
        }
        json_object_set_new(o, CODES[k], e);
    }
    return o;
}

typedef struct scored {
    double p;
    int y;
} scored;

static int cmp_desc(const void *a, const void *b) {
    double x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return x < y ? 1 : x > y ? -1 : 0;
}

static json_t *pair(double a, double b) {
    return json_pack("[ff]", a, b);
}

/* ROC and PR curves over the distinct thresholds, AUC (trapezoid) and average precision
 * (sum of recall steps times precision), the threshold reaching the target recall. */
static json_t *threshold_analysis(const scored *v, size_t n, double target) {
    long pos = 0;
    for (size_t i = 0; i < n; i++) pos += v[i].y;
    long neg = (long)n - pos;
    json_t *o = json_object(), *roc = json_array(), *pr = json_array();
    json_object_set_new(o, "n", json_integer((long)n));
    json_array_append_new(roc, pair(0, 0));
    double auc = 0, ap = 0, prev_fpr = 0, prev_tpr = 0, prev_rec = 0;
    long tp = 0, fp = 0;
    json_t *at = json_null();
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j].p == v[i].p) tp += v[j].y, fp += !v[j].y, j++;
        double tpr = pos ? (double)tp / (double)pos : NAN,
               fpr = neg ? (double)fp / (double)neg : NAN;
        double prec = (double)tp / (double)(tp + fp);
        json_array_append_new(roc, pair(fpr, tpr));
        json_array_append_new(pr, pair(tpr, prec));
        auc += (fpr - prev_fpr) * (tpr + prev_tpr) / 2;
        ap += (tpr - prev_rec) * prec;
        if (json_is_null(at) && pos && tpr >= target)
            at = json_pack("{sf sf sf sf}", "threshold", v[i].p, "recall", tpr, "precision", prec,
                           "fpr", neg ? fpr : 0.0);
        prev_fpr = fpr, prev_tpr = tpr, prev_rec = tpr;
        i = j;
    }
    json_object_set_new(o, "roc_auc", pos && neg ? json_real(auc) : json_null());
    json_object_set_new(o, "average_precision", pos ? json_real(ap) : json_null());
    json_object_set_new(o, "target_recall", json_real(target));
    json_object_set_new(o, "at_target_recall", at);
    json_object_set_new(o, "roc", pos && neg ? roc : json_array());
    json_object_set_new(o, "pr", pos ? pr : json_array());
    if (!(pos && neg)) json_decref(roc);
    if (!pos) json_decref(pr);
    return o;
}

static json_t *calibration(const scored *v, size_t n, int bins) {
    json_t *o = json_object(), *arr = json_array();
    double ece = 0;
    for (int b = 0; b < bins; b++) {
        long k = 0;
        double sp = 0, sy = 0;
        for (size_t i = 0; i < n; i++) {
            int bi = (int)(v[i].p * bins);
            if (bi >= bins) bi = bins - 1;
            if (bi < 0) bi = 0;
            if (bi != b) continue;
            k++, sp += v[i].p, sy += v[i].y;
        }
        json_t *e = json_pack("{sf sf sI}", "lo", (double)b / bins, "hi", (double)(b + 1) / bins,
                              "n", (json_int_t)k);
        json_object_set_new(e, "mean_p", ratio(sp, (double)k));
        json_object_set_new(e, "frac_unsafe", ratio(sy, (double)k));
        json_array_append_new(arr, e);
        if (k) ece += fabs(sy / (double)k - sp / (double)k) * (double)k / (double)n;
    }
    json_object_set_new(o, "bins", arr);
    json_object_set_new(o, "ece", n ? json_real(ece) : json_null());
    return o;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n) with linear interpolation (numpy's default). */
static json_t *quantile(const double *v, size_t n, double q) {
    if (!n) return json_null();
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return json_real(v[lo] + (v[hi] - v[lo]) * (pos - (double)lo));
}

static json_t *bootstrap(const eval_set *set, const size_t *valid, size_t nv, int reps,
                         uint64_t seed) {
    double *ba = malloc(sizeof(double) * (size_t)reps), *rc = malloc(sizeof(double) * (size_t)reps);
    size_t nba = 0, nrc = 0;
    uint64_t st = seed;
    for (int r = 0; r < reps && nv; r++) {
        counts c = {0};
        for (size_t i = 0; i < nv; i++) {
            const eval_sample *s = &set->s[valid[splitmix(&st) % nv]];
            count(&c, s->label_unsafe, s->pred_unsafe);
        }
        double b = ba_of(&c), x = recall_of(&c);
        if (!isnan(b)) ba[nba++] = b;
        if (!isnan(x)) rc[nrc++] = x;
    }
    qsort(ba, nba, sizeof *ba, cmp_d);
    qsort(rc, nrc, sizeof *rc, cmp_d);
    json_t *o = json_pack("{sI sI}", "resamples", (json_int_t)reps, "seed", (json_int_t)seed);
    json_object_set_new(o, "balanced_accuracy",
                        json_pack("[oo]", quantile(ba, nba, 0.025), quantile(ba, nba, 0.975)));
    json_object_set_new(o, "recall",
                        json_pack("[oo]", quantile(rc, nrc, 0.025), quantile(rc, nrc, 0.975)));
    free(ba), free(rc);
    return o;
}

static int code_index(const char *code) {
    for (int k = 0; k < 10; k++)
        if (strcmp(code, CODES[k]) == 0) return k;
    return 10;
}

static json_t *confusion(const eval_set *set) {
    long m[11][11] = {{0}};
    for (size_t i = 0; i < set->n; i++) {
        const eval_sample *s = &set->s[i];
        if (!s->pred_valid) continue;
        char pc[4];
        eval_category_code(s->pred_category, pc);
        m[code_index(s->code)][code_index(pc)]++;
    }
    json_t *labels = json_array(), *rows = json_array();
    for (int a = 0; a < 11; a++) {
        json_array_append_new(labels, json_string(CODES[a]));
        json_t *row = json_array();
        for (int b = 0; b < 11; b++) json_array_append_new(row, json_integer(m[a][b]));
        json_array_append_new(rows, row);
    }
    return json_pack("{so so}", "labels", labels, "matrix", rows);
}

json_t *eval_metrics(const eval_set *set, const eval_options *opt) {
    counts all = {0}, def = {0};
    long invalid = 0, per_n = 0, per_ok = 0, cat_ok = 0, missing = 0;
    size_t *valid = malloc(sizeof(size_t) * (set->n + 1)), nv = 0, ns = 0;
    scored *sc = malloc(sizeof(scored) * (set->n + 1));
    for (size_t i = 0; i < set->n; i++) {
        const eval_sample *s = &set->s[i];
        if (!s->pred_valid) {
            invalid++, missing += !s->has_pred;
            continue;
        }
        valid[nv++] = i;
        count(&all, s->label_unsafe, s->pred_unsafe);
        if (!strstr(s->id, "_v")) count(&def, s->label_unsafe, s->pred_unsafe);
        if (ends_with(s->id, "_v2"))
            per_n++, per_ok += !s->pred_unsafe;
        else if (ends_with(s->id, "_v4"))
            per_n++, per_ok += s->pred_unsafe;
        if (s->pred_category && strcasestr(s->pred_category, s->label_category)) cat_ok++;
        if (!isnan(s->p_unsafe)) sc[ns++] = (scored){s->p_unsafe, s->label_unsafe};
    }
    json_t *o = binary_json(&all);
    json_object_set_new(o, "labels", json_integer((json_int_t)set->n));
    json_object_set_new(o, "invalid", json_integer(invalid));
    json_object_set_new(o, "missing", json_integer(missing));
    json_object_set_new(o, "unmatched_predictions",
                        json_integer((json_int_t)set->n_pred_unmatched));
    json_object_set_new(o, "per", ratio((double)per_ok, (double)per_n));
    json_object_set_new(o, "per_n", json_integer(per_n));
    json_object_set_new(o, "default_policy", binary_json(&def));
    json_object_set_new(o, "per_category", per_category(set));
    json_object_set_new(o, "category_correct", json_integer(cat_ok));
    qsort(sc, ns, sizeof *sc, cmp_desc);
    json_object_set_new(o, "thresholds", threshold_analysis(sc, ns, opt->target_recall));
    json_object_set_new(o, "calibration", calibration(sc, ns, opt->bins > 0 ? opt->bins : 10));
    if (opt->bootstrap > 0)
        json_object_set_new(o, "bootstrap", bootstrap(set, valid, nv, opt->bootstrap, opt->seed));
    json_object_set_new(o, "confusion", confusion(set));
    free(valid), free(sc);
    return o;
}
