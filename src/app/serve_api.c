/*
 * serve_api.c — the endpoints of `llavaguard serve`: POST /v1/moderations (OpenAI's moderation
 * request and response shape), POST /v1/assess (the native verdict, JSON or multipart upload,
 * several policies per image), POST /v1/chat/completions (the OpenAI chat shape LlavaGuard's
 * SGLang examples use; stream: true as server-sent events), GET /health, /v1/models, /metrics
 * and the page at /. Each image becomes one lg_guard_submit; the verdicts are shaped here with
 * cmd_assess's field names. Shapes and the category mapping: docs/serve.md.
 */
#include "serve.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- helpers ---- */

static int http_status_for(lg_status st, bool timed_out) {
    if (timed_out || st == LG_E_CANCELLED) return 504;
    switch (st) {
    case LG_E_FORMAT:
        return 422;
    case LG_E_UNSUPPORTED:
        return 415;
    case LG_E_LIMIT:
        return 413;
    case LG_E_ARG:
        return 400;
    case LG_E_BUSY:
        return 503;
    default:
        return 500;
    }
}

static const char *error_type_for(int status) {
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 413:
        return "request_too_large";
    case 415:
        return "unsupported_media_type";
    case 422:
        return "invalid_image";
    case 504:
        return "timeout";
    default:
        return "server_error";
    }
}

/* Fills *out with the first failed job's error; returns true when every job succeeded. */
static bool jobs_ok(srv_req *r, srv_reply *out) {
    for (int i = 0; i < r->n_jobs; i++) {
        const lg_result *res = r->jobs[i].result;
        if (res && res->status == LG_OK && !r->timed_out) continue;
        lg_status st = res ? res->status : LG_E_INTERNAL;
        int code = http_status_for(st, r->timed_out);
        if (code == 504)
            srv_error(out, 504, "timeout", "the verdict did not come within the %g s deadline",
                      r->srv->limits.deadline_s);
        else
            srv_error(out, code, error_type_for(code), "%s: %s", r->jobs[i].name,
                      res && res->error && res->error[0] ? res->error : lg_status_str(st));
        pthread_mutex_lock(&r->srv->metrics.mu);
        r->srv->metrics.images_failed++;
        pthread_mutex_unlock(&r->srv->metrics.mu);
        return false;
    }
    return true;
}

static bool is_json(const srv_req *r) {
    return strncasecmp(r->content_type, "application/json", 16) == 0;
}

static json_t *parse_body(srv_req *r, srv_reply *out) {
    if (!is_json(r)) {
        srv_error(out, 415, "unsupported_media_type",
                  "send the request as application/json (got '%s')", r->content_type);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->body_len, 0, &je);
    if (!j || !json_is_object(j)) {
        srv_error(out, 400, "invalid_request_error", "the body is not a JSON object%s%s",
                  j ? "" : ": ", j ? "" : je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Reads sampling and rationale fields shared by /v1/assess and the chat endpoint. */
static bool parse_params(json_t *o, lg_assess_params *ap, srv_reply *out, bool chat) {
    json_t *v;
    if ((v = json_object_get(o, "rationale")) && !json_is_null(v)) {
        const char *m = json_string_value(v);
        if (m && strcmp(m, "always") == 0)
            ap->rationale = LG_RATIONALE_ALWAYS;
        else if (m && strcmp(m, "never") == 0)
            ap->rationale = LG_RATIONALE_NEVER;
        else if (m && strcmp(m, "unsafe") == 0)
            ap->rationale = LG_RATIONALE_UNSAFE;
        else
            return srv_error(out, 400, "invalid_request_error",
                             "\"rationale\" must be \"always\", \"never\" or \"unsafe\""),
                   false;
    }
    if ((v = json_object_get(o, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
            return srv_error(out, 400, "invalid_request_error",
                             "\"temperature\" must be a number in [0, 2]"),
                   false;
        ap->temperature = (float)json_number_value(v);
    }
    if ((v = json_object_get(o, "top_p")) && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1)
            return srv_error(out, 400, "invalid_request_error", "\"top_p\" must be in (0, 1]"),
                   false;
        ap->top_p = (float)json_number_value(v);
    }
    if ((v = json_object_get(o, "top_k")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return srv_error(out, 400, "invalid_request_error", "\"top_k\" must be >= 0"), false;
        ap->top_k = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return srv_error(out, 400, "invalid_request_error", "\"seed\" must be >= 0"), false;
        ap->seed = (uint64_t)json_integer_value(v);
    }
    const char *mt = chat ? "max_tokens" : "max_rationale_tokens";
    if ((v = json_object_get(o, mt)) ||
        (chat && (v = json_object_get(o, "max_completion_tokens")))) {
        if (!json_is_null(v)) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1 << 20)
                return srv_error(out, 400, "invalid_request_error", "\"%s\" must be 1..1048576",
                                 mt),
                       false;
            ap->max_rationale_tokens = (int)json_integer_value(v);
        }
    }
    return true;
}

static void count_decision(srv_server *s, const srv_decision *d) {
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.images++;
    s->metrics.flagged += strcmp(d->decision, "flag") == 0;
    s->metrics.reviews += strcmp(d->decision, "review") == 0;
    pthread_mutex_unlock(&s->metrics.mu);
}

void srv_audit_result(srv_req *r, const lg_result *res) {
    srv_server *s = r->srv;
    for (size_t i = 0; i < res->n_verdicts; i++) {
        const lg_verdict *v = res->verdicts[i];
        if (!v) continue;
        const lg_policy *pol = srv_req_policy(r, i);
        srv_decision d;
        srv_decide(r->rules, pol, v, &d);
        count_decision(s, &d);
        if (!s->audit) continue;
        char ts[40];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        size_t l = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + l, sizeof ts - l, ".%03ldZ", now.tv_nsec / 1000000);
        json_t *a = json_object();
        json_object_set_new(a, "request_id", json_string(r->id));
        json_object_set_new(a, "time", json_string(ts));
        json_object_set_new(a, "endpoint", json_string(srv_endpoint_name(r->ep)));
        json_object_set_new(a, "tenant", json_string(r->tenant));
        json_object_set_new(a, "image_sha256", json_string(res->image_sha256));
        json_object_set_new(a, "model", json_string(s->model_id));
        json_object_set_new(a, "model_sha256", json_string(s->model_sha256));
        json_object_set_new(a, "policy_sha256", json_string(v->policy_sha256));
        json_object_set_new(a, "config_sha256", json_string(r->cfg->sha256));
        json_object_set_new(a, "rating", json_string(v->rating));
        json_object_set_new(a, "category", json_string(v->category));
        json_object_set_new(a, "p_unsafe", json_real(v->p_unsafe));
        json_t *sc = json_object();
        for (size_t k = 0; k < d.n; k++)
            json_object_set_new(sc, lg_policy_category_id(pol, k), json_real(d.scores[k]));
        json_object_set_new(a, "scores", sc);
        json_object_set_new(a, "decision", json_string(d.decision));
        json_object_set_new(a, "observe_only", json_boolean(r->rules->observe));
        json_object_set_new(a, "latency_s", json_real(srv_now() - r->t0));
        srv_audit_write(s->audit, a);
        json_decref(a);
    }
}

json_t *srv_verdict_json(const srv_req *r, const lg_result *res, size_t i, const lg_policy *pol) {
    const lg_verdict *v = res->verdicts[i];
    json_t *j = json_object();
    json_object_set_new(j, "image", json_string(res->name));
    json_object_set_new(j, "sha256", json_string(res->image_sha256));
    json_object_set_new(j, "width", json_integer(res->width));
    json_object_set_new(j, "height", json_integer(res->height));
    if (!v) {
        json_object_set_new(j, "error", json_string(res->errors[i]));
        json_object_set_new(j, "status", json_string(lg_status_str(res->statuses[i])));
        return j;
    }
    json_object_set_new(j, "rating", json_string(v->rating));
    json_object_set_new(j, "category", json_string(v->category));
    json_object_set_new(j, "rationale", v->rationale ? json_string(v->rationale) : json_null());
    if (v->rationale_truncated) json_object_set_new(j, "rationale_truncated", json_true());
    json_object_set_new(j, "p_unsafe", json_real(v->p_unsafe));
    json_t *cp = json_object();
    for (size_t k = 0; k < v->n_categories; k++)
        json_object_set_new(cp, v->category_options[k], json_real(v->category_probs[k]));
    json_object_set_new(j, "category_probs", cp);
    json_object_set_new(j, "policy_sha256", json_string(v->policy_sha256));
    json_object_set_new(j, "model", json_string(v->model_type));
    json_object_set_new(j, "prompt_tokens", json_integer(v->prompt_tokens));
    json_object_set_new(j, "image_tokens", json_integer(v->image_tokens));
    srv_decision d;
    srv_decide(r->rules, pol, v, &d);
    json_object_set_new(j, "decision", json_string(d.decision));
    json_object_set_new(j, "flagged", json_boolean(d.flagged));
    if (r->rules->observe) json_object_set_new(j, "observe_only", json_true());
    json_t *t = json_object();
    json_object_set_new(t, "queued_s", json_real(res->timings.queued));
    json_object_set_new(t, "decode_image_s", json_real(res->timings.decode));
    json_object_set_new(t, "preprocess_s", json_real(v->timings.preprocess));
    json_object_set_new(t, "vision_s", json_real(v->timings.vision));
    json_object_set_new(t, "prefill_s", json_real(v->timings.prefill));
    json_object_set_new(t, "verdict_s", json_real(v->timings.verdict));
    json_object_set_new(t, "total_s", json_real(res->timings.total));
    json_object_set_new(j, "timings", t);
    if (res->features_cached) json_object_set_new(j, "features_cached", json_true());
    return j;
}

/* ---- GET endpoints ---- */

static void get_health(srv_req *r, srv_reply *out) {
    lg_guard_stats st;
    lg_guard_stats_get(r->srv->guard, &st);
    out->status = r->srv->stopping ? 503 : 200;
    out->json = json_pack("{s:s,s:s,s:I,s:I}", "status", r->srv->stopping ? "draining" : "ok",
                          "model", r->srv->model_id, "queued", (json_int_t)st.queued, "in_flight",
                          (json_int_t)st.in_flight);
}

static void get_models(srv_req *r, srv_reply *out) {
    out->status = 200;
    out->json =
        json_pack("{s:s,s:[{s:s,s:s,s:i,s:s}]}", "object", "list", "data", "id", r->srv->model_id,
                  "object", "model", "created", 0, "owned_by", "llavaguard");
}

static void get_metrics(srv_req *r, srv_reply *out) {
    char *text = srv_metrics_render(r->srv);
    if (!text) {
        srv_error(out, 500, "server_error", "out of memory");
        return;
    }
    out->status = 200;
    out->raw = text;
    out->raw_len = strlen(text);
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void get_page(srv_req *r, srv_reply *out) {
    (void)r;
    out->status = 200;
    out->raw = malloc(srv_page_html_len);
    if (!out->raw) {
        srv_error(out, 500, "server_error", "out of memory");
        return;
    }
    memcpy(out->raw, srv_page_html, srv_page_html_len);
    out->raw_len = srv_page_html_len;
    out->content_type = "text/html; charset=utf-8";
}

/* ---- POST /v1/moderations ---- */

/* OpenAI's category names and the LlavaGuard category ids whose score they take (the maximum);
 * names with no LlavaGuard counterpart are always false / 0 (docs/serve.md). */
static const struct {
    const char *openai;
    const char *ids[3];
} OPENAI_MAP[] = {
    {"harassment", {"O1"}},
    {"harassment/threatening", {NULL}},
    {"hate", {"O1"}},
    {"hate/threatening", {NULL}},
    {"illicit", {"O5"}},
    {"illicit/violent", {"O6"}},
    {"self-harm", {"O7"}},
    {"self-harm/intent", {NULL}},
    {"self-harm/instructions", {NULL}},
    {"sexual", {"O3"}},
    {"sexual/minors", {NULL}},
    {"violence", {"O2", "O8"}},
    {"violence/graphic", {NULL}},
};

static void moderation_add(json_t *res, const char *name, bool flag, double score, bool image) {
    json_t *cats = json_object_get(res, "categories");
    json_t *scores = json_object_get(res, "category_scores");
    json_t *types = json_object_get(res, "category_applied_input_types");
    json_t *old = json_object_get(scores, name);
    if (old && json_real_value(old) >= score &&
        (!flag || json_is_true(json_object_get(cats, name))))
        return;
    if (old) {
        flag = flag || json_is_true(json_object_get(cats, name));
        if (json_real_value(old) > score) score = json_real_value(old);
    }
    json_object_set_new(cats, name, json_boolean(flag));
    json_object_set_new(scores, name, json_real(score));
    json_object_set_new(types, name, image ? json_pack("[s]", "image") : json_array());
}

/* Merges the verdicts of `n` results (one input) into one moderation result object. */
static json_t *moderation_result(srv_req *r, lg_result *const *res, size_t n) {
    json_t *out = json_object();
    json_object_set_new(out, "flagged", json_false());
    json_object_set_new(out, "categories", json_object());
    json_object_set_new(out, "category_scores", json_object());
    json_object_set_new(out, "category_applied_input_types", json_object());
    json_t *images = json_array();
    const lg_policy *pol = srv_req_policy(r, 0);
    bool flagged = false;
    for (size_t m = 0; m < sizeof OPENAI_MAP / sizeof OPENAI_MAP[0]; m++)
        moderation_add(out, OPENAI_MAP[m].openai, false, 0, OPENAI_MAP[m].ids[0] != NULL);
    for (size_t k = 0; k < n; k++) {
        const lg_verdict *v = res[k]->verdicts[0];
        srv_decision d;
        srv_decide(r->rules, pol, v, &d);
        flagged |= d.flagged;
        for (size_t i = 0; i < d.n; i++) {
            char snake[128];
            srv_snake_name(lg_policy_category_name(pol, i), snake, sizeof snake);
            moderation_add(out, snake, d.cat_flagged[i], d.scores[i], true);
            const char *id = lg_policy_category_id(pol, i);
            for (size_t m = 0; m < sizeof OPENAI_MAP / sizeof OPENAI_MAP[0]; m++)
                for (int q = 0; q < 3 && OPENAI_MAP[m].ids[q]; q++)
                    if (strcmp(OPENAI_MAP[m].ids[q], id) == 0)
                        moderation_add(out, OPENAI_MAP[m].openai, d.cat_flagged[i], d.scores[i],
                                       true);
        }
        json_array_append_new(
            images, json_pack("{s:s,s:s,s:s,s:f,s:s,s:s}", "image_sha256", res[k]->image_sha256,
                              "rating", v->rating, "category", v->category, "p_unsafe", v->p_unsafe,
                              "decision", d.decision, "policy_sha256", v->policy_sha256));
    }
    json_object_set_new(out, "flagged", json_boolean(flagged));
    json_object_set_new(out, "llavaguard", images);
    return out;
}

static void finish_moderations(srv_req *r, srv_reply *out) {
    if (!jobs_ok(r, out)) return;
    json_t *results = json_array();
    bool combined = json_is_true(json_object_get(r->ctx, "combined"));
    lg_result *res[256];
    for (int i = 0; i < r->n_jobs && i < 256; i++) {
        res[i] = r->jobs[i].result;
        srv_audit_result(r, res[i]);
    }
    if (combined) {
        json_array_append_new(results, moderation_result(r, res, (size_t)r->n_jobs));
    } else {
        for (int i = 0; i < r->n_jobs; i++)
            json_array_append_new(results, moderation_result(r, &res[i], 1));
    }
    out->status = 200;
    out->json = json_object();
    char id[48];
    snprintf(id, sizeof id, "modr-%s", r->id);
    json_object_set_new(out->json, "id", json_string(id));
    json_object_set_new(out->json, "model", json_string(r->srv->model_id));
    json_object_set_new(out->json, "results", results);
}

static bool looks_like_image_url(const char *s) {
    return strncasecmp(s, "data:", 5) == 0 || strncasecmp(s, "http://", 7) == 0 ||
           strncasecmp(s, "https://", 8) == 0;
}

static bool add_image_url(srv_req *r, const char *url, srv_reply *out) {
    if (r->n_jobs >= r->srv->limits.max_images) {
        srv_error(out, 413, "request_too_large", "more than %d images in one request",
                  r->srv->limits.max_images);
        return false;
    }
    uint8_t *bytes = NULL;
    size_t size = 0;
    if (!srv_image_from_url(r->srv, url, &bytes, &size, out)) return false;
    char name[32];
    snprintf(name, sizeof name, "input[%d]", r->n_jobs);
    if (!srv_req_add_job(r, bytes, size, name)) {
        srv_error(out, 500, "server_error", "out of memory");
        return false;
    }
    return true;
}

static const char TEXT_ONLY[] =
    "text-only input: this model judges images; send image_url content parts "
    "({\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,...\"}})";

static void post_moderations(srv_req *r, srv_reply *out) {
    json_t *body = parse_body(r, out);
    if (!body) return;
    r->ctx = json_object();
    json_t *in = json_object_get(body, "input");
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model) && !json_is_null(model)) {
        srv_error(out, 400, "invalid_request_error", "\"model\" must be a string");
        goto done;
    }
    if (json_is_string(in)) {
        if (!looks_like_image_url(json_string_value(in))) {
            srv_error(out, 400, "invalid_request_error", "%s", TEXT_ONLY);
            goto done;
        }
        if (!add_image_url(r, json_string_value(in), out)) goto done;
    } else if (json_is_array(in) && json_array_size(in) > 0) {
        size_t i;
        json_t *it;
        bool parts = json_is_object(json_array_get(in, 0));
        json_object_set_new(r->ctx, "combined", json_boolean(parts));
        json_array_foreach(in, i, it) {
            if (!parts && json_is_string(it)) {
                if (!looks_like_image_url(json_string_value(it))) {
                    srv_error(out, 400, "invalid_request_error", "input[%zu]: %s", i, TEXT_ONLY);
                    goto done;
                }
                if (!add_image_url(r, json_string_value(it), out)) goto done;
                continue;
            }
            const char *type = json_string_value(json_object_get(it, "type"));
            if (parts && type && strcmp(type, "text") == 0) continue;
            if (parts && type && strcmp(type, "image_url") == 0) {
                json_t *iu = json_object_get(it, "image_url");
                const char *url =
                    json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);
                if (!url) {
                    srv_error(out, 400, "invalid_request_error",
                              "input[%zu].image_url.url must be a string", i);
                    goto done;
                }
                if (!add_image_url(r, url, out)) goto done;
                continue;
            }
            srv_error(out, 400, "invalid_request_error", "input[%zu] must be %s", i,
                      parts ? "a content part of type \"image_url\" or \"text\""
                            : "a string (mixing strings and content parts is not allowed)");
            goto done;
        }
        if (r->n_jobs == 0) {
            srv_error(out, 400, "invalid_request_error", "%s", TEXT_ONLY);
            goto done;
        }
    } else {
        srv_error(out, 400, "invalid_request_error",
                  "\"input\" must be a string, an array of strings or an array of content parts");
        goto done;
    }
    if (srv_req_submit(r, out)) r->finish = finish_moderations;
done:
    json_decref(body);
}

/* ---- POST /v1/assess ---- */

static void stream_whole(srv_req *r, const char *answer, srv_reply *out);

/* The reply of /v1/assess once its job succeeded. */
static void assess_json(srv_req *r, srv_reply *out) {
    lg_result *res = r->jobs[0].result;
    srv_audit_result(r, res);
    if (!json_is_true(json_object_get(r->ctx, "many"))) {
        out->json = srv_verdict_json(r, res, 0, srv_req_policy(r, 0));
    } else {
        out->json = json_object();
        json_object_set_new(out->json, "image", json_string(res->name));
        json_object_set_new(out->json, "sha256", json_string(res->image_sha256));
        json_object_set_new(out->json, "width", json_integer(res->width));
        json_object_set_new(out->json, "height", json_integer(res->height));
        json_t *vs = json_array();
        for (size_t i = 0; i < res->n_verdicts; i++)
            json_array_append_new(vs, srv_verdict_json(r, res, i, srv_req_policy(r, i)));
        json_object_set_new(out->json, "verdicts", vs);
    }
    json_object_set_new(out->json, "id", json_string(r->id));
    json_object_set_new(out->json, "tenant", json_string(r->tenant));
    out->status = 200;
}

static void finish_assess(srv_req *r, srv_reply *out) {
    if (!jobs_ok(r, out)) return;
    if (r->stream.on)
        stream_whole(r, NULL, out);
    else
        assess_json(r, out);
}

/* Turns a multipart upload into the JSON object a JSON body would have been; the image bytes
 * are copied into *bytes. */
static json_t *multipart_to_json(srv_req *r, uint8_t **bytes, size_t *size, srv_reply *out) {
    const uint8_t *d;
    size_t n;
    if (!srv_multipart_get(r->body, r->body_len, r->content_type, "image", &d, &n) || n == 0) {
        srv_error(out, 400, "invalid_request_error",
                  "multipart/form-data upload without an \"image\" file part");
        return NULL;
    }
    *bytes = malloc(n);
    if (!*bytes) return srv_error(out, 500, "server_error", "out of memory"), NULL;
    memcpy(*bytes, d, n);
    *size = n;
    json_t *o = json_object();
    static const char *const FIELDS[] = {"allow",  "sensitive", "policy_version",      "rationale",
                                         "policy", "policies",  "temperature",         "top_p",
                                         "top_k",  "seed",      "max_rationale_tokens"};
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        if (!srv_multipart_get(r->body, r->body_len, r->content_type, FIELDS[i], &d, &n)) continue;
        /* structured fields are JSON text, the others plain strings (numbers parsed as JSON) */
        json_t *v = json_loadb((const char *)d, n, JSON_DECODE_ANY, NULL);
        if (!v || (json_is_string(v) && i < 4)) {
            json_decref(v);
            v = json_stringn((const char *)d, n);
        }
        if (v) json_object_set_new(o, FIELDS[i], v);
    }
    return o;
}

static void post_assess(srv_req *r, srv_reply *out) {
    json_t *body = NULL;
    uint8_t *bytes = NULL;
    size_t size = 0;
    if (strncasecmp(r->content_type, "multipart/form-data", 19) == 0) {
        body = multipart_to_json(r, &bytes, &size, out);
        if (!body) return;
    } else {
        body = parse_body(r, out);
        if (!body) return;
        json_t *img = json_object_get(body, "image");
        json_t *url = json_object_get(body, "image_url");
        if (json_is_string(img)) {
            const char *s = json_string_value(img);
            bool ok = strncasecmp(s, "data:", 5) == 0
                          ? srv_image_from_url(r->srv, s, &bytes, &size, out)
                          : srv_base64_decode(s, strlen(s), &bytes, &size);
            if (!ok) {
                if (out->status == 0)
                    srv_error(out, 400, "invalid_image", "\"image\" is not valid base64");
                goto done;
            }
        } else if (json_is_string(url)) {
            if (!srv_image_from_url(r->srv, json_string_value(url), &bytes, &size, out)) goto done;
        } else {
            srv_error(out, 400, "invalid_request_error",
                      "give \"image\" (base64 or a data URL) or \"image_url\"");
            goto done;
        }
    }
    if (!parse_params(body, &r->ap, out, false)) goto done;
    json_t *pols = json_object_get(body, "policies");
    char msg[512];
    if (pols) {
        if (!json_is_array(pols) || json_array_size(pols) == 0 || json_array_size(pols) > 64) {
            srv_error(out, 400, "invalid_request_error",
                      "\"policies\" must be an array of 1..64 policy option objects");
            goto done;
        }
        r->policies = calloc(json_array_size(pols), sizeof *r->policies);
        if (!r->policies) goto oom;
        size_t i;
        json_t *p;
        json_array_foreach(pols, i, p) {
            lg_policy *pol = NULL;
            if (!json_is_object(p) || !srv_policy_from_json(r->srv, p, &pol, msg, sizeof msg)) {
                srv_error(out, 422, "invalid_policy", "policies[%zu]: %s", i,
                          json_is_object(p) ? msg : "must be an object");
                goto done;
            }
            if (!pol)
                lg_policy_create_default(lg_guard_default_policy_version(r->srv->guard), &pol,
                                         NULL);
            r->policies[r->n_policies++] = pol;
            if (!pol) goto oom;
        }
    } else {
        lg_policy *pol = NULL;
        if (!srv_policy_from_json(r->srv, body, &pol, msg, sizeof msg)) {
            srv_error(out, 422, "invalid_policy", "%s", msg);
            goto done;
        }
        if (pol) {
            r->policies = malloc(sizeof *r->policies);
            if (!r->policies) {
                lg_policy_free(pol);
                goto oom;
            }
            r->policies[0] = pol;
            r->n_policies = 1;
        }
    }
    r->ctx = json_pack("{s:b}", "many", pols != NULL);
    /* "stream": true (or "true" / "1" in a multipart form): server-sent events, each piece of
     * the answer as it is decided, then the whole verdict (docs/serve.md) */
    json_t *stream = json_object_get(body, "stream");
    const char *sv = json_string_value(stream);
    r->stream.on = r->stream.native =
        json_is_true(stream) || (sv && (strcmp(sv, "true") == 0 || strcmp(sv, "1") == 0));
    if (!srv_req_add_job(r, bytes, size, "image")) goto oom;
    bytes = NULL;
    if (srv_req_submit(r, out)) r->finish = finish_assess;
    goto done;
oom:
    srv_error(out, 500, "server_error", "out of memory");
done:
    free(bytes);
    json_decref(body);
}

/* ---- POST /v1/chat/completions ---- */

static char *trim_dup(const char *s) {
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
    return strndup(s, n);
}

/* The policy a chat message's text stands for: the tenant's policy, a built-in policy of any
 * generation, or a policy file's JSON. NULL (and a 422) when the text is none of these: the
 * engine takes policies, not free prompt text. */
static bool chat_policy(srv_req *r, const char *text, srv_reply *out) {
    char *t = trim_dup(text ? text : "");
    if (!t) return srv_error(out, 500, "server_error", "out of memory"), false;
    bool ok = false;
    lg_policy *pol = NULL;
    if (t[0] == '\0' || strcmp(t, lg_policy_text(r->rules->policy)) == 0) {
        ok = true; /* the tenant's own policy */
        goto done;
    }
    static const char *const VERSIONS[] = {"v1.2", "v1.0", "v1.0-modelcard"};
    for (size_t i = 0; i < 3; i++) {
        lg_policy_create_default(VERSIONS[i], &pol, NULL);
        if (pol && strcmp(lg_policy_text(pol), t) == 0) {
            ok = true;
            break;
        }
        lg_policy_free(pol);
        pol = NULL;
    }
    if (!ok && t[0] == '{') ok = lg_policy_load_memory(t, strlen(t), "policy", &pol, NULL) == LG_OK;
    if (!ok) {
        srv_error(out, 422, "invalid_policy",
                  "the message text is not a policy this server knows: send the LlavaGuard policy "
                  "text exactly as the model was trained on it (e.g. prompt_v1.2.txt), a policy "
                  "file's JSON, or no text (the tenant's policy); custom categories go through "
                  "/v1/assess");
        goto done;
    }
    if (pol) {
        r->policies = malloc(sizeof *r->policies);
        if (!r->policies) {
            lg_policy_free(pol);
            ok = false;
            srv_error(out, 500, "server_error", "out of memory");
            goto done;
        }
        r->policies[0] = pol;
        r->n_policies = 1;
    }
done:
    free(t);
    return ok;
}

/* Appends one server-sent event holding a chat.completion.chunk. */
static void sse_chunk(char **buf, size_t *len, const char *id, time_t created, const char *model,
                      json_t *delta, const char *finish) {
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:s?}]}", "id", id, "object",
                          "chat.completion.chunk", "created", (json_int_t)created, "model", model,
                          "choices", "index", 0, "delta", delta, "finish_reason", finish);
    char *s = c ? json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(c);
    if (!s) return;
    size_t n = strlen(s);
    char *b = realloc(*buf, *len + n + 9);
    if (b) {
        memcpy(b + *len, "data: ", 6);
        memcpy(b + *len + 6, s, n);
        memcpy(b + *len + 6 + n, "\n\n", 3);
        *buf = b;
        *len += n + 8;
    }
    free(s);
}

/* Appends bytes to the stream's events (the request's mu held); false when out of memory. */
static bool stream_append(srv_stream *st, const char *s, size_t n) {
    char *b = realloc(st->buf, st->len + n + 1);
    if (!b) return false;
    memcpy(b + st->len, s, n);
    b[st->len + n] = '\0';
    st->buf = b;
    st->len += n;
    return true;
}

/* Appends `event: NAME` + the JSON j as one server-sent event (j is consumed). */
static void stream_event(srv_stream *st, const char *name, json_t *j) {
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s) return;
    char head[64];
    int k = snprintf(head, sizeof head, "event: %s\ndata: ", name);
    if (stream_append(st, head, (size_t)k) && stream_append(st, s, strlen(s)))
        stream_append(st, "\n\n", 2);
    free(s);
}

void srv_stream_text(srv_req *r, size_t policy, const char *text, size_t len) {
    srv_stream *st = &r->stream;
    if (st->native) {
        json_t *t = text ? json_stringn(text, len) : NULL;
        if (t)
            stream_event(st, "text",
                         json_pack("{s:I,s:o}", "policy", (json_int_t)policy, "text", t));
        return;
    }
    json_t *delta =
        text ? json_stringn(text, len) : json_pack("{s:s,s:s}", "role", "assistant", "content", "");
    if (text && delta) {
        json_t *d = json_object();
        json_object_set_new(d, "content", delta);
        delta = d;
    }
    if (!delta) return; /* not UTF-8 (the caller holds back unfinished sequences) */
    char *buf = NULL;
    size_t n = 0;
    sse_chunk(&buf, &n, st->id, (time_t)st->created, r->srv->model_id, delta, NULL);
    if (buf) stream_append(st, buf, n);
    free(buf);
}

void srv_stream_end(srv_req *r) {
    srv_stream *st = &r->stream;
    const lg_result *res = r->n_jobs ? r->jobs[0].result : NULL;
    if (st->native) {
        srv_reply rep = {0};
        if (jobs_ok(r, &rep)) assess_json(r, &rep);
        stream_event(st, rep.status == 200 ? "verdict" : "error", rep.json);
        st->ended = true;
        return;
    }
    char *buf = NULL;
    size_t n = 0;
    if (res && res->status == LG_OK && !r->timed_out) {
        srv_audit_result(r, res);
        sse_chunk(&buf, &n, st->id, (time_t)st->created, r->srv->model_id, json_object(), "stop");
    } else {
        /* the 200 is already sent: the failure goes as an error event, as OpenAI's stream does */
        srv_reply e = {0};
        jobs_ok(r, &e);
        char *s = e.json ? json_dumps(e.json, JSON_COMPACT) : NULL;
        json_decref(e.json);
        if (s) {
            size_t k = strlen(s);
            buf = malloc(k + 9);
            if (buf) n = (size_t)sprintf(buf, "data: %s\n\n", s);
            free(s);
        }
    }
    if (buf) stream_append(st, buf, n);
    free(buf);
    stream_append(st, "data: [DONE]\n\n", 14);
    st->ended = true;
}

/* Streams normally start with the first piece of the answer (serve_http.c); this is the path
 * of a verdict that came without pieces: the whole answer (if any) as one event, then the end. */
static void stream_whole(srv_req *r, const char *answer, srv_reply *out) {
    pthread_mutex_lock(&r->mu);
    if (answer) srv_stream_text(r, 0, answer, strlen(answer));
    srv_stream_end(r);
    out->raw = r->stream.buf;
    out->raw_len = r->stream.len;
    r->stream.buf = NULL;
    r->stream.len = r->stream.sent = 0;
    pthread_mutex_unlock(&r->mu);
    out->content_type = "text/event-stream";
    out->status = out->raw ? 200 : 500;
}

static void finish_chat(srv_req *r, srv_reply *out) {
    if (!jobs_ok(r, out)) return;
    lg_result *res = r->jobs[0].result;
    const lg_verdict *v = res->verdicts[0];
    const char *answer = v->answer ? v->answer : "";
    if (r->stream.on) {
        stream_whole(r, answer, out);
        return;
    }
    srv_audit_result(r, res);
    char id[48];
    snprintf(id, sizeof id, "chatcmpl-%s", r->id);
    time_t created = time(NULL);
    srv_decision d;
    srv_decide(r->rules, srv_req_policy(r, 0), v, &d);
    out->json =
        json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:I,s:I,s:I},s:{s:f,s:s,s:s,s:s}}",
                  "id", id, "object", "chat.completion", "created", (json_int_t)created, "model",
                  r->srv->model_id, "choices", "index", 0, "message", "role", "assistant",
                  "content", answer, "finish_reason", "stop", "usage", "prompt_tokens",
                  (json_int_t)v->prompt_tokens, "completion_tokens", (json_int_t)v->answer_tokens,
                  "total_tokens", (json_int_t)(v->prompt_tokens + v->answer_tokens), "llavaguard",
                  "p_unsafe", v->p_unsafe, "decision", d.decision, "image_sha256",
                  res->image_sha256, "policy_sha256", v->policy_sha256);
    out->status = out->json ? 200 : 500;
}

static void post_chat(srv_req *r, srv_reply *out) {
    json_t *body = parse_body(r, out);
    if (!body) return;
    json_t *msgs = json_object_get(body, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        srv_error(out, 400, "invalid_request_error", "\"messages\" must be a non-empty array");
        goto done;
    }
    json_t *user = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "user") == 0) user = m;
    }
    if (!user) {
        srv_error(out, 400, "invalid_request_error", "no message with role \"user\"");
        goto done;
    }
    json_t *content = json_object_get(user, "content");
    if (!json_is_array(content)) {
        srv_error(out, 400, "invalid_request_error", "%s", TEXT_ONLY);
        goto done;
    }
    char *text = NULL;
    size_t text_len = 0;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type && strcmp(type, "text") == 0) {
            const char *t = json_string_value(json_object_get(part, "text"));
            size_t n = t ? strlen(t) : 0;
            char *nt = realloc(text, text_len + n + 2);
            if (!nt) break;
            text = nt;
            memcpy(text + text_len, t ? t : "", n);
            text_len += n;
            text[text_len++] = '\n';
            text[text_len] = '\0';
        } else if (type && strcmp(type, "image_url") == 0) {
            if (r->n_jobs >= 1) {
                free(text);
                srv_error(out, 400, "invalid_request_error",
                          "one image per conversation (LlavaGuard judges one image at a time)");
                goto done;
            }
            json_t *iu = json_object_get(part, "image_url");
            const char *url =
                json_string_value(json_is_object(iu) ? json_object_get(iu, "url") : iu);
            if (!url) {
                free(text);
                srv_error(out, 400, "invalid_request_error", "image_url.url must be a string");
                goto done;
            }
            if (!add_image_url(r, url, out)) {
                free(text);
                goto done;
            }
        } else {
            free(text);
            srv_error(out, 400, "invalid_request_error",
                      "content[%zu]: only \"text\" and \"image_url\" parts are understood", i);
            goto done;
        }
    }
    if (r->n_jobs == 0) {
        free(text);
        srv_error(out, 400, "invalid_request_error", "%s", TEXT_ONLY);
        goto done;
    }
    bool ok = chat_policy(r, text, out);
    free(text);
    if (!ok) goto done;
    r->ap.rationale = LG_RATIONALE_ALWAYS;
    if (!parse_params(body, &r->ap, out, true)) goto done;
    json_t *stream = json_object_get(body, "stream");
    r->ctx = json_pack("{s:b}", "stream", json_is_true(stream));
    if (json_is_true(stream)) {
        r->stream.on = true;
        snprintf(r->stream.id, sizeof r->stream.id, "chatcmpl-%s", r->id);
        r->stream.created = (long long)time(NULL);
        srv_stream_text(r, 0, NULL, 0); /* the role event opens every stream */
    }
    if (srv_req_submit(r, out)) r->finish = finish_chat;
done:
    json_decref(body);
}

/* ---- routing ---- */

void srv_api_dispatch(srv_req *r, srv_reply *out) {
    bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
    bool post = strcmp(r->method, "POST") == 0;
    switch (r->ep) {
    case EP_PAGE:
    case EP_HEALTH:
    case EP_MODELS:
    case EP_METRICS:
        if (!get) break;
        if (r->ep == EP_PAGE) get_page(r, out);
        if (r->ep == EP_HEALTH) get_health(r, out);
        if (r->ep == EP_MODELS) get_models(r, out);
        if (r->ep == EP_METRICS) get_metrics(r, out);
        return;
    case EP_MODERATIONS:
    case EP_ASSESS:
    case EP_CHAT:
        if (!post) break;
        if (r->ep == EP_MODERATIONS) post_moderations(r, out);
        if (r->ep == EP_ASSESS) post_assess(r, out);
        if (r->ep == EP_CHAT) post_chat(r, out);
        if (out->status == 0 && !r->finish) srv_error(out, 500, "server_error", "no reply");
        return;
    default:
        srv_error(out, 404, "not_found", "no endpoint %s %s", r->method, r->url);
        return;
    }
    srv_error(out, 405, "method_not_allowed", "%s is not allowed on %s", r->method, r->url);
}
