/*
 * main.c — the `llavaguard` command: dispatches to a subcommand (one file each, cmd_*.c).
 */
#include "app.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const app_command commands[] = {
    {"assess", "judge images against a safety policy (JSON verdicts)", cmd_assess},
    {"policy", "show, check or render a safety policy", cmd_policy},
    {"preprocess", "decode an image and prepare the model's pixel tensor", cmd_preprocess},
    {"tokenize", "tokenize text (or decode ids) with a model's tokenizer", cmd_tokenize},
    {"generate", "run the model on a prompt (and image) and print the generated text",
     cmd_generate},
    {"bench", "measure this machine's limits and the speed of every stage", cmd_bench},
    {"annotate", "judge image collections into an SQLite results file", cmd_annotate},
    {"export", "stream rows of a results file as JSON Lines or CSV", cmd_export},
    {"summary", "counts per rating and category of a results file", cmd_summary},
    {"merge", "combine results files (shards, ranks) into one", cmd_merge},
    {"serve", "serve verdicts over HTTP (OpenAI-compatible moderation API, web page)", cmd_serve},
    {"eval", "score a guard on labelled images (paper metrics, HTML report)", cmd_eval},
    {"augment", "write policy-augmented training samples from labels", cmd_augment},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *f) {
    fprintf(f, "Usage: llavaguard <command> [options]\n"
               "\n"
               "LlavaGuard vision safeguard: judges images against a written safety policy.\n"
               "\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n"
               "Options:\n"
               "  -h, --help     show this help\n"
               "  -V, --version  show the version\n"
               "\n"
               "Run 'llavaguard <command> --help' for a command's options.\n");
}

int app_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llavaguard%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'llavaguard%s%s --help' for more information.\n", cmd ? " " : "",
            cmd ? cmd : "");
    return APP_EXIT_USAGE;
}

int app_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llavaguard %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return APP_EXIT_FAIL;
}

int app_fail_err(const char *cmd, const lg_error *err) {
    return app_fail(cmd, "%s (%s)", err->msg, lg_status_str(err->status));
}

int main(int argc, char **argv) {
    if (argc < 2) return app_usage_error(NULL, "missing command");
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        print_help(stdout);
        return APP_EXIT_OK;
    }
    if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0) {
        printf("llavaguard %s\n", lg_version());
        return APP_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    if (name[0] == '-') return app_usage_error(NULL, "unrecognized option '%s'", name);
    return app_usage_error(NULL, "unknown command '%s'", name);
}
