/*
 * jsonfsm.c — the byte automaton for the rationale's JSON string content, compiled into a
 * per-token transition table, and the unescaping of the finished string.
 *
 * The grammar is RFC 8259's string content restricted to printable ASCII, since the training
 * targets came from Python's json.dumps (ensure_ascii=True): quotes, backslashes, control and
 * non-ASCII characters reached the model only as escapes. After the closing quote a token may
 * carry a prefix of the closing skeleton "\n}" and nothing else.
 */
#include "decode/decode.h"

#include <string.h>

static const char closing_tail[] = "\n}";

static bool is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int fsm_step(int state, unsigned char c) {
    switch (state) {
    case FSM_STR:
        if (c == '"') return FSM_CLOSED;
        if (c == '\\') return FSM_ESC;
        return (c >= 0x20 && c <= 0x7e) ? FSM_STR : FSM_REJECT;
    case FSM_ESC:
        if (c == 'u') return FSM_U4;
        return strchr("\"\\/bfnrt", c) && c ? FSM_STR : FSM_REJECT;
    case FSM_U4:
    case FSM_U3:
    case FSM_U2:
        return is_hex(c) ? state + 1 : FSM_REJECT;
    case FSM_U1:
        return is_hex(c) ? FSM_STR : FSM_REJECT;
    }
    return FSM_REJECT;
}

int fsm_run(int state, const char *bytes, size_t n) {
    for (size_t i = 0; i < n; i++) {
        state = fsm_step(state, (unsigned char)bytes[i]);
        if (state == FSM_REJECT) return FSM_REJECT;
        if (state == FSM_CLOSED) {
            size_t rest = n - i - 1;
            if (rest > sizeof closing_tail - 1 || memcmp(bytes + i + 1, closing_tail, rest) != 0)
                return FSM_REJECT;
            return FSM_CLOSED;
        }
    }
    return state;
}

lg_status fsm_table_build(fsm_table *t, const vd_tok *tok, size_t n_vocab, lg_error *err) {
    size_t cells;
    if (!lg_mul_ok(n_vocab, FSM_N_LIVE, &cells))
        return lg_err_set(err, LG_E_LIMIT, "vocabulary too large");
    int8_t *next = lg_malloc(cells);
    if (!next) return lg_err_set(err, LG_E_NOMEM, "out of memory building the JSON automaton");
    for (size_t id = 0; id < n_vocab; id++) {
        size_t len = 0;
        const char *bytes =
            id < tok->n_tokens ? tok->token_bytes(tok->ctx, (int32_t)id, &len) : NULL;
        for (int s = 0; s < FSM_N_LIVE; s++)
            next[(size_t)s * n_vocab + id] =
                (int8_t)(bytes && len > 0 ? fsm_run(s, bytes, len) : FSM_REJECT);
    }
    t->n_vocab = n_vocab;
    t->next = next;
    return LG_OK;
}

int32_t fsm_best_allowed(const fsm_table *t, int state, const float *logits, size_t n_logits) {
    const int8_t *next = t->next + (size_t)state * t->n_vocab;
    size_t n = n_logits < t->n_vocab ? n_logits : t->n_vocab;
    int32_t best = -1;
    float best_logit = 0.0f;
    for (size_t id = 0; id < n; id++)
        if (next[id] != FSM_REJECT && (best < 0 || logits[id] > best_logit)) {
            best = (int32_t)id;
            best_logit = logits[id];
        }
    return best;
}

void fsm_table_free(fsm_table *t) {
    if (!t) return;
    lg_free(t->next);
    t->next = NULL;
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

/* Reads \uXXXX at s[i] (s[i] == '\\'); returns the code unit or -1. */
static int32_t read_u_escape(const char *s, size_t n, size_t i) {
    if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u') return -1;
    int32_t v = 0;
    for (size_t k = 2; k < 6; k++) {
        if (!is_hex((unsigned char)s[i + k])) return -1;
        v = v * 16 + hex_value((unsigned char)s[i + k]);
    }
    return v;
}

char *fsm_unescape(const char *s, size_t n, size_t *out_len) {
    lg_buf b;
    lg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\') {
            lg_buf_putc(&b, c);
            continue;
        }
        if (i + 1 >= n) goto bad;
        char e = s[i + 1];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(from, e) : NULL;
        if (hit) {
            lg_buf_putc(&b, to[hit - from]);
            i++;
            continue;
        }
        int32_t u = read_u_escape(s, n, i);
        if (u < 0) goto bad;
        i += 5;
        if (u >= 0xd800 && u <= 0xdbff) {
            int32_t lo = read_u_escape(s, n, i + 1);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                lg_buf_put_utf8(&b, 0x10000u + (((uint32_t)u - 0xd800u) << 10) +
                                        ((uint32_t)lo - 0xdc00u));
                i += 6;
            } else {
                lg_buf_put_utf8(&b, 0xfffd);
            }
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            lg_buf_put_utf8(&b, 0xfffd);
        } else {
            lg_buf_put_utf8(&b, (uint32_t)u);
        }
    }
    return lg_buf_detach(&b, out_len);
bad:
    lg_buf_free(&b);
    return NULL;
}
