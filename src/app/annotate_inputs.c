/*
 * annotate_inputs.c — what `llavaguard annotate` reads: image files, directories (recursive,
 * sorted bytewise, symlinks followed only to files inside the tree), list files and standard
 * input (one path per line), and WebDataset shards (.tar, .tar.gz, .tar.zst) read with
 * libarchive. Shard members are grouped into samples as the webdataset library does
 * (`base_plus_ext`: the key is the member path up to the first dot of its last component, the
 * extension the rest; consecutive members with one key form a sample). Every image gets a stable
 * key: its path relative to the input root, or "shard-name/member-key".
 */
#include "annotate.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_META_BYTES ((size_t)1 << 20) /* a sample's .json member */

void ann_item_free(ann_item *it) {
    if (!it) return;
    free(it->key);
    free(it->source);
    free(it->bytes);
    free(it->meta);
    free(it->error);
    free(it);
}

static bool ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static const char *const IMAGE_EXTS[] = {"jpg", "jpeg", "png", "webp", "gif", "bmp"};
#define N_IMAGE_EXTS (sizeof IMAGE_EXTS / sizeof IMAGE_EXTS[0])

static bool is_image_ext(const char *ext) {
    for (size_t i = 0; i < N_IMAGE_EXTS; i++)
        if (strcasecmp(ext, IMAGE_EXTS[i]) == 0) return true;
    return false;
}

bool ann_is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    return dot && (!slash || dot > slash) && is_image_ext(dot + 1);
}

static const char *const SHARD_EXTS[] = {".tar", ".tar.gz", ".tgz", ".tar.zst"};

bool ann_is_shard_name(const char *name) {
    for (size_t i = 0; i < sizeof SHARD_EXTS / sizeof SHARD_EXTS[0]; i++)
        if (ends_with_ci(name, SHARD_EXTS[i])) return true;
    return false;
}

static bool is_list_name(const char *name) {
    return strcmp(name, "-") == 0 || ends_with_ci(name, ".txt") || ends_with_ci(name, ".lst") ||
           ends_with_ci(name, ".list");
}

/* The shard's name: its path without the archive extension. */
static char *shard_name(const char *rel) {
    for (size_t i = 0; i < sizeof SHARD_EXTS / sizeof SHARD_EXTS[0]; i++)
        if (ends_with_ci(rel, SHARD_EXTS[i]))
            return strndup(rel, strlen(rel) - strlen(SHARD_EXTS[i]));
    return strdup(rel);
}

/* The key of a path given on the command line or in a list: the path without leading "./". */
static const char *plain_key(const char *path) {
    while (path[0] == '.' && path[1] == '/') {
        path += 2;
        while (*path == '/') path++;
    }
    return path;
}

/* ---- walking ---- */

typedef struct walker {
    const ann_walk_ops *ops;
    char root_real[PATH_MAX];
    int stopped;
} walker;

static bool stop_requested(const walker *w) {
    return w->stopped || (w->ops->stop && *w->ops->stop);
}

static int emit_unit(walker *w, ann_unit_kind kind, const char *key, const char *path) {
    ann_unit u = {.kind = kind, .key = (char *)key, .path = (char *)path};
    int rc = w->ops->unit(w->ops->user, &u);
    if (rc) w->stopped = rc;
    return rc;
}

static void skipped(walker *w, const char *path, const char *why) {
    if (w->ops->skipped) w->ops->skipped(w->ops->user, path, why);
}

static void problem(walker *w, const char *fmt, const char *a, const char *b) {
    char msg[PATH_MAX + 256];
    snprintf(msg, sizeof msg, fmt, a, b);
    if (w->ops->problem) w->ops->problem(w->ops->user, msg);
}

static int cmp_names(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static bool inside_root(const walker *w, const char *path) {
    char real[PATH_MAX];
    if (!realpath(path, real)) return false;
    size_t n = strlen(w->root_real);
    return strncmp(real, w->root_real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* One directory entry at `path` (key `rel`). */
static int walk_entry(walker *w, const char *path, const char *rel, int depth);

static int walk_dir(walker *w, const char *path, const char *rel, int depth) {
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, cmp_names);
    if (n < 0) {
        problem(w, "cannot read directory %s: %s", path, strerror(errno));
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (rc == 0 && !stop_requested(w) && strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
            char child[PATH_MAX], child_rel[PATH_MAX];
            int l1 = snprintf(child, sizeof child, "%s/%s", path, nm);
            int l2 = rel[0] ? snprintf(child_rel, sizeof child_rel, "%s/%s", rel, nm)
                            : snprintf(child_rel, sizeof child_rel, "%s", nm);
            if (l1 >= (int)sizeof child || l2 >= (int)sizeof child_rel)
                problem(w, "path too long under %s (%s)", path, nm);
            else
                rc = walk_entry(w, child, child_rel, depth + 1);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int walk_entry(walker *w, const char *path, const char *rel, int depth) {
    struct stat lst, st;
    if (lstat(path, &lst) != 0) {
        problem(w, "cannot stat %s: %s", path, strerror(errno));
        return 0;
    }
    if (S_ISLNK(lst.st_mode)) {
        if (stat(path, &st) != 0) return skipped(w, path, "dangling symlink"), 0;
        if (S_ISDIR(st.st_mode)) return skipped(w, path, "symlink to a directory"), 0;
        if (!inside_root(w, path)) return skipped(w, path, "symlink out of the tree"), 0;
    } else {
        st = lst;
    }
    if (S_ISDIR(st.st_mode)) {
        if (depth > 64) return problem(w, "directory tree too deep at %s%s", path, ""), 0;
        return walk_dir(w, path, rel, depth);
    }
    if (!S_ISREG(st.st_mode)) return skipped(w, path, "not a regular file"), 0;
    if (ann_is_image_name(rel)) return emit_unit(w, ANN_UNIT_FILE, rel, path);
    if (ann_is_shard_name(rel)) {
        char *name = shard_name(rel);
        int rc = name ? emit_unit(w, ANN_UNIT_SHARD, name, path) : -1;
        free(name);
        return rc;
    }
    skipped(w, path, "not an image");
    return 0;
}

static int walk_list(walker *w, const char *file) {
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        fprintf(stderr, "llavaguard annotate: cannot open the list %s: %s\n", file,
                strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && !stop_requested(w) && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        if (ann_is_shard_name(line)) {
            char *name = shard_name(strrchr(line, '/') ? strrchr(line, '/') + 1 : line);
            rc = name ? emit_unit(w, ANN_UNIT_SHARD, name, line) : -1;
            free(name);
        } else {
            rc = emit_unit(w, ANN_UNIT_FILE, plain_key(line), line);
        }
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

static int walk_input(walker *w, const char *in) {
    if (is_list_name(in)) return walk_list(w, in);
    struct stat st;
    if (stat(in, &st) != 0) {
        fprintf(stderr, "llavaguard annotate: %s: %s\n", in, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        if (!realpath(in, w->root_real)) {
            fprintf(stderr, "llavaguard annotate: %s: %s\n", in, strerror(errno));
            return -1;
        }
        return walk_dir(w, in, "", 0);
    }
    if (ann_is_shard_name(in)) {
        const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
        char *name = shard_name(base);
        int rc = name ? emit_unit(w, ANN_UNIT_SHARD, name, in) : -1;
        free(name);
        return rc;
    }
    return emit_unit(w, ANN_UNIT_FILE, plain_key(in), in);
}

int ann_walk(char *const *inputs, size_t n_inputs, const ann_walk_ops *ops) {
    walker w = {.ops = ops};
    for (size_t i = 0; i < n_inputs && !stop_requested(&w); i++) {
        int rc = walk_input(&w, inputs[i]);
        if (rc) return rc;
    }
    return w.stopped;
}

bool ann_inputs_check(char *const *inputs, size_t n_inputs) {
    size_t n_stdin = 0;
    for (size_t i = 0; i < n_inputs; i++) {
        const char *in = inputs[i];
        if (strcmp(in, "-") == 0) {
            if (++n_stdin > 1) {
                fprintf(stderr, "llavaguard annotate: '-' (standard input) given twice\n");
                return false;
            }
            continue;
        }
        struct stat st;
        if (stat(in, &st) != 0) {
            fprintf(stderr, "llavaguard annotate: %s: %s\n", in, strerror(errno));
            return false;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(in);
            if (!d) {
                fprintf(stderr, "llavaguard annotate: cannot read directory %s: %s\n", in,
                        strerror(errno));
                return false;
            }
            closedir(d);
        } else if (is_list_name(in)) {
            FILE *f = fopen(in, "r");
            if (!f) {
                fprintf(stderr, "llavaguard annotate: cannot open the list %s: %s\n", in,
                        strerror(errno));
                return false;
            }
            fclose(f);
        }
    }
    return true;
}

/* ---- reading a unit into items ---- */

static ann_item *item_new(const char *key, const char *source) {
    ann_item *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->key = strdup(key);
    it->source = strdup(source);
    if (!it->key || !it->source) {
        ann_item_free(it);
        return NULL;
    }
    return it;
}

static int item_error(const ann_expand_ops *ops, const char *key, const char *source, lg_status st,
                      const char *fmt, const char *a, const char *b) {
    ann_item *it = item_new(key, source);
    if (!it) return -1;
    char msg[PATH_MAX + 512];
    snprintf(msg, sizeof msg, fmt, a, b);
    it->error = strdup(msg);
    it->status = st;
    if (!it->error) return ann_item_free(it), -1;
    return ops->item(ops->user, it);
}

static int expand_file(const ann_unit *u, const ann_expand_ops *ops) {
    if (ops->want && !ops->want(ops->user, u->key)) return 0;
    double t0 = ann_now();
    struct stat st;
    if (stat(u->path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
        return item_error(ops, u->key, u->path, LG_E_FORMAT, "%s: empty file%s", u->path, "");
    if (stat(u->path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > ops->max_bytes) {
        char lim[32];
        snprintf(lim, sizeof lim, "%zu", ops->max_bytes);
        return item_error(ops, u->key, u->path, LG_E_LIMIT,
                          "%s: larger than the limit of %s bytes (--max-image-bytes)", u->path,
                          lim);
    }
    uint8_t *data = NULL;
    size_t size = 0;
    lg_error e = {0};
    if (lg_read_file(u->path, ops->max_bytes, &data, &size, &e) != LG_OK)
        return item_error(ops, u->key, u->path, e.status, "%s%s", e.msg, "");
    if (size == 0) {
        lg_free(data);
        return item_error(ops, u->key, u->path, LG_E_FORMAT, "%s: empty file%s", u->path, "");
    }
    ann_item *it = item_new(u->key, u->path);
    if (!it || !(it->bytes = malloc(size))) {
        lg_free(data);
        ann_item_free(it);
        return -1;
    }
    memcpy(it->bytes, data, size);
    lg_free(data);
    it->size = size;
    it->t_read = ann_now() - t0;
    return ops->item(ops->user, it);
}

/* A member path is safe when it is relative and has no ".." component. */
static bool member_path_safe(const char *p) {
    if (p[0] == '/') return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return false;
        if (!e) break;
        s = e + 1;
    }
    return true;
}

/* The sample being assembled from consecutive members with one key. */
typedef struct sample {
    char *key; /* member key (no shard prefix) */
    char *image_member;
    uint8_t *bytes;
    size_t size;
    char *meta;
    char *error;
    lg_status status;
    bool has_image, has_members;
} sample;

static void sample_clear(sample *s) {
    free(s->key);
    free(s->image_member);
    free(s->bytes);
    free(s->meta);
    free(s->error);
    memset(s, 0, sizeof *s);
}

/* Emits the sample (if it has an image or an error) and clears it. */
static int sample_flush(sample *s, const char *shard_key, const char *shard_path,
                        const ann_expand_ops *ops, double t0) {
    int rc = 0;
    if (!s->has_members) return 0;
    if (!s->has_image && !s->error) {
        if (ops->skipped) {
            char where[PATH_MAX];
            snprintf(where, sizeof where, "%s:%s", shard_path, s->key);
            ops->skipped(ops->user, where, "sample without an image member");
        }
        sample_clear(s);
        return 0;
    }
    char key[PATH_MAX], source[2 * PATH_MAX];
    snprintf(key, sizeof key, "%s/%s", shard_key, s->key);
    snprintf(source, sizeof source, "%s:%s", shard_path,
             s->image_member ? s->image_member : s->key);
    if (ops->found) ops->found(ops->user, key);
    if (ops->want && !ops->want(ops->user, key)) {
        sample_clear(s);
        return 0;
    }
    ann_item *it = item_new(key, source);
    if (!it) {
        sample_clear(s);
        return -1;
    }
    if (s->error) {
        it->error = s->error;
        it->status = s->status;
        s->error = NULL;
    } else {
        it->bytes = s->bytes;
        it->size = s->size;
        s->bytes = NULL;
    }
    it->meta = s->meta;
    s->meta = NULL;
    it->t_read = ann_now() - t0;
    rc = ops->item(ops->user, it);
    sample_clear(s);
    return rc;
}

/* Reads the current member's data into a malloc'd buffer of `size` bytes. */
static int read_member(struct archive *a, size_t size, uint8_t **out) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return -1;
    size_t got = 0;
    while (got < size) {
        la_ssize_t n = archive_read_data(a, buf + got, size - got);
        if (n < 0) {
            free(buf);
            return -2;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got != size) {
        free(buf);
        return -2;
    }
    *out = buf;
    return 0;
}

static void sample_set_error(sample *s, lg_status st, const char *msg) {
    if (s->error) return;
    s->error = strdup(msg);
    s->status = st;
}

/* One member of the shard into the current sample. */
static void take_member(struct archive *a, struct archive_entry *e, sample *s, const char *member,
                        const char *ext, const char *shard_path, const ann_expand_ops *ops) {
    char msg[2 * PATH_MAX];
    int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    bool image = is_image_ext(ext);
    bool meta = strcasecmp(ext, "json") == 0;
    if (!image && !meta) {
        if (ops->skipped) {
            snprintf(msg, sizeof msg, "%s:%s", shard_path, member);
            ops->skipped(ops->user, msg, "not an image member");
        }
        return;
    }
    if (image && s->has_image) {
        if (ops->skipped) {
            snprintf(msg, sizeof msg, "%s:%s", shard_path, member);
            ops->skipped(ops->user, msg, "second image member of a sample");
        }
        return;
    }
    size_t limit = image ? ops->max_bytes : MAX_META_BYTES;
    if (image) {
        s->has_image = true;
        s->image_member = strdup(member);
    }
    if (size < 0 || (uint64_t)size > limit) {
        snprintf(msg, sizeof msg, "%s:%s: member of %lld bytes is over the limit of %zu bytes",
                 shard_path, member, (long long)size, limit);
        if (image) sample_set_error(s, LG_E_LIMIT, msg);
        return;
    }
    if (size == 0) {
        snprintf(msg, sizeof msg, "%s:%s: empty member", shard_path, member);
        if (image) sample_set_error(s, LG_E_FORMAT, msg);
        return;
    }
    uint8_t *buf = NULL;
    int rc = read_member(a, (size_t)size, &buf);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "%s:%s: cannot read the member: %s", shard_path, member,
                 rc == -1 ? "out of memory" : archive_error_string(a));
        sample_set_error(s, rc == -1 ? LG_E_NOMEM : LG_E_FORMAT, msg);
        return;
    }
    if (image) {
        s->bytes = buf;
        s->size = (size_t)size;
        return;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, (size_t)size, JSON_DECODE_ANY, &je);
    if (j && !s->meta) {
        s->meta = strndup((const char *)buf, (size_t)size);
    } else if (!j && ops->skipped) {
        snprintf(msg, sizeof msg, "%s:%s", shard_path, member);
        ops->skipped(ops->user, msg, "metadata member is not valid JSON");
    }
    json_decref(j);
    free(buf);
}

static int expand_shard(const ann_unit *u, const ann_expand_ops *ops) {
    struct archive *a = archive_read_new();
    if (!a) return -1;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    double t0 = ann_now();
    int rc = 0;
    if (archive_read_open_filename(a, u->path, 1 << 16) != ARCHIVE_OK) {
        rc = item_error(ops, u->key, u->path, LG_E_FORMAT, "%s: cannot open the shard: %s", u->path,
                        archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    sample s = {0};
    struct archive_entry *e;
    int members = 0;
    for (;;) {
        if (ops->stop && *ops->stop) break;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            if ((rc = sample_flush(&s, u->key, u->path, ops, t0)) != 0) break;
            char after[32];
            snprintf(after, sizeof after, "%d", members);
            char msg[1024];
            snprintf(msg, sizeof msg, "corrupt archive after %s members: %s", after,
                     archive_error_string(a) ? archive_error_string(a) : "unknown error");
            rc = item_error(ops, u->key, u->path, LG_E_FORMAT, "%s: %s", u->path, msg);
            break;
        }
        members++;
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *member = archive_entry_pathname(e);
        if (!member) member = "";
        /* webdataset base_plus_ext: key = up to the first dot of the last component */
        const char *base = strrchr(member, '/') ? strrchr(member, '/') + 1 : member;
        const char *dot = strchr(base, '.');
        char *key = dot ? strndup(member, (size_t)(dot - member)) : strdup(member);
        const char *ext = dot ? dot + 1 : "";
        if (!key) {
            rc = -1;
            break;
        }
        if (!s.key || strcmp(s.key, key) != 0) {
            if ((rc = sample_flush(&s, u->key, u->path, ops, t0)) != 0) {
                free(key);
                break;
            }
            s.key = key;
            t0 = ann_now();
        } else {
            free(key);
        }
        s.has_members = true;
        if (!member_path_safe(member)) {
            char msg[2 * PATH_MAX];
            snprintf(msg, sizeof msg, "%s:%s: unsafe member path (absolute or with '..')", u->path,
                     member);
            sample_set_error(&s, LG_E_FORMAT, msg);
            continue;
        }
        take_member(a, e, &s, member, ext, u->path, ops);
    }
    if (rc == 0) rc = sample_flush(&s, u->key, u->path, ops, t0);
    sample_clear(&s);
    archive_read_free(a);
    return rc;
}

int ann_expand(const ann_unit *u, const ann_expand_ops *ops) {
    return u->kind == ANN_UNIT_SHARD ? expand_shard(u, ops) : expand_file(u, ops);
}

uint64_t ann_key_bucket(const char *key, uint64_t n) {
    char hex[65];
    lg_sha256_hex(key, strlen(key), hex);
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = hex[i];
        v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return n ? v % n : 0;
}
