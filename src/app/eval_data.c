/*
 * eval_data.c — the evaluator's inputs: label files (JSONL, or CSV with a header: id, image,
 * rating, category, optional rationale, policy, allow, sensitive) and predictions (JSONL as
 * `assess` writes it, or annotate's SQLite results file), matched by id in any order. A
 * prediction names its sample by `id`, `key` or `image`; a key or image also matches a label
 * whose id is its base name without extension, or whose image is the same path.
 */
#include "eval.h"

#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct key_ix {
    const char *key;
    size_t ix;
} key_ix;

static char *dup_or_null(const char *s) {
    return s && *s ? strdup(s) : NULL;
}

void eval_category_code(const char *cat, char code[4]) {
    code[0] = 0;
    if (!cat) return;
    while (isspace((unsigned char)*cat)) cat++;
    if ((cat[0] == 'O' || cat[0] == 'o') && cat[1] >= '1' && cat[1] <= '9' &&
        !isdigit((unsigned char)cat[2])) {
        code[0] = 'O', code[1] = cat[1], code[2] = 0;
    } else if (strncasecmp(cat, "NA", 2) == 0 || strncasecmp(cat, "none", 4) == 0) {
        strcpy(code, "NA");
    }
}

static int parse_rating(const char *r) {
    if (!r) return -1;
    if (strcasecmp(r, "unsafe") == 0) return 1;
    if (strcasecmp(r, "safe") == 0) return 0;
    return -1;
}

static const char *jstr(json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static bool add_label(eval_set *set, const char *id, const char *image, const char *rating,
                      const char *category, const char *rationale, const char *policy,
                      const char *allow, const char *sensitive, size_t line, char *err) {
    int r = parse_rating(rating);
    if (!id || !*id || r < 0 || !category) {
        snprintf(err, 256, "line %zu: a label needs id, rating (Safe/Unsafe) and category", line);
        return false;
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        eval_sample *s = realloc(set->s, cap * sizeof *s);
        if (!s) return snprintf(err, 256, "out of memory"), false;
        set->s = s, set->cap = cap;
    }
    eval_sample *s = &set->s[set->n++];
    memset(s, 0, sizeof *s);
    s->id = strdup(id);
    s->image = dup_or_null(image);
    s->label_unsafe = r;
    s->label_category = strdup(category);
    eval_category_code(category, s->code);
    s->rationale = dup_or_null(rationale);
    s->policy = dup_or_null(policy);
    s->allow = dup_or_null(allow);
    s->sensitive = dup_or_null(sensitive);
    s->p_unsafe = NAN;
    return true;
}

/* Splits one CSV record (RFC 4180 quoting) in place into at most max fields. */
static size_t csv_split(char *line, char **fields, size_t max) {
    size_t n = 0;
    char *p = line;
    while (n < max) {
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '"' && p[1] == '"')
                    *out++ = '"', p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else if (!*p)
                    break;
                else
                    *out++ = *p++;
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',' && *p != '\r' && *p != '\n') out++, p++;
        }
        char c = *p;
        *out = 0;
        fields[n++] = start;
        if (c != ',') break;
        p++;
    }
    return n;
}

static bool read_csv(FILE *f, eval_set *set, char *err) {
    char *line = NULL, *hdr[16], *fl[16];
    size_t cap = 0, nline = 1;
    if (getline(&line, &cap, f) < 0) return free(line), snprintf(err, 256, "empty file"), false;
    char *header = strdup(line);
    size_t nh = csv_split(header, hdr, 16);
    bool ok = true;
    while (ok && getline(&line, &cap, f) >= 0) {
        nline++;
        if (line[strspn(line, " \r\n")] == 0) continue;
        size_t nf = csv_split(line, fl, 16);
        const char *v[8] = {0};
        static const char *const names[8] = {"id",        "image",  "rating", "category",
                                             "rationale", "policy", "allow",  "sensitive"};
        for (size_t i = 0; i < nh && i < nf; i++)
            for (int k = 0; k < 8; k++)
                if (strcmp(hdr[i], names[k]) == 0) v[k] = fl[i];
        ok = add_label(set, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], nline, err);
    }
    free(header), free(line);
    return ok;
}

static bool read_jsonl_labels(FILE *f, eval_set *set, char *err) {
    char *line = NULL;
    size_t cap = 0, nline = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) >= 0) {
        nline++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) {
            snprintf(err, 256, "line %zu: not a JSON object", nline);
            json_decref(o);
            ok = false;
            break;
        }
        json_t *pol = json_object_get(o, "policy");
        const char *allow = jstr(o, "allow"), *sens = jstr(o, "sensitive");
        if (json_is_object(pol)) allow = jstr(pol, "allow"), sens = jstr(pol, "sensitive");
        ok = add_label(set, jstr(o, "id"), jstr(o, "image"), jstr(o, "rating"), jstr(o, "category"),
                       jstr(o, "rationale"), json_string_value(pol), allow, sens, nline, err);
        json_decref(o);
    }
    free(line);
    return ok;
}

bool eval_read_labels(const char *path, eval_set *set, char *err) {
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, 256, "%s: cannot open", path), false;
    int c;
    while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\r' || c == '\t') {
    }
    ungetc(c, f);
    char msg[256] = "";
    bool ok = c == '{' ? read_jsonl_labels(f, set, msg) : read_csv(f, set, msg);
    fclose(f);
    if (!ok)
        snprintf(err, 256, "%s: %.200s", path, msg);
    else if (set->n == 0)
        snprintf(err, 256, "%s: no labels", path), ok = false;
    return ok;
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const key_ix *)a)->key, ((const key_ix *)b)->key);
}

static long find(const key_ix *ix, size_t n, const char *key) {
    if (!key || !*key || !ix) return -1;
    key_ix k = {key, 0};
    const key_ix *hit = bsearch(&k, ix, n, sizeof *ix, cmp_key);
    return hit ? (long)hit->ix : -1;
}

/* The base name of a path without its extension, in buf. */
static const char *stem(const char *path, char *buf, size_t cap) {
    if (!path) return NULL;
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, cap, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
    return buf;
}

typedef struct matcher {
    key_ix *by_id, *by_image;
    size_t n_id, n_image;
} matcher;

static matcher *matcher_get(eval_set *set) {
    matcher *m = set->matcher;
    if (m && m->n_id == set->n) return m;
    if (m) free(m->by_id), free(m->by_image), free(m);
    m = calloc(1, sizeof *m);
    set->matcher = m;
    m->by_id = calloc(set->n + 1, sizeof *m->by_id);
    m->by_image = calloc(set->n + 1, sizeof *m->by_image);
    for (size_t i = 0; i < set->n; i++) {
        m->by_id[m->n_id++] = (key_ix){set->s[i].id, i};
        if (set->s[i].image) m->by_image[m->n_image++] = (key_ix){set->s[i].image, i};
    }
    qsort(m->by_id, m->n_id, sizeof *m->by_id, cmp_key);
    qsort(m->by_image, m->n_image, sizeof *m->by_image, cmp_key);
    return m;
}

void eval_match_record(eval_set *set, json_t *rec) {
    matcher *m = matcher_get(set);
    const char *names[3] = {jstr(rec, "id"), jstr(rec, "key"), jstr(rec, "image")};
    long ix = -1;
    char buf[1024];
    for (int i = 0; i < 3 && ix < 0; i++) ix = find(m->by_id, m->n_id, names[i]);
    for (int i = 1; i < 3 && ix < 0; i++) ix = find(m->by_image, m->n_image, names[i]);
    for (int i = 1; i < 3 && ix < 0; i++)
        ix = find(m->by_id, m->n_id, stem(names[i], buf, sizeof buf));
    if (ix < 0) {
        set->n_pred_unmatched++;
        return;
    }
    eval_sample *s = &set->s[ix];
    free(s->pred_category);
    s->has_pred = true;
    const char *err = jstr(rec, "error");
    int r = parse_rating(jstr(rec, "rating"));
    s->pred_valid = r >= 0 && !(err && *err);
    s->pred_unsafe = r > 0;
    s->pred_category = dup_or_null(jstr(rec, "category"));
    json_t *p = json_object_get(rec, "p_unsafe");
    s->p_unsafe = json_is_number(p) ? json_number_value(p) : NAN;
}

static bool read_sqlite(const char *path, eval_set *set, char *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "SELECT key, rating, category, p_unsafe, error, source FROM results"
                           " ORDER BY run_id, rowid",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, 256, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto done;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        static const char *const cols[6] = {"key",      "rating", "category",
                                            "p_unsafe", "error",  "source"};
        for (int c = 0; c < 6; c++) {
            int t = sqlite3_column_type(st, c);
            if (t == SQLITE_NULL) continue;
            if (c == 3)
                json_object_set_new(o, cols[c], json_real(sqlite3_column_double(st, c)));
            else if (c != 5)
                json_object_set_new(o, cols[c],
                                    json_string((const char *)sqlite3_column_text(st, c)));
        }
        eval_match_record(set, o);
        json_decref(o);
    }
    ok = rc == SQLITE_DONE;
    if (!ok) snprintf(err, 256, "%s: %s", path, sqlite3_errmsg(db));
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

static bool read_jsonl_preds(const char *path, eval_set *set, char *err) {
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, 256, "%s: cannot open", path), false;
    char *line = NULL;
    size_t cap = 0, nline = 0;
    bool ok = true;
    while (getline(&line, &cap, f) >= 0) {
        nline++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_t *o = json_loads(line, 0, NULL);
        if (!json_is_object(o)) {
            snprintf(err, 256, "%s: line %zu: not a JSON object", path, nline);
            json_decref(o);
            ok = false;
            break;
        }
        eval_match_record(set, o);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return ok;
}

bool eval_read_predictions(const char *path, eval_set *set, char *err) {
    char magic[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(err, 256, "%s: cannot open", path), false;
    size_t got = fread(magic, 1, 16, f);
    fclose(f);
    if (got == 16 && memcmp(magic, "SQLite format 3", 16) == 0) return read_sqlite(path, set, err);
    return read_jsonl_preds(path, set, err);
}

void eval_set_free(eval_set *set) {
    for (size_t i = 0; i < set->n; i++) {
        eval_sample *s = &set->s[i];
        free(s->id), free(s->image), free(s->label_category), free(s->rationale);
        free(s->policy), free(s->allow), free(s->sensitive), free(s->pred_category);
    }
    matcher *m = set->matcher;
    if (m) free(m->by_id), free(m->by_image), free(m);
    free(set->s);
    memset(set, 0, sizeof *set);
}
