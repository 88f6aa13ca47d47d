/*
 * fuzz_chat.c — chat-template rendering of arbitrary user text with every template, with and
 * without an image placeholder, image first or last, and small or large image-token counts.
 */
#include "llavaguard.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *const *names = lg_chat_template_names();
    int64_t count = size ? (int64_t)(data[0] % 8) - 1 : 1; /* -1 .. 6 */
    if (size > 1 && data[1] == 0xff) count = 5000;
    for (size_t i = 0; names[i]; i++) {
        for (int mode = 0; mode < 3; mode++) {
            char *out = NULL;
            size_t len = 0;
            if (lg_chat_render(names[i], (const char *)data, size, mode != 0, count, mode == 2,
                               &out, &len, NULL) == LG_OK)
                lg_free(out);
        }
    }
    char *name = malloc(size + 1), *out = NULL; /* the input as a template name */
    memcpy(name, data, size);
    name[size] = 0;
    if (lg_chat_render(name, "x", 1, 1, 1, 1, &out, NULL, NULL) == LG_OK) lg_free(out);
    free(name);
    return 0;
}
