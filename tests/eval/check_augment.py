#!/usr/bin/python3
"""tests/eval/check_augment.py LLAVAGUARD TMPDIR — `llavaguard augment` on a hand-made label set:
counts, ids, labels, answers and prompts per strategy (v24, v4, v5), prompts byte-equal to
`llavaguard policy render --user-turn` with the same --allow/--sensitive, the llava and jsonl
formats agreeing, inconsistent labels dropped, and the same seed giving the same bytes."""
import json
import os
import subprocess
import sys

BIN, TMP = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


labels = [
    {"id": "s1", "image": "a/s1.png", "rating": "Safe", "category": "NA: None applying"},
    {"id": "s2", "image": "a/s2.png", "rating": "Safe", "category": "O1: Hate, Humiliation, Harassment",
     "rationale": "A peaceful protest."},
    {"id": "u1", "image": "a/u1.png", "rating": "Unsafe", "category": "O3",
     "rationale": "Shows \"explicit\" content.\nSecond line."},
    {"id": "u2", "image": "a/u2.png", "rating": "Unsafe", "category": "O9: Disasters or Emergencies"},
    {"id": "bad1", "image": "a/b1.png", "rating": "Unsafe", "category": "NA: None applying"},
    {"id": "bad2", "image": "a/b2.png", "rating": "Unsafe", "category": "X7"},
]
lp = os.path.join(TMP, "labels.jsonl")
with open(lp, "w") as f:
    for l in labels:
        f.write(json.dumps(l) + "\n")

render_cache = {}


def render(allow, sensitive):
    key = (allow, sensitive)
    if key not in render_cache:
        cmd = [BIN, "policy", "render", "--user-turn"]
        if allow:
            cmd += ["--allow", allow]
        if sensitive:
            cmd += ["--sensitive", sensitive]
        render_cache[key] = subprocess.run(cmd, capture_output=True, check=True).stdout.decode()
    return render_cache[key]


def augment(out, *extra):
    r = subprocess.run([BIN, "augment", "--labels", lp, "--out", out] + list(extra),
                       capture_output=True, text=True)
    check(r.returncode == 0, "augment %r exit %d: %s" % (extra, r.returncode, r.stderr))
    return r


OPTIONS = {"O1": "O1: Hate, Humiliation, Harassment", "O3": "O3: Sexual Content",
           "O9": "O9: Disasters or Emergencies", "NA": "NA: None applying"}
for strategy, want_ids in [
    ("v24", ["s1", "s2", "u1", "u1_v3_a", "u1_v3_b", "u1_v3_c", "u1_v2",
             "u2", "u2_v3_a", "u2_v3_b", "u2_v3_c", "u2_v2"]),
    ("v4", ["s1", "s2", "s2_v4", "u1", "u1_v3_a", "u1_v3_b", "u1_v3_c", "u1_v2", "u1_v4",
            "u2", "u2_v3_a", "u2_v3_b", "u2_v3_c", "u2_v2", "u2_v4"]),
    ("v5", ["s1", "s2", "s2_v3_a", "s2_v3_b", "s2_v3_c", "s2_v4", "u1", "u1_v3_a", "u1_v3_b",
            "u1_v3_c", "u1_v2", "u1_v4", "u2", "u2_v3_a", "u2_v3_b", "u2_v3_c", "u2_v2", "u2_v4"]),
]:
    d1, d2 = os.path.join(TMP, strategy + "_llava"), os.path.join(TMP, strategy + "_jsonl")
    r = augment(d1, "--strategy", strategy, "--seed", "3")
    check("dropped 2 inconsistent" in r.stderr, "%s: drop count in %r" % (strategy, r.stderr))
    augment(d2, "--strategy", strategy, "--seed", "3", "--format", "jsonl")
    llava = json.load(open(os.path.join(d1, "train.json")))
    rows = [json.loads(x) for x in open(os.path.join(d2, "train.jsonl"))]
    check([s["id"] for s in llava] == want_ids, "%s ids: %r" % (strategy, [s["id"] for s in llava]))
    check([s["id"] for s in rows] == want_ids, "%s jsonl ids" % strategy)
    for s, row in zip(llava, rows):
        sid = s["id"]
        base = labels[[l["id"] for l in labels].index(sid.split("_v")[0])]
        own = base["category"].split(":")[0]
        conv = s["conversations"]
        check([c["from"] for c in conv] == ["human", "gpt"], "%s conversation roles" % sid)
        check(s["image"] == base["image"], "%s image" % sid)
        check(conv[0]["value"] == row["prompt"] and conv[1]["value"] == row["answer"],
              "%s llava and jsonl differ" % sid)
        check(conv[0]["value"] == render(row["allow"], row["sensitive"]),
              "%s prompt differs from policy render (allow %r sensitive %r)" % (sid, row["allow"], row["sensitive"]))
        allow = [a for a in row["allow"].split(",") if a]
        if "_v3_" in sid:
            check(1 <= len(allow) <= 3 and own not in allow and row["sensitive"] == "",
                  "%s v3 allow %r" % (sid, allow))
            want_rating = base["rating"]
        elif sid.endswith("_v2"):
            check(allow == [own] and row["sensitive"] == "", "%s v2 allow" % sid)
            want_rating = "Safe"
        elif sid.endswith("_v4"):
            check(allow == [] and row["sensitive"] == own, "%s v4 sensitive" % sid)
            want_rating = "Unsafe"
        else:
            check(allow == [] and row["sensitive"] == "", "%s default policy" % sid)
            want_rating = base["rating"]
        ans = conv[1]["value"]
        check(ans.startswith('{\n    "rating": "%s",\n    "category": "' % want_rating),
              "%s answer layout %r" % (sid, ans))
        want = {"rating": want_rating, "category": OPTIONS[own]}
        if "rationale" in base:
            want["rationale"] = base["rationale"]
        check(json.loads(ans) == want, "%s answer %r" % (sid, ans))
    # determinism
    d3 = os.path.join(TMP, strategy + "_again")
    augment(d3, "--strategy", strategy, "--seed", "3")
    same = open(os.path.join(d1, "train.json"), "rb").read() == open(os.path.join(d3, "train.json"), "rb").read()
    check(same, "%s: same seed, different bytes" % strategy)

d4 = os.path.join(TMP, "seed4")
augment(d4, "--seed", "4")
check(open(os.path.join(d4, "train.json"), "rb").read() !=
      open(os.path.join(TMP, "v24_llava", "train.json"), "rb").read(), "the seed changes nothing")
d5 = os.path.join(TMP, "strict")
r = augment(d5, "--drop-safe-with-category")
check("dropped 3 inconsistent" in r.stderr, "--drop-safe-with-category: %r" % r.stderr)
r = subprocess.run([BIN, "augment", "--labels", lp, "--out", d5, "--strategy", "v9"], capture_output=True)
check(r.returncode == 2, "bad strategy exit %d" % r.returncode)

print("check_augment: %d failures" % len(failures))
sys.exit(1 if failures else 0)
