#!/usr/bin/python3
"""rows.py — checks on annotate results files for the CLI tests (Python's sqlite3 module).
  rows.py dump DB                      every row as JSON (key-sorted), one per line
  rows.py count DB [WHERE]             number of rows (optionally filtered)
  rows.py assess DB ASSESS.jsonl       every verdict row of an image that assess judged has its
                                       rating, category and p_unsafe (|d| < 1e-6)
  rows.py equal DB1 DB2                the verdict columns of the two files' rows are equal
                                       (key, policy, image sha, size, rating, category, p_unsafe
                                       within 1e-9, rationale, error set or not)
  rows.py integrity DB                 PRAGMA integrity_check is ok, no duplicate keys
"""
import json, sqlite3, sys

VERDICT = ("key", "policy_sha256", "image_sha256", "width", "height", "rating", "category",
           "p_unsafe", "rationale", "error")


def rows(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    c.row_factory = sqlite3.Row
    r = [dict(x) for x in c.execute("SELECT * FROM results ORDER BY key, policy_sha256")]
    c.close()
    return r


def verdicts(db):
    out = {}
    for r in rows(db):
        k = (r["key"], r["policy_sha256"])
        assert k not in out, "duplicate %s" % (k,)
        out[k] = r
    return out


cmd = sys.argv[1]
if cmd == "dump":
    for r in rows(sys.argv[2]):
        print(json.dumps(r, sort_keys=True))
elif cmd == "count":
    c = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True)
    where = " WHERE " + sys.argv[3] if len(sys.argv) > 3 else ""
    print(c.execute("SELECT count(*) FROM results" + where).fetchone()[0])
elif cmd == "assess":
    want = {}
    for line in open(sys.argv[3]):
        a = json.loads(line)
        if "error" not in a:
            want[(a["sha256"], a["policy_sha256"])] = a
    n = 0
    for r in rows(sys.argv[2]):
        a = want.get((r["image_sha256"], r["policy_sha256"]))
        if a is None or r["error"] is not None:
            continue
        n += 1
        assert r["rating"] == a["rating"], (r["key"], r["rating"], a["rating"])
        assert r["category"] == a["category"], (r["key"], r["category"], a["category"])
        assert abs(r["p_unsafe"] - a["p_unsafe"]) < 1e-6, (r["key"], r["p_unsafe"], a["p_unsafe"])
        probs = json.loads(r["category_probs"])
        assert set(probs) == set(a["category_probs"]), r["key"]
        assert r["width"] == a["width"] and r["height"] == a["height"], r["key"]
    print(n)
elif cmd == "equal":
    a, b = verdicts(sys.argv[2]), verdicts(sys.argv[3])
    assert set(a) == set(b), "keys differ: only in 1: %s, only in 2: %s" % (
        sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5])
    for k in a:
        for col in VERDICT:
            x, y = a[k][col], b[k][col]
            if col == "p_unsafe" and x is not None and y is not None:
                assert abs(x - y) < 1e-9, (k, col, x, y)
            elif col == "error":
                assert (x is None) == (y is None), (k, col, x, y)
            else:
                assert x == y, (k, col, x, y)
    print(len(a))
elif cmd == "integrity":
    c = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    d = c.execute("SELECT count(*) FROM (SELECT run_id, key, policy_sha256 FROM results"
                  " GROUP BY 1, 2, 3 HAVING count(*) > 1)").fetchone()[0]
    assert d == 0, d
    print("ok")
else:
    sys.exit("unknown command " + cmd)
