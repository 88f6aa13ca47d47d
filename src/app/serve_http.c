/*
 * serve_http.c — the HTTP side of `llavaguard serve` on libmicrohttpd: the daemon (epoll, a small
 * pool of internal threads, suspend/resume), per-request state, body limits, bearer-token auth,
 * the hand-off of images to the library's batch engine (lg_guard_submit with on_done: a waiting
 * request holds no thread), per-request deadlines (a watcher cancels late tickets -> 504), one
 * JSON log line per request, SIGHUP reload and the SIGTERM drain.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- replies ---- */

void srv_error(srv_reply *r, int status, const char *type, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(r->json);
    free(r->raw);
    *r = (srv_reply){.status = status, .error_type = type};
    json_t *e = json_object();
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "code", json_integer(status));
    r->json = json_object();
    json_object_set_new(r->json, "error", e);
}

static void reply_clear(srv_reply *r) {
    json_decref(r->json);
    free(r->raw);
    *r = (srv_reply){0};
}

/* ---- request lifetime ---- */

static void tenant_inflight_add(srv_server *s, const char *tenant, int d) {
    /* pend_mu held */
    for (size_t i = 0; i < sizeof s->inflight / sizeof s->inflight[0]; i++) {
        if (strcmp(s->inflight[i].name, tenant) == 0 || s->inflight[i].name[0] == '\0') {
            if (s->inflight[i].name[0] == '\0')
                snprintf(s->inflight[i].name, sizeof s->inflight[i].name, "%s", tenant);
            s->inflight[i].n += d;
            return;
        }
    }
}

static int tenant_inflight(srv_server *s, const char *tenant) {
    for (size_t i = 0; i < sizeof s->inflight / sizeof s->inflight[0]; i++)
        if (strcmp(s->inflight[i].name, tenant) == 0) return s->inflight[i].n;
    return 0;
}

static void req_free(srv_req *r) {
    for (int i = 0; i < r->n_jobs; i++) {
        free(r->jobs[i].bytes);
        lg_result_free(r->jobs[i].result);
    }
    free(r->jobs);
    for (size_t i = 0; i < r->n_policies; i++) lg_policy_free(r->policies[i]);
    free(r->policies);
    json_decref(r->ctx);
    free(r->stream.buf);
    reply_clear(&r->reply);
    free(r->body);
    if (r->cfg) srv_config_unref(r->srv, r->cfg);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static void req_unref(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) req_free(r);
}

bool srv_req_add_job(srv_req *r, uint8_t *bytes, size_t size, const char *name) {
    srv_job *j = realloc(r->jobs, (size_t)(r->n_jobs + 1) * sizeof *j);
    if (!j) {
        free(bytes);
        return false;
    }
    r->jobs = j;
    j = &r->jobs[r->n_jobs++];
    *j = (srv_job){.req = r, .bytes = bytes, .size = size};
    snprintf(j->name, sizeof j->name, "%s", name ? name : "image");
    return true;
}

/* Called once per job on an engine thread: keeps the result, and resumes the connection when it
 * was the last job. Returns quickly and never waits on the guard. */
static void on_done(void *user, lg_result *res) {
    srv_job *j = user;
    srv_req *r = j->req;
    srv_server *s = r->srv;
    pthread_mutex_lock(&s->pend_mu);
    tenant_inflight_add(s, r->tenant, -1);
    pthread_mutex_unlock(&s->pend_mu);
    pthread_mutex_lock(&r->mu);
    j->result = res;
    bool resume = --r->outstanding == 0 && r->suspended;
    if (resume) r->suspended = false;
    pthread_mutex_unlock(&r->mu);
    if (resume) MHD_resume_connection(r->conn);
    req_unref(r);
}

/* Bytes of text that form whole UTF-8 sequences: an unfinished sequence at the end is left
 * for the next piece (jansson refuses strings that are not UTF-8). */
static size_t utf8_whole(const char *text, size_t n) {
    size_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)text[i - 1] & 0xC0) == 0x80) i--, back++;
    if (i == 0) return n;
    unsigned char lead = (unsigned char)text[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > back + 1 ? i - 1 : n;
}

/* lg_request.on_text of a streamed request (an engine thread): appends the piece as an event
 * and wakes the connection when its reader was waiting for it. */
static void on_stream_text(void *user, size_t policy, const char *text, size_t len) {
    srv_job *j = user;
    srv_req *r = j->req;
    if (policy >= sizeof r->stream.held / sizeof r->stream.held[0]) return;
    pthread_mutex_lock(&r->mu);
    srv_stream *st = &r->stream;
    char *held = st->held[policy];
    unsigned char *n_held = &st->n_held[policy];
    char piece[256];
    while (len > 0) {
        size_t take = len < sizeof piece - *n_held ? len : sizeof piece - *n_held;
        memcpy(piece, held, *n_held);
        memcpy(piece + *n_held, text, take);
        size_t n = *n_held + take, whole = utf8_whole(piece, n);
        *n_held = (unsigned char)(n - whole);
        memcpy(held, piece + whole, *n_held);
        if (whole) srv_stream_text(r, policy, piece, whole);
        text += take;
        len -= take;
    }
    st->got_text = true;
    bool resume = r->suspended;
    r->suspended = false;
    pthread_mutex_unlock(&r->mu);
    if (resume) MHD_resume_connection(r->conn);
}

const lg_policy *srv_req_policy(const srv_req *r, size_t i) {
    if (r->n_policies) return r->policies[i];
    return r->rules->policy;
}

bool srv_req_submit(srv_req *r, srv_reply *out) {
    srv_server *s = r->srv;
    pthread_mutex_lock(&s->pend_mu);
    int cur = tenant_inflight(s, r->tenant);
    bool over = r->rules->max_inflight > 0 && cur + r->n_jobs > r->rules->max_inflight;
    if (!over) tenant_inflight_add(s, r->tenant, r->n_jobs);
    pthread_mutex_unlock(&s->pend_mu);
    if (over) {
        srv_error(out, 429, "rate_limit_exceeded",
                  "tenant '%s' has %d images in flight (limit %d); retry later", r->tenant, cur,
                  r->rules->max_inflight);
        out->retry_after = 1;
        return false;
    }
    const lg_policy *one = r->rules->policy;
    const lg_policy *const *pols = r->n_policies ? (const lg_policy *const *)r->policies : &one;
    size_t n_pols = r->n_policies ? r->n_policies : 1;
    r->deadline = srv_now() + s->limits.deadline_s;
    pthread_mutex_lock(&r->mu);
    r->outstanding = r->n_jobs;
    r->refs += r->n_jobs;
    pthread_mutex_unlock(&r->mu);
    int n_ok = 0;
    for (int i = 0; i < r->n_jobs; i++) {
        srv_job *j = &r->jobs[i];
        lg_request q = {.image_bytes = j->bytes,
                        .image_size = j->size,
                        .name = j->name,
                        .image_options = &s->image_options,
                        .policies = pols,
                        .n_policies = n_pols,
                        .params = &r->ap,
                        .on_done = on_done,
                        .on_text = r->stream.on ? on_stream_text : NULL,
                        .user = j};
        lg_error e = {0};
        lg_ticket t = 0;
        lg_status st = lg_guard_submit(s->guard, &q, LG_SUBMIT_NOWAIT, &t, &e);
        if (st != LG_OK) {
            /* the jobs not submitted will never call on_done */
            int left = r->n_jobs - i;
            pthread_mutex_lock(&s->pend_mu);
            tenant_inflight_add(s, r->tenant, -left);
            pthread_mutex_unlock(&s->pend_mu);
            pthread_mutex_lock(&r->mu);
            r->outstanding -= left;
            r->refs -= left;
            pthread_mutex_unlock(&r->mu);
            /* the ones submitted are cancelled; every job's bytes are freed with the request */
            for (int k = 0; k < i; k++) lg_guard_cancel(s->guard, r->jobs[k].ticket);
            if (st == LG_E_BUSY) {
                srv_error(out, 503, "overloaded", "the queue is full (%s); retry later", e.msg);
                out->retry_after = 1;
            } else {
                srv_error(out, st == LG_E_ARG ? 400 : 500,
                          st == LG_E_ARG ? "invalid_request_error" : "server_error", "%s", e.msg);
            }
            return false;
        }
        pthread_mutex_lock(&r->mu);
        j->ticket = t;
        j->submitted = true;
        pthread_mutex_unlock(&r->mu);
        n_ok++;
    }
    pthread_mutex_lock(&s->pend_mu);
    r->next_pending = s->pending;
    s->pending = r;
    r->in_pending = true;
    pthread_mutex_unlock(&s->pend_mu);
    return n_ok > 0;
}

static void pending_unlink(srv_server *s, srv_req *r) {
    pthread_mutex_lock(&s->pend_mu);
    if (r->in_pending) {
        for (srv_req **p = &s->pending; *p; p = &(*p)->next_pending)
            if (*p == r) {
                *p = r->next_pending;
                break;
            }
        r->in_pending = false;
    }
    pthread_mutex_unlock(&s->pend_mu);
}

/* The deadline watcher: cancels the tickets of requests past their deadline (their on_done then
 * reports LG_E_CANCELLED, and the request answers 504). */
static void *watcher_main(void *arg) {
    srv_server *s = arg;
    while (!s->stopping || s->active > 0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        double now = srv_now();
        lg_ticket late[256];
        size_t n_late = 0;
        pthread_mutex_lock(&s->pend_mu);
        for (srv_req *r = s->pending; r && n_late < 256; r = r->next_pending) {
            pthread_mutex_lock(&r->mu);
            if (!r->timed_out && r->outstanding > 0 && now > r->deadline) {
                r->timed_out = true;
                for (int i = 0; i < r->n_jobs && n_late < 256; i++)
                    if (r->jobs[i].submitted && !r->jobs[i].result)
                        late[n_late++] = r->jobs[i].ticket;
            }
            pthread_mutex_unlock(&r->mu);
        }
        pthread_mutex_unlock(&s->pend_mu);
        /* cancel outside the locks: a queued job's on_done runs inside lg_guard_cancel */
        for (size_t i = 0; i < n_late; i++) lg_guard_cancel(s->guard, late[i]);
        if (s->stopping && s->active <= 0) break;
    }
    return NULL;
}

/* ---- logging ---- */

static void log_request(srv_req *r, const srv_reply *rep, double latency) {
    srv_server *s = r->srv;
    srv_metrics_request(&s->metrics, r->ep, rep->status, latency);
    if (!s->log) return;
    json_t *j = json_object();
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(j, "time", json_string(ts));
    json_object_set_new(j, "id", json_string(r->id));
    json_object_set_new(j, "method", json_string(r->method));
    json_object_set_new(j, "path", json_string(r->url));
    json_object_set_new(j, "status", json_integer(rep->status));
    json_object_set_new(j, "latency_s", json_real(latency));
    json_object_set_new(j, "tenant", json_string(r->tenant));
    json_object_set_new(j, "images", json_integer(r->n_jobs));
    if (rep->error_type) json_object_set_new(j, "error", json_string(rep->error_type));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!line) return;
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->log, "%s\n", line);
    fflush(s->log);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}

static enum MHD_Result send_reply(srv_req *r, struct MHD_Connection *c, srv_reply *rep) {
    char *body = NULL;
    size_t len = 0;
    if (rep->json) {
        body = json_dumps(rep->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!body) {
            srv_error(rep, 500, "server_error", "out of memory");
            body = strdup("{\"error\":{\"message\":\"out of memory\"}}");
        }
        len = body ? strlen(body) : 0;
    } else {
        body = rep->raw;
        len = rep->raw_len;
        rep->raw = NULL;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(
        len, body ? body : (char *)"", body ? free : NULL);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->content_type ? rep->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (rep->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rep->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (rep->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (rep->status == 405)
        MHD_add_response_header(
            resp, MHD_HTTP_HEADER_ALLOW,
            r->ep == EP_MODERATIONS || r->ep == EP_ASSESS || r->ep == EP_CHAT ? "POST" : "GET");
    if (r->srv->stopping) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)rep->status, resp);
    MHD_destroy_response(resp);
    log_request(r, rep, srv_now() - r->t0);
    return ok;
}

/* ---- the access handler ---- */

static enum srv_endpoint classify(const char *url) {
    static const struct {
        const char *path;
        enum srv_endpoint ep;
    } T[] = {{"/", EP_PAGE},
             {"/index.html", EP_PAGE},
             {"/health", EP_HEALTH},
             {"/v1/models", EP_MODELS},
             {"/metrics", EP_METRICS},
             {"/v1/moderations", EP_MODERATIONS},
             {"/v1/assess", EP_ASSESS},
             {"/v1/chat/completions", EP_CHAT}};
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(url, T[i].path) == 0) return T[i].ep;
    return EP_OTHER;
}

/* Whether the endpoint needs a token when auth is on (the page, health and metrics do not: the
 * page asks for the token itself, and probes must work without secrets). */
static bool needs_auth(enum srv_endpoint ep) {
    return ep == EP_MODELS || ep == EP_MODERATIONS || ep == EP_ASSESS || ep == EP_CHAT;
}

static bool authorize(srv_req *r, struct MHD_Connection *c) {
    const srv_config *cfg = r->cfg;
    if (cfg->n_tokens == 0) {
        snprintf(r->tenant, sizeof r->tenant, "default");
        return true;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *tenant = srv_config_token_tenant(cfg, h + 7);
        if (tenant) {
            snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
            return true;
        }
    }
    snprintf(r->tenant, sizeof r->tenant, "-");
    return false;
}

static srv_req *req_new(srv_server *s, struct MHD_Connection *c, const char *url,
                        const char *method) {
    srv_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->srv = s;
    r->conn = c;
    r->refs = 1;
    r->t0 = srv_now();
    r->ap = lg_assess_params_default();
    snprintf(r->url, sizeof r->url, "%s", url);
    snprintf(r->method, sizeof r->method, "%s", method);
    uint64_t n = __atomic_add_fetch(&s->next_id, 1, __ATOMIC_RELAXED);
    snprintf(r->id, sizeof r->id, "req-%llx-%llu", (unsigned long long)time(NULL),
             (unsigned long long)n);
    r->ep = classify(url);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    snprintf(r->content_type, sizeof r->content_type, "%s", ct ? ct : "");
    r->cfg = srv_config_get(s);
    r->rules = &r->cfg->base;
    return r;
}

static bool body_append(srv_req *r, const char *data, size_t n) {
    if (r->body_too_large || r->body_len + n > r->srv->limits.max_body) {
        r->body_too_large = true;
        return true;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1) cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b) return false;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

/* Early checks on the first call (headers only): draining, auth, declared body size. */
static bool early_reject(srv_req *r, struct MHD_Connection *c, srv_reply *out) {
    srv_server *s = r->srv;
    if (s->stopping) {
        srv_error(out, 503, "unavailable", "the server is shutting down");
        out->retry_after = 1;
        return true;
    }
    bool ok = authorize(r, c);
    r->authed = ok;
    if (!ok && needs_auth(r->ep)) {
        srv_error(out, 401, "authentication_error",
                  "missing or invalid bearer token (Authorization: Bearer <token>)");
        return true;
    }
    r->rules = srv_config_rules(r->cfg, r->tenant);
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > s->limits.max_body) {
        srv_error(out, 413, "request_too_large", "the body (%s bytes) exceeds the limit of %zu", cl,
                  s->limits.max_body);
        return true;
    }
    return false;
}

/* The content reader of a streamed reply: the events not yet sent; when there are none, the
 * closing events once the job is done, else the connection is suspended until on_stream_text
 * or on_done wakes it (returning 0 after suspending is libmicrohttpd's "no data yet"). */
static ssize_t stream_reader(void *cls, uint64_t pos, char *dst, size_t max) {
    (void)pos;
    srv_req *r = cls;
    pthread_mutex_lock(&r->mu);
    srv_stream *st = &r->stream;
    if (st->sent == st->len && r->outstanding == 0 && !st->ended) srv_stream_end(r);
    ssize_t n;
    if (st->sent < st->len) {
        size_t k = st->len - st->sent < max ? st->len - st->sent : max;
        memcpy(dst, st->buf + st->sent, k);
        st->sent += k;
        n = (ssize_t)k;
    } else if (st->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        r->suspended = true;
        MHD_suspend_connection(r->conn);
        n = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

static void stream_reader_free(void *cls) {
    req_unref(cls);
}

/* Queues the 200 text/event-stream reply of a stream whose first piece has come. */
static enum MHD_Result start_stream(srv_req *r, struct MHD_Connection *c) {
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, r, stream_reader_free);
    if (!resp) return MHD_NO;
    pthread_mutex_lock(&r->mu);
    r->refs++; /* the reader's, dropped by stream_reader_free */
    pthread_mutex_unlock(&r->mu);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    srv_reply rep = {.status = 200};
    log_request(r, &rep, srv_now() - r->t0); /* latency: to the first piece */
    return ok;
}

static enum MHD_Result finish_or_suspend(srv_req *r, struct MHD_Connection *c) {
    if (r->n_jobs > 0 && r->finish && r->stream.on) {
        /* a stream starts with its first piece; a job that fails before it gets an ordinary
         * error reply with its own status */
        pthread_mutex_lock(&r->mu);
        bool started = r->stream.got_text, wait = !started && r->outstanding > 0;
        if (wait) {
            r->suspended = true;
            MHD_suspend_connection(c);
        }
        pthread_mutex_unlock(&r->mu);
        if (wait) return MHD_YES;
        if (started) {
            r->finish = NULL;
            return start_stream(r, c);
        }
    }
    if (r->n_jobs > 0 && r->finish) {
        pthread_mutex_lock(&r->mu);
        bool wait = r->outstanding > 0;
        if (wait) {
            r->suspended = true;
            MHD_suspend_connection(c);
        }
        pthread_mutex_unlock(&r->mu);
        if (wait) return MHD_YES;
    }
    if (r->finish) {
        r->finish(r, &r->reply);
        r->finish = NULL;
    }
    pending_unlink(r->srv, r);
    return send_reply(r, c, &r->reply);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r) return MHD_NO;
        *con_cls = r;
        __atomic_add_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
        if (early_reject(r, c, &r->reply)) {
            r->handled = true;
            return send_reply(r, c, &r->reply);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->handled && !body_append(r, upload_data, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->handled) {
        r->handled = true;
        if (r->body_too_large) {
            srv_error(&r->reply, 413, "request_too_large",
                      "the body exceeds the limit of %zu bytes", s->limits.max_body);
            return send_reply(r, c, &r->reply);
        }
        srv_api_dispatch(r, &r->reply);
    }
    return finish_or_suspend(r, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    srv_server *s = cls;
    srv_req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    pending_unlink(s, r);
    /* jobs still running for a request that ended (client gone): stop them */
    pthread_mutex_lock(&r->mu);
    int n = r->outstanding > 0 ? r->n_jobs : 0;
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n; i++)
        if (r->jobs[i].submitted) lg_guard_cancel(s->guard, r->jobs[i].ticket);
    req_unref(r);
    __atomic_sub_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    srv_server *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    json_t *j = json_pack("{s:s,s:s}", "event", "http", "message", msg);
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (line && s->log) {
        pthread_mutex_lock(&s->log_mu);
        fprintf(s->log, "%s\n", line);
        fflush(s->log);
        pthread_mutex_unlock(&s->log_mu);
    }
    free(line);
    json_decref(j);
}

/* ---- the daemon ---- */

static void log_event(srv_server *s, json_t *j) {
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!line) return;
    pthread_mutex_lock(&s->log_mu);
    fprintf(s->log ? s->log : stderr, "%s\n", line);
    fflush(s->log ? s->log : stderr);
    pthread_mutex_unlock(&s->log_mu);
    free(line);
}

static bool is_loopback(const char *host) {
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

int srv_run(srv_server *s, const char *host, int port, int http_threads, const char *port_file) {
    struct sockaddr_storage ss = {0};
    bool v6 = strchr(host, ':') != NULL;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return app_usage_error("serve", "--host '%s' is not an IP address", host);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return app_usage_error("serve", "--host '%s' is not an IP address", host);
    }
    if (!is_loopback(host) && s->cfg->n_tokens == 0)
        log_event(s, json_pack("{s:s,s:s}", "event", "warning", "message",
                               "binding a public address without --token-file: anyone who can "
                               "reach it may use the service"));
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)http_threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->limits.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->limits.conn_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->limits.max_header, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_END);
    if (!d)
        return app_fail("serve", "cannot listen on %s port %d: %s", host, port, strerror(errno));
    s->daemon = d;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : port;
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%d\n", bound);
            fclose(f);
            rename(tmp, port_file);
        }
    }
    log_event(s, json_pack("{s:s,s:s,s:i,s:s,s:i}", "event", "listening", "host", host, "port",
                           bound, "model", s->model_id, "auth", (int)(s->cfg->n_tokens > 0)));
    pthread_t watcher;
    pthread_create(&watcher, NULL, watcher_main, s);

    /* signals are blocked in every thread (cmd_serve.c); this thread takes them one by one */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            char msg[512];
            bool ok = srv_config_reload(s, msg, sizeof msg);
            log_event(s, json_pack("{s:s,s:b,s:s}", "event", "reload", "ok", ok, "message", msg));
            continue;
        }
        break;
    }
    /* drain: stop accepting, let the requests in progress finish (bounded by their deadline) */
    s->stopping = 1;
    int lfd = MHD_quiesce_daemon(d);
    if (lfd >= 0) close(lfd);
    log_event(s, json_pack("{s:s,s:I}", "event", "draining", "active", (json_int_t)s->active));
    double until = srv_now() + s->limits.deadline_s + 5;
    while (__atomic_load_n(&s->active, __ATOMIC_SEQ_CST) > 0 && srv_now() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    __atomic_store_n(&s->active, 0, __ATOMIC_SEQ_CST);
    pthread_join(watcher, NULL);
    log_event(s, json_pack("{s:s}", "event", "stopped"));
    return APP_EXIT_OK;
}
