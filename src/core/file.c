/*
 * file.c — whole-file reads (with a size cap), atomic writes (temporary file + rename, so a
 * failed run never leaves half an output behind) and read-only memory maps for weights.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static lg_status read_stream(FILE *f, const char *path, size_t max_bytes, uint8_t **data,
                             size_t *size, lg_error *err) {
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = lg_malloc(cap + 1);
    if (!buf) return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", path);
    for (;;) {
        if (len == cap) {
            if (cap > max_bytes) break;
            size_t ncap = cap * 2;
            uint8_t *nb = lg_realloc(buf, ncap + 1);
            if (!nb) {
                lg_free(buf);
                return lg_err_set(err, LG_E_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        lg_free(buf);
        return lg_err_set(err, LG_E_IO, "%s: read error: %s", path, strerror(errno));
    }
    if (len > max_bytes) {
        lg_free(buf);
        return lg_err_set(err, LG_E_LIMIT, "%s: larger than the limit of %zu bytes", path,
                          max_bytes);
    }
    buf[len] = '\0';
    *data = buf;
    *size = len;
    return LG_OK;
}

lg_status lg_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                       lg_error *err) {
    if (strcmp(path, "-") == 0) return read_stream(stdin, "<stdin>", max_bytes, data, size, err);
    struct stat st;
    if (stat(path, &st) != 0)
        return lg_err_set(err, LG_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return lg_err_set(err, LG_E_IO, "%s: is a directory", path);
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max_bytes)
        return lg_err_set(err, LG_E_LIMIT, "%s: %lld bytes, larger than the limit of %zu bytes",
                          path, (long long)st.st_size, max_bytes);
    FILE *f = fopen(path, "rb");
    if (!f) return lg_err_set(err, LG_E_IO, "%s: cannot open: %s", path, strerror(errno));
    lg_status s = read_stream(f, path, max_bytes, data, size, err);
    fclose(f);
    return s;
}

lg_status lg_write_file_atomic(const char *path, const void *data, size_t size, lg_error *err) {
    size_t n = strlen(path) + 32;
    char *tmp = lg_malloc(n);
    if (!tmp) return lg_err_set(err, LG_E_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        lg_status s = lg_err_set(err, LG_E_IO, "%s: cannot create: %s", path, strerror(errno));
        lg_free(tmp);
        return s;
    }
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            lg_status s = lg_err_set(err, LG_E_IO, "%s: write failed: %s", path, strerror(errno));
            close(fd);
            unlink(tmp);
            lg_free(tmp);
            return s;
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        lg_status s = lg_err_set(err, LG_E_IO, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        lg_free(tmp);
        return s;
    }
    lg_free(tmp);
    return LG_OK;
}

lg_status lg_mmap_open(const char *path, lg_mmap *out, lg_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lg_err_set(err, LG_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lg_err_set(err, LG_E_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    const uint8_t *data = NULL;
    if (size > 0) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return lg_err_set(err, LG_E_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        data = p;
    }
    close(fd);
    out->data = data;
    out->size = size;
    return LG_OK;
}

void lg_mmap_close(lg_mmap *m) {
    if (m && m->data && m->size) munmap((void *)m->data, m->size);
    if (m) {
        m->data = NULL;
        m->size = 0;
    }
}

char *lg_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *p = lg_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    if (slash) p[a++] = '/';
    memcpy(p + a, name, b + 1);
    return p;
}

bool lg_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
