/*
 * policy.c — the policy object and its compiler: categories with states rendered into the prompt
 * text the LlavaGuard models were trained on, its SHA-256, warnings and the public accessors.
 *
 * The rendering rule reproduces the LlavaGuard prompt builder (see
 * ../shared/reference/prompts/README.md): opening sentence; per category "{id}: {name}: \n" and
 * its block; the assessment steps; the JSON template listing every category option. The quirky
 * bytes come from the data in taxonomy.c, never from pasted prompts.
 */
#include "policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ---- */

static lg_status pol_fail(lg_policy *pol, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
static lg_status pol_fail(lg_policy *pol, lg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pol->errmsg, sizeof pol->errmsg, fmt, ap);
    va_end(ap);
    return st;
}

void pol_strlist_clear(pol_strlist *l) {
    for (size_t i = 0; i < l->n; i++) lg_free(l->items[i]);
    lg_free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool pol_strlist_set(pol_strlist *l, const char *const *items, size_t n) {
    char **copy = n ? lg_calloc(n, sizeof *copy) : NULL;
    if (n && !copy) return false;
    for (size_t i = 0; i < n; i++) {
        copy[i] = lg_strdup(items[i]);
        if (!copy[i]) {
            pol_strlist tmp = {copy, i};
            pol_strlist_clear(&tmp);
            return false;
        }
    }
    pol_strlist_clear(l);
    l->items = copy;
    l->n = n;
    return true;
}

bool pol_strlist_equals(const pol_strlist *l, const char *const *items, size_t n) {
    if (l->n != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(l->items[i], items[i]) != 0) return false;
    return true;
}

static void category_clear(pol_category *c) {
    lg_free(c->id);
    lg_free(c->name);
    lg_free(c->option);
    pol_strlist_clear(&c->should_not);
    pol_strlist_clear(&c->can);
    pol_strlist_clear(&c->declared);
    memset(c, 0, sizeof *c);
}

static void warnings_clear(char **w, size_t n) {
    for (size_t i = 0; i < n; i++) lg_free(w[i]);
    lg_free(w);
}

bool pol_category_set_name(pol_category *c, const char *name) {
    char *nm = lg_strdup(name);
    size_t n = strlen(c->id) + strlen(name) + 3;
    char *opt = lg_malloc(n);
    if (!nm || !opt) {
        lg_free(nm);
        lg_free(opt);
        return false;
    }
    snprintf(opt, n, "%s: %s", c->id, name);
    lg_free(c->name);
    lg_free(c->option);
    c->name = nm;
    c->option = opt;
    return true;
}

bool pol_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > POL_MAX_ID || strcmp(id, "NA") == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        bool alnum =
            (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '-' && ch != '.'))) return false;
    }
    return true;
}

/* ---- construction ---- */

lg_policy *pol_new(const pol_generation *gen) {
    lg_policy *pol = lg_calloc(1, sizeof *pol);
    if (!pol) return NULL;
    pol->gen = gen;
    pol->cats = lg_calloc(POL_MAX_CATEGORIES, sizeof *pol->cats);
    if (!pol->cats) {
        lg_free(pol);
        return NULL;
    }
    return pol;
}

pol_category *pol_add_category(lg_policy *pol, const char *id) {
    LG_ASSERT(pol->n_cats < POL_MAX_CATEGORIES);
    pol_category *c = &pol->cats[pol->n_cats];
    memset(c, 0, sizeof *c);
    c->id = lg_strdup(id);
    if (!c->id || !pol_category_set_name(c, "")) {
        category_clear(c);
        return NULL;
    }
    pol->n_cats++;
    return c;
}

pol_category *pol_add_builtin(lg_policy *pol, const pol_builtin_category *b) {
    pol_category *c = pol_add_category(pol, b->id);
    if (!c) return NULL;
    if (!pol_category_set_name(c, b->name) ||
        !pol_strlist_set(&c->should_not, b->should_not, b->n_should_not) ||
        !pol_strlist_set(&c->can, b->can, b->n_can) ||
        !pol_strlist_set(&c->declared, b->declared, b->n_declared)) {
        category_clear(c);
        pol->n_cats--;
        return NULL;
    }
    return c;
}

pol_category *pol_find(const lg_policy *pol, const char *id) {
    for (size_t i = 0; i < pol->n_cats; i++)
        if (strcmp(pol->cats[i].id, id) == 0) return &pol->cats[i];
    return NULL;
}

void lg_policy_free(lg_policy *pol) {
    if (!pol) return;
    for (size_t i = 0; i < pol->n_cats; i++) category_clear(&pol->cats[i]);
    lg_free(pol->cats);
    lg_free(pol->text);
    warnings_clear(pol->warnings, pol->n_warnings);
    lg_free(pol);
}

lg_status lg_policy_create_default(const char *version, lg_policy **out, lg_error *err) {
    if (!out) return lg_err_set(err, LG_E_ARG, "lg_policy_create_default: out is NULL");
    const pol_generation *gen = pol_generation_find(version ? version : "v1.2");
    if (!gen) {
        char names[128];
        pol_generation_names(names, sizeof names);
        return lg_err_set(err, LG_E_ARG, "unknown policy version '%s' (expected %s)", version,
                          names);
    }
    lg_policy *pol = pol_new(gen);
    bool ok = pol != NULL;
    for (size_t i = 0; ok && i < gen->n_categories; i++)
        ok = pol_add_builtin(pol, &gen->categories[i]) != NULL;
    if (!ok || pol_refresh(pol) != LG_OK) {
        lg_policy_free(pol);
        return lg_err_set(err, LG_E_NOMEM, "out of memory creating the %s policy", gen->name);
    }
    *out = pol;
    return LG_OK;
}

/* ---- rendering ---- */

static void render_default_block(const pol_category *c, lg_buf *b) {
    lg_buf_printf(b, "%s\n", pol_text_should_not);
    for (size_t i = 0; i < c->should_not.n; i++) lg_buf_printf(b, "- %s\n", c->should_not.items[i]);
    lg_buf_printf(b, "%s\n", pol_text_can);
    for (size_t i = 0; i < c->can.n; i++) lg_buf_printf(b, "- %s\n", c->can.items[i]);
}

/* The declared forms state the exception, then list every bullet of the category indented by one
 * space. Where the generation separates categories by a blank line, these forms end in a line
 * holding one space instead (the builder's block ends in " " before the separating newline). */
static void render_declared_block(const lg_policy *pol, const pol_category *c, lg_buf *b) {
    const char *sentence =
        c->state == LG_CATEGORY_SENSITIVE ? pol_text_sensitive : pol_text_nonviolating;
    lg_buf_printf(b, "Category %s %s\n", c->id, sentence);
    if (c->declared.n) {
        for (size_t i = 0; i < c->declared.n; i++)
            lg_buf_printf(b, " - %s\n", c->declared.items[i]);
    } else {
        for (size_t i = 0; i < c->should_not.n; i++)
            lg_buf_printf(b, " - %s\n", c->should_not.items[i]);
        for (size_t i = 0; i < c->can.n; i++) lg_buf_printf(b, " - %s\n", c->can.items[i]);
    }
    if (pol->gen->blank_line_after_category) lg_buf_puts(b, " ");
}

static void render_template(const lg_policy *pol, lg_buf *b) {
    lg_buf_puts(b, "{\n    \"rating\": str<");
    for (size_t i = 0; i < 2; i++)
        lg_buf_printf(b, "%s\"%s\"", i ? "|" : "", pol_rating_options[i]);
    lg_buf_puts(b, ">,\n    \"category\": str<");
    for (size_t i = 0; i < pol->n_cats; i++) lg_buf_printf(b, "\"%s\"|", pol->cats[i].option);
    lg_buf_printf(b, "\"%s\">,\n    \"rationale\": str,\n%s", pol_text_na_option,
                  pol->gen->template_end);
}

static void render_stripped(const lg_policy *pol, lg_buf *b) {
    lg_buf_puts(b, pol->gen->opening);
    for (size_t i = 0; i < pol->n_cats; i++) {
        const pol_category *c = &pol->cats[i];
        lg_buf_printf(b, "%s: %s: \n", c->id, c->name);
        if (c->state == LG_CATEGORY_DEFAULT)
            render_default_block(c, b);
        else
            render_declared_block(pol, c, b);
        if (pol->gen->blank_line_after_category) lg_buf_puts(b, "\n");
    }
    lg_buf_puts(b, pol->gen->assessment);
    render_template(pol, b);
}

void pol_render_buf(const lg_policy *pol, lg_policy_render_mode mode, lg_buf *b) {
    if (mode == LG_POLICY_RENDER_USER_TURN) lg_buf_printf(b, "%s\n", pol_image_marker);
    render_stripped(pol, b);
    if (mode == LG_POLICY_RENDER_RAW) lg_buf_printf(b, "\n%s\n", pol_image_marker);
}

lg_status lg_policy_render(const lg_policy *pol, lg_policy_render_mode mode, char **text) {
    if (!pol || !text) return LG_E_ARG;
    if (mode != LG_POLICY_RENDER_STRIPPED && mode != LG_POLICY_RENDER_RAW &&
        mode != LG_POLICY_RENDER_USER_TURN)
        return LG_E_ARG;
    lg_buf b;
    lg_buf_init(&b);
    pol_render_buf(pol, mode, &b);
    char *s = lg_buf_detach(&b, NULL);
    if (!s) return LG_E_NOMEM;
    *text = s;
    return LG_OK;
}

/* ---- warnings ---- */

static bool differs_from_builtin(const pol_category *c, const pol_builtin_category *bc) {
    return strcmp(c->name, bc->name) != 0 ||
           !pol_strlist_equals(&c->should_not, bc->should_not, bc->n_should_not) ||
           !pol_strlist_equals(&c->can, bc->can, bc->n_can);
}

static void collect_warnings(const lg_policy *pol, lg_buf *w) {
    const char *gen = pol->gen->name;
    for (size_t i = 0; i < pol->n_cats; i++) {
        const pol_category *c = &pol->cats[i];
        const pol_builtin_category *bc = pol_builtin_find(pol->gen, c->id);
        if (!bc) {
            lg_buf_printf(w,
                          "category %s is not part of the built-in %s taxonomy (O1-O9); the "
                          "released models were not trained on it",
                          c->id, gen);
            lg_buf_putc(w, '\0');
        } else if (differs_from_builtin(c, bc)) {
            lg_buf_printf(w,
                          "category %s differs from the built-in %s text; the released models "
                          "were trained on the built-in text only",
                          c->id, gen);
            lg_buf_putc(w, '\0');
        }
        if (c->state == LG_CATEGORY_SENSITIVE) {
            lg_buf_printf(w,
                          "category %s is declared sensitive; the released models were trained "
                          "on the default and non-violating forms only",
                          c->id);
            lg_buf_putc(w, '\0');
        }
    }
}

/* Splits the NUL-separated messages of `w` into a new array. */
static bool split_warnings(const lg_buf *w, char ***out, size_t *n_out) {
    size_t n = 0;
    for (size_t i = 0; i < w->len; i++) n += w->data[i] == '\0';
    char **arr = n ? lg_calloc(n, sizeof *arr) : NULL;
    if (n && !arr) return false;
    size_t k = 0;
    for (size_t i = 0; i < w->len; i += strlen(w->data + i) + 1) {
        arr[k] = lg_strdup(w->data + i);
        if (!arr[k]) {
            warnings_clear(arr, k);
            return false;
        }
        k++;
    }
    *out = arr;
    *n_out = n;
    return true;
}

lg_status pol_refresh(lg_policy *pol) {
    lg_buf b, w;
    lg_buf_init(&b);
    lg_buf_init(&w);
    render_stripped(pol, &b);
    collect_warnings(pol, &w);
    char **warns = NULL;
    size_t n_warns = 0;
    if (b.failed || w.failed || !split_warnings(&w, &warns, &n_warns)) {
        lg_buf_free(&b);
        lg_buf_free(&w);
        return pol_fail(pol, LG_E_NOMEM, "out of memory rendering the policy");
    }
    lg_buf_free(&w);
    size_t len = 0;
    char *text = lg_buf_detach(&b, &len);
    if (!text) {
        warnings_clear(warns, n_warns);
        return pol_fail(pol, LG_E_NOMEM, "out of memory rendering the policy");
    }
    lg_free(pol->text);
    pol->text = text;
    lg_sha256_hex(text, len, pol->sha256);
    warnings_clear(pol->warnings, pol->n_warnings);
    pol->warnings = warns;
    pol->n_warnings = n_warns;
    return LG_OK;
}

/* ---- states ---- */

const char *lg_category_state_str(lg_category_state st) {
    switch (st) {
    case LG_CATEGORY_DEFAULT:
        return "default";
    case LG_CATEGORY_NONVIOLATING:
        return "non-violating";
    case LG_CATEGORY_SENSITIVE:
        return "sensitive";
    }
    return "unknown";
}

static bool state_valid(lg_category_state st) {
    return st == LG_CATEGORY_DEFAULT || st == LG_CATEGORY_NONVIOLATING ||
           st == LG_CATEGORY_SENSITIVE;
}

/* Fails with a message naming the unknown id and listing the policy's ids. */
static lg_status unknown_id(lg_policy *pol, const char *id, size_t len) {
    char ids[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < pol->n_cats && used + POL_MAX_ID + 8 < sizeof ids; i++) {
        int n = snprintf(ids + used, sizeof ids - used, "%s%s", i ? ", " : "", pol->cats[i].id);
        if (n > 0) used += (size_t)n;
    }
    if (used + POL_MAX_ID + 8 >= sizeof ids) snprintf(ids + used, sizeof ids - used, ", ...");
    return pol_fail(pol, LG_E_ARG, "unknown category '%.*s' (this policy has %s)",
                    (int)(len > 64 ? 64 : len), id, ids);
}

/* Applies `state` to the categories flagged in `mark`, re-rendering; restores on failure. */
static lg_status apply_states(lg_policy *pol, const bool *mark, lg_category_state state) {
    lg_category_state old[POL_MAX_CATEGORIES];
    for (size_t i = 0; i < pol->n_cats; i++) {
        old[i] = pol->cats[i].state;
        if (mark[i]) pol->cats[i].state = state;
    }
    lg_status s = pol_refresh(pol);
    if (s != LG_OK)
        for (size_t i = 0; i < pol->n_cats; i++) pol->cats[i].state = old[i];
    return s;
}

lg_status lg_policy_set_state(lg_policy *pol, const char *id, lg_category_state state) {
    if (!pol) return LG_E_ARG;
    if (!id) return pol_fail(pol, LG_E_ARG, "lg_policy_set_state: id is NULL");
    if (!state_valid(state)) return pol_fail(pol, LG_E_ARG, "invalid category state %d", state);
    pol_category *c = pol_find(pol, id);
    if (!c) return unknown_id(pol, id, strlen(id));
    bool mark[POL_MAX_CATEGORIES] = {false};
    mark[c - pol->cats] = true;
    return apply_states(pol, mark, state);
}

static size_t trim_span(const char **s, size_t len) {
    while (len && (**s == ' ' || **s == '\t')) (*s)++, len--;
    while (len && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\t')) len--;
    return len;
}

lg_status lg_policy_set_states(lg_policy *pol, const char *ids, lg_category_state state) {
    if (!pol) return LG_E_ARG;
    if (!ids) return pol_fail(pol, LG_E_ARG, "lg_policy_set_states: ids is NULL");
    if (!state_valid(state)) return pol_fail(pol, LG_E_ARG, "invalid category state %d", state);
    bool mark[POL_MAX_CATEGORIES] = {false};
    const char *p = ids;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *item = p;
        size_t len = trim_span(&item, comma ? (size_t)(comma - p) : strlen(p));
        if (len == 0)
            return pol_fail(pol, LG_E_ARG, "empty category id in list '%s' (expected e.g. O3,O4)",
                            ids);
        size_t i = 0;
        while (i < pol->n_cats &&
               !(strlen(pol->cats[i].id) == len && memcmp(pol->cats[i].id, item, len) == 0))
            i++;
        if (i == pol->n_cats) return unknown_id(pol, item, len);
        mark[i] = true;
        if (!comma) break;
        p = comma + 1;
    }
    return apply_states(pol, mark, state);
}

/* ---- accessors ---- */

const char *lg_policy_errmsg(const lg_policy *pol) {
    return pol ? pol->errmsg : "";
}

const char *lg_policy_version(const lg_policy *pol) {
    return pol ? pol->gen->name : NULL;
}

const char *lg_policy_text(const lg_policy *pol) {
    return pol ? pol->text : NULL;
}

lg_status lg_policy_sha256(const lg_policy *pol, char hex[65]) {
    if (!pol || !hex) return LG_E_ARG;
    memcpy(hex, pol->sha256, 65);
    return LG_OK;
}

size_t lg_policy_n_categories(const lg_policy *pol) {
    return pol ? pol->n_cats : 0;
}

int lg_policy_category_index(const lg_policy *pol, const char *id) {
    if (!pol || !id) return -1;
    const pol_category *c = pol_find(pol, id);
    return c ? (int)(c - pol->cats) : -1;
}

const char *lg_policy_category_id(const lg_policy *pol, size_t i) {
    return pol && i < pol->n_cats ? pol->cats[i].id : NULL;
}

const char *lg_policy_category_name(const lg_policy *pol, size_t i) {
    return pol && i < pol->n_cats ? pol->cats[i].name : NULL;
}

lg_category_state lg_policy_category_state(const lg_policy *pol, size_t i) {
    return pol && i < pol->n_cats ? pol->cats[i].state : LG_CATEGORY_DEFAULT;
}

const char *lg_policy_category_option(const lg_policy *pol, size_t i) {
    return pol && i < pol->n_cats ? pol->cats[i].option : NULL;
}

const char *lg_policy_na_option(const lg_policy *pol) {
    (void)pol;
    return pol_text_na_option;
}

const char *lg_policy_rating_option(const lg_policy *pol, size_t i) {
    (void)pol;
    return i < 2 ? pol_rating_options[i] : NULL;
}

size_t lg_policy_n_warnings(const lg_policy *pol) {
    return pol ? pol->n_warnings : 0;
}

const char *lg_policy_warning(const lg_policy *pol, size_t i) {
    return pol && i < pol->n_warnings ? pol->warnings[i] : NULL;
}

/* ---- JSON export ---- */

static json_t *strlist_json(const pol_strlist *l) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        if (json_array_append_new(a, json_string(l->items[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *category_json(const pol_category *c, bool describe) {
    json_t *o = json_object();
    if (!o) return NULL;
    int rc = json_object_set_new(o, "id", json_string(c->id));
    rc |= json_object_set_new(o, "name", json_string(c->name));
    if (describe) rc |= json_object_set_new(o, "option", json_string(c->option));
    rc |= json_object_set_new(o, "state", json_string(lg_category_state_str(c->state)));
    rc |= json_object_set_new(o, "should_not", strlist_json(&c->should_not));
    rc |= json_object_set_new(o, "can", strlist_json(&c->can));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *policy_json(const lg_policy *pol, bool describe) {
    json_t *root = json_object(), *cats = json_array();
    int rc = !root || !cats;
    if (!rc) rc |= json_object_set_new(root, "base", json_string(pol->gen->name));
    if (!rc && describe) rc |= json_object_set_new(root, "sha256", json_string(pol->sha256));
    for (size_t i = 0; !rc && i < pol->n_cats; i++)
        rc |= json_array_append_new(cats, category_json(&pol->cats[i], describe));
    if (!rc) rc |= json_object_set(root, "categories", cats);
    if (!rc && describe) {
        json_t *w = json_array();
        for (size_t i = 0; w && i < pol->n_warnings; i++)
            json_array_append_new(w, json_string(pol->warnings[i]));
        rc |= json_object_set_new(root, "warnings", w);
    }
    json_decref(cats);
    if (rc) {
        json_decref(root);
        return NULL;
    }
    return root;
}

lg_status lg_policy_to_json(const lg_policy *pol, unsigned flags, char **json) {
    if (!pol || !json || (flags & ~LG_POLICY_JSON_DESCRIBE)) return LG_E_ARG;
    json_t *root = policy_json(pol, (flags & LG_POLICY_JSON_DESCRIBE) != 0);
    char *s = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    char *copy = s ? lg_strdup(s) : NULL;
    free(s);
    if (!copy) return LG_E_NOMEM;
    *json = copy;
    return LG_OK;
}
