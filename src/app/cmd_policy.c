/*
 * cmd_policy.c — `llavaguard policy show|check|render`: prints a policy's categories and states,
 * validates a policy file (with the file/line/field error of lg_policy_load_file), or writes the
 * exact policy text that goes next to the image (reference prompt_v1.2.txt: no image marker, no
 * trailing newline) to stdout.
 */
#include "app.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "policy"

typedef struct policy_opts {
    const char *sub;     /* show, check or render */
    const char *version; /* --version */
    const char *file;    /* --policy (or check's operand) */
    char allow[1024];    /* --allow lists joined by ',' */
    char sensitive[1024];
    bool raw, user_turn, json, help;
} policy_opts;

static const char options_help[] =
    "  --version V      built-in policy generation: v1.2 (default; LlavaGuard v1.1, v1.2,\n"
    "                   QwenGuard), v1.0 (LlavaGuard v1.0) or v1.0-modelcard\n"
    "  --policy FILE    read the policy from a policy file (docs/policy-format.md); '-' is stdin\n"
    "  --allow IDS      declare categories non-violating, e.g. --allow O3,O4 (repeatable)\n"
    "  --sensitive IDS  declare categories sensitive, e.g. --sensitive O6 (repeatable; the\n"
    "                   released models were not trained on this form)\n";

static void print_help(const char *sub) {
    if (!sub) {
        printf(
            "Usage: llavaguard policy <show|check|render> [options]\n"
            "\n"
            "Show, validate or render a safety policy: the built-in LlavaGuard O1-O9 taxonomy,\n"
            "or a policy file, with categories declared non-violating or sensitive.\n"
            "\n"
            "Commands:\n"
            "  show    print the categories and their states (--json for JSON)\n"
            "  check   validate the policy; prints 'ok' and the policy sha256\n"
            "  render  write the policy text that goes next to the image to stdout\n"
            "\n"
            "Options:\n%s"
            "  -h, --help       show this help ('llavaguard policy <command> --help' for more)\n",
            options_help);
        return;
    }
    if (strcmp(sub, "show") == 0)
        printf("Usage: llavaguard policy show [options]\n\n"
               "Prints the policy's generation, sha256, categories with their states and any\n"
               "warnings. With --json: one JSON object with base, sha256, categories (id, name,\n"
               "option, state, should_not, can) and warnings.\n\nOptions:\n%s"
               "  --json           JSON output\n  -h, --help       show this help\n",
               options_help);
    else if (strcmp(sub, "check") == 0)
        printf(
            "Usage: llavaguard policy check [FILE] [options]\n\n"
            "Validates a policy file (FILE or --policy FILE). Exit status 0 and\n"
            "'<file>: ok, policy sha256 <hex>' when it is valid, 1 and the file, line and field\n"
            "of the first problem when it is not. Warnings go to stderr.\n\nOptions:\n%s"
            "  --json           print {\"ok\":..., \"policy_sha256\"|\"error\":...,"
            " \"warnings\":[...]}\n  -h, --help       show this help\n",
            options_help);
    else
        printf("Usage: llavaguard policy render [options]\n\n"
               "Writes the policy text exactly as the model reads it next to the image: no image\n"
               "marker and no trailing newline. Its SHA-256 is the policy hash of every verdict.\n"
               "\nOptions:\n%s"
               "  --raw            the builder's raw form instead, ending in \"\\n<image>\\n\"\n"
               "  --user-turn      the user turn as trained: \"<image>\\n\" then the text\n"
               "  -h, --help       show this help\n",
               options_help);
}

/* Reads the value of option `name` from "--name=value" or "--name value". */
static int option_value(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return 0;
    if (arg[n] == '=') {
        *val = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

static bool append_list(char *dst, size_t size, const char *ids) {
    size_t used = strlen(dst);
    int n = snprintf(dst + used, size - used, "%s%s", used ? "," : "", ids);
    return n >= 0 && (size_t)n < size - used;
}

static int parse_args(int argc, char **argv, policy_opts *o) {
    static const char *const value_opts[] = {"--version", "--policy", "--allow", "--sensitive"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
            continue;
        }
        int k = 0, r = 0;
        for (; k < 4 && (r = option_value(argc, argv, &i, value_opts[k], &val)) == 0; k++) {
        }
        if (r < 0) return app_usage_error(CMD, "option '%s' needs a value", a);
        if (r > 0) {
            if (k == 0) o->version = val;
            if (k == 1) o->file = val;
            if ((k == 2 && !append_list(o->allow, sizeof o->allow, val)) ||
                (k == 3 && !append_list(o->sensitive, sizeof o->sensitive, val)))
                return app_usage_error(CMD, "category lists too long");
        } else if (strcmp(a, "--raw") == 0) {
            o->raw = true;
        } else if (strcmp(a, "--user-turn") == 0) {
            o->user_turn = true;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return app_usage_error(CMD, "unrecognized option '%s'", a);
        } else if (!o->sub) {
            o->sub = a;
        } else if (strcmp(o->sub, "check") == 0 && !o->file) {
            o->file = a;
        } else {
            return app_usage_error(CMD, "unexpected argument '%s'", a);
        }
    }
    return APP_EXIT_OK;
}

/* Whether the comma-separated lists share an id (spaces around ids ignored). */
static const char *lists_overlap(const char *a, const char *b, char *id, size_t size) {
    for (const char *p = a; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ",");
        while (n && p[n - 1] == ' ') n--;
        if (n && n < size) {
            memcpy(id, p, n);
            id[n] = '\0';
            for (const char *q = b; *q;) {
                while (*q == ' ' || *q == ',') q++;
                size_t m = strcspn(q, ",");
                while (m && q[m - 1] == ' ') m--;
                if (m == n && memcmp(p, q, n) == 0) return id;
                q += strcspn(q, ",");
            }
        }
        p += strcspn(p, ",");
    }
    return NULL;
}

static int check_usage(const policy_opts *o) {
    if (!o->sub) return app_usage_error(CMD, "missing command (show, check or render)");
    if (strcmp(o->sub, "show") != 0 && strcmp(o->sub, "check") != 0 &&
        strcmp(o->sub, "render") != 0)
        return app_usage_error(CMD, "unknown command '%s' (expected show, check or render)",
                               o->sub);
    bool render = strcmp(o->sub, "render") == 0;
    if ((o->raw || o->user_turn) && !render)
        return app_usage_error(CMD, "--raw and --user-turn apply to 'render' only");
    if (o->raw && o->user_turn)
        return app_usage_error(CMD, "--raw and --user-turn exclude each other");
    if (o->json && render) return app_usage_error(CMD, "--json applies to 'show' and 'check'");
    if (o->version && o->file)
        return app_usage_error(CMD, "--version and a policy file exclude each other (set \"base\" "
                                    "in the file)");
    char id[64];
    if (lists_overlap(o->allow, o->sensitive, id, sizeof id))
        return app_usage_error(CMD, "category %s is both in --allow and --sensitive", id);
    return APP_EXIT_OK;
}

static void print_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_warnings_json(const lg_policy *pol) {
    printf("\"warnings\": [");
    for (size_t i = 0; i < lg_policy_n_warnings(pol); i++) {
        if (i) printf(", ");
        print_json_string(stdout, lg_policy_warning(pol, i));
    }
    printf("]");
}

/* Builds the policy the options describe. Returns an exit code; *out is set on success. */
static int build_policy(const policy_opts *o, lg_policy **out) {
    lg_error err = {0};
    lg_policy *pol = NULL;
    lg_status s = o->file ? lg_policy_load_file(o->file, &pol, &err)
                          : lg_policy_create_default(o->version, &pol, &err);
    if (s == LG_E_ARG) return app_usage_error(CMD, "--version: %s", err.msg);
    if (s != LG_OK) {
        if (o->json && strcmp(o->sub, "check") == 0) {
            printf("{\"ok\": false, \"error\": ");
            print_json_string(stdout, err.msg);
            printf("}\n");
            return APP_EXIT_FAIL;
        }
        return s == LG_E_FORMAT ? app_fail(CMD, "%s", err.msg) : app_fail_err(CMD, &err);
    }
    if ((o->allow[0] && lg_policy_set_states(pol, o->allow, LG_CATEGORY_NONVIOLATING) != LG_OK) ||
        (o->sensitive[0] &&
         lg_policy_set_states(pol, o->sensitive, LG_CATEGORY_SENSITIVE) != LG_OK)) {
        int rc = app_usage_error(CMD, "%s", lg_policy_errmsg(pol));
        lg_policy_free(pol);
        return rc;
    }
    *out = pol;
    return APP_EXIT_OK;
}

static void warn_stderr(const lg_policy *pol) {
    for (size_t i = 0; i < lg_policy_n_warnings(pol); i++)
        fprintf(stderr, "llavaguard policy: warning: %s\n", lg_policy_warning(pol, i));
}

static int finish_stdout(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) return app_fail(CMD, "cannot write to stdout");
    return APP_EXIT_OK;
}

static const char *source_name(const policy_opts *o, const lg_policy *pol, char *buf, size_t n) {
    if (o->file) return o->file;
    snprintf(buf, n, "built-in %s", lg_policy_version(pol));
    return buf;
}

static int do_show(const policy_opts *o, const lg_policy *pol) {
    if (o->json) {
        char *json = NULL;
        if (lg_policy_to_json(pol, LG_POLICY_JSON_DESCRIBE, &json) != LG_OK)
            return app_fail(CMD, "out of memory");
        printf("%s\n", json);
        lg_free(json);
        return finish_stdout();
    }
    char sha[65];
    lg_policy_sha256(pol, sha);
    if (o->file)
        printf("policy:  %s (base %s)\n", o->file, lg_policy_version(pol));
    else
        printf("policy:  built-in %s\n", lg_policy_version(pol));
    printf("sha256:  %s\ncategories:\n", sha);
    for (size_t i = 0; i < lg_policy_n_categories(pol); i++)
        printf("  %-6s %-14s %s\n", lg_policy_category_id(pol, i),
               lg_category_state_str(lg_policy_category_state(pol, i)),
               lg_policy_category_name(pol, i));
    if (lg_policy_n_warnings(pol)) printf("warnings:\n");
    for (size_t i = 0; i < lg_policy_n_warnings(pol); i++)
        printf("  %s\n", lg_policy_warning(pol, i));
    return finish_stdout();
}

static int do_check(const policy_opts *o, const lg_policy *pol) {
    char sha[65], buf[64];
    lg_policy_sha256(pol, sha);
    if (o->json) {
        printf("{\"ok\": true, \"policy_sha256\": \"%s\", ", sha);
        print_warnings_json(pol);
        printf("}\n");
    } else {
        warn_stderr(pol);
        printf("%s: ok, policy sha256 %s\n", source_name(o, pol, buf, sizeof buf), sha);
    }
    return finish_stdout();
}

static int do_render(const policy_opts *o, const lg_policy *pol) {
    lg_policy_render_mode mode = o->raw         ? LG_POLICY_RENDER_RAW
                                 : o->user_turn ? LG_POLICY_RENDER_USER_TURN
                                                : LG_POLICY_RENDER_STRIPPED;
    char *text = NULL;
    if (lg_policy_render(pol, mode, &text) != LG_OK) return app_fail(CMD, "out of memory");
    warn_stderr(pol);
    size_t n = strlen(text);
    size_t written = fwrite(text, 1, n, stdout);
    lg_free(text);
    if (written != n) return app_fail(CMD, "cannot write to stdout");
    return finish_stdout();
}

int cmd_policy(int argc, char **argv) {
    policy_opts o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc != APP_EXIT_OK) return rc;
    if (o.help) {
        bool known = o.sub && (strcmp(o.sub, "show") == 0 || strcmp(o.sub, "check") == 0 ||
                               strcmp(o.sub, "render") == 0);
        print_help(known ? o.sub : NULL);
        return APP_EXIT_OK;
    }
    rc = check_usage(&o);
    if (rc != APP_EXIT_OK) return rc;
    lg_policy *pol = NULL;
    rc = build_policy(&o, &pol);
    if (rc != APP_EXIT_OK) return rc;
    if (strcmp(o.sub, "show") == 0)
        rc = do_show(&o, pol);
    else if (strcmp(o.sub, "check") == 0)
        rc = do_check(&o, pol);
    else
        rc = do_render(&o, pol);
    lg_policy_free(pol);
    return rc;
}
