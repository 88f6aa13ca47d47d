/*
 * app.h — shared pieces of the `llavaguard` command-line tool. The tool is a thin client of the
 * public header (include/llavaguard.h); it includes nothing from src/ except this folder.
 *
 * Exit statuses: 0 success, 1 the work failed (bad input, model error), 2 usage error, 3 (assess
 * with --fail-on-unsafe) an image was judged unsafe.
 */
#ifndef LG_APP_H
#define LG_APP_H

#include "llavaguard.h"

#include <stdio.h>

#define APP_EXIT_OK 0
#define APP_EXIT_FAIL 1
#define APP_EXIT_USAGE 2
#define APP_EXIT_UNSAFE 3

/* One subcommand: `llavaguard <name> ...`. `run` receives argv with argv[0] = the name. */
typedef struct app_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} app_command;

/* Prints "llavaguard <cmd>: <message>" and a hint to use --help to stderr; returns exit code 2. */
int app_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "llavaguard <cmd>: <message>" to stderr; returns exit code 1. */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports a library error (status + message) for `cmd`; returns exit code 1. */
int app_fail_err(const char *cmd, const lg_error *err);

/* The subcommands, each in its own cmd_<name>.c. */
int cmd_preprocess(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_assess(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
