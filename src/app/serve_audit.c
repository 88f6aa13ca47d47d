/*
 * serve_audit.c — the audit log of `llavaguard serve`: one JSON line per judged image (request
 * id, time, tenant, image SHA-256, model and policy hashes, scores, decision, latency; never image
 * bytes), appended (O_APPEND) by one writer thread that takes every line queued since its last
 * write, writes them and fsyncs once per batch, so the cost of durability is shared by the
 * requests of a busy moment instead of paid per line.
 */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct audit_line {
    char *text;
    struct audit_line *next;
} audit_line;

struct srv_audit {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    audit_line *head, *tail;
    bool stop;
};

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return;
        p += k;
        n -= (size_t)k;
    }
}

static void *audit_main(void *arg) {
    srv_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stop) pthread_cond_wait(&a->cv, &a->mu);
        audit_line *batch = a->head;
        a->head = a->tail = NULL;
        bool stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        if (batch) {
            for (audit_line *l = batch; l;) {
                write_all(a->fd, l->text, strlen(l->text));
                audit_line *next = l->next;
                free(l->text);
                free(l);
                l = next;
            }
            fsync(a->fd);
        }
        pthread_mutex_lock(&a->mu);
        if (stop && !a->head) break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

bool srv_audit_open(const char *path, srv_audit **out, char *msg, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(msg, n, "%s: %s", path, strerror(errno));
        return false;
    }
    srv_audit *a = calloc(1, sizeof *a);
    if (!a) {
        close(fd);
        snprintf(msg, n, "out of memory");
        return false;
    }
    a->fd = fd;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_create(&a->thread, NULL, audit_main, a);
    *out = a;
    return true;
}

void srv_audit_write(srv_audit *a, json_t *record) {
    if (!a) return;
    char *s = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
    audit_line *l = s ? malloc(sizeof *l) : NULL;
    if (!l) {
        free(s);
        return;
    }
    size_t len = strlen(s);
    char *t = realloc(s, len + 2);
    if (!t) {
        free(s);
        free(l);
        return;
    }
    t[len] = '\n';
    t[len + 1] = '\0';
    *l = (audit_line){.text = t};
    pthread_mutex_lock(&a->mu);
    if (a->tail)
        a->tail->next = l;
    else
        a->head = l;
    a->tail = l;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void srv_audit_close(srv_audit *a) {
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->thread, NULL);
    close(a->fd);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
