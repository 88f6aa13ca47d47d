#!/usr/bin/python3
"""kill_loop.py BIN FIXTURES TMP — the crash-safety test of `llavaguard annotate`.

Builds a collection (the fixture images plus a WebDataset shard of 16 renamed copies and the bad
members of make_shards.py), annotates it once without interruption, then starts the annotator
on a second file and SIGKILLs it at seeded random moments (at least 10 kills that hit a running
process), checking after each kill that the file is a valid database without duplicate rows, and
finally lets a run finish: its rows must equal the uninterrupted run's (verdict columns). Then
SIGTERM and SIGINT: the run stops cleanly with 143 / 130 and the rows it had stay committed.
"""
import io, os, random, signal, sqlite3, subprocess, sys, tarfile, time

bin_, fx, tmp = sys.argv[1:4]
here = os.path.dirname(os.path.abspath(__file__))
model = os.path.join(fx, "llava-ov-tiny")
images = os.path.join(fx, "images")

# ---- the collection ----
os.makedirs(os.path.join(tmp, "coll"), exist_ok=True)
subprocess.run(["/usr/bin/python3", os.path.join(here, "make_shards.py"),
                os.path.join(tmp, "coll"), images], check=True)
for f in ("broken.tar.gz", "more2.tar.zst"):
    p = os.path.join(tmp, "coll", f)
    if os.path.exists(p):
        os.remove(p)
N_COPIES = 16
names = sorted(os.listdir(images))
with tarfile.open(os.path.join(tmp, "coll", "copies.tar"), "w") as tf:
    for i in range(N_COPIES):
        data = open(os.path.join(images, names[i % len(names)]), "rb").read()
        ti = tarfile.TarInfo("%06d.%s" % (i, names[i % len(names)].rsplit(".", 1)[1]))
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
inputs = [images, os.path.join(tmp, "coll")]
common = [bin_, "annotate", "--model", model, "--threads", "1", "--batch", "2",
          "--rationale", "never", "-q"]


def run(out, **kw):
    return subprocess.Popen(common + ["--out", out] + inputs, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, **kw)


def rows(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok", db
    r = c.execute("SELECT key, policy_sha256, image_sha256, width, height, rating, category,"
                  " p_unsafe, rationale, error IS NULL FROM results ORDER BY key").fetchall()
    dup = c.execute("SELECT count(*) FROM (SELECT 1 FROM results GROUP BY run_id, key,"
                    " policy_sha256 HAVING count(*) > 1)").fetchone()[0]
    assert dup == 0, "duplicate rows in %s" % db
    n_runs = c.execute("SELECT count(*) FROM runs").fetchone()[0]
    c.close()
    return r, n_runs


def committed(db):
    """Rows committed so far in db (0 while the file or its table does not exist yet)."""
    if not os.path.exists(db):
        return 0
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
        n = c.execute("SELECT count(*) FROM results").fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return 0


ref = os.path.join(tmp, "ref.sqlite")
p = run(ref)
_, err = p.communicate()
assert p.returncode == 4, (p.returncode, err)  # 4: finished, some inputs are error rows
want, _ = rows(ref)
assert len(want) == 8 + 5 + 2 + N_COPIES, len(want)

out = os.path.join(tmp, "killed.sqlite")
rng = random.Random(20261206)
kills = attempts = 0
while kills < 10:
    attempts += 1
    assert attempts < 60, "the annotator finished before 10 kills (kills=%d)" % kills
    p = run(out)
    time.sleep(rng.uniform(0.05, 0.6))
    if p.poll() is None:
        p.send_signal(signal.SIGKILL)
        kills += 1
    p.communicate()
    if p.returncode not in (-signal.SIGKILL, 4):
        sys.exit("run %d exited %s" % (attempts, p.returncode))
    if os.path.exists(out):
        got, n_runs = rows(out)
        assert n_runs <= 1, n_runs
        done = {(r[0], r[1]): r for r in got}
        ref_rows = {(r[0], r[1]): r for r in want}
        for k, r in done.items():  # every committed row is already the final one
            assert r[5:9] == ref_rows[k][5:9], (k, r, ref_rows[k])
    if p.returncode == 4:  # it finished: start over so that every kill hits work
        os.remove(out)
        for side in ("-wal", "-shm"):
            if os.path.exists(out + side):
                os.remove(out + side)
p = run(out)
_, err = p.communicate()
assert p.returncode == 4, (p.returncode, err)
got, n_runs = rows(out)
assert n_runs == 1, n_runs
assert len(got) == len(want), (len(got), len(want))
for a, b in zip(got, want):
    assert a[:7] == b[:7] and a[8:] == b[8:], (a, b)
    assert (a[7] is None) == (b[7] is None) and (a[7] is None or abs(a[7] - b[7]) < 1e-9), (a, b)
print("kills: %d in %d runs, final table equals the uninterrupted run (%d rows)" %
      (kills, attempts, len(got)))

# ---- SIGTERM / SIGINT: finish the work in flight, commit, 143 / 130 ----
for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
    db = os.path.join(tmp, "sig%d.sqlite" % sig)
    p = run(db)
    # signal once the first rows are committed (not after a fixed sleep: a loaded machine may
    # still be opening the model), so "the rows done stay committed" is checked on real rows
    t0 = time.time()
    while p.poll() is None and committed(db) == 0 and time.time() - t0 < 120:
        time.sleep(0.02)
    if p.poll() is not None:
        sys.exit("the run ended before the signal")
    p.send_signal(sig)
    _, err = p.communicate()
    assert p.returncode == code, (sig, p.returncode, err)
    got, _ = rows(db)
    assert 0 < len(got) <= len(want), len(got)
    # a rerun completes it
    p = run(db)
    p.communicate()
    assert p.returncode == 4, p.returncode
    got, _ = rows(db)
    assert len(got) == len(want), (len(got), len(want))
print("SIGTERM 143, SIGINT 130: ok")
