/*
 * serve.h — the pieces of `llavaguard serve` (an HTTP service on libmicrohttpd over the library's
 * batch engine): the server state, the reloadable configuration (thresholds, tenants, policies),
 * metrics, the audit log, request inputs (base64, data URLs, multipart, remote URLs) and the
 * endpoint handlers. One concept per file: serve_http.c (daemon, routing, limits, auth),
 * serve_api.c (endpoints), serve_config.c, serve_metrics.c, serve_audit.c, serve_input.c.
 */
#ifndef LG_APP_SERVE_H
#define LG_APP_SERVE_H

#include "app.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SRV_MAX_CATS 64 /* categories a policy may hold (the built-in one has 9) */

/* ---- limits (command line; docs/serve.md) ---- */
typedef struct srv_limits {
    size_t max_body;         /* request body bytes (413) */
    uint64_t max_pixels;     /* decoded pixels per image (413) */
    int max_images;          /* images per request (413) */
    size_t max_header;       /* header bytes per connection (MHD's memory limit; 431) */
    int max_connections;     /* open connections (more are refused by MHD) */
    int conn_timeout_s;      /* idle connection timeout */
    double deadline_s;       /* per-request deadline (504) */
    size_t max_remote_bytes; /* remote image URL download size */
    double remote_timeout_s; /* remote image URL download time */
} srv_limits;

/* ---- configuration: decisions operators tune without a restart (serve_config.c) ---- */

/* How verdicts become decisions for one tenant (or the default). */
typedef struct srv_rules {
    lg_policy *policy;            /* owned; the policy this tenant's images are judged against */
    double threshold;             /* flagged when P(unsafe) >= threshold */
    double review;                /* "review" when review <= P(unsafe) < threshold (>= 1: off) */
    double cat_thr[SRV_MAX_CATS]; /* per policy category: flagged when its score >= this; NaN:
                                     unset (score = P(unsafe) x P(category | rating)) */
    bool observe;                 /* observe-only: log the decision, never flag */
    int max_inflight;             /* images of this tenant in flight at once (429); 0: no limit */
} srv_rules;

typedef struct srv_tenant {
    char *name;
    srv_rules rules;
} srv_tenant;

typedef struct srv_token {
    char *token;  /* the bearer token */
    char *tenant; /* the tenant it stands for ("default" when the line names none) */
} srv_token;

/* One immutable snapshot of the configuration; replaced as a whole on SIGHUP (refcounted, so a
 * request keeps the snapshot it started with). */
typedef struct srv_config {
    int refs;       /* guarded by srv_server.cfg_mu */
    srv_rules base; /* the defaults (tenants inherit them) */
    srv_tenant *tenants;
    size_t n_tenants;
    srv_token *tokens; /* from --token-file; auth is on when n_tokens > 0 */
    size_t n_tokens;
    char sha256[65]; /* of the config file ("" without one) */
} srv_config;

/* ---- metrics (serve_metrics.c) ---- */
enum srv_endpoint {
    EP_PAGE,
    EP_HEALTH,
    EP_MODELS,
    EP_METRICS,
    EP_MODERATIONS,
    EP_ASSESS,
    EP_CHAT,
    EP_OTHER,
    EP_COUNT
};
#define SRV_N_STATUS 16
#define SRV_N_BUCKETS 12
typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests[EP_COUNT][SRV_N_STATUS]; /* by endpoint and status slot */
    int status_codes[SRV_N_STATUS];            /* the status each slot counts */
    uint64_t lat_buckets[SRV_N_BUCKETS]; /* request latency histogram (cumulative on output) */
    double lat_sum;
    uint64_t lat_count;
    uint64_t images, images_failed, flagged, reviews, reloads, reload_failures;
    double t_start;
} srv_metrics;

/* ---- the audit log (serve_audit.c): JSON Lines, append-only, fsync'd per batch ---- */
typedef struct srv_audit srv_audit;

/* ---- the server ---- */
typedef struct srv_server {
    lg_guard *guard;
    const char *model_dir;
    const char *model_id;  /* the name clients pass as "model" (the folder's base name) */
    char model_sha256[65]; /* of the model's config.json: identifies the model in the audit log */
    const char *config_path, *token_path;
    srv_limits limits;
    bool allow_remote; /* remote image URLs allowed (hosts in allow_hosts) */
    char **allow_hosts;
    size_t n_allow_hosts;
    lg_image_options image_options;
    pthread_mutex_t cfg_mu;
    srv_config *cfg;
    srv_metrics metrics;
    srv_audit *audit;
    FILE *log; /* one JSON line per request */
    pthread_mutex_t log_mu;
    /* requests waiting for the engine (the deadline watcher walks them) */
    pthread_mutex_t pend_mu;
    struct srv_req *pending;
    int64_t active; /* HTTP requests being handled (for the SIGTERM drain) */
    /* per-tenant images in flight (429) */
    struct {
        char name[64];
        int n;
    } inflight[64];
    volatile int stopping;
    uint64_t next_id;
    void *daemon; /* struct MHD_Daemon */
} srv_server;

/* One image of a request, submitted to the engine as one lg_request. */
typedef struct srv_job {
    struct srv_req *req;
    uint8_t *bytes; /* encoded image (owned) */
    size_t size;
    char name[96];
    lg_ticket ticket;
    bool submitted;
    lg_result *result; /* from on_done */
} srv_job;

/* A streamed chat reply (stream: true): server-sent events appended as the engine decides the
 * answer (lg_request.on_text, on an engine thread) and sent by a content reader that suspends
 * the connection while nothing new has come. Guarded by the request's mu. */
typedef struct srv_stream {
    bool on;       /* the request asked for a stream */
    bool native;   /* /v1/assess events (text pieces, then the verdict), else chat chunks */
    bool got_text; /* some of the answer has come: the 200 reply can start */
    bool ended;    /* the last event ([DONE]) is in buf */
    char *buf;     /* the events not yet freed; sent: how much of it went out */
    size_t len, sent;
    /* per policy: the bytes of an unfinished UTF-8 sequence, sent with its next piece */
    char held[64][4];
    unsigned char n_held[64];
    char id[48];
    long long created;
} srv_stream;

/* What an endpoint returns: status, JSON body (or raw body), extra headers. */
typedef struct srv_reply {
    int status;
    json_t *json; /* owned; serialised compactly */
    char *raw;    /* owned (free) when json is NULL */
    size_t raw_len;
    const char *content_type;
    int retry_after;        /* > 0: Retry-After header */
    const char *error_type; /* for the log line */
} srv_reply;

/* One HTTP request from the first header to the response. */
typedef struct srv_req {
    srv_server *srv;
    void *conn; /* struct MHD_Connection */
    enum srv_endpoint ep;
    char id[32];
    char method[8];
    char url[128];
    char content_type[128];
    char tenant[64];
    bool authed;
    srv_config *cfg; /* snapshot (ref held) */
    const srv_rules *rules;
    double t0;
    /* body */
    uint8_t *body;
    size_t body_len, body_cap;
    bool body_too_large;
    bool handled; /* the endpoint ran */
    /* engine work */
    pthread_mutex_t mu;
    int refs;        /* 1 for the HTTP side + 1 per submitted job not yet done */
    int outstanding; /* jobs not yet done */
    bool suspended;
    bool timed_out;
    double deadline;
    srv_job *jobs;
    int n_jobs;
    int counted_inflight; /* images counted against the tenant */
    /* what to do with the results */
    void (*finish)(struct srv_req *r, srv_reply *out);
    json_t *ctx;          /* endpoint's parsed request (owned) */
    lg_policy **policies; /* per request (owned), NULL: the rules' policy */
    size_t n_policies;
    lg_assess_params ap;
    srv_reply reply;
    srv_stream stream;
    struct srv_req *next_pending;
    bool in_pending;
} srv_req;

/* ---- serve_config.c ---- */
/* Loads the config file (NULL: defaults only) and the token file (NULL: no auth) into a new
 * snapshot with refs 1. Returns false with a message in msg on any error (nothing is kept). */
bool srv_config_load(srv_server *s, const char *path, const char *token_path, srv_config **out,
                     char *msg, size_t msg_size);
void srv_config_unref(srv_server *s, srv_config *c);
srv_config *srv_config_get(srv_server *s); /* a new reference to the current snapshot */
/* Rereads the files; on success swaps the snapshot in, else keeps the old one. */
bool srv_config_reload(srv_server *s, char *msg, size_t msg_size);
/* The rules of a tenant (the base rules when the tenant has none of its own). */
const srv_rules *srv_config_rules(const srv_config *c, const char *tenant);
/* Looks up a bearer token in constant time per token; returns its tenant or NULL. */
const char *srv_config_token_tenant(const srv_config *c, const char *token);
/* Parses policy options from a JSON object ("policy": a policy file's JSON, "policy_version",
 * "allow", "sensitive") into a new policy; *out NULL and true when the object names none. */
bool srv_policy_from_json(srv_server *s, json_t *obj, lg_policy **out, char *msg, size_t n);
/* The snake_case name of a category name ("Hate, Humiliation, Harassment" ->
 * "hate_humiliation_harassment"). */
void srv_snake_name(const char *name, char *out, size_t n);

/* The decision for one verdict under `rules`. */
typedef struct srv_decision {
    const char *decision;        /* "flag", "review" or "allow" */
    bool flagged;                /* as reported (false in observe-only mode) */
    double scores[SRV_MAX_CATS]; /* per policy category, in policy order */
    bool cat_flagged[SRV_MAX_CATS];
    size_t n;
} srv_decision;
void srv_decide(const srv_rules *rules, const lg_policy *pol, const lg_verdict *v,
                srv_decision *out);

/* ---- serve_metrics.c ---- */
void srv_metrics_init(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, enum srv_endpoint ep, int status, double latency_s);
char *srv_metrics_render(srv_server *s); /* Prometheus text (free) */
const char *srv_endpoint_name(enum srv_endpoint ep);

/* ---- serve_audit.c ---- */
bool srv_audit_open(const char *path, srv_audit **out, char *msg, size_t n);
void srv_audit_write(srv_audit *a, json_t *record); /* queues one line (the caller keeps record) */
void srv_audit_close(srv_audit *a); /* writes what is queued, fsyncs, stops; NULL-safe */

/* ---- serve_input.c ---- */
/* Decodes standard or URL-safe base64 (whitespace ignored); false on a bad character/length. */
bool srv_base64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len);
/* Turns an image URL (data: URL, or http(s) when allowed) into encoded bytes. On failure fills
 * *reply with the error (status and JSON). */
bool srv_image_from_url(srv_server *s, const char *url, uint8_t **bytes, size_t *size,
                        srv_reply *reply);
/* Finds a multipart/form-data part by field name; the bytes point into the body. */
bool srv_multipart_get(const uint8_t *body, size_t len, const char *content_type, const char *field,
                       const uint8_t **data, size_t *size);

/* ---- serve_http.c ---- */
/* Fills *r with an error in OpenAI's shape: {"error":{"message","type","code"}}. */
void srv_error(srv_reply *r, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Adds an image job to the request (takes the bytes). */
bool srv_req_add_job(srv_req *r, uint8_t *bytes, size_t size, const char *name);
/* Submits every job to the engine; returns false with *out filled when nothing could be
 * submitted (503 queue full, 429 tenant limit, 500). */
bool srv_req_submit(srv_req *r, srv_reply *out);
int srv_run(srv_server *s, const char *host, int port, int http_threads, const char *port_file);
double srv_now(void);

/* ---- serve_api.c: the endpoints ---- */
void srv_api_dispatch(srv_req *r, srv_reply *out); /* routes by method + url */
/* The verdict as JSON (cmd_assess's field names) plus the decision. */
json_t *srv_verdict_json(const srv_req *r, const lg_result *res, size_t i, const lg_policy *pol);
const lg_policy *srv_req_policy(const srv_req *r, size_t i);
void srv_audit_result(srv_req *r, const lg_result *res);
/* Streams (serve_api.c; the request's mu held): one event with a piece of policy's answer
 * (text == NULL: the chat stream's opening role event), and the closing events once the job is
 * done (chat: a finish event, or an error event when the job failed, then [DONE]; assess: the
 * whole verdict as an `event: verdict`, or an `event: error`). */
void srv_stream_text(srv_req *r, size_t policy, const char *text, size_t len);
void srv_stream_end(srv_req *r);

/* The web page (generated at build time from src/app/web/index.html). */
extern const unsigned char srv_page_html[];
extern const size_t srv_page_html_len;

#endif
