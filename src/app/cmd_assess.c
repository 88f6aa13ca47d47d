/*
 * cmd_assess.c — `llavaguard assess`: placeholder until its issue lands; it says so and exits 1.
 */
#include "app.h"

int cmd_assess(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("assess", "not implemented yet in this build");
}
