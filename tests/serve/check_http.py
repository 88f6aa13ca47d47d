#!/usr/bin/python3
"""check_http.py LLAVAGUARD FIXTURES — tests `llavaguard serve` over real HTTP on loopback.

Starts servers on free ports (--port 0 --port-file) with the tiny fixture model and checks every
endpoint, each bad-input class (400, 401, 404, 405, 413, 415, 422, 429, 503, 504), auth on and
off, config reload on SIGHUP (a bad file refused), the audit log and the SIGTERM drain. Exits
non-zero on the first failure. Run by tests/cli_serve.sh under CTest.
"""
import base64
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BIN, FIX = sys.argv[1], sys.argv[2]
MODEL = os.path.join(FIX, "llava-ov-tiny")
IMG = os.path.join(FIX, "images")
TMP = tempfile.mkdtemp(prefix="lg-serve-")
SMALL = open(os.path.join(IMG, "p05_rgb_tiny_50x37.png"), "rb").read()
BIG = open(os.path.join(IMG, "p01_rgb_384x384.png"), "rb").read()
B64 = base64.b64encode(SMALL).decode()
DATA_URL = "data:image/png;base64," + B64
PROMPT = open(os.path.join(FIX, "reference", "prompt_text.txt")).read()
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)
    return cond


class Server:
    def __init__(self, name, *args):
        self.port_file = os.path.join(TMP, name + ".port")
        self.log = os.path.join(TMP, name + ".log")
        cmd = [BIN, "serve", "--model", MODEL, "--port", "0", "--port-file", self.port_file,
               "--threads", "1", "--log", self.log] + list(args)
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(300):
            if os.path.exists(self.port_file):
                break
            if self.p.poll() is not None:
                raise SystemExit("server %s exited: %s" % (name, self.p.stderr.read().decode()))
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def req(self, method, path, body=None, ctype="application/json", headers=None, raw=False):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        h = {"Content-Type": ctype} if data is not None else {}
        h.update(headers or {})
        r = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                   headers=h, method=method)
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                status, hdrs, text = resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, text = e.code, dict(e.headers), e.read()
        if raw:
            return status, hdrs, text
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text.decode("utf-8", "replace")

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=60)
        check(rc == 0, "server exits 0 after SIGTERM (got %s)" % rc)
        return rc


def err_type(j):
    return j.get("error", {}).get("type") if isinstance(j, dict) else None


def moderation_part(url=DATA_URL):
    return {"type": "image_url", "image_url": {"url": url}}


def multipart(fields, files):
    b = "lgboundary7d3f"
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode()
    for k, (fn, data) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, k, fn)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b


def hup(server, ok_count, fail_count):
    """Sends SIGHUP and waits until /metrics shows the reload counters given (no fixed sleep)."""
    server.p.send_signal(signal.SIGHUP)
    want = ("llavaguard_config_reloads_total %d\n" % ok_count,
            "llavaguard_config_reload_failures_total %d\n" % fail_count)
    for _ in range(1000):
        m = server.req("GET", "/metrics", raw=True)[2].decode()
        if all(w in m for w in want):
            return True
        time.sleep(0.01)
    return check(False, "reload %d/%d never showed in /metrics" % (ok_count, fail_count))


def write(name, text):
    p = os.path.join(TMP, name)
    with open(p, "w") as f:
        f.write(text)
    return p


# a loopback image host for the remote-URL checks
class ImageHost(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data = {"/small.png": SMALL, "/big.png": BIG}.get(self.path)
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args):
        pass


host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ImageHost)
threading.Thread(target=host.serve_forever, daemon=True).start()
REMOTE = "http://127.0.0.1:%d" % host.server_address[1]

# ---- server A: no auth, config, audit log, small limits ----
cfg = write("a.json", json.dumps({"threshold": 0.0, "category_thresholds": {"O3": 0.5}}))
audit = os.path.join(TMP, "audit.jsonl")
A = Server("a", "--config", cfg, "--audit-log", audit, "--max-images", "2",
           "--max-body", "400000", "--allow-remote", "images.example.invalid",
           "--allow-remote", "127.0.0.1", "--remote-max-bytes", "100000")

s, _, j = A.req("GET", "/health")
check(s == 200 and j.get("status") == "ok" and j.get("model") == "llava-ov-tiny", "health: %s" % j)
s, _, j = A.req("GET", "/v1/models")
check(s == 200 and j["data"][0]["id"] == "llava-ov-tiny", "models: %s" % j)
s, h, page = A.req("GET", "/", raw=True)
check(s == 200 and b"<title>LlavaGuard</title>" in page and h.get("Content-Type", "").startswith("text/html"),
      "page served")

# moderations: one content-part input -> one result
s, _, j = A.req("POST", "/v1/moderations", {"model": "omni-moderation-latest",
                                            "input": [moderation_part(), {"type": "text", "text": "x"}]})
ok = check(s == 200, "moderations 200: %s %s" % (s, j))
if ok:
    r = j["results"]
    check(len(r) == 1, "one result for one multi-modal input")
    r = r[0]
    check(r["flagged"] is True, "threshold 0 flags")
    for k in ("sexual_content", "sexual", "violence", "self-harm", "hate_humiliation_harassment",
              "disasters_or_emergencies"):
        check(k in r["categories"] and k in r["category_scores"] and k in r["category_applied_input_types"],
              "category %s present" % k)
    check(all(0 <= v <= 1 for v in r["category_scores"].values()), "scores in [0,1]")
    check(r["category_scores"]["sexual"] == r["category_scores"]["sexual_content"], "sexual maps O3")
    check(r["category_applied_input_types"]["sexual"] == ["image"], "applied input types")
    check(j["model"] == "llava-ov-tiny" and j["id"].startswith("modr-"), "id/model")
# array of image strings -> one result each
s, _, j = A.req("POST", "/v1/moderations", {"input": [DATA_URL, DATA_URL]})
check(s == 200 and len(j.get("results", [])) == 2, "two results for two strings: %s" % s)

# bad inputs
s, _, j = A.req("POST", "/v1/moderations", {"input": "is this text ok?"})
check(s == 400 and "text-only" in j["error"]["message"], "text-only 400: %s" % j)
s, _, j = A.req("POST", "/v1/moderations", {"input": [{"type": "text", "text": "hi"}]})
check(s == 400, "text parts only 400")
s, _, j = A.req("POST", "/v1/moderations", b"{not json")
check(s == 400 and err_type(j) == "invalid_request_error", "bad JSON 400")
s, _, j = A.req("POST", "/v1/moderations", b"input=x", ctype="application/x-www-form-urlencoded")
check(s == 415, "wrong content type 415: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part("data:image/png;base64,@@@")]})
check(s == 400, "bad base64 400: %s" % s)
s, _, j = A.req("POST", "/v1/moderations",
                {"input": [moderation_part("data:image/png;base64," + base64.b64encode(b"not an image at all").decode())]})
check(s == 422, "undecodable image 422: %s %s" % (s, j))
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part("data:text/plain;base64,aGVsbG8=")]})
check(s == 415, "non-image media type 415: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [DATA_URL] * 3})
check(s == 413, "too many images 413: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part("data:image/png;base64," + "A" * 500000)]})
check(s == 413, "body too large 413: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part("https://elsewhere.example.invalid/x.png")]})
check(s == 422 and "not enabled" in j["error"]["message"], "remote host not allowed 422: %s" % j)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part(REMOTE + "/small.png")]})
check(s == 200 and len(j["results"]) == 1, "allowed remote URL fetched: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part(REMOTE + "/big.png")]})
check(s == 413, "remote image over --remote-max-bytes 413: %s" % s)
s, _, j = A.req("POST", "/v1/moderations", {"input": [moderation_part(REMOTE + "/missing.png")]})
check(s == 422, "remote 404 is 422: %s" % s)
s, _, j = A.req("GET", "/v1/nothing")
check(s == 404 and err_type(j) == "not_found", "404")
s, h, j = A.req("GET", "/v1/moderations")
check(s == 405 and h.get("Allow") == "POST", "405 with Allow")
s, _, _ = A.req("GET", "/health", headers={"X-Big": "x" * 40000}, raw=True)
check(s in (413, 431), "huge header refused: %s" % s)

# assess: JSON, data URL, multipart, several policies
s, _, v = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never"})
ok = check(s == 200, "assess 200: %s %s" % (s, v))
if ok:
    for k in ("rating", "category", "rationale", "p_unsafe", "category_probs", "policy_sha256", "model",
              "timings", "decision", "sha256", "width", "height"):
        check(k in v, "assess field %s" % k)
    check(v["rating"] in ("Safe", "Unsafe") and v["rationale"] is None and v["width"] == 50, "assess values")
    check(abs(sum(v["category_probs"].values()) - 1) < 1e-6, "category probs sum to 1")
    default_sha = v["policy_sha256"]
s, _, v2 = A.req("POST", "/v1/assess", {"image": DATA_URL, "rationale": "never", "allow": ["O3", "O4"]})
check(s == 200 and v2["policy_sha256"] != default_sha, "allow changes the policy")
body, ct = multipart({"rationale": "never", "allow": "O3,O4"}, {"image": ("p05.png", SMALL)})
s, _, v3 = A.req("POST", "/v1/assess", body, ctype=ct)
check(s == 200 and v3.get("policy_sha256") == v2["policy_sha256"] and v3["p_unsafe"] == v2["p_unsafe"],
      "multipart equals JSON: %s" % s)
s, _, m = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never",
                                       "policies": [{}, {"allow": "O3,O4"}, {"sensitive": ["O6"]}]})
ok = check(s == 200 and len(m.get("verdicts", [])) == 3, "three policies, three verdicts: %s" % s)
if ok:
    check(m["verdicts"][0]["p_unsafe"] == v["p_unsafe"] and m["verdicts"][1]["p_unsafe"] == v2["p_unsafe"],
          "per-policy verdicts equal single ones")
s, _, j = A.req("POST", "/v1/assess", {"image": B64, "allow": "O99"})
check(s == 422 and err_type(j) == "invalid_policy", "unknown category 422")
s, _, j = A.req("POST", "/v1/assess", {"image": B64, "rationale": "sometimes"})
check(s == 400, "bad rationale mode 400")
# /v1/assess with "stream": each policy's answer piece by piece, then the whole verdict
def sse_events(text):
    out = []
    for block in text.decode().split("\n\n"):
        lines = dict(l.split(": ", 1) for l in block.split("\n") if ": " in l)
        if "data" in lines:
            out.append((lines.get("event", "message"), json.loads(lines["data"])))
    return out


s, _, plain = A.req("POST", "/v1/assess", {"image": B64, "rationale": "always",
                                           "max_rationale_tokens": 24})
s2, h, text = A.req("POST", "/v1/assess", {"image": B64, "rationale": "always", "max_rationale_tokens": 24,
                                           "stream": True}, raw=True)
if check(s == 200 and s2 == 200 and h.get("Content-Type", "").startswith("text/event-stream"),
         "assess stream SSE: %s %s" % (s, s2)):
    ev = sse_events(text)
    texts = [d["text"] for e, d in ev if e == "text"]
    check(len(texts) >= 4 and all(d["policy"] == 0 for e, d in ev if e == "text"), "assess stream pieces")
    check(ev[-1][0] == "verdict", "assess stream ends with the verdict")
    ans = json.loads("".join(texts))
    fin = ev[-1][1]
    check(ans["rating"] == fin["rating"] == plain["rating"] and ans["category"] == fin["category"] and
          ans["rationale"] == fin["rationale"] == plain["rationale"], "streamed answer == verdict == plain")
    check(fin["p_unsafe"] == plain["p_unsafe"], "streamed verdict's p_unsafe == plain")
s, h, text = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never", "stream": True,
                                          "policies": [{}, {"allow": "O3,O4"}]}, raw=True)
if check(s == 200, "assess stream, two policies: %s" % s):
    ev = sse_events(text)
    for k in (0, 1):
        a = json.loads("".join(d["text"] for e, d in ev if e == "text" and d["policy"] == k))
        check(a["rating"] == ev[-1][1]["verdicts"][k]["rating"], "policy %d streamed" % k)
s, _, j = A.req("POST", "/v1/assess", {"image": "bm90IGFuIGltYWdl", "stream": True})
check(s in (400, 415, 422) and err_type(j), "assess stream of a bad image: an ordinary error %s" % s)
body, ct = multipart({"rationale": "never"}, {})
s, _, j = A.req("POST", "/v1/assess", body, ctype=ct)
check(s == 400, "multipart without image 400")

# chat completions (SGLang example shape)
chat = {"model": "llava-ov-tiny", "temperature": 0.2, "top_p": 0.95, "max_tokens": 40,
        "messages": [{"role": "user", "content": [moderation_part(), {"type": "text", "text": PROMPT}]}]}
s, _, c = A.req("POST", "/v1/chat/completions", chat)
ok = check(s == 200 and c.get("object") == "chat.completion", "chat 200: %s" % s)
if ok:
    ans = json.loads(c["choices"][0]["message"]["content"])
    check(ans["rating"] in ("Safe", "Unsafe") and "category" in ans and "rationale" in ans, "chat answer JSON")
chat["stream"] = True
s, h, text = A.req("POST", "/v1/chat/completions", chat, raw=True)
ok = check(s == 200 and h.get("Content-Type", "").startswith("text/event-stream"), "stream SSE")
if ok:
    events = [l[6:] for l in text.decode().split("\n") if l.startswith("data: ")]
    check(events[-1] == "[DONE]", "stream ends with [DONE]")
    content = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    check(json.loads(content)["rating"] in ("Safe", "Unsafe"), "streamed content is the verdict")
# greedy: the stream is the answer piece by piece as the verdict decoder decides it (rating,
# category, each rationale token), and the pieces are the non-streamed answer
greedy = dict(chat, temperature=0, stream=False)
s, _, c = A.req("POST", "/v1/chat/completions", greedy)
whole = c["choices"][0]["message"]["content"] if s == 200 else None
s, h, text = A.req("POST", "/v1/chat/completions", dict(greedy, stream=True), raw=True)
if check(s == 200 and whole is not None, "greedy stream 200: %s" % s):
    events = [l[6:] for l in text.decode().split("\n") if l.startswith("data: ")]
    deltas = [json.loads(e)["choices"][0]["delta"] for e in events[:-1]]
    pieces = [d["content"] for d in deltas if d.get("content")]
    check(deltas[0].get("role") == "assistant", "stream opens with the role event")
    check("".join(pieces) == whole, "streamed pieces == the answer: %r" % pieces[:4])
    check(len(pieces) >= 4, "one event per decided piece: %d" % len(pieces))
    check(json.loads(events[-2])["choices"][0]["finish_reason"] == "stop", "finish event")
chat["stream"] = False
chat["messages"][0]["content"][1]["text"] = "Please be nice."
s, _, j = A.req("POST", "/v1/chat/completions", chat)
check(s == 422, "unknown policy text 422")
chat["messages"][0]["content"] = [{"type": "text", "text": PROMPT}]
s, _, j = A.req("POST", "/v1/chat/completions", chat)
check(s == 400, "chat without image 400")

# hostile bodies never crash the server: each gets a JSON error (seeded, bounded)
import random
rng = random.Random(7)
shapes = [b"", b"{}", b"[]", b"null", b'{"input": {}}', b'{"input": [1, 2]}', b'{"messages": "x"}',
          b'{"image": 5}', b'{"input": [{"type": "image_url", "image_url": 3}]}',
          b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
          b'{"image": "' + B64.encode()[:100] + b'"}', b'{"input": "data:image/png;base64,"}']
bad = 0
for i in range(60):
    body = shapes[i] if i < len(shapes) else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    for path in ("/v1/moderations", "/v1/assess", "/v1/chat/completions"):
        ct = "multipart/form-data; boundary=xx" if (path == "/v1/assess" and i % 5 == 0) else "application/json"
        st, _, j = A.req("POST", path, body, ctype=ct)
        if not (400 <= st < 500 and isinstance(j, dict) and "error" in j):
            bad += 1
            print("hostile body", i, path, st, str(j)[:200])
check(bad == 0, "hostile bodies answered with 4xx JSON errors")
check(A.req("GET", "/health")[0] == 200, "alive after hostile bodies")

# config reload: observe-only stops flagging; a bad file is refused and the old one kept
write("a.json", json.dumps({"threshold": 0.0, "observe_only": True}))
hup(A, 1, 0)
s, _, v = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never"})
check(s == 200 and v["flagged"] is False and v["decision"] == "flag" and v.get("observe_only") is True,
      "observe-only after reload: %s" % {k: v.get(k) for k in ("flagged", "decision")})
write("a.json", json.dumps({"threshold": 0.99, "review_threshold": 0.0}))
hup(A, 2, 0)
s, _, v = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never"})
check(s == 200 and v["decision"] == "review" and v["flagged"] is False, "review band: %s" % v.get("decision"))
write("a.json", '{"threshold": 7}')
hup(A, 2, 1)
s, _, v = A.req("POST", "/v1/assess", {"image": B64, "rationale": "never"})
check(s == 200 and v["decision"] == "review", "bad config refused, old kept")
s, _, metrics = A.req("GET", "/metrics", raw=True)
metrics = metrics.decode()
check("llavaguard_config_reload_failures_total 1" in metrics and "llavaguard_config_reloads_total 2" in metrics,
      "reload counters")
check('llavaguard_http_requests_total{endpoint="moderations",status="200"}' in metrics, "request counter")
check("llavaguard_http_request_duration_seconds_bucket{le=\"+Inf\"}" in metrics and
      "llavaguard_queue_depth" in metrics and "llavaguard_batch_size_mean" in metrics, "metrics families")
A.stop()

lines = [json.loads(l) for l in open(audit)]
check(len(lines) >= 10, "audit lines: %d" % len(lines))
a0 = lines[0]
for k in ("request_id", "time", "tenant", "image_sha256", "model_sha256", "policy_sha256", "p_unsafe",
          "scores", "decision", "latency_s"):
    check(k in a0, "audit field %s" % k)
check(B64[:40] not in open(audit).read(), "no image bytes in the audit log")
log = [json.loads(l) for l in open(A.log) if l.startswith("{")]
reqs = [l for l in log if "status" in l and "path" in l]
check(len(reqs) >= 30 and all("latency_s" in l and "id" in l for l in reqs), "one log line per request")

# ---- server B: auth, tenants, 429, pixel limit ----
tokens = write("tokens", "# token tenant\ntok-alpha-123456 alpha\ntok-beta-654321 beta\n")
cfgb = write("b.json", json.dumps({"threshold": 0.0, "tenants": {"beta": {"observe_only": True,
                                                                          "max_inflight": 1}}}))
B = Server("b", "--config", cfgb, "--token-file", tokens, "--max-pixels", "2000")
s, _, j = B.req("POST", "/v1/assess", {"image": B64, "rationale": "never"})
check(s == 401 and err_type(j) == "authentication_error", "no token 401")
s, _, j = B.req("POST", "/v1/assess", {"image": B64, "rationale": "never"},
                headers={"Authorization": "Bearer tok-alpha-123457"})
check(s == 401, "wrong token 401")
s, _, j = B.req("GET", "/health")
check(s == 200, "health needs no token")
s, _, va = B.req("POST", "/v1/assess", {"image": B64, "rationale": "never"},
                 headers={"Authorization": "Bearer tok-alpha-123456"})
check(s == 200 and va["tenant"] == "alpha" and va["flagged"] is True, "alpha flagged: %s" % s)
s, _, vb = B.req("POST", "/v1/assess", {"image": B64, "rationale": "never"},
                 headers={"Authorization": "Bearer tok-beta-654321"})
check(s == 200 and vb["tenant"] == "beta" and vb["flagged"] is False, "beta observe-only")
s, h, j = B.req("POST", "/v1/moderations", {"input": [DATA_URL, DATA_URL]},
                headers={"Authorization": "Bearer tok-beta-654321"})
check(s == 429 and h.get("Retry-After"), "tenant in-flight limit 429: %s" % s)
s, _, j = B.req("POST", "/v1/assess", {"image": base64.b64encode(BIG).decode(), "rationale": "never"},
                headers={"Authorization": "Bearer tok-alpha-123456"})
check(s == 413, "pixel limit 413: %s %s" % (s, j))
B.stop()

# ---- server C: queue bound -> 503 with Retry-After ----
C = Server("c", "--max-batch", "1", "--max-queue", "1")
results = []


def fire(img):
    results.append(C.req("POST", "/v1/assess", {"image": img, "rationale": "never"})[:2])


threads = [threading.Thread(target=fire, args=(B64,)) for _ in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
codes = sorted(r[0] for r in results)
check(set(codes) <= {200, 503} and 503 in codes and 200 in codes, "queue full 503s: %s" % codes)
check(all(r[1].get("Retry-After") for r in results if r[0] == 503), "503 carries Retry-After")

# SIGTERM drains: a request in progress completes, then the server exits 0
drained = []
t = threading.Thread(target=lambda: drained.append(C.req("POST", "/v1/assess", {"image": B64})[0]))
t.start()
for _ in range(200):
    s, _, hj = C.req("GET", "/health")
    if hj.get("in_flight", 0) + hj.get("queued", 0) > 0:
        break
    time.sleep(0.01)
C.p.send_signal(signal.SIGTERM)
t.join()
check(drained == [200], "request in progress at SIGTERM completes: %s" % drained)
check(C.p.wait(timeout=60) == 0, "exit 0 after drain")
try:
    socket.create_connection(("127.0.0.1", C.port), timeout=2).close()
    check(False, "no longer accepting after SIGTERM")
except OSError:
    pass

# ---- server D: per-request deadline -> 504 ----
D = Server("d", "--deadline", "0.05")
s, _, j = D.req("POST", "/v1/assess", {"image": B64, "rationale": "always"})
check(s == 504 and err_type(j) == "timeout", "deadline 504: %s" % s)
s, _, j = D.req("GET", "/health")
check(s == 200, "alive after a 504")
D.stop()

host.shutdown()
print("serve HTTP checks: %s (%d failures)" % ("ok" if failures == 0 else "FAILED", failures))
sys.exit(1 if failures else 0)
