/*
 * annotate_mpi.c — `llavaguard annotate --mpi`: rank 0 walks the inputs and hands out chunks of
 * units (image files, whole shards) to the worker that asks next, so a slow node never holds up
 * the others; an empty chunk tells a worker to stop. Open MPI from Debian (libopenmpi-dev); the
 * whole file reduces to stubs that fail cleanly when CMake did not find MPI (LG_HAVE_MPI unset).
 * Protocol: worker -> 0 tag ASK (one int); 0 -> worker tag WORK (a NUL-free text chunk of
 * "F\tkey\tpath\n" / "S\tkey\tpath\n" lines, possibly empty).
 */
#include "annotate.h"

#include <stdlib.h>
#include <string.h>

#ifdef LG_HAVE_MPI
#include <mpi.h>

#define TAG_ASK 1
#define TAG_WORK 2

bool ann_mpi_available(void) {
    return true;
}

bool ann_mpi_init(int *argc, char ***argv, int *rank, int *size) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "llavaguard annotate: MPI_Init_thread failed\n");
        return false;
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        fprintf(stderr, "llavaguard annotate: this MPI does not support threads (serialized)\n");
        MPI_Finalize();
        return false;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return true;
}

void ann_mpi_finalize(void) {
    MPI_Finalize();
}

void ann_mpi_abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
}

int ann_mpi_worst(int code) {
    int worst = code;
    MPI_Allreduce(&code, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

void ann_mpi_barrier(void) {
    MPI_Barrier(MPI_COMM_WORLD);
}

int ann_mpi_ask(char **chunk) {
    int dummy = 0;
    if (MPI_Send(&dummy, 1, MPI_INT, 0, TAG_ASK, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    MPI_Status st;
    if (MPI_Probe(0, TAG_WORK, MPI_COMM_WORLD, &st) != MPI_SUCCESS) return -1;
    int n = 0;
    MPI_Get_count(&st, MPI_CHAR, &n);
    char *buf = malloc((size_t)n + 1);
    if (!buf) return -1;
    if (MPI_Recv(buf, n, MPI_CHAR, 0, TAG_WORK, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *chunk = buf;
    return 0;
}

typedef struct server {
    char *buf;
    size_t len, cap, units, chunk_units;
    int failed;
} server;

/* Sends the current chunk to the next worker that asks (len 0: the stop message). */
static int send_chunk(server *s) {
    int dummy;
    MPI_Status st;
    if (MPI_Recv(&dummy, 1, MPI_INT, MPI_ANY_SOURCE, TAG_ASK, MPI_COMM_WORLD, &st) != MPI_SUCCESS)
        return -1;
    if (MPI_Send(s->buf ? s->buf : "", (int)s->len, MPI_CHAR, st.MPI_SOURCE, TAG_WORK,
                 MPI_COMM_WORLD) != MPI_SUCCESS)
        return -1;
    s->len = 0;
    s->units = 0;
    return 0;
}

static int serve_unit(void *user, const ann_unit *u) {
    server *s = user;
    if (strpbrk(u->key, "\t\n") || strpbrk(u->path, "\t\n")) {
        fprintf(stderr, "llavaguard annotate: skipping a name with a tab or newline: %s\n",
                u->path);
        return 0;
    }
    size_t need = strlen(u->key) + strlen(u->path) + 5;
    if (s->len + need > s->cap) {
        size_t cap = (s->len + need) * 2;
        char *nb = realloc(s->buf, cap);
        if (!nb) return -1;
        s->buf = nb;
        s->cap = cap;
    }
    s->len += (size_t)sprintf(s->buf + s->len, "%c\t%s\t%s\n",
                              u->kind == ANN_UNIT_SHARD ? 'S' : 'F', u->key, u->path);
    if (++s->units >= s->chunk_units && send_chunk(s) != 0) return -1;
    return 0;
}

int ann_mpi_serve(char *const *inputs, size_t n_inputs, size_t chunk_units, int size,
                  volatile sig_atomic_t *stop, const ann_walk_ops *skip_ops) {
    server s = {.chunk_units = chunk_units ? chunk_units : 1};
    /* skipped files are counted by nobody here (the workers count what they read) */
    (void)skip_ops;
    ann_walk_ops ops = {.user = &s, .unit = serve_unit, .stop = stop};
    int rc = ann_walk(inputs, n_inputs, &ops);
    if (rc == 0 && s.units > 0 && send_chunk(&s) != 0) rc = -1;
    /* every worker asks once more and gets the stop message */
    s.len = 0;
    for (int w = 1; w < size; w++)
        if (send_chunk(&s) != 0) rc = -1;
    free(s.buf);
    return rc;
}

#else /* no MPI */

bool ann_mpi_available(void) {
    return false;
}

bool ann_mpi_init(int *argc, char ***argv, int *rank, int *size) {
    (void)argc;
    (void)argv;
    *rank = 0;
    *size = 1;
    fprintf(stderr, "llavaguard annotate: this build has no MPI support\n");
    return false;
}

void ann_mpi_finalize(void) {}

void ann_mpi_abort(int code) {
    exit(code);
}

int ann_mpi_worst(int code) {
    return code;
}

void ann_mpi_barrier(void) {}

int ann_mpi_ask(char **chunk) {
    *chunk = NULL;
    return -1;
}

int ann_mpi_serve(char *const *inputs, size_t n_inputs, size_t chunk_units, int size,
                  volatile sig_atomic_t *stop, const ann_walk_ops *skip_ops) {
    (void)inputs;
    (void)n_inputs;
    (void)chunk_units;
    (void)size;
    (void)stop;
    (void)skip_ops;
    return -1;
}

#endif
