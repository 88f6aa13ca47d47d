/*
 * fuzz_predictions.c — the verdict JSON the evaluator reads back: labels (the input's first part,
 * up to a NUL byte, as a JSONL labels file) and predictions (the rest, as assess's JSONL
 * verdicts), parsed and matched by eval_read_labels / eval_read_predictions.
 */
#include "fuzz_common.h"

#include "eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p[2];
    size_t n[2];
    size_t k = fz_split(data, size, p, n, 2);
    fz_put("labels.jsonl", p[0], n[0]);
    fz_put("preds.jsonl", k > 1 ? p[1] : (const uint8_t *)"", k > 1 ? n[1] : 0);
    char lp[512], pp[512], err[512];
    snprintf(lp, sizeof lp, "%s/labels.jsonl", fz_dir());
    snprintf(pp, sizeof pp, "%s/preds.jsonl", fz_dir());
    eval_set set;
    memset(&set, 0, sizeof set);
    if (eval_read_labels(lp, &set, err)) eval_read_predictions(pp, &set, err);
    eval_set_free(&set);
    return 0;
}
