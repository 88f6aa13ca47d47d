/*
 * cmd_summary.c — `llavaguard summary RESULTS.sqlite`: per run, the images and rows, errors,
 * counts per rating and per category, and the throughput (rows' time span and the mean verdict
 * time), as text or JSON (--json). Reads the file read-only (docs/annotate.md).
 */
#include "annotate.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define CMD "summary"

static void print_help(void) {
    printf("Usage: llavaguard summary [--json] RESULTS.sqlite\n"
           "\n"
           "Prints, for every run of a results file: the model and policies, the number of\n"
           "images and rows, errors, counts per rating and category, and the throughput.\n"
           "\n"
           "Exit status: 0 printed, 1 the file cannot be read, 2 usage.\n");
}

/* Runs `sql` (one ?1 = run id) and adds each row (name, count) to obj. */
static int counts(sqlite3 *db, const char *sql, int64_t run, json_t *obj) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_int64(st, 1, run);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        json_object_set_new(obj, name ? name : "(error)",
                            json_integer(sqlite3_column_int64(st, 1)));
    }
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? 0 : -1;
}

static int run_summary(sqlite3 *db, sqlite3_stmt *runs, json_t **out) {
    int64_t run = sqlite3_column_int64(runs, 0);
    json_t *j = json_object();
    json_object_set_new(j, "run_id", json_integer(run));
    const char *names[] = {"started", "ended", "model_id", "model_hash", "program_version"};
    for (int i = 0; i < 5; i++) {
        const char *t = (const char *)sqlite3_column_text(runs, i + 1);
        json_object_set_new(j, names[i], t ? json_string(t) : json_null());
    }
    json_t *pols = json_loads((const char *)sqlite3_column_text(runs, 6), 0, NULL);
    json_t *sha = json_array();
    size_t i;
    json_t *pe;
    json_array_foreach(pols, i, pe) json_array_append(sha, json_object_get(pe, "sha256"));
    json_decref(pols);
    json_object_set_new(j, "policies", sha);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(DISTINCT key), count(*), count(error),"
                           " count(DISTINCT CASE WHEN error IS NOT NULL THEN key END),"
                           " (julianday(max(time)) - julianday(min(time))) * 86400.0,"
                           " avg(json_extract(timings, '$.total_s'))"
                           " FROM results WHERE run_id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        json_decref(j);
        return -1;
    }
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t images = sqlite3_column_int64(st, 0);
        double span = sqlite3_column_double(st, 4);
        json_object_set_new(j, "images", json_integer(images));
        json_object_set_new(j, "rows", json_integer(sqlite3_column_int64(st, 1)));
        json_object_set_new(j, "error_rows", json_integer(sqlite3_column_int64(st, 2)));
        json_object_set_new(j, "error_images", json_integer(sqlite3_column_int64(st, 3)));
        json_object_set_new(j, "span_s", json_real(span));
        json_object_set_new(j, "images_per_s",
                            span > 0 ? json_real((double)images / span) : json_null());
        json_object_set_new(j, "mean_total_s",
                            sqlite3_column_type(st, 5) == SQLITE_NULL
                                ? json_null()
                                : json_real(sqlite3_column_double(st, 5)));
    }
    sqlite3_finalize(st);
    json_t *rating = json_object(), *cat = json_object();
    if (counts(db,
               "SELECT rating, count(*) FROM results WHERE run_id = ?1 AND error IS NULL"
               " GROUP BY rating ORDER BY rating",
               run, rating) != 0 ||
        counts(db,
               "SELECT category, count(*) FROM results WHERE run_id = ?1 AND error IS NULL"
               " GROUP BY category ORDER BY category",
               run, cat) != 0) {
        json_decref(rating);
        json_decref(cat);
        json_decref(j);
        return -1;
    }
    json_object_set_new(j, "ratings", rating);
    json_object_set_new(j, "categories", cat);
    *out = j;
    return 0;
}

static void print_text(const json_t *j) {
    printf("run %lld: model %s (%.12s), %zu policies, started %s, ended %s\n",
           (long long)json_integer_value(json_object_get(j, "run_id")),
           json_string_value(json_object_get(j, "model_id")),
           json_string_value(json_object_get(j, "model_hash")),
           json_array_size(json_object_get(j, "policies")),
           json_string_value(json_object_get(j, "started")),
           json_is_string(json_object_get(j, "ended"))
               ? json_string_value(json_object_get(j, "ended"))
               : "(not yet)");
    printf("  images %lld, rows %lld, errors %lld rows (%lld images)\n",
           (long long)json_integer_value(json_object_get(j, "images")),
           (long long)json_integer_value(json_object_get(j, "rows")),
           (long long)json_integer_value(json_object_get(j, "error_rows")),
           (long long)json_integer_value(json_object_get(j, "error_images")));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(j, "ratings"), k, v)
        printf("  %-8s %lld\n", k, (long long)json_integer_value(v));
    json_object_foreach((json_t *)json_object_get(j, "categories"), k, v)
        printf("    %-44s %lld\n", k, (long long)json_integer_value(v));
    json_t *ips = json_object_get(j, "images_per_s");
    if (json_is_real(ips))
        printf("  throughput %.3f images/s over %.1f s, mean verdict %.3f s\n",
               json_real_value(ips), json_real_value(json_object_get(j, "span_s")),
               json_real_value(json_object_get(j, "mean_total_s")));
}

int cmd_summary(int argc, char **argv) {
    bool as_json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_help();
            return APP_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return app_usage_error(CMD, "unrecognized option '%s'", argv[i]);
        } else if (path) {
            return app_usage_error(CMD, "give exactly one results file");
        } else {
            path = argv[i];
        }
    }
    if (!path) return app_usage_error(CMD, "give a results file");
    ann_store *s = ann_store_open_ro(path, CMD);
    if (!s) return APP_EXIT_FAIL;
    sqlite3 *db = ann_store_db(s);
    sqlite3_stmt *runs;
    int rc = APP_EXIT_OK;
    json_t *all = json_array();
    if (sqlite3_prepare_v2(db,
                           "SELECT run_id, started, ended, model_id, model_hash, program_version,"
                           " policies FROM runs ORDER BY run_id",
                           -1, &runs, NULL) != SQLITE_OK) {
        rc = app_fail(CMD, "%s: %s", path, sqlite3_errmsg(db));
    } else {
        int r;
        while ((r = sqlite3_step(runs)) == SQLITE_ROW) {
            json_t *j = NULL;
            if (run_summary(db, runs, &j) != 0) {
                rc = app_fail(CMD, "%s: %s", path, sqlite3_errmsg(db));
                break;
            }
            json_array_append_new(all, j);
        }
        if (rc == APP_EXIT_OK && r != SQLITE_DONE)
            rc = app_fail(CMD, "%s: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(runs);
    }
    if (rc == APP_EXIT_OK) {
        if (as_json) {
            char *t = json_dumps(all, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
            if (t) puts(t);
            free(t);
        } else {
            size_t i;
            json_t *j;
            json_array_foreach(all, i, j) print_text(j);
            if (json_array_size(all) == 0) printf("no runs\n");
        }
    }
    json_decref(all);
    ann_store_close(s);
    return rc;
}
