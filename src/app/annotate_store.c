/*
 * annotate_store.c — the results file of `llavaguard annotate`: an SQLite database (Debian's
 * libsqlite3) in WAL mode with the tables `runs` and `results` documented in docs/annotate.md.
 * Rows are written in transactions, so a crash (SIGKILL included) loses at most the open
 * transaction and the primary key (run_id, key, policy_sha256) makes a duplicate row impossible.
 * Also: the merge of several results files, and the model hash recorded with every run.
 */
#include "annotate.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define ANN_APPLICATION_ID 0x4c474131 /* "LGA1": a llavaguard results file */
#define ANN_SCHEMA_VERSION 1

struct ann_store {
    sqlite3 *db;
    sqlite3_stmt *put, *count_all, *count_ok;
    char path[4096];
    char msg[1024];
};

static const char SCHEMA[] =
    "CREATE TABLE runs(run_id INTEGER PRIMARY KEY, started TEXT, ended TEXT, command TEXT,"
    " model_id TEXT, model_hash TEXT, program_version TEXT, policies TEXT, params TEXT);"
    "CREATE TABLE results(run_id INTEGER NOT NULL, key TEXT NOT NULL,"
    " policy_sha256 TEXT NOT NULL, source TEXT, image_sha256 TEXT, width INTEGER,"
    " height INTEGER, rating TEXT, category TEXT, p_unsafe REAL, category_probs TEXT,"
    " rationale TEXT, error TEXT, meta TEXT, timings TEXT, time TEXT,"
    " PRIMARY KEY(run_id, key, policy_sha256));"
    "CREATE INDEX results_rating_category ON results(rating, category);"
    "CREATE INDEX results_run_rating_category ON results(run_id, rating, category);"
    "CREATE INDEX results_errors ON results(run_id) WHERE error IS NOT NULL;"
    "CREATE INDEX results_image_sha256 ON results(image_sha256);";

static const char *const RESULT_COLUMNS[] = {
    "run_id", "key",    "policy_sha256", "source",   "image_sha256",   "width",
    "height", "rating", "category",      "p_unsafe", "category_probs", "rationale",
    "error",  "meta",   "timings",       "time"};
static const char *const RUN_COLUMNS[] = {"run_id",          "started",  "ended",
                                          "command",         "model_id", "model_hash",
                                          "program_version", "policies", "params"};

const char *ann_store_errmsg(const ann_store *s) {
    return s ? s->msg : "out of memory";
}

sqlite3 *ann_store_db(ann_store *s) {
    return s->db;
}

void ann_time_now(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[24];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03ldZ", buf, ts.tv_nsec / 1000000);
}

static int exec(ann_store *s, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) == SQLITE_OK) return 0;
    snprintf(s->msg, sizeof s->msg, "%s: %s", s->path, err ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    return -1;
}

static int db_fail(ann_store *s, const char *what) {
    int code = sqlite3_extended_errcode(s->db);
    const char *hint = (code == SQLITE_FULL || code == SQLITE_IOERR_WRITE ||
                        code == SQLITE_IOERR_FSYNC || code == SQLITE_IOERR_TRUNCATE)
                           ? " (disk full or over the file size limit?)"
                           : "";
    snprintf(s->msg, sizeof s->msg, "%s: %s: %s%s", s->path, what, sqlite3_errmsg(s->db), hint);
    return -1;
}

/* True when every name in `cols` is a column of `table`. */
static bool has_columns(sqlite3 *db, const char *table, const char *const *cols, size_t n) {
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return false;
    size_t found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        for (size_t i = 0; i < n; i++)
            if (name && strcmp(name, cols[i]) == 0) found++;
    }
    sqlite3_finalize(st);
    return found == n;
}

static int int_pragma(ann_store *s, const char *name, int *out) {
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA %s", name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Checks an existing database is ours, or creates the schema in an empty one. */
static int check_or_create(ann_store *s, bool create) {
    int app_id = 0, n_tables = 0;
    sqlite3_stmt *st;
    if (int_pragma(s, "application_id", &app_id) != 0 ||
        sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) !=
            SQLITE_OK) {
        snprintf(s->msg, sizeof s->msg, "%s is not a llavaguard results file (%s)", s->path,
                 sqlite3_errmsg(s->db));
        return -1;
    }
    if (sqlite3_step(st) == SQLITE_ROW) n_tables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (n_tables == 0 && app_id == 0) {
        if (!create) {
            snprintf(s->msg, sizeof s->msg, "%s is empty: not a llavaguard results file", s->path);
            return -1;
        }
        char sql[sizeof SCHEMA + 128];
        snprintf(sql, sizeof sql,
                 "BEGIN IMMEDIATE;%sPRAGMA application_id=%d;"
                 "PRAGMA user_version=%d;COMMIT;",
                 SCHEMA, ANN_APPLICATION_ID, ANN_SCHEMA_VERSION);
        if (exec(s, sql) != 0) {
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        return 0;
    }
    if (app_id != ANN_APPLICATION_ID ||
        !has_columns(s->db, "runs", RUN_COLUMNS, sizeof RUN_COLUMNS / sizeof RUN_COLUMNS[0]) ||
        !has_columns(s->db, "results", RESULT_COLUMNS,
                     sizeof RESULT_COLUMNS / sizeof RESULT_COLUMNS[0])) {
        snprintf(s->msg, sizeof s->msg,
                 "%s is an SQLite database but not a llavaguard results file (refusing to "
                 "touch it)",
                 s->path);
        return -1;
    }
    return 0;
}

static ann_store *open_common(const char *path, const char *cmd, bool write, bool create) {
    ann_store *s = calloc(1, sizeof *s);
    if (!s) {
        app_fail(cmd, "out of memory");
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (!write || !create) {
            app_fail(cmd, "%s: %s", path, strerror(errno));
            free(s);
            return NULL;
        }
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            if (slash == dir)
                slash[1] = '\0';
            else
                *slash = '\0';
        } else {
            snprintf(dir, sizeof dir, ".");
        }
        struct stat ds;
        if (stat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode)) {
            app_fail(cmd, "%s: the output folder %s does not exist", path, dir);
            free(s);
            return NULL;
        }
    } else if (!S_ISREG(st.st_mode)) {
        app_fail(cmd, "%s is not a regular file", path);
        free(s);
        return NULL;
    }
    int flags =
        write ? SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) : SQLITE_OPEN_READONLY;
    if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        app_fail(cmd, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "no memory");
        ann_store_close(s);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, 30000);
    if (check_or_create(s, write && create) != 0 ||
        (write && exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") != 0)) {
        app_fail(cmd, "%s", s->msg);
        ann_store_close(s);
        return NULL;
    }
    return s;
}

ann_store *ann_store_open(const char *path, const char *cmd, bool create) {
    return open_common(path, cmd, true, create);
}

ann_store *ann_store_open_ro(const char *path, const char *cmd) {
    return open_common(path, cmd, false, false);
}

void ann_store_close(ann_store *s) {
    if (!s) return;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->count_all);
    sqlite3_finalize(s->count_ok);
    sqlite3_close(s->db);
    free(s);
}

/* ---- runs ---- */

/* The compatibility of two runs: same model hash, policies and "verdict" parameters. */
static bool same_verdict_params(const char *a, const char *b) {
    json_t *ja = json_loads(a ? a : "{}", 0, NULL), *jb = json_loads(b ? b : "{}", 0, NULL);
    bool eq =
        ja && jb && json_equal(json_object_get(ja, "verdict"), json_object_get(jb, "verdict"));
    json_decref(ja);
    json_decref(jb);
    return eq;
}

static bool same_policies(const char *a, const char *b) {
    json_t *ja = json_loads(a ? a : "[]", 0, NULL), *jb = json_loads(b ? b : "[]", 0, NULL);
    bool eq = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return eq;
}

static const char *col_text(sqlite3_stmt *st, int i) {
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Finds the run of `db` (schema `schema`) that matches model_hash/policies/params; 0 if none.
 * *n_runs receives the number of runs. */
static int64_t find_run(sqlite3 *db, const char *schema, const char *model_hash,
                        const char *policies, const char *params, int64_t *n_runs) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT run_id, model_hash, policies, params FROM %s.runs ORDER BY run_id", schema);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return -1;
    int64_t found = 0, n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        n++;
        if (!found && strcmp(col_text(st, 1), model_hash) == 0 &&
            same_policies(col_text(st, 2), policies) &&
            same_verdict_params(col_text(st, 3), params))
            found = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (n_runs) *n_runs = n;
    return found;
}

int ann_store_begin_run(ann_store *s, const ann_run_info *info, bool new_run, int64_t *run_id,
                        bool *resumed) {
    int64_t n_runs = 0;
    int64_t id = find_run(s->db, "main", info->model_hash, info->policies, info->params, &n_runs);
    if (id < 0) return db_fail(s, "reading runs");
    if (id > 0) {
        *run_id = id;
        *resumed = true;
        return 0;
    }
    if (n_runs > 0 && !new_run) {
        snprintf(s->msg, sizeof s->msg,
                 "%s holds results of a different model, policy or verdict setting; use another "
                 "output file, or --new-run to add this run beside the existing one",
                 s->path);
        return -1;
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO runs(started, command, model_id, model_hash,"
                           " program_version, policies, params) VALUES(?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "creating the run");
    char now[32];
    ann_time_now(now);
    sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, info->command, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, info->model_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, info->model_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, lg_version(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, info->policies, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, info->params, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return db_fail(s, "creating the run");
    *run_id = sqlite3_last_insert_rowid(s->db);
    *resumed = false;
    return 0;
}

int ann_store_find_run(ann_store *s, const ann_run_info *info, int64_t *run_id) {
    int64_t id = find_run(s->db, "main", info->model_hash, info->policies, info->params, NULL);
    if (id < 0) return db_fail(s, "reading runs");
    if (id > 0) *run_id = id;
    return id > 0;
}

int ann_store_end_run(ann_store *s, int64_t run_id) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "UPDATE runs SET ended=? WHERE run_id=?", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(s, "ending the run");
    char now[32];
    ann_time_now(now);
    sqlite3_bind_text(st, 1, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, run_id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "ending the run");
}

/* ---- rows ---- */

int ann_store_begin(ann_store *s) {
    return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : db_fail(s, "starting a transaction");
}

int ann_store_commit(ann_store *s) {
    return sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0
                                                                        : db_fail(s, "committing");
}

void ann_store_rollback(ann_store *s) {
    if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *v) {
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

int ann_store_put(ann_store *s, int64_t run_id, const ann_row *r) {
    if (!s->put &&
        sqlite3_prepare_v2(s->db,
                           "INSERT OR REPLACE INTO results(run_id, key, policy_sha256, source,"
                           " image_sha256, width, height, rating, category, p_unsafe,"
                           " category_probs, rationale, error, meta, timings, time)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &s->put, NULL) != SQLITE_OK)
        return db_fail(s, "preparing the insert");
    sqlite3_stmt *st = s->put;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    char now[32];
    ann_time_now(now);
    sqlite3_bind_int64(st, 1, run_id);
    bind_opt_text(st, 2, r->key);
    bind_opt_text(st, 3, r->policy_sha256);
    bind_opt_text(st, 4, r->source);
    bind_opt_text(st, 5, r->image_sha256);
    if (r->width > 0) sqlite3_bind_int(st, 6, r->width);
    if (r->height > 0) sqlite3_bind_int(st, 7, r->height);
    bind_opt_text(st, 8, r->rating);
    bind_opt_text(st, 9, r->category);
    if (!isnan(r->p_unsafe)) sqlite3_bind_double(st, 10, r->p_unsafe);
    bind_opt_text(st, 11, r->category_probs);
    bind_opt_text(st, 12, r->rationale);
    bind_opt_text(st, 13, r->error);
    bind_opt_text(st, 14, r->meta);
    bind_opt_text(st, 15, r->timings);
    sqlite3_bind_text(st, 16, now, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(s, "writing a row");
}

int ann_store_count_key(ann_store *s, int64_t run_id, const char *key, bool count_errors) {
    sqlite3_stmt **pst = count_errors ? &s->count_all : &s->count_ok;
    if (!*pst && sqlite3_prepare_v2(
                     s->db,
                     count_errors ? "SELECT count(*) FROM results WHERE run_id=? AND key=?"
                                  : "SELECT count(*) FROM results WHERE run_id=? AND key=? AND"
                                    " error IS NULL",
                     -1, pst, NULL) != SQLITE_OK) {
        db_fail(s, "preparing the resume check");
        return -1;
    }
    sqlite3_stmt *st = *pst;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    int n = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (n < 0) db_fail(s, "reading results");
    return n;
}

/* ---- merge ---- */

int ann_store_merge(ann_store *s, const char *path, bool allow_new_runs, const char *cmd,
                    int64_t *n_rows) {
    ann_store *in = ann_store_open_ro(path, cmd); /* checks the schema of the input */
    if (!in) return -1;
    ann_store_close(in);
    sqlite3_stmt *st = NULL, *ins = NULL;
    int64_t added = 0;
    if (sqlite3_prepare_v2(s->db, "ATTACH DATABASE ? AS src", -1, &st, NULL) != SQLITE_OK)
        return app_fail(cmd, "%s", sqlite3_errmsg(s->db)), -1;
    sqlite3_bind_text(st, 1, path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE)
        return app_fail(cmd, "cannot read %s: %s", path, sqlite3_errmsg(s->db)), -1;
    int result = -1;
    if (ann_store_begin(s) != 0) goto done;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT run_id, started, ended, command, model_id, model_hash,"
                           " program_version, policies, params FROM src.runs ORDER BY run_id",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO main.results SELECT ?1, key, policy_sha256, source,"
                           " image_sha256, width, height, rating, category, p_unsafe,"
                           " category_probs, rationale, error, meta, timings, time"
                           " FROM src.results WHERE run_id=?2 AND true"
                           " ON CONFLICT(run_id, key, policy_sha256) DO UPDATE SET"
                           " source=excluded.source, image_sha256=excluded.image_sha256,"
                           " width=excluded.width, height=excluded.height,"
                           " rating=excluded.rating, category=excluded.category,"
                           " p_unsafe=excluded.p_unsafe, category_probs=excluded.category_probs,"
                           " rationale=excluded.rationale, error=excluded.error,"
                           " meta=excluded.meta, timings=excluded.timings, time=excluded.time"
                           " WHERE results.error IS NOT NULL AND excluded.error IS NULL",
                           -1, &ins, NULL) != SQLITE_OK) {
        db_fail(s, "merging");
        app_fail(cmd, "%s", s->msg);
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t src_id = sqlite3_column_int64(st, 0);
        const char *hash = col_text(st, 5), *pols = col_text(st, 7), *params = col_text(st, 8);
        int64_t n_runs = 0;
        int64_t id = find_run(s->db, "main", hash, pols, params, &n_runs);
        if (id == 0 && n_runs > 0 && !allow_new_runs) {
            app_fail(cmd,
                     "%s: run %lld used a different model, policy or verdict setting than the "
                     "runs already in the output (use --allow-different to keep both)",
                     path, (long long)src_id);
            goto done;
        }
        if (id == 0) {
            sqlite3_stmt *nr;
            if (sqlite3_prepare_v2(s->db,
                                   "INSERT INTO main.runs(started, ended, command, model_id,"
                                   " model_hash, program_version, policies, params)"
                                   " SELECT started, ended, command, model_id, model_hash,"
                                   " program_version, policies, params FROM src.runs"
                                   " WHERE run_id=?",
                                   -1, &nr, NULL) != SQLITE_OK) {
                db_fail(s, "merging runs");
                app_fail(cmd, "%s", s->msg);
                goto done;
            }
            sqlite3_bind_int64(nr, 1, src_id);
            int r2 = sqlite3_step(nr);
            sqlite3_finalize(nr);
            if (r2 != SQLITE_DONE) {
                db_fail(s, "merging runs");
                app_fail(cmd, "%s", s->msg);
                goto done;
            }
            id = sqlite3_last_insert_rowid(s->db);
        }
        sqlite3_reset(ins);
        sqlite3_bind_int64(ins, 1, id);
        sqlite3_bind_int64(ins, 2, src_id);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            db_fail(s, "merging rows");
            app_fail(cmd, "%s", s->msg);
            goto done;
        }
        added += sqlite3_changes(s->db);
    }
    if (rc != SQLITE_DONE) {
        db_fail(s, "reading runs");
        app_fail(cmd, "%s", s->msg);
        goto done;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    st = ins = NULL;
    if (ann_store_commit(s) != 0) {
        app_fail(cmd, "%s", s->msg);
        goto done;
    }
    result = 0;
    if (n_rows) *n_rows = added;
done:
    sqlite3_finalize(st);
    sqlite3_finalize(ins);
    ann_store_rollback(s);
    sqlite3_exec(s->db, "DETACH DATABASE src", NULL, NULL, NULL);
    return result;
}

/* ---- the model hash ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends the first 8 bytes and the JSON header of a safetensors file to *buf. */
static bool append_st_header(const char *path, uint8_t **buf, size_t *len, lg_error *err) {
    FILE *f = fopen(path, "rb");
    uint8_t head[8];
    if (!f || fread(head, 1, 8, f) != 8) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot read the safetensors header", path);
        if (f) fclose(f);
        return false;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | head[i];
    if (n > ((uint64_t)100 << 20)) {
        snprintf(err->msg, sizeof err->msg, "%s: safetensors header of %llu bytes", path,
                 (unsigned long long)n);
        fclose(f);
        return false;
    }
    uint8_t *nb = realloc(*buf, *len + 8 + n);
    if (!nb) {
        fclose(f);
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return false;
    }
    *buf = nb;
    memcpy(nb + *len, head, 8);
    bool ok = fread(nb + *len + 8, 1, n, f) == n;
    fclose(f);
    if (!ok) {
        snprintf(err->msg, sizeof err->msg, "%s: truncated safetensors header", path);
        return false;
    }
    *len += 8 + n;
    return true;
}

bool ann_model_hash(const char *model_dir, char hex[65], lg_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    uint8_t *cfg = NULL;
    size_t cfg_len = 0;
    if (lg_read_file(path, (size_t)64 << 20, &cfg, &cfg_len, err) != LG_OK) return false;
    uint8_t *buf = malloc(cfg_len ? cfg_len : 1);
    if (!buf) {
        lg_free(cfg);
        return false;
    }
    memcpy(buf, cfg, cfg_len);
    lg_free(cfg);
    size_t len = cfg_len;
    struct dirent **names = NULL;
    int n = scandir(model_dir, &names, NULL, NULL);
    char **st_files = NULL;
    size_t n_st = 0;
    bool ok = n >= 0;
    if (!ok) snprintf(err->msg, sizeof err->msg, "%s: %s", model_dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        if (ok && l > 12 && strcmp(nm + l - 12, ".safetensors") == 0) {
            char **ns = realloc(st_files, (n_st + 1) * sizeof *ns);
            if (ns) {
                st_files = ns;
                st_files[n_st++] = strdup(nm);
            }
        }
        free(names[i]);
    }
    free(names);
    if (st_files) qsort(st_files, n_st, sizeof *st_files, cmp_str);
    for (size_t i = 0; i < n_st; i++) {
        snprintf(path, sizeof path, "%s/%s", model_dir, st_files[i] ? st_files[i] : "");
        if (ok && !append_st_header(path, &buf, &len, err)) ok = false;
        free(st_files[i]);
    }
    free(st_files);
    if (ok) lg_sha256_hex(buf, len, hex);
    free(buf);
    return ok;
}
