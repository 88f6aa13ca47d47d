/*
 * serve_config.c — the decisions operators tune without a restart: the --config JSON file
 * (thresholds, per-category thresholds, review band, observe-only mode, policies, per-tenant
 * overrides) and the --token-file (bearer tokens -> tenants). Both are read into one immutable,
 * refcounted snapshot; SIGHUP rereads them and swaps the snapshot only when both are valid, so a
 * bad file on reload is refused and the old configuration stays. Format: docs/serve.md.
 */
#include "serve.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void srv_snake_name(const char *name, char *out, size_t n) {
    size_t o = 0;
    bool sep = false;
    for (const char *p = name; *p && o + 1 < n; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch)) {
            if (sep && o > 0 && o + 2 < n) out[o++] = '_';
            out[o++] = (char)tolower(ch);
            sep = false;
        } else {
            sep = true;
        }
    }
    out[o] = '\0';
}

/* ---- policies from JSON ---- */

bool srv_policy_from_json(srv_server *s, json_t *obj, lg_policy **out, char *msg, size_t n) {
    *out = NULL;
    json_t *pj = json_object_get(obj, "policy");
    json_t *ver = json_object_get(obj, "policy_version");
    json_t *allow = json_object_get(obj, "allow");
    json_t *sens = json_object_get(obj, "sensitive");
    if (!pj && !ver && !allow && !sens) return true;
    lg_error e = {0};
    lg_policy *pol = NULL;
    if (pj && !json_is_null(pj)) {
        if (!json_is_object(pj)) {
            snprintf(msg, n, "\"policy\" must be a policy file's JSON object");
            return false;
        }
        char *text = json_dumps(pj, JSON_COMPACT);
        lg_status st =
            text ? lg_policy_load_memory(text, strlen(text), "policy", &pol, &e) : LG_E_NOMEM;
        free(text);
        if (st != LG_OK) {
            snprintf(msg, n, "policy: %s", e.msg);
            return false;
        }
    } else {
        const char *v = lg_guard_default_policy_version(s->guard);
        if (ver && !json_is_string(ver)) {
            snprintf(msg, n, "\"policy_version\" must be a string");
            return false;
        }
        if (ver) v = json_string_value(ver);
        if (lg_policy_create_default(v, &pol, &e) != LG_OK) {
            snprintf(msg, n, "policy_version: %s", e.msg);
            return false;
        }
    }
    struct {
        json_t *j;
        const char *key;
        lg_category_state st;
    } sets[] = {{allow, "allow", LG_CATEGORY_NONVIOLATING},
                {sens, "sensitive", LG_CATEGORY_SENSITIVE}};
    for (size_t i = 0; i < 2; i++) {
        json_t *j = sets[i].j;
        if (!j || json_is_null(j)) continue;
        char ids[512] = "";
        if (json_is_string(j)) {
            snprintf(ids, sizeof ids, "%s", json_string_value(j));
        } else if (json_is_array(j)) {
            size_t k;
            json_t *it;
            json_array_foreach(j, k, it) {
                if (!json_is_string(it)) {
                    snprintf(msg, n, "\"%s\" must list category ids such as \"O3\"", sets[i].key);
                    lg_policy_free(pol);
                    return false;
                }
                size_t l = strlen(ids);
                snprintf(ids + l, sizeof ids - l, "%s%s", l ? "," : "", json_string_value(it));
            }
        } else {
            snprintf(msg, n, "\"%s\" must be a string (\"O3,O4\") or an array of ids", sets[i].key);
            lg_policy_free(pol);
            return false;
        }
        if (ids[0] == '\0') continue;
        if (lg_policy_set_states(pol, ids, sets[i].st) != LG_OK) {
            snprintf(msg, n, "%s: %s", sets[i].key, lg_policy_errmsg(pol));
            lg_policy_free(pol);
            return false;
        }
    }
    *out = pol;
    return true;
}

static lg_policy *policy_clone(const lg_policy *p) {
    char *json = NULL;
    if (lg_policy_to_json(p, 0, &json) != LG_OK) return NULL;
    lg_policy *q = NULL;
    lg_policy_load_memory(json, strlen(json), "policy", &q, NULL);
    lg_free(json);
    return q;
}

/* ---- rules ---- */

static const char *const RULE_KEYS[] = {
    "threshold",    "review_threshold", "category_thresholds", "observe_only",
    "max_inflight", "policy",           "policy_version",      "allow",
    "sensitive"};

static bool known_key(const char *k, bool top) {
    for (size_t i = 0; i < sizeof RULE_KEYS / sizeof RULE_KEYS[0]; i++)
        if (strcmp(k, RULE_KEYS[i]) == 0) return true;
    return top && strcmp(k, "tenants") == 0;
}

static bool get_prob(json_t *o, const char *key, double *out, char *msg, size_t n,
                     const char *where) {
    json_t *j = json_object_get(o, key);
    if (!j) return true;
    if (!json_is_number(j) || json_number_value(j) < 0 || json_number_value(j) > 1.000001) {
        snprintf(msg, n, "%s\"%s\" must be a number in [0, 1]", where, key);
        return false;
    }
    *out = json_number_value(j);
    return true;
}

/* Reads rule fields of `o` over the inherited `parent` (NULL: the built-in defaults). */
static bool rules_parse(srv_server *s, json_t *o, const srv_rules *parent, srv_rules *r, char *msg,
                        size_t n, const char *where) {
    if (parent) {
        *r = *parent;
        r->policy = NULL;
    } else {
        *r = (srv_rules){.threshold = 0.5, .review = 2.0};
        for (size_t i = 0; i < SRV_MAX_CATS; i++) r->cat_thr[i] = NAN;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!known_key(k, parent == NULL)) {
            snprintf(msg, n, "%sunknown key \"%s\"", where, k);
            return false;
        }
    }
    if (!get_prob(o, "threshold", &r->threshold, msg, n, where) ||
        !get_prob(o, "review_threshold", &r->review, msg, n, where))
        return false;
    json_t *obs = json_object_get(o, "observe_only");
    if (obs && !json_is_boolean(obs)) {
        snprintf(msg, n, "%s\"observe_only\" must be true or false", where);
        return false;
    }
    if (obs) r->observe = json_is_true(obs);
    json_t *mi = json_object_get(o, "max_inflight");
    if (mi &&
        (!json_is_integer(mi) || json_integer_value(mi) < 0 || json_integer_value(mi) > 1000000)) {
        snprintf(msg, n, "%s\"max_inflight\" must be a non-negative integer", where);
        return false;
    }
    if (mi) r->max_inflight = (int)json_integer_value(mi);
    char pmsg[400];
    if (!srv_policy_from_json(s, o, &r->policy, pmsg, sizeof pmsg)) {
        snprintf(msg, n, "%s%s", where, pmsg);
        return false;
    }
    if (!r->policy) {
        lg_error e = {0};
        if (parent)
            r->policy = policy_clone(parent->policy);
        else
            lg_policy_create_default(lg_guard_default_policy_version(s->guard), &r->policy, &e);
        if (!r->policy) {
            snprintf(msg, n, "%scannot create the policy", where);
            return false;
        }
    }
    json_t *ct = json_object_get(o, "category_thresholds");
    if (ct) {
        if (!json_is_object(ct)) {
            snprintf(msg, n, "%s\"category_thresholds\" must map category ids to numbers", where);
            goto fail;
        }
        json_object_foreach(ct, k, v) {
            int idx = lg_policy_category_index(r->policy, k);
            if (idx < 0 || idx >= SRV_MAX_CATS) {
                snprintf(msg, n, "%scategory_thresholds: unknown category \"%s\"", where, k);
                goto fail;
            }
            double d = NAN;
            if (!get_prob(ct, k, &d, msg, n, where)) goto fail;
            r->cat_thr[idx] = d;
        }
    }
    if (r->review > r->threshold && r->review <= 1) {
        snprintf(msg, n, "%s\"review_threshold\" must not exceed \"threshold\"", where);
        goto fail;
    }
    return true;
fail:
    lg_policy_free(r->policy);
    r->policy = NULL;
    return false;
}

/* ---- tokens ---- */

static bool tokens_load(const char *path, srv_config *c, char *msg, size_t n) {
    uint8_t *data = NULL;
    size_t size = 0;
    lg_error e = {0};
    if (lg_read_file(path, 1 << 20, &data, &size, &e) != LG_OK) {
        snprintf(msg, n, "token file: %s", e.msg);
        return false;
    }
    char *save = NULL;
    for (char *line = strtok_r((char *)data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *tok_save = NULL;
        char *tok = strtok_r(line, " \t\r", &tok_save);
        if (!tok || tok[0] == '#') continue;
        char *tenant = strtok_r(NULL, " \t\r", &tok_save);
        srv_token *t = realloc(c->tokens, (c->n_tokens + 1) * sizeof *t);
        if (!t) break;
        c->tokens = t;
        c->tokens[c->n_tokens].token = strdup(tok);
        c->tokens[c->n_tokens].tenant = strdup(tenant ? tenant : "default");
        c->n_tokens++;
    }
    lg_free(data);
    if (c->n_tokens == 0) {
        snprintf(msg, n, "token file %s holds no token", path);
        return false;
    }
    return true;
}

const char *srv_config_token_tenant(const srv_config *c, const char *token) {
    /* compares every byte of every token whatever the mismatch, so the time taken does not say
     * how much of a token was right */
    size_t tl = strlen(token);
    const char *found = NULL;
    for (size_t i = 0; i < c->n_tokens; i++) {
        const char *t = c->tokens[i].token;
        size_t l = strlen(t);
        volatile unsigned char diff = (unsigned char)(l != tl);
        for (size_t k = 0; k < l; k++) diff |= (unsigned char)(t[k] ^ token[k < tl ? k : 0]);
        if (diff == 0 && !found) found = c->tokens[i].tenant;
    }
    return found;
}

/* ---- snapshots ---- */

static void config_free(srv_config *c) {
    if (!c) return;
    lg_policy_free(c->base.policy);
    for (size_t i = 0; i < c->n_tenants; i++) {
        free(c->tenants[i].name);
        lg_policy_free(c->tenants[i].rules.policy);
    }
    free(c->tenants);
    for (size_t i = 0; i < c->n_tokens; i++) {
        free(c->tokens[i].token);
        free(c->tokens[i].tenant);
    }
    free(c->tokens);
    free(c);
}

bool srv_config_load(srv_server *s, const char *path, const char *token_path, srv_config **out,
                     char *msg, size_t n) {
    srv_config *c = calloc(1, sizeof *c);
    if (!c) return snprintf(msg, n, "out of memory"), false;
    c->refs = 1;
    json_t *root = NULL;
    if (path) {
        uint8_t *data = NULL;
        size_t size = 0;
        lg_error e = {0};
        if (lg_read_file(path, 4 << 20, &data, &size, &e) != LG_OK) {
            snprintf(msg, n, "config: %s", e.msg);
            goto fail;
        }
        lg_sha256_hex(data, size, c->sha256);
        json_error_t je;
        root = json_loadb((const char *)data, size, 0, &je);
        lg_free(data);
        if (!root || !json_is_object(root)) {
            snprintf(msg, n, "config %s:%d: %s", path, je.line,
                     root ? "expected a JSON object" : je.text);
            goto fail;
        }
    } else {
        root = json_object();
    }
    if (!rules_parse(s, root, NULL, &c->base, msg, n, "config: ")) goto fail;
    json_t *tenants = json_object_get(root, "tenants");
    if (tenants && !json_is_object(tenants)) {
        snprintf(msg, n, "config: \"tenants\" must map tenant names to objects");
        goto fail;
    }
    const char *name;
    json_t *tv;
    json_object_foreach(tenants, name, tv) {
        char where[96];
        snprintf(where, sizeof where, "config: tenants.%s: ", name);
        if (!json_is_object(tv)) {
            snprintf(msg, n, "%smust be an object", where);
            goto fail;
        }
        srv_tenant *t = realloc(c->tenants, (c->n_tenants + 1) * sizeof *t);
        if (!t) goto fail;
        c->tenants = t;
        t = &c->tenants[c->n_tenants];
        if (!rules_parse(s, tv, &c->base, &t->rules, msg, n, where)) goto fail;
        t->name = strdup(name);
        c->n_tenants++;
    }
    if (token_path && !tokens_load(token_path, c, msg, n)) goto fail;
    json_decref(root);
    snprintf(msg, n, "loaded%s%s (%zu tenants, %zu tokens)", path ? " " : "", path ? path : "",
             c->n_tenants, c->n_tokens);
    *out = c;
    return true;
fail:
    json_decref(root);
    config_free(c);
    return false;
}

void srv_config_unref(srv_server *s, srv_config *c) {
    pthread_mutex_lock(&s->cfg_mu);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&s->cfg_mu);
    if (last) config_free(c);
}

srv_config *srv_config_get(srv_server *s) {
    pthread_mutex_lock(&s->cfg_mu);
    srv_config *c = s->cfg;
    c->refs++;
    pthread_mutex_unlock(&s->cfg_mu);
    return c;
}

bool srv_config_reload(srv_server *s, char *msg, size_t n) {
    srv_config *c = NULL;
    bool ok = srv_config_load(s, s->config_path, s->token_path, &c, msg, n);
    pthread_mutex_lock(&s->metrics.mu);
    if (ok)
        s->metrics.reloads++;
    else
        s->metrics.reload_failures++;
    pthread_mutex_unlock(&s->metrics.mu);
    if (!ok) return false;
    pthread_mutex_lock(&s->cfg_mu);
    srv_config *old = s->cfg;
    s->cfg = c;
    pthread_mutex_unlock(&s->cfg_mu);
    srv_config_unref(s, old);
    return true;
}

const srv_rules *srv_config_rules(const srv_config *c, const char *tenant) {
    for (size_t i = 0; i < c->n_tenants; i++)
        if (strcmp(c->tenants[i].name, tenant) == 0) return &c->tenants[i].rules;
    return &c->base;
}

/* ---- decisions ---- */

void srv_decide(const srv_rules *rules, const lg_policy *pol, const lg_verdict *v,
                srv_decision *out) {
    memset(out, 0, sizeof *out);
    double p = v->p_unsafe;
    size_t nc = lg_policy_n_categories(pol);
    if (nc > SRV_MAX_CATS) nc = SRV_MAX_CATS;
    out->n = nc;
    bool any_cat = false;
    for (size_t i = 0; i < nc; i++) {
        const char *opt = lg_policy_category_option(pol, i);
        double prob = 0;
        for (size_t k = 0; k < v->n_categories; k++)
            if (strcmp(v->category_options[k], opt) == 0) prob = v->category_probs[k];
        out->scores[i] = p * prob;
        if (!isnan(rules->cat_thr[i]) && out->scores[i] >= rules->cat_thr[i]) {
            out->cat_flagged[i] = true;
            any_cat = true;
        }
    }
    bool flag = p >= rules->threshold || any_cat;
    out->decision = flag ? "flag" : p >= rules->review ? "review" : "allow";
    out->flagged = flag && !rules->observe;
    for (size_t i = 0; i < nc; i++)
        out->cat_flagged[i] =
            out->flagged &&
            (out->cat_flagged[i] || strcmp(v->category, lg_policy_category_option(pol, i)) == 0);
}
