/*
 * cmd_bench.c — `llavaguard bench`: placeholder until its issue lands; it says so and exits 1.
 */
#include "app.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("bench", "not implemented yet in this build");
}
