/*
 * annotate.h — the pieces of `llavaguard annotate` and its companions (export, summary, merge):
 * input walking (files, directories, lists, WebDataset shards: annotate_inputs.c), the SQLite
 * results store (annotate_store.c), the model hash (annotate_store.c), progress
 * (annotate_progress.c) and the MPI work distribution (annotate_mpi.c). The schema and every
 * behaviour are documented in docs/annotate.md.
 */
#ifndef LG_APP_ANNOTATE_H
#define LG_APP_ANNOTATE_H

#include "app.h"

/* Messages and paths are formatted into fixed buffers and cut short on purpose when too long. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* annotate's exit statuses beyond app.h's: some inputs became error rows (the run finished). */
#define ANN_EXIT_PARTIAL 4
#define ANN_EXIT_SIGINT 130
#define ANN_EXIT_SIGTERM 143

/* ---- inputs (annotate_inputs.c) ---- */

/* A unit of work found while walking the inputs: one image file (key, path) or one WebDataset
 * shard (key = the shard name, the prefix of its members' keys). */
typedef enum ann_unit_kind { ANN_UNIT_FILE = 0, ANN_UNIT_SHARD = 1 } ann_unit_kind;

typedef struct ann_unit {
    ann_unit_kind kind;
    char *key;
    char *path;
} ann_unit;

/* One image to judge, or an input error to record: exactly one of bytes (size > 0) or error. */
typedef struct ann_item {
    char *key;
    char *source;   /* the file path, or "SHARD:MEMBER" */
    uint8_t *bytes; /* the encoded image (malloc) */
    size_t size;
    char *meta;  /* a shard sample's .json member (valid JSON text) or NULL */
    char *error; /* an input error ("cannot read ...") or NULL */
    lg_status status;
    double t_read; /* seconds spent reading the bytes */
    struct ann_item *next;
} ann_item;

void ann_item_free(ann_item *it);

typedef struct ann_walk_ops {
    void *user;
    /* A unit was found (the directory walk, lists and arguments). Return non-zero to stop. */
    int (*unit)(void *user, const ann_unit *u);
    /* A file was skipped (not an image or a shard, a symlink out of the tree, ...). */
    void (*skipped)(void *user, const char *path, const char *why);
    /* A problem that does not stop the walk (an unreadable subdirectory, ...). */
    void (*problem)(void *user, const char *msg);
    volatile sig_atomic_t *stop; /* polled between units; may be NULL */
} ann_walk_ops;

/* Walks the inputs in order: image files and shards given directly, directories (recursive,
 * entries sorted bytewise, symlinks followed only to files inside the tree), list files (*.txt,
 * *.lst, *.list, and "-" for standard input: one path per line). Returns 0, non-zero when a unit
 * callback stopped it, or -1 after printing a message for an input that cannot be opened at
 * all (a missing file or directory, an unreadable list). */
int ann_walk(char *const *inputs, size_t n_inputs, const ann_walk_ops *ops);

/* Checks that every input exists and can be opened (before anything is written). Prints the
 * message and returns false otherwise. "-" is always accepted. */
bool ann_inputs_check(char *const *inputs, size_t n_inputs);

/* True when the name ends in an image extension (.jpg .jpeg .png .webp .gif .bmp, any case). */
bool ann_is_image_name(const char *name);
/* True when the name ends in .tar, .tar.gz, .tgz or .tar.zst. */
bool ann_is_shard_name(const char *name);

typedef struct ann_expand_ops {
    void *user;
    /* Should this key be read? (the --shard filter and the resume check) */
    bool (*want)(void *user, const char *key);
    /* An item (owned by the callee from then on). Return non-zero to stop. */
    int (*item)(void *user, ann_item *it);
    /* A sample with this key was found in a shard (the progress total grows). */
    void (*found)(void *user, const char *key);
    void (*skipped)(void *user, const char *path, const char *why);
    volatile sig_atomic_t *stop;
    size_t max_bytes; /* images larger than this become error rows */
} ann_expand_ops;

/* Reads a unit into items: a file becomes one item (its bytes, or an error item); a shard is
 * read member by member with libarchive, grouped by WebDataset key, one item per sample with an
 * image member (plus error items for unsafe member paths, oversized or unreadable members and a
 * corrupt archive). Returns 0 or the non-zero value of a callback that stopped it. */
int ann_expand(const ann_unit *u, const ann_expand_ops *ops);

/* ---- the results store (annotate_store.c) ---- */

typedef struct ann_store ann_store;

/* What identifies a run; a rerun with equal fields resumes it. */
typedef struct ann_run_info {
    const char *command;
    const char *model_id;
    const char *model_hash;
    const char *policies; /* JSON array of {"sha256", "text"} */
    const char *params;   /* JSON object; its "verdict" member must match to resume */
} ann_run_info;

/* One row of `results`. Strings may be NULL (SQL NULL). */
typedef struct ann_row {
    const char *key, *policy_sha256, *source, *image_sha256;
    int width, height; /* <= 0: NULL */
    const char *rating, *category;
    double p_unsafe; /* NAN: NULL */
    const char *category_probs, *rationale, *error, *meta, *timings;
} ann_row;

/* Opens (creating when missing) a results file for writing. Refuses a missing folder, a file
 * that is not a llavaguard results database. Message printed for `cmd`; returns NULL. */
ann_store *ann_store_open(const char *path, const char *cmd, bool create);
/* Opens a results file read-only (export, summary, the resume check). */
ann_store *ann_store_open_ro(const char *path, const char *cmd);
void ann_store_close(ann_store *s);
const char *ann_store_errmsg(const ann_store *s);

/* Finds the run `info` resumes (same model hash, policies and verdict parameters) or, when
 * there is none, creates one — refused (message printed, -1) when other runs exist unless
 * new_run. Sets *run_id and *resumed. */
int ann_store_begin_run(ann_store *s, const ann_run_info *info, bool new_run, int64_t *run_id,
                        bool *resumed);
/* Finds the run `info` resumes without creating one: 1 (and *run_id) when found, 0 when not,
 * -1 on error. */
int ann_store_find_run(ann_store *s, const ann_run_info *info, int64_t *run_id);
/* Sets the run's `ended` time to now. */
int ann_store_end_run(ann_store *s, int64_t run_id);

/* Transactions: rows are written between begin and commit. Return 0, or -1 with a message. */
int ann_store_begin(ann_store *s);
int ann_store_commit(ann_store *s);
void ann_store_rollback(ann_store *s);
int ann_store_put(ann_store *s, int64_t run_id, const ann_row *r);

/* How many rows of `key` the run holds (errors excluded when skip_errors is false). -1 on error. */
int ann_store_count_key(ann_store *s, int64_t run_id, const char *key, bool count_errors);

/* Merges every run and row of the results file `path` into s (one transaction). Runs match
 * s's runs by model hash, policies and verdict parameters; a file with a run that matches none
 * is refused (-1, message printed) unless allow_new_runs, when it is added as a new run. A row
 * already present is kept, except that a verdict replaces an error row. *n_rows: rows added. */
int ann_store_merge(ann_store *s, const char *path, bool allow_new_runs, const char *cmd,
                    int64_t *n_rows);

/* The underlying connection (export and summary run their own queries). */
struct sqlite3 *ann_store_db(ann_store *s);

/* The current UTC time as "2026-12-06T12:00:00.123Z". */
void ann_time_now(char out[32]);

/* The model hash: SHA-256 over config.json's bytes followed by, for every *.safetensors file in
 * name order, its first 8 bytes and its JSON header. Returns false (message in err) on failure. */
bool ann_model_hash(const char *model_dir, char hex[65], lg_error *err);

/* ---- progress (annotate_progress.c) ---- */

typedef struct ann_progress {
    bool tty, quiet;
    double interval_s; /* between plain lines when not a TTY */
    double t_start, t_last;
    uint64_t total, done, judged, resumed, errors, unsafe, skipped;
    int width; /* of the last TTY line */
} ann_progress;

void ann_progress_init(ann_progress *p, bool quiet, double interval_s);
/* Prints the line when due (force: now). */
void ann_progress_update(ann_progress *p, bool force);
/* Ends the TTY line and prints the final summary. */
void ann_progress_finish(ann_progress *p, const char *out, const char *how);
double ann_now(void);

/* ---- shard selection ---- */

/* The --shard K/N selection: the first 8 bytes of SHA-256(key), big-endian, modulo N. */
uint64_t ann_key_bucket(const char *key, uint64_t n);

/* ---- MPI (annotate_mpi.c; every function fails cleanly without MPI support) ---- */

bool ann_mpi_available(void);
/* MPI_Init_thread (serialized). Returns false with a message when it fails or MPI is absent. */
bool ann_mpi_init(int *argc, char ***argv, int *rank, int *size);
void ann_mpi_finalize(void);
void ann_mpi_abort(int code);
/* Rank 0: sends the next chunk (units, "F\tkey\tpath\n"/"S\tkey\tpath\n" lines) to the worker
 * that asks next; an empty chunk tells it to stop. Worker: asks for a chunk and receives it
 * (*chunk malloc, NUL-terminated; "" means stop). */
int ann_mpi_serve(char *const *inputs, size_t n_inputs, size_t chunk_units, int size,
                  volatile sig_atomic_t *stop, const ann_walk_ops *skip_ops);
int ann_mpi_ask(char **chunk);
/* All ranks: the worst exit status of them all (a reduction). */
int ann_mpi_worst(int code);
/* All ranks: a barrier. */
void ann_mpi_barrier(void);

#endif
