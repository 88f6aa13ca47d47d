/*
 * policy.h — internals of the policy layer: the built-in taxonomy data (taxonomy.c), the policy
 * object and its compiler (policy.c), and the policy file reader (policy_file.c).
 *
 * The prompt texts these must reproduce byte for byte are in ../shared/reference/prompts/.
 */
#ifndef LG_POLICY_INTERNAL_H
#define LG_POLICY_INTERNAL_H

#include "core/core.h"

/* Limits on what a policy may hold; a policy file beyond them is refused. */
#define POL_MAX_CATEGORIES 64
#define POL_MAX_BULLETS 64
#define POL_MAX_ID 16
#define POL_MAX_NAME 200
#define POL_MAX_BULLET 2000
#define POL_MAX_FILE_BYTES ((size_t)1 << 20)

/* ---- built-in data (taxonomy.c) ---- */

/* One category of a built-in taxonomy, as the LlavaGuard taxonomy code defines it. */
typedef struct pol_builtin_category {
    const char *id;
    const char *name;
    const char *const *should_not;
    size_t n_should_not;
    const char *const *can;
    size_t n_can;
    /* The bullets of the declared (non-violating / sensitive) forms, when the reference text has
     * its own copy of them that differs from should_not followed by can (O2 of v1.2, whose first
     * bullet there has a double space). NULL: should_not then can. */
    const char *const *declared;
    size_t n_declared;
} pol_builtin_category;

/* The fixed texts of one prompt generation and its built-in categories. */
typedef struct pol_generation {
    const char *name;    /* "v1.2" */
    const char *summary; /* one line for help texts */
    const char *opening; /* the opening sentence, with its "\n" */
    const pol_builtin_category *categories;
    size_t n_categories;
    bool blank_line_after_category; /* false in the v1.0 model-card text */
    const char *assessment;         /* assessment steps and the template's lead-in line */
    const char *template_end;       /* "}" or "}." (v1.0) */
} pol_generation;

/* Texts shared by every generation. */
extern const char pol_text_should_not[];        /* "Should not:" */
extern const char pol_text_can[];               /* "Can:" */
extern const char pol_text_nonviolating[];      /* "is declared as non-violating. Therefore, …" */
extern const char pol_text_sensitive[];         /* "is declared as sensitive. Therefore, …" */
extern const char pol_text_na_option[];         /* "NA: None applying" */
extern const char *const pol_rating_options[2]; /* "Unsafe", "Safe" */
extern const char pol_image_marker[];           /* "<image>" */

size_t pol_generation_count(void);
const pol_generation *pol_generation_at(size_t i);
/* Returns the generation called `name`, or NULL. */
const pol_generation *pol_generation_find(const char *name);
/* Returns the built-in category `id` of `gen`, or NULL. */
const pol_builtin_category *pol_builtin_find(const pol_generation *gen, const char *id);
/* Writes the generation names as "v1.2, v1.0 or v1.0-modelcard" into buf (for messages). */
void pol_generation_names(char *buf, size_t size);

/* ---- the policy object (policy.c) ---- */

typedef struct pol_strlist {
    char **items;
    size_t n;
} pol_strlist;

typedef struct pol_category {
    char *id;
    char *name;
    pol_strlist should_not;
    pol_strlist can;
    pol_strlist declared; /* n == 0: the declared forms list should_not then can */
    lg_category_state state;
    char *option; /* "<id>: <name>", derived */
} pol_category;

struct lg_policy {
    const pol_generation *gen;
    pol_category *cats;
    size_t n_cats;
    char *text; /* stripped rendering, kept current by pol_refresh */
    char sha256[65];
    char **warnings;
    size_t n_warnings;
    char errmsg[LG_ERROR_MSG_MAX];
};

/* Creates an empty policy (no categories) of generation `gen`. NULL on allocation failure. */
lg_policy *pol_new(const pol_generation *gen);
/* Appends a copy of the built-in category (state default). Returns NULL on allocation failure. */
pol_category *pol_add_builtin(lg_policy *pol, const pol_builtin_category *b);
/* Appends an empty category with the given id. Returns NULL on allocation failure. */
pol_category *pol_add_category(lg_policy *pol, const char *id);
/* Replaces a string list by a copy of `n` strings. Returns false on allocation failure. */
bool pol_strlist_set(pol_strlist *l, const char *const *items, size_t n);
void pol_strlist_clear(pol_strlist *l);
/* Whether the list holds exactly these `n` strings. */
bool pol_strlist_equals(const pol_strlist *l, const char *const *items, size_t n);
/* Replaces a category's name (and option string). Returns false on allocation failure. */
bool pol_category_set_name(pol_category *c, const char *name);
/* Re-derives the rendered text, its hash and the warnings after a change. LG_E_NOMEM on failure
 * (the previous text stays). */
lg_status pol_refresh(lg_policy *pol);
/* Appends the policy text in `mode` to `b`. */
void pol_render_buf(const lg_policy *pol, lg_policy_render_mode mode, lg_buf *b);
/* Returns the category with `id`, or NULL. */
pol_category *pol_find(const lg_policy *pol, const char *id);
/* Whether `id` is acceptable as a category id: 1–POL_MAX_ID ASCII letters, digits, '_', '-' or
 * '.', starting with a letter or digit, and not "NA" (reserved for "NA: None applying"). */
bool pol_id_valid(const char *id);

#endif /* LG_POLICY_INTERNAL_H */
