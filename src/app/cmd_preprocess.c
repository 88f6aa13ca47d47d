/*
 * cmd_preprocess.c — `llavaguard preprocess`: placeholder until its issue lands; it says so and
 * exits 1.
 */
#include "app.h"

int cmd_preprocess(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("preprocess", "not implemented yet in this build");
}
