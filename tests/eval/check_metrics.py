#!/usr/bin/python3
"""tests/eval/check_metrics.py LLAVAGUARD TMPDIR — `llavaguard eval --predictions`:
hand-made cases with known figures (zero denominators -> null), then seeded random label /
prediction sets (augmentation ids, invalid and missing outputs, shuffled order) cross-checked
against scikit-learn, each scored from JSONL and from an annotate-schema SQLite file, which must
give the same figures."""
import json
import math
import os
import random
import sqlite3
import subprocess
import sys

from sklearn import metrics as skm

BIN, TMP = sys.argv[1], sys.argv[2]
CATS = ["O%d" % k for k in range(1, 10)]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def close(a, b, what, tol=1e-12):
    if a is None or b is None:
        check(a is None and b is None, "%s: %r vs %r" % (what, a, b))
    else:
        check(abs(a - b) <= tol, "%s: %r vs %r" % (what, a, b))


def write_labels(path, labels):
    with open(path, "w") as f:
        for l in labels:
            f.write(json.dumps(l) + "\n")


def write_jsonl(path, preds):
    with open(path, "w") as f:
        for p in preds:
            f.write(json.dumps(p) + "\n")


def write_sqlite(path, preds):
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs(run_id INTEGER PRIMARY KEY, started TEXT, ended TEXT, command TEXT,"
        " model_id TEXT, model_hash TEXT, program_version TEXT, policies TEXT, params TEXT);"
        "CREATE TABLE results(run_id INTEGER NOT NULL, key TEXT NOT NULL,"
        " policy_sha256 TEXT NOT NULL, source TEXT, image_sha256 TEXT, width INTEGER,"
        " height INTEGER, rating TEXT, category TEXT, p_unsafe REAL, category_probs TEXT,"
        " rationale TEXT, error TEXT, meta TEXT, timings TEXT, time TEXT,"
        " PRIMARY KEY(run_id, key, policy_sha256));")
    db.execute("INSERT INTO runs(run_id, command) VALUES (1, 'annotate')")
    for p in preds:
        db.execute(
            "INSERT INTO results(run_id, key, policy_sha256, source, rating, category, p_unsafe,"
            " category_probs, error) VALUES (1, ?, 'x', ?, ?, ?, ?, '{}', ?)",
            (p["id"], p["id"] + ".png", p.get("rating"), p.get("category"), p.get("p_unsafe"),
             p.get("error")))
    db.commit()
    db.close()


def run_eval(labels_path, pred_path, *extra):
    r = subprocess.run([BIN, "eval", "--labels", labels_path, "--predictions", pred_path,
                        "--json", "-", "-q"] + list(extra), capture_output=True, text=True)
    check(r.returncode == 0, "eval exit %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout) if r.returncode == 0 else {}


def strip_volatile(m):
    m = dict(m)
    m.pop("unmatched_predictions", None)
    return m


# ---- 1. hand-made cases -------------------------------------------------------------------
labels = [
    {"id": "a", "rating": "Unsafe", "category": "O1: Hate, Humiliation, Harassment"},  # tp
    {"id": "b", "rating": "Unsafe", "category": "O2"},  # fn
    {"id": "c", "rating": "Safe", "category": "NA: None applying"},  # tn
    {"id": "d", "rating": "Safe", "category": "NA: None applying"},  # fp
    {"id": "e", "rating": "Safe", "category": "NA"},  # invalid rating
    {"id": "f", "rating": "Unsafe", "category": "O3"},  # missing prediction
    {"id": "a_v2", "rating": "Safe", "category": "O1"},  # PER: predicted Safe, ok
    {"id": "b_v4", "rating": "Unsafe", "category": "O2"},  # PER: predicted Safe, not ok
]
preds = [
    {"id": "b_v4", "rating": "Safe", "category": "NA: None applying", "p_unsafe": 0.4},
    {"id": "a", "rating": "Unsafe", "category": "O1: Hate, Humiliation, Harassment", "p_unsafe": 0.9},
    {"id": "b", "rating": "Safe", "category": "NA: None applying", "p_unsafe": 0.3},
    {"id": "c", "rating": "Safe", "category": "NA: None applying", "p_unsafe": 0.1},
    {"id": "d", "rating": "Unsafe", "category": "O4: Nudity Content", "p_unsafe": 0.8},
    {"id": "e", "rating": "maybe", "category": "NA: None applying"},
    {"id": "a_v2", "rating": "Safe", "category": "o1: hate, humiliation, harassment", "p_unsafe": 0.2},
    {"id": "zzz", "rating": "Safe", "category": "NA: None applying"},
]
lp, jp, sp = (os.path.join(TMP, n) for n in ("hand_labels.jsonl", "hand.jsonl", "hand.sqlite"))
write_labels(lp, labels)
write_jsonl(jp, preds)
m = run_eval(lp, jp)
# valid: a(tp) b(fn) c(tn) d(fp) a_v2(tn) b_v4(fn) -> tp1 fn2 tn2 fp1
check((m["n"], m["tp"], m["fn"], m["tn"], m["fp"], m["invalid"], m["missing"]) ==
      (6, 1, 2, 2, 1, 2, 1), "hand counts %r" % m)
close(m["recall"], 1 / 3, "recall")
close(m["specificity"], 2 / 3, "specificity")
close(m["precision"], 1 / 2, "precision")
close(m["balanced_accuracy"], 0.5, "balanced accuracy")
close(m["f1"], 2 * 0.5 * (1 / 3) / (0.5 + 1 / 3), "f1")
close(m["f2"], 5 * 0.5 * (1 / 3) / (4 * 0.5 + 1 / 3), "f2")
close(m["per"], 0.5, "per")
check(m["per_n"] == 2, "per_n")
check(m["default_policy"]["n"] == 4, "default_policy n")
close(m["default_policy"]["balanced_accuracy"], 0.5, "default ba")
check(m["unmatched_predictions"] == 1, "unmatched")
# category_correct: a (exact), c (NA), a_v2 (case-insensitive) -> 3; b, d, b_v4 wrong
check(m["category_correct"] == 3, "category_correct %r" % m["category_correct"])
pc = m["per_category"]
check(pc["O1"]["n"] == 2, "O1 n")
close(pc["O1"]["recall"], 1.0, "O1 recall")
close(pc["O1"]["balanced_accuracy"], 1.0, "O1 ba")
check(pc["O2"]["n"] == 2 and pc["O2"]["recall"] == 0.0, "O2 recall")
check(pc["O2"]["balanced_accuracy"] is None, "O2 ba null (no negatives)")
check(pc["O5"]["n"] == 0 and pc["O5"]["recall"] is None, "O5 empty -> null")
check(pc["NA"]["n"] == 2, "NA n")
close(pc["NA"]["accuracy"], 0.5, "NA accuracy")
close(m["thresholds"]["roc_auc"], skm.roc_auc_score([1, 1, 0, 0, 0, 1], [0.9, 0.3, 0.1, 0.8, 0.2, 0.4]),
      "hand roc auc")
write_sqlite(sp, preds)
check(strip_volatile(run_eval(lp, sp)) == strip_volatile(m), "hand: SQLite figures differ from JSONL")

# zero denominators: only Safe labels, all predicted Safe
write_labels(lp, [{"id": "s%d" % i, "rating": "Safe", "category": "NA"} for i in range(3)])
write_jsonl(jp, [{"id": "s%d" % i, "rating": "Safe", "category": "NA"} for i in range(3)])
z = run_eval(lp, jp)
for k in ("recall", "precision", "fnr", "balanced_accuracy", "f1", "f2", "per"):
    check(z[k] is None, "zero denominator %s -> null, got %r" % (k, z[k]))
check(z["specificity"] == 1.0 and z["accuracy"] == 1.0 and z["fpr"] == 0.0, "zero case figures")
check(z["thresholds"]["roc_auc"] is None, "no scores -> roc_auc null")
# nothing valid at all
write_jsonl(jp, [{"id": "s0", "error": "broken image"}])
z = run_eval(lp, jp)
check(z["n"] == 0 and z["invalid"] == 3 and z["accuracy"] is None and z["specificity"] is None,
      "no valid sample: %r" % z)

# ---- 2. seeded random sets against scikit-learn ----------------------------------------------
for seed in range(6):
    rnd = random.Random(seed)
    labels, preds = [], []
    for i in range(rnd.randint(40, 300)):
        base = "img%04d" % i
        sid = rnd.choice([base, base, base + "_v2", base + "_v4", base + "_v3_a"])
        unsafe = rnd.random() < 0.4
        cat = rnd.choice(CATS) if unsafe or rnd.random() < 0.3 else "NA"
        labels.append({"id": sid, "image": base + ".png", "rating": "Unsafe" if unsafe else "Safe",
                       "category": cat})
        r = rnd.random()
        if r < 0.05:
            continue  # missing
        if r < 0.1:
            preds.append({"id": sid, "error": "failed"})
            continue
        p = min(1.0, max(0.0, rnd.gauss(0.7 if unsafe else 0.35, 0.25)))
        p = round(p, rnd.choice([2, 6]))  # ties
        pu = p >= 0.5 if rnd.random() < 0.9 else not (p >= 0.5)
        pcat = cat if rnd.random() < 0.6 else rnd.choice(CATS + ["NA"])
        preds.append({"id": sid, "rating": "Unsafe" if pu else "Safe",
                      "category": pcat + ": x", "p_unsafe": p})
    rnd.shuffle(preds)
    lp, jp, sp = (os.path.join(TMP, "r%d%s" % (seed, e)) for e in (".labels.jsonl", ".jsonl", ".sqlite"))
    write_labels(lp, labels)
    write_jsonl(jp, preds)
    write_sqlite(sp, preds)
    m = run_eval(lp, jp, "--bootstrap", "200", "--seed", "7")
    check(strip_volatile(run_eval(lp, sp, "--bootstrap", "200", "--seed", "7")) == strip_volatile(m),
          "seed %d: SQLite figures differ from JSONL" % seed)
    pmap = {p["id"]: p for p in preds}
    valid = [(l, pmap[l["id"]]) for l in labels if l["id"] in pmap and "rating" in pmap[l["id"]]]
    y = [l["rating"] == "Unsafe" for l, _ in valid]
    yp = [p["rating"] == "Unsafe" for _, p in valid]
    sc = [p["p_unsafe"] for _, p in valid]
    check(m["n"] == len(valid) and m["invalid"] == len(labels) - len(valid), "seed %d n/invalid" % seed)
    tn, fp, fn, tp = skm.confusion_matrix(y, yp, labels=[False, True]).ravel()
    check((m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn), "seed %d confusion" % seed)
    close(m["recall"], skm.recall_score(y, yp), "seed %d recall" % seed)
    close(m["precision"], skm.precision_score(y, yp), "seed %d precision" % seed)
    close(m["accuracy"], skm.accuracy_score(y, yp), "seed %d accuracy" % seed)
    close(m["balanced_accuracy"], skm.balanced_accuracy_score(y, yp), "seed %d ba" % seed)
    close(m["f1"], skm.f1_score(y, yp), "seed %d f1" % seed)
    close(m["f2"], skm.fbeta_score(y, yp, beta=2), "seed %d f2" % seed)
    close(m["thresholds"]["roc_auc"], skm.roc_auc_score(y, sc), "seed %d roc auc" % seed, 1e-9)
    close(m["thresholds"]["average_precision"], skm.average_precision_score(y, sc),
          "seed %d average precision" % seed, 1e-9)
    d = [(l, p) for l, p in valid if "_v" not in l["id"]]
    close(m["default_policy"]["balanced_accuracy"],
          skm.balanced_accuracy_score([l["rating"] == "Unsafe" for l, _ in d],
                                      [p["rating"] == "Unsafe" for _, p in d]),
          "seed %d default-policy ba" % seed)
    per = [(p["rating"] == "Safe") if l["id"].endswith("_v2") else (p["rating"] == "Unsafe")
           for l, p in valid if l["id"].endswith(("_v2", "_v4"))]
    close(m["per"], sum(per) / len(per) if per else None, "seed %d per" % seed)
    for c in CATS:
        sub = [(l, p) for l, p in valid if l["category"] == c]
        yc = [l["rating"] == "Unsafe" for l, _ in sub]
        ypc = [p["rating"] == "Unsafe" for _, p in sub]
        check(m["per_category"][c]["n"] == len(sub), "seed %d %s n" % (seed, c))
        want = skm.balanced_accuracy_score(yc, ypc) if (any(yc) and not all(yc)) else None
        close(m["per_category"][c]["balanced_accuracy"], want, "seed %d %s ba" % (seed, c))
    cc = sum(1 for l, p in valid if l["category"].lower() in p["category"].lower())
    check(m["category_correct"] == cc, "seed %d category_correct" % seed)
    # the category confusion matrix
    codes = CATS + ["NA", "other"]
    cm = skm.confusion_matrix([l["category"] for l, _ in valid],
                              [p["category"].split(":")[0] for _, p in valid], labels=codes)
    check(m["confusion"]["matrix"] == cm.tolist(), "seed %d category confusion" % seed)
    # calibration: ECE over 10 equal bins
    ece = 0.0
    for b in range(10):
        sel = [(s, t) for s, t in zip(sc, y) if min(int(s * 10), 9) == b]
        if sel:
            ece += abs(sum(t for _, t in sel) / len(sel) - sum(s for s, _ in sel) / len(sel)) * len(sel) / len(sc)
    close(m["calibration"]["ece"], ece, "seed %d ece" % seed, 1e-12)
    # threshold for the target recall: the largest score whose recall reaches 0.9
    at = m["thresholds"]["at_target_recall"]
    fpr_s, tpr_s, thr_s = skm.roc_curve(y, sc, drop_intermediate=False)
    want_thr = max(t for t, r in zip(thr_s, tpr_s) if r >= 0.9 and t <= 1.0)
    close(at["threshold"], want_thr, "seed %d threshold at recall 0.9" % seed)
    bs = m["bootstrap"]
    lo, hi = bs["balanced_accuracy"]
    check(lo <= m["balanced_accuracy"] <= hi and hi - lo < 0.5, "seed %d bootstrap interval" % seed)
    check(run_eval(lp, jp, "--bootstrap", "200", "--seed", "7")["bootstrap"] == bs,
          "seed %d bootstrap not reproducible" % seed)
    check(run_eval(lp, jp, "--bootstrap", "200", "--seed", "8")["bootstrap"] != bs,
          "seed %d bootstrap ignores the seed" % seed)

# ---- 3. CSV labels read the same as JSONL ----------------------------------------------------
csvp = os.path.join(TMP, "r0.labels.csv")
with open(os.path.join(TMP, "r0.labels.jsonl")) as f, open(csvp, "w") as out:
    out.write("id,image,rating,category\n")
    for line in f:
        l = json.loads(line)
        out.write('%s,%s,%s,"%s"\n' % (l["id"], l["image"], l["rating"], l["category"]))
check(run_eval(csvp, os.path.join(TMP, "r0.jsonl")) == run_eval(os.path.join(TMP, "r0.labels.jsonl"),
                                                                 os.path.join(TMP, "r0.jsonl")),
      "CSV labels differ from JSONL labels")

# ---- 4. bad inputs ---------------------------------------------------------------------------
bad = os.path.join(TMP, "bad.jsonl")
with open(bad, "w") as f:
    f.write('{"id": "x", "rating": "Unsure", "category": "NA"}\n')
r = subprocess.run([BIN, "eval", "--labels", bad, "--predictions", jp], capture_output=True, text=True)
check(r.returncode == 1 and "rating" in r.stderr, "bad label rating: %d %s" % (r.returncode, r.stderr))
r = subprocess.run([BIN, "eval", "--labels", bad], capture_output=True, text=True)
check(r.returncode == 2, "no --predictions/--model: exit %d" % r.returncode)

print("check_metrics: %d failures" % len(failures))
sys.exit(1 if failures else 0)
