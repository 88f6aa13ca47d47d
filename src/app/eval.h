/*
 * eval.h — `llavaguard eval` and `llavaguard augment`: labelled samples, predictions, the paper's
 * metrics (LlavaGuard's metrics_calculator.py definitions, Unsafe the positive class), threshold
 * analysis, bootstrap and the self-contained HTML report (docs/eval.md).
 */
#ifndef LG_APP_EVAL_H
#define LG_APP_EVAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One labelled sample and (after matching) its prediction. */
typedef struct eval_sample {
    char *id, *image;        /* image: NULL when the label has none */
    int label_unsafe;        /* 1: Unsafe */
    char *label_category;    /* as written ("O3", "O3: Sexual Content", "NA: None applying") */
    char code[4];            /* "O1".."O9", "NA" or "" (other) */
    char *rationale;         /* optional */
    char *policy;            /* optional policy file */
    char *allow, *sensitive; /* optional comma lists */
    bool has_pred, pred_valid;
    int pred_unsafe;
    char *pred_category;
    double p_unsafe; /* NAN when the prediction has none */
} eval_sample;

typedef struct eval_set {
    eval_sample *s;
    size_t n, cap;
    size_t n_pred_unmatched; /* predictions that matched no label */
    void *matcher;           /* eval_data.c's sorted id/image index */
} eval_set;

/* Reads a label file (JSONL, or CSV with a header line). false with a message in err[256]. */
bool eval_read_labels(const char *path, eval_set *set, char *err);
/* Reads predictions (annotate's SQLite file or assess's JSONL) and matches them to the labels by
 * id (a prediction's id, key or image; an image also matches a label's image or the file's
 * base name without extension). */
bool eval_read_predictions(const char *path, eval_set *set, char *err);
/* Matches one prediction record (JSON object with rating/category/p_unsafe) to set. */
void eval_match_record(eval_set *set, json_t *rec);
void eval_set_free(eval_set *set);
/* The category code of a label or a prediction: "O3" for "O3: ..." or "o3", "NA" for NA/None. */
void eval_category_code(const char *cat, char code[4]);

typedef struct eval_options {
    double target_recall; /* threshold analysis */
    int bootstrap;        /* resamples (0: off) */
    uint64_t seed;
    int bins; /* reliability diagram */
} eval_options;

/* Every figure as one JSON object (null where a denominator is zero). */
json_t *eval_metrics(const eval_set *set, const eval_options *opt);
/* The self-contained HTML report with inline SVG plots. */
bool eval_write_report(const char *path, const json_t *metrics, char *err);

#endif
