/*
 * serve_input.c — where request images come from: base64 (RFC 4648, standard and URL-safe
 * alphabets), data URLs (RFC 2397: "data:image/png;base64,..."), multipart/form-data bodies
 * (RFC 7578: the part whose Content-Disposition names the field), and remote http(s) URLs, which
 * are refused unless their host is on the --allow-remote list and are then fetched with libcurl
 * under the size and time limits (no redirects, http and https only).
 */
#include "serve.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- base64 ---- */

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

bool srv_base64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *o = malloc(n / 4 * 3 + 4);
    if (!o) return false;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) goto bad; /* a bad character, or data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6 || pad > 2 || k == 0) goto bad; /* a lone sextet cannot end a valid input */
    *out = o;
    *out_len = k;
    return true;
bad:
    free(o);
    return false;
}

/* ---- multipart/form-data ---- */

static const uint8_t *find(const uint8_t *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || n < m) return NULL;
    for (size_t i = 0; i + m <= n; i++)
        if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
}

bool srv_multipart_get(const uint8_t *body, size_t len, const char *content_type, const char *field,
                       const uint8_t **data, size_t *size) {
    const char *b = strcasestr(content_type, "boundary=");
    if (!b) return false;
    b += 9;
    char delim[200];
    size_t bl = strcspn(b, "; ");
    if (*b == '"') {
        b++;
        bl = strcspn(b, "\"");
    }
    if (bl == 0 || bl > 150) return false;
    int dl = snprintf(delim, sizeof delim, "--%.*s", (int)bl, b);
    const uint8_t *p = find(body, len, delim, (size_t)dl);
    while (p) {
        p += dl;
        size_t left = len - (size_t)(p - body);
        if (left >= 2 && p[0] == '-' && p[1] == '-') return false; /* the closing delimiter */
        const uint8_t *hend = find(p, left, "\r\n\r\n", 4);
        if (!hend) return false;
        const uint8_t *content = hend + 4;
        char crlf_delim[210];
        int cl = snprintf(crlf_delim, sizeof crlf_delim, "\r\n%s", delim);
        const uint8_t *next = find(content, len - (size_t)(content - body), crlf_delim, (size_t)cl);
        if (!next) return false;
        /* the part's headers: look for name="field" in Content-Disposition */
        char hdr[1024];
        size_t hl = (size_t)(hend - p) < sizeof hdr - 1 ? (size_t)(hend - p) : sizeof hdr - 1;
        memcpy(hdr, p, hl);
        hdr[hl] = '\0';
        char want[160];
        snprintf(want, sizeof want, "name=\"%s\"", field);
        if (strcasestr(hdr, "content-disposition") && strstr(hdr, want)) {
            *data = content;
            *size = (size_t)(next - content);
            return true;
        }
        p = next + 2;
    }
    return false;
}

/* ---- URLs ---- */

typedef struct fetch_buf {
    uint8_t *p;
    size_t n, cap, max;
    bool too_big;
} fetch_buf;

static size_t fetch_write(char *ptr, size_t sz, size_t nm, void *user) {
    fetch_buf *f = user;
    size_t n = sz * nm;
    if (f->n + n > f->max) {
        f->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (f->n + n > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 65536;
        while (cap < f->n + n) cap *= 2;
        uint8_t *q = realloc(f->p, cap);
        if (!q) return 0;
        f->p = q;
        f->cap = cap;
    }
    memcpy(f->p + f->n, ptr, n);
    f->n += n;
    return n;
}

static bool host_allowed(const srv_server *s, const char *host) {
    for (size_t i = 0; i < s->n_allow_hosts; i++)
        if (strcasecmp(s->allow_hosts[i], host) == 0) return true;
    return false;
}

static bool fetch_remote(srv_server *s, const char *url, uint8_t **bytes, size_t *size,
                         srv_reply *reply) {
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    bool parsed = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK;
    bool allowed = parsed && s->allow_remote && host_allowed(s, host);
    char hostcopy[256];
    snprintf(hostcopy, sizeof hostcopy, "%s", host ? host : "");
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (!parsed) {
        srv_error(reply, 400, "invalid_request_error", "the image URL cannot be parsed");
        return false;
    }
    if (!allowed) {
        srv_error(reply, 422, "invalid_image_url",
                  "remote image URLs are not enabled for host '%s' (start the server with "
                  "--allow-remote HOST); send the image as a data URL instead",
                  hostcopy);
        return false;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        srv_error(reply, 500, "server_error", "cannot start a download");
        return false;
    }
    fetch_buf f = {.max = s->limits.max_remote_bytes};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(s->limits.remote_timeout_s * 1000));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->limits.max_remote_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    if (f.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        free(f.p);
        srv_error(reply, 413, "image_too_large", "the remote image exceeds %zu bytes",
                  s->limits.max_remote_bytes);
        return false;
    }
    if (rc != CURLE_OK || code != 200 || f.n == 0) {
        free(f.p);
        srv_error(reply, 422, "invalid_image_url", "fetching the image failed: %s (HTTP %ld)",
                  rc != CURLE_OK ? curl_easy_strerror(rc) : "no image", code);
        return false;
    }
    *bytes = f.p;
    *size = f.n;
    return true;
}

bool srv_image_from_url(srv_server *s, const char *url, uint8_t **bytes, size_t *size,
                        srv_reply *reply) {
    if (strncasecmp(url, "data:", 5) == 0) {
        const char *comma = strchr(url, ',');
        if (!comma) {
            srv_error(reply, 400, "invalid_image", "a data URL needs a ',' before its data");
            return false;
        }
        size_t meta = (size_t)(comma - url);
        bool b64 = meta >= 7 && strncasecmp(comma - 7, ";base64", 7) == 0;
        if (strncasecmp(url + 5, "image/", 6) != 0 && url + 5 != comma) {
            srv_error(reply, 415, "unsupported_media_type",
                      "the data URL's media type must be image/*");
            return false;
        }
        if (!b64) {
            srv_error(reply, 400, "invalid_image", "only base64 data URLs are accepted");
            return false;
        }
        if (!srv_base64_decode(comma + 1, strlen(comma + 1), bytes, size)) {
            srv_error(reply, 400, "invalid_image", "the data URL's base64 is malformed");
            return false;
        }
        return true;
    }
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
        return fetch_remote(s, url, bytes, size, reply);
    srv_error(reply, 400, "invalid_image",
              "image_url must be a data URL (data:image/...;base64,...) or an http(s) URL");
    return false;
}
