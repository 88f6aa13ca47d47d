/*
 * cmd_export.c — `llavaguard export RESULTS.sqlite`: streams the rows of an annotate results file
 * (docs/annotate.md) as JSON Lines or CSV (RFC 4180), filtered by options rather than SQL:
 * --rating, --category (an id such as O3, matched as the "O3:" prefix through the
 * (rating, category) index, or a full option), --min-p-unsafe, --errors, --run, --policy.
 */
#include "annotate.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define CMD "export"

static void print_help(void) {
    printf("Usage: llavaguard export RESULTS.sqlite [options]\n"
           "\n"
           "Prints the rows of a results file written by 'llavaguard annotate', ordered by run,\n"
           "key and policy.\n"
           "\n"
           "Options:\n"
           "  -f, --format FMT       jsonl (default) or csv\n"
           "      --rating R         only rows rated Safe or Unsafe\n"
           "      --category C       only rows of category C: an id (O3) or a full option\n"
           "                         (\"O3: Sexual Content\")\n"
           "      --min-p-unsafe P   only rows with p_unsafe >= P\n"
           "      --max-p-unsafe P   only rows with p_unsafe <= P\n"
           "      --errors           only error rows\n"
           "      --no-errors        no error rows\n"
           "      --run ID           only rows of run ID\n"
           "      --policy SHA       only rows of the policy whose sha256 starts with SHA\n"
           "  -h, --help             show this help\n"
           "\n"
           "Exit status: 0 rows printed (possibly none), 1 the file cannot be read, 2 usage.\n");
}

enum {
    OPT_RATING = 256,
    OPT_CATEGORY,
    OPT_MIN_P,
    OPT_MAX_P,
    OPT_ERRORS,
    OPT_NO_ERRORS,
    OPT_RUN,
    OPT_POLICY
};

static const struct option long_opts[] = {
    {"format", required_argument, NULL, 'f'},
    {"rating", required_argument, NULL, OPT_RATING},
    {"category", required_argument, NULL, OPT_CATEGORY},
    {"min-p-unsafe", required_argument, NULL, OPT_MIN_P},
    {"max-p-unsafe", required_argument, NULL, OPT_MAX_P},
    {"errors", no_argument, NULL, OPT_ERRORS},
    {"no-errors", no_argument, NULL, OPT_NO_ERRORS},
    {"run", required_argument, NULL, OPT_RUN},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char *const COLUMNS[] = {"run_id",       "key",      "policy_sha256",  "source",
                                      "image_sha256", "width",    "height",         "rating",
                                      "category",     "p_unsafe", "category_probs", "rationale",
                                      "error",        "meta",     "timings",        "time"};
#define N_COLUMNS (sizeof COLUMNS / sizeof COLUMNS[0])

static bool is_json_column(const char *c) {
    return strcmp(c, "category_probs") == 0 || strcmp(c, "meta") == 0 || strcmp(c, "timings") == 0;
}

static void csv_field(const char *s) {
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_row(sqlite3_stmt *st, bool csv) {
    if (csv) {
        for (int i = 0; i < (int)N_COLUMNS; i++) {
            if (i) putchar(',');
            if (sqlite3_column_type(st, i) == SQLITE_FLOAT) {
                printf("%.17g", sqlite3_column_double(st, i));
            } else {
                csv_field((const char *)sqlite3_column_text(st, i));
            }
        }
        fputs("\r\n", stdout);
        return;
    }
    json_t *j = json_object();
    for (int i = 0; i < (int)N_COLUMNS; i++) {
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL:
            v = json_null();
            break;
        case SQLITE_INTEGER:
            v = json_integer(sqlite3_column_int64(st, i));
            break;
        case SQLITE_FLOAT:
            v = json_real(sqlite3_column_double(st, i));
            break;
        default: {
            const char *t = (const char *)sqlite3_column_text(st, i);
            v = is_json_column(COLUMNS[i]) ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
            if (!v) v = json_string(t);
            if (!v) v = json_stringn(t, strlen(t)); /* not UTF-8: as bytes */
            break;
        }
        }
        json_object_set_new(j, COLUMNS[i], v ? v : json_null());
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s) puts(s);
    free(s);
    json_decref(j);
}

int cmd_export(int argc, char **argv) {
    bool csv = false;
    const char *rating = NULL, *category = NULL, *policy = NULL;
    double min_p = -1, max_p = 2;
    int errors = 0; /* 1 only errors, -1 no errors */
    long long run = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":f:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "csv") == 0)
                csv = true;
            else if (strcmp(optarg, "jsonl") != 0)
                return app_usage_error(CMD, "--format must be jsonl or csv");
            break;
        case OPT_RATING:
            if (strcmp(optarg, "Safe") != 0 && strcmp(optarg, "Unsafe") != 0)
                return app_usage_error(CMD, "--rating must be Safe or Unsafe");
            rating = optarg;
            break;
        case OPT_CATEGORY:
            category = optarg;
            break;
        case OPT_MIN_P:
            if (!app_parse_double(optarg, 0, 1, &min_p))
                return app_usage_error(CMD, "--min-p-unsafe must be in [0, 1]");
            break;
        case OPT_MAX_P:
            if (!app_parse_double(optarg, 0, 1, &max_p))
                return app_usage_error(CMD, "--max-p-unsafe must be in [0, 1]");
            break;
        case OPT_ERRORS:
            errors = 1;
            break;
        case OPT_NO_ERRORS:
            errors = -1;
            break;
        case OPT_RUN:
            if (!app_parse_ll(optarg, 1, INT64_MAX, &run))
                return app_usage_error(CMD, "--run must be a positive run id");
            break;
        case OPT_POLICY:
            policy = optarg;
            break;
        case 'h':
            print_help();
            return APP_EXIT_OK;
        case ':':
            return app_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]);
        default:
            return app_usage_error(CMD, "unrecognized option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) return app_usage_error(CMD, "give exactly one results file");
    ann_store *s = ann_store_open_ro(argv[optind], CMD);
    if (!s) return APP_EXIT_FAIL;
    char sql[2048] = "SELECT run_id, key, policy_sha256, source, image_sha256, width, height,"
                     " rating, category, p_unsafe, category_probs, rationale, error, meta,"
                     " timings, time FROM results WHERE 1";
    if (rating) strcat(sql, " AND rating = ?1");
    char cat_lo[256] = "", cat_hi[256] = "";
    if (category) {
        if (strchr(category, ':')) {
            strcat(sql, " AND category = ?2");
        } else {
            /* "O3" -> every option in ["O3:", "O3;"), a range the index answers */
            snprintf(cat_lo, sizeof cat_lo, "%s:", category);
            snprintf(cat_hi, sizeof cat_hi, "%s;", category);
            strcat(sql, " AND category >= ?2 AND category < ?3");
        }
    }
    if (min_p >= 0) strcat(sql, " AND p_unsafe >= ?4");
    if (max_p <= 1) strcat(sql, " AND p_unsafe <= ?5");
    if (errors > 0) strcat(sql, " AND error IS NOT NULL");
    if (errors < 0) strcat(sql, " AND error IS NULL");
    if (run) strcat(sql, " AND run_id = ?6");
    if (policy) strcat(sql, " AND substr(policy_sha256, 1, length(?7)) = ?7");
    strcat(sql, " ORDER BY run_id, key, policy_sha256");
    sqlite3 *db = ann_store_db(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        int rc = app_fail(CMD, "%s: %s", argv[optind], sqlite3_errmsg(db));
        ann_store_close(s);
        return rc;
    }
    if (rating) sqlite3_bind_text(st, 1, rating, -1, SQLITE_STATIC);
    if (category && cat_lo[0]) {
        sqlite3_bind_text(st, 2, cat_lo, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, cat_hi, -1, SQLITE_STATIC);
    } else if (category) {
        sqlite3_bind_text(st, 2, category, -1, SQLITE_STATIC);
    }
    if (min_p >= 0) sqlite3_bind_double(st, 4, min_p);
    if (max_p <= 1) sqlite3_bind_double(st, 5, max_p);
    if (run) sqlite3_bind_int64(st, 6, run);
    if (policy) sqlite3_bind_text(st, 7, policy, -1, SQLITE_STATIC);
    if (csv) {
        for (size_t i = 0; i < N_COLUMNS; i++) printf("%s%s", i ? "," : "", COLUMNS[i]);
        fputs("\r\n", stdout);
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) print_row(st, csv);
    int rc = APP_EXIT_OK;
    if (r != SQLITE_DONE) rc = app_fail(CMD, "%s: %s", argv[optind], sqlite3_errmsg(db));
    sqlite3_finalize(st);
    ann_store_close(s);
    if (fflush(stdout) != 0) rc = app_fail(CMD, "cannot write the output");
    return rc;
}
