/*
 * fuzz_serve_input.c — serve's request-body parsing that needs no model: base64 (both
 * alphabets) of arbitrary text, and multipart/form-data bodies (the first line of the input is
 * the Content-Type header value, the rest the body) searched for the "image" and "file" fields.
 */
#include "serve.h"

#include <stdlib.h>
#include <string.h>

/* serve_http.c's reply builder, only reached from the URL fetching this harness does not call. */
void srv_error(srv_reply *r, int status, const char *type, const char *fmt, ...) {
    (void)r;
    (void)status;
    (void)type;
    (void)fmt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *out = NULL;
    size_t n = 0;
    if (srv_base64_decode((const char *)data, size, &out, &n)) free(out);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - data) : size;
    char *ct = malloc(ct_len + 1);
    memcpy(ct, data, ct_len);
    ct[ct_len] = 0;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t blen = nl ? size - ct_len - 1 : 0;
    const uint8_t *part;
    size_t plen;
    static const char *const fields[] = {"image", "file", ""};
    for (size_t i = 0; i < 3; i++)
        if (srv_multipart_get(body, blen, ct, fields[i], &part, &plen) && plen)
            (void)*(volatile const uint8_t *)(part + plen - 1);
    free(ct);
    return 0;
}
