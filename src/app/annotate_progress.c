/*
 * annotate_progress.c — the progress report of `llavaguard annotate` on stderr: on a terminal one
 * self-updating line (done/total, images/s, ETA, errors, Unsafe count), otherwise a plain line
 * every interval; nothing with --quiet. Also the monotonic clock the annotator times with.
 */
#include "annotate.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double ann_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void ann_progress_init(ann_progress *p, bool quiet, double interval_s) {
    *p = (ann_progress){.quiet = quiet, .interval_s = interval_s, .tty = isatty(2) == 1};
    p->t_start = p->t_last = ann_now();
}

static void format_eta(double s, char *out, size_t n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(out, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, n, "%lds", t);
}

void ann_progress_update(ann_progress *p, bool force) {
    if (p->quiet) return;
    double now = ann_now();
    double due = p->tty ? 0.25 : p->interval_s;
    if (!force && now - p->t_last < due) return;
    p->t_last = now;
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->judged / el : 0;
    uint64_t left = p->total > p->done ? p->total - p->done : 0;
    char eta[32];
    format_eta(rate > 0 ? (double)left / rate : -1, eta, sizeof eta);
    char line[256];
    int n = snprintf(line, sizeof line,
                     "annotate: %llu/%llu done, %.2f images/s, ETA %s, %llu errors, %llu unsafe",
                     (unsigned long long)p->done, (unsigned long long)p->total, rate, eta,
                     (unsigned long long)p->errors, (unsigned long long)p->unsafe);
    if (p->tty) {
        int pad = p->width > n ? p->width - n : 0;
        fprintf(stderr, "\r%s%*s", line, pad, "");
        p->width = n;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

void ann_progress_finish(ann_progress *p, const char *out, const char *how) {
    if (p->quiet) return;
    if (p->tty && p->width) fputc('\n', stderr);
    double el = ann_now() - p->t_start;
    fprintf(stderr,
            "annotate: %s: %llu judged, %llu already done, %llu errors, %llu unsafe, %llu "
            "skipped (not images), %.1f s, %.2f images/s -> %s\n",
            how, (unsigned long long)p->judged, (unsigned long long)p->resumed,
            (unsigned long long)p->errors, (unsigned long long)p->unsafe,
            (unsigned long long)p->skipped, el, el > 0 ? (double)p->judged / el : 0.0, out);
}
