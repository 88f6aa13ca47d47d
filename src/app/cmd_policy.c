/*
 * cmd_policy.c — `llavaguard policy`: placeholder until its issue lands; it says so and exits 1.
 */
#include "app.h"

int cmd_policy(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return app_fail("policy", "not implemented yet in this build");
}
