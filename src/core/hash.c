/*
 * hash.c — SHA-256 through OpenSSL's libcrypto (EVP), used to identify images and policies in
 * verdicts.
 */
#include "core.h"

#include <openssl/evp.h>

void lg_sha256_hex(const void *data, size_t size, char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(data, size, md, &mdlen, EVP_sha256(), NULL);
    LG_ASSERT(ok == 1 && mdlen == 32);
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
}
