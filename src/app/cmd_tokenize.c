/*
 * cmd_tokenize.c — `llavaguard tokenize`: placeholder until its issue lands; it says so and
 * exits 1.
 */
#include "app.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("tokenize", "not implemented yet in this build");
}
