/*
 * serve_metrics.c — the server's own counters (requests by endpoint and status, a latency
 * histogram, images, decisions, reloads) plus the batch engine's (lg_guard_stats_get: queue
 * depth, requests in flight, batched passes and their sizes, KV cache, feature cache), rendered
 * in the Prometheus text exposition format (version 0.0.4) for GET /metrics.
 */
#include "serve.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS[SRV_N_BUCKETS - 1] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

static const char *const EP_NAMES[EP_COUNT] = {
    "page", "health", "models", "metrics", "moderations", "assess", "chat_completions", "other"};

const char *srv_endpoint_name(enum srv_endpoint ep) {
    return ep < EP_COUNT ? EP_NAMES[ep] : "other";
}

void srv_metrics_init(srv_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->t_start = srv_now();
}

void srv_metrics_request(srv_metrics *m, enum srv_endpoint ep, int status, double latency_s) {
    pthread_mutex_lock(&m->mu);
    int slot = SRV_N_STATUS - 1; /* the last slot takes any status once the others are used */
    for (int i = 0; i < SRV_N_STATUS; i++) {
        if (m->status_codes[i] == status || m->status_codes[i] == 0) {
            m->status_codes[i] = status;
            slot = i;
            break;
        }
    }
    m->requests[ep][slot]++;
    int b = 0;
    while (b < SRV_N_BUCKETS - 1 && latency_s > BUCKETS[b]) b++;
    m->lat_buckets[b]++;
    m->lat_sum += latency_s;
    m->lat_count++;
    pthread_mutex_unlock(&m->mu);
}

typedef struct out_buf {
    char *p;
    size_t n, cap;
    bool oom;
} out_buf;

static void outf(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(out_buf *o, const char *fmt, ...) {
    if (o->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(o->p ? o->p + o->n : NULL, o->p ? o->cap - o->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) return;
        if (o->p && o->n + (size_t)k < o->cap) {
            o->n += (size_t)k;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 8192;
        while (cap < o->n + (size_t)k + 1) cap *= 2;
        char *q = realloc(o->p, cap);
        if (!q) {
            o->oom = true;
            return;
        }
        o->p = q;
        o->cap = cap;
    }
}

char *srv_metrics_render(srv_server *s) {
    out_buf o = {0};
    srv_metrics m;
    pthread_mutex_lock(&s->metrics.mu);
    memcpy(&m, &s->metrics, sizeof m);
    pthread_mutex_unlock(&s->metrics.mu);
    lg_guard_stats st = {0};
    lg_guard_stats_get(s->guard, &st);
    double up = srv_now() - m.t_start;

    outf(&o, "# HELP llavaguard_http_requests_total HTTP requests by endpoint and status.\n"
             "# TYPE llavaguard_http_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int i = 0; i < SRV_N_STATUS; i++)
            if (m.requests[e][i])
                outf(&o, "llavaguard_http_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                     EP_NAMES[e], m.status_codes[i], (unsigned long long)m.requests[e][i]);
    outf(&o, "# HELP llavaguard_http_request_duration_seconds Request latency.\n"
             "# TYPE llavaguard_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < SRV_N_BUCKETS; b++) {
        cum += m.lat_buckets[b];
        if (b < SRV_N_BUCKETS - 1)
            outf(&o, "llavaguard_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                 BUCKETS[b], (unsigned long long)cum);
        else
            outf(&o, "llavaguard_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)cum);
    }
    outf(&o, "llavaguard_http_request_duration_seconds_sum %.6f\n", m.lat_sum);
    outf(&o, "llavaguard_http_request_duration_seconds_count %llu\n",
         (unsigned long long)m.lat_count);

    struct {
        const char *name, *type, *help;
        double v;
    } rows[] = {
        {"images_total", "counter", "Images judged (verdicts returned).", (double)m.images},
        {"images_failed_total", "counter", "Images that could not be judged.",
         (double)m.images_failed},
        {"images_per_second", "gauge", "Images judged per second since start.",
         up > 0 ? (double)m.images / up : 0},
        {"flagged_total", "counter", "Verdicts decided \"flag\".", (double)m.flagged},
        {"review_total", "counter", "Verdicts decided \"review\".", (double)m.reviews},
        {"config_reloads_total", "counter", "Successful config reloads.", (double)m.reloads},
        {"config_reload_failures_total", "counter", "Refused config reloads.",
         (double)m.reload_failures},
        {"engine_submitted_total", "counter", "Requests submitted to the batch engine.",
         (double)st.submitted},
        {"engine_completed_total", "counter", "Engine requests completed.", (double)st.completed},
        {"engine_failed_total", "counter", "Engine requests failed.", (double)st.failed},
        {"engine_cancelled_total", "counter", "Engine requests cancelled.", (double)st.cancelled},
        {"queue_depth", "gauge", "Requests waiting for a batch slot.", (double)st.queued},
        {"in_flight", "gauge", "Requests admitted into the batch.", (double)st.in_flight},
        {"batch_steps_total", "counter", "Batched decoder passes.", (double)st.steps},
        {"batch_rows_total", "counter", "Token rows over all passes.", (double)st.step_rows},
        {"batch_sequences_total", "counter", "Sequences over all passes.", (double)st.step_seqs},
        {"batch_size_mean", "gauge", "Mean sequences per batched pass.",
         st.steps ? (double)st.step_seqs / (double)st.steps : 0},
        {"kv_bytes", "gauge", "KV cache held by the requests in flight.", (double)st.kv_bytes},
        {"kv_budget_bytes", "gauge", "KV cache budget.", (double)st.kv_budget},
        {"feature_cache_hits_total", "counter", "Image-feature cache hits.", (double)st.cache_hits},
        {"feature_cache_misses_total", "counter", "Image-feature cache misses.",
         (double)st.cache_misses},
        {"feature_cache_bytes", "gauge", "Bytes held by the feature cache.",
         (double)st.cache_bytes},
        {"uptime_seconds", "gauge", "Seconds since the server started.", up},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        outf(&o, "# HELP llavaguard_%s %s\n# TYPE llavaguard_%s %s\nllavaguard_%s %.17g\n",
             rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name, rows[i].v);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    return o.p;
}
