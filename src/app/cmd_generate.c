/*
 * cmd_generate.c — `llavaguard generate`: placeholder until its issue lands; it says so and
 * exits 1.
 */
#include "app.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("generate", "not implemented yet in this build");
}
