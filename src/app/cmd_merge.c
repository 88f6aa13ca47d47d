/*
 * cmd_merge.c — `llavaguard merge OUT.sqlite IN.sqlite...`: combines annotate results files
 * (the --shard K/N parts, the ranks of an MPI run, runs on several machines) into one. Runs are
 * matched by model hash, policies and verdict parameters; a file from a different run is refused
 * unless --allow-different. Each input is merged in one transaction (docs/annotate.md).
 */
#include "annotate.h"

#include <string.h>

#define CMD "merge"

static void print_help(void) {
    printf("Usage: llavaguard merge [--allow-different] OUT.sqlite IN.sqlite...\n"
           "\n"
           "Adds every run and row of the inputs to OUT (created when missing). A key already in\n"
           "OUT keeps its row, except that a verdict replaces an error row.\n"
           "\n"
           "Options:\n"
           "      --allow-different  keep runs of another model, policy or verdict setting as\n"
           "                         separate runs instead of refusing them\n"
           "  -q, --quiet            no report\n"
           "  -h, --help             show this help\n"
           "\n"
           "Exit status: 0 merged, 1 an input was refused or unreadable (inputs before it stay\n"
           "merged), 2 usage.\n");
}

int cmd_merge(int argc, char **argv) {
    bool allow = false, quiet = false;
    const char *paths[4096];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_help();
            return APP_EXIT_OK;
        } else if (strcmp(argv[i], "--allow-different") == 0) {
            allow = true;
        } else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return app_usage_error(CMD, "unrecognized option '%s'", argv[i]);
        } else if (n == (int)(sizeof paths / sizeof paths[0])) {
            return app_usage_error(CMD, "too many files");
        } else {
            paths[n++] = argv[i];
        }
    }
    if (n < 2) return app_usage_error(CMD, "give OUT.sqlite and at least one input");
    for (int i = 1; i < n; i++)
        if (strcmp(paths[i], paths[0]) == 0)
            return app_usage_error(CMD, "%s is both the output and an input", paths[0]);
    ann_store *out = ann_store_open(paths[0], CMD, true);
    if (!out) return APP_EXIT_FAIL;
    int rc = APP_EXIT_OK;
    for (int i = 1; i < n && rc == APP_EXIT_OK; i++) {
        int64_t rows = 0;
        if (ann_store_merge(out, paths[i], allow, CMD, &rows) != 0)
            rc = APP_EXIT_FAIL;
        else if (!quiet)
            fprintf(stderr, "merge: %s: %lld rows added\n", paths[i], (long long)rows);
    }
    ann_store_close(out);
    return rc;
}
