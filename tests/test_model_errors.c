/* LAYERS: core kernels model */
/*
 * test_model_errors.c — lg_model_open on bad and unusual model folders, built in temporary
 * folders from the tiny fixture model: missing files, unknown model types, bad or unsupported
 * config values, wrong tensor shapes and dtypes, missing tensors, a truncated checkpoint, bad
 * parameters. Each must fail with the right status and a message that names the cause. The
 * unusual-but-valid cases must give the same logits as the original: a sharded copy, and a copy
 * with F32 and F16 tensors, one of them misaligned in the file.
 */
#include "testutil.h"

#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *path2(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static json_t *fixture_json(const char *rel) {
    char *p = tu_fixture(rel);
    json_error_t je;
    json_t *j = json_load_file(p, JSON_PRESERVE_ORDER, &je);
    if (!j) fail_msg("%s: %s", p, je.text);
    free(p);
    return j;
}

static void write_json(const char *dir, const char *name, json_t *j) {
    char *p = path2(dir, name);
    assert_int_equal(json_dump_file(j, p, JSON_INDENT(1) | JSON_PRESERVE_ORDER), 0);
    free(p);
}

static void link_weights(const char *dir) {
    char *src = tu_fixture("llava-ov-tiny/model.safetensors");
    char *dst = path2(dir, "model.safetensors");
    assert_int_equal(symlink(src, dst), 0);
    free(src);
    free(dst);
}

/* A folder with the fixture's config (after `edit`, may be NULL) and weights. */
static char *make_folder(void (*edit)(json_t *cfg), bool weights) {
    char *dir = tu_tmpdir();
    json_t *cfg = fixture_json("llava-ov-tiny/config.json");
    if (edit) edit(cfg);
    write_json(dir, "config.json", cfg);
    json_decref(cfg);
    if (weights) link_weights(dir);
    return dir;
}

static void expect_open(const char *dir, lg_status want, const char *needle) {
    lg_model *m = NULL;
    lg_error e;
    lg_err_clear(&e);
    lg_status s = lg_model_open(dir, NULL, &m, &e);
    if (s != want || (needle && !strstr(e.msg, needle)))
        fail_msg("open %s: status %d (%s) \"%s\"; wanted %d with \"%s\"", dir, s, lg_status_str(s),
                 e.msg, want, needle ? needle : "");
    assert_null(m);
    print_message("  %-16s %s\n", lg_status_str(s), e.msg);
}

// ---- folders and configs ----

static void test_missing_files(void **state) {
    (void)state;
    char *dir = tu_tmpdir();
    expect_open(dir, LG_E_IO, "no config.json");
    char *nodir = path2(dir, "nonexistent");
    expect_open(nodir, LG_E_IO, "no config.json");
    free(nodir);
    free(dir);
    dir = make_folder(NULL, false);
    expect_open(dir, LG_E_IO, "no model.safetensors");
    free(dir);
    /* config.json that is not JSON */
    dir = tu_tmpdir();
    char *p = path2(dir, "config.json");
    tu_write(p, "{\"model_type\": ", 15);
    expect_open(dir, LG_E_FORMAT, "invalid JSON");
    tu_write(p, "[]", 2);
    expect_open(dir, LG_E_FORMAT, "JSON object");
    free(p);
    free(dir);
}

static void set_type(json_t *c) {
    json_object_set_new(c, "model_type", json_string("llava_next_video"));
}
static void drop_type(json_t *c) {
    json_object_del(c, "model_type");
}
static void text_mistral(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "model_type", json_string("mistral"));
}
static void vision_other(json_t *c) { /* CLIP and SigLIP towers are supported, DINOv2 not */
    json_object_set_new(json_object_get(c, "vision_config"), "model_type", json_string("dinov2"));
}
static void bad_heads(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "num_attention_heads", json_integer(7));
}
static void bad_kv_heads(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "num_key_value_heads", json_integer(3));
}
static void bad_layer(json_t *c) {
    json_object_set_new(c, "vision_feature_layer", json_integer(5));
}
static void bad_aspect(json_t *c) {
    json_object_set_new(c, "vision_aspect_ratio", json_string("anyres"));
}
static void sliding(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "use_sliding_window", json_true());
}
static void rope_scaling(json_t *c) {
    json_t *rs = json_object();
    json_object_set_new(rs, "rope_type", json_string("yarn"));
    json_object_set_new(json_object_get(c, "text_config"), "rope_scaling", rs);
}
static void string_size(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "hidden_size", json_string("64"));
}
static void negative_size(json_t *c) {
    json_object_set_new(json_object_get(c, "vision_config"), "hidden_size", json_integer(-64));
}
static void no_text(json_t *c) {
    json_object_del(c, "text_config");
}
static void bad_act(json_t *c) {
    json_object_set_new(c, "projector_hidden_act", json_string("relu6"));
}
static void wide_text(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "hidden_size", json_integer(128));
}
static void big_vocab(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "vocab_size", json_integer(152064));
}
static void untied(json_t *c) {
    json_object_set_new(json_object_get(c, "text_config"), "tie_word_embeddings", json_false());
}
static void list_layer(json_t *c) {
    json_t *a = json_array();
    json_array_append_new(a, json_integer(-1));
    json_object_set_new(c, "vision_feature_layer", a);
}

static void test_bad_configs(void **state) {
    (void)state;
    struct {
        void (*edit)(json_t *);
        lg_status want;
        const char *needle;
    } cases[] = {
        {set_type, LG_E_UNSUPPORTED, "model_type \"llava_next_video\""},
        {drop_type, LG_E_FORMAT, "\"model_type\" is missing"},
        {text_mistral, LG_E_UNSUPPORTED, "text_config.model_type \"mistral\""},
        {vision_other, LG_E_UNSUPPORTED, "vision_config.model_type \"dinov2\""},
        {bad_heads, LG_E_FORMAT, "not a multiple of 7 heads"},
        {bad_kv_heads, LG_E_FORMAT, "key/value heads 3"},
        {bad_layer, LG_E_FORMAT, "vision_feature_layer 5"},
        {list_layer, LG_E_UNSUPPORTED, "list-valued"},
        {bad_aspect, LG_E_UNSUPPORTED, "vision_aspect_ratio \"anyres\""},
        {sliding, LG_E_UNSUPPORTED, "use_sliding_window"},
        {rope_scaling, LG_E_UNSUPPORTED, "rope_scaling \"yarn\""},
        {string_size, LG_E_FORMAT, "\"hidden_size\" must be an integer"},
        {negative_size, LG_E_FORMAT, "\"hidden_size\" = -64 is out of range"},
        {no_text, LG_E_FORMAT, "\"text_config\""},
        {bad_act, LG_E_UNSUPPORTED, "activation \"relu6\""},
        /* valid configs that do not match the weights */
        {wide_text, LG_E_FORMAT, "linear_1.weight\" has shape [64, 64], expected [128, 64]"},
        {big_vocab, LG_E_FORMAT, "has shape [152000, 64], expected [152064, 64]"},
        {untied, LG_E_FORMAT, "missing tensor \"language_model.lm_head.weight\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = make_folder(cases[i].edit, true);
        expect_open(dir, cases[i].want, cases[i].needle);
        free(dir);
    }
}

static void test_bad_params(void **state) {
    (void)state;
    char *dir = tu_fixture("llava-ov-tiny");
    lg_model *m = NULL;
    lg_error e;
    lg_model_params p = lg_model_params_default();
    p.kernels = "bogus";
    assert_int_equal(lg_model_open(dir, &p, &m, &e), LG_E_ARG);
    assert_non_null(strstr(e.msg, "bogus"));
    p = lg_model_params_default();
    p.kv_type = (lg_kv_type)9;
    assert_int_equal(lg_model_open(dir, &p, &m, &e), LG_E_ARG);
    p = lg_model_params_default();
    p.max_context = -1;
    assert_int_equal(lg_model_open(dir, &p, &m, &e), LG_E_ARG);
    assert_int_equal(lg_model_open(NULL, NULL, &m, &e), LG_E_ARG);
    assert_null(m);
    lg_model_free(NULL);
    free(dir);
}

// ---- rewritten checkpoints ----

typedef struct ckpt {
    json_t *header; /* parsed header (order preserved) */
    uint8_t *data;  /* the data buffer */
    size_t n_data;
} ckpt;

static ckpt load_ckpt(void) {
    size_t n;
    uint8_t *f = tu_read_fixture("llava-ov-tiny/model.safetensors", &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f[i];
    json_error_t je;
    ckpt c;
    c.header = json_loadb((const char *)f + 8, (size_t)hl, JSON_PRESERVE_ORDER, &je);
    assert_non_null(c.header);
    c.n_data = n - 8 - (size_t)hl;
    c.data = malloc(c.n_data);
    memcpy(c.data, f + 8 + hl, c.n_data);
    free(f);
    return c;
}

static void write_ckpt(const char *dir, const char *name, json_t *header, const uint8_t *data,
                       size_t n_data) {
    char *j = json_dumps(header, JSON_COMPACT | JSON_PRESERVE_ORDER);
    /* Pad the header with spaces so the data buffer starts 8-aligned, as the safetensors
     * writer does; then offsets alone decide each tensor's alignment. */
    size_t hl = strlen(j);
    while ((8 + hl) % 8) hl++;
    char *h = calloc(1, hl + 1);
    memset(h, ' ', hl);
    memcpy(h, j, strlen(j));
    free(j);
    uint8_t *buf = malloc(8 + hl + n_data);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    memcpy(buf + 8 + hl, data, n_data);
    char *p = path2(dir, name);
    tu_write(p, buf, 8 + hl + n_data);
    free(p);
    free(buf);
    free(h);
}

/* A folder with the fixture config and the checkpoint after `edit` of its header. */
static char *folder_with_header(void (*edit)(json_t *hdr)) {
    char *dir = make_folder(NULL, false);
    ckpt c = load_ckpt();
    edit(c.header);
    write_ckpt(dir, "model.safetensors", c.header, c.data, c.n_data);
    json_decref(c.header);
    free(c.data);
    return dir;
}

static void shrink_bias(json_t *h) {
    json_t *t = json_object_get(h, "multi_modal_projector.linear_2.bias");
    json_array_set_new(json_object_get(t, "shape"), 0, json_integer(32));
    json_t *off = json_object_get(t, "data_offsets");
    json_int_t b = json_integer_value(json_array_get(off, 0));
    json_array_set_new(off, 1, json_integer(b + 64)); /* leaves a hole: allowed */
}
static void drop_up(json_t *h) {
    json_object_del(h, "language_model.model.layers.1.mlp.up_proj.weight");
}
static void drop_newline(json_t *h) {
    json_object_del(h, "image_newline");
}
static void int_bias(json_t *h) {
    json_object_set_new(json_object_get(h, "language_model.model.layers.0.self_attn.q_proj.bias"),
                        "dtype", json_string("I16"));
}
static void transpose_conv(json_t *h) {
    json_t *s = json_object_get(
        json_object_get(h, "vision_tower.vision_model.embeddings.patch_embedding.weight"), "shape");
    json_array_set_new(s, 1, json_integer(14));
    json_array_set_new(s, 3, json_integer(3));
}
static void overlap(json_t *h) {
    json_t *a = json_object_get(h, "image_newline");
    json_t *b = json_object_get(h, "language_model.model.norm.weight");
    json_array_set(json_object_get(b, "data_offsets"), 0,
                   json_array_get(json_object_get(a, "data_offsets"), 0));
    json_array_set(json_object_get(b, "data_offsets"), 1,
                   json_array_get(json_object_get(a, "data_offsets"), 1));
}

static void test_bad_checkpoints(void **state) {
    (void)state;
    struct {
        void (*edit)(json_t *);
        lg_status want;
        const char *needle;
    } cases[] = {
        {shrink_bias, LG_E_FORMAT,
         "\"multi_modal_projector.linear_2.bias\" has shape [32], expected [64]"},
        {drop_up, LG_E_FORMAT, "missing tensor \"language_model.model.layers.1.mlp.up_proj"},
        {drop_newline, LG_E_FORMAT, "missing tensor \"image_newline\""},
        {int_bias, LG_E_UNSUPPORTED, "has dtype I16"},
        {transpose_conv, LG_E_FORMAT, "expected [64, 3, 14, 14]"},
        {overlap, LG_E_FORMAT, "overlap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = folder_with_header(cases[i].edit);
        expect_open(dir, cases[i].want, cases[i].needle);
        free(dir);
    }
    /* a truncated download */
    char *dir = make_folder(NULL, false);
    size_t n;
    uint8_t *f = tu_read_fixture("llava-ov-tiny/model.safetensors", &n);
    char *p = path2(dir, "model.safetensors");
    tu_write(p, f, n - 4096);
    expect_open(dir, LG_E_FORMAT, "truncated");
    free(p);
    free(f);
    free(dir);
}

// ---- valid variants give the same logits ----

static float *prompt_logits(const char *dir, int64_t *n_vocab) {
    lg_model *m = NULL;
    lg_error e;
    lg_model_params p = lg_model_params_default();
    p.kernels = "ref";
    if (lg_model_open(dir, &p, &m, &e) != LG_OK) fail_msg("open %s: %s", dir, e.msg);
    lg_session *s = NULL;
    assert_int_equal(lg_session_create(m, &s, &e), LG_OK);
    const int32_t ids[] = {151644, 872, 198, 60424, 264, 7149, 15449, 369, 279, 2213, 3897, 553};
    const float *lg = NULL;
    assert_int_equal(lg_session_eval(s, ids, sizeof ids / sizeof ids[0], NULL, 0, 0, &lg), LG_OK);
    *n_vocab = lg_model_n_vocab(m);
    float *out = malloc((size_t)*n_vocab * sizeof *out);
    memcpy(out, lg, (size_t)*n_vocab * sizeof *out);
    lg_session_free(s);
    lg_model_free(m);
    return out;
}

static void test_sharded_model(void **state) {
    (void)state;
    int64_t nv;
    char *orig = tu_fixture("llava-ov-tiny");
    float *want = prompt_logits(orig, &nv);
    free(orig);
    /* vision + projector in shard 1, the language model in shard 2 (same data buffer). */
    char *dir = make_folder(NULL, false);
    ckpt c = load_ckpt();
    json_t *h1 = json_object(), *h2 = json_object(), *map = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(c.header, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        bool lm = strncmp(key, "language_model.", 15) == 0;
        json_object_set(lm ? h2 : h1, key, v);
        json_object_set_new(map, key,
                            json_string(lm ? "model-00002-of-00002.safetensors"
                                           : "model-00001-of-00002.safetensors"));
    }
    write_ckpt(dir, "model-00001-of-00002.safetensors", h1, c.data, c.n_data);
    write_ckpt(dir, "model-00002-of-00002.safetensors", h2, c.data, c.n_data);
    json_t *index = json_object();
    json_object_set_new(index, "metadata", json_object());
    json_object_set_new(index, "weight_map", map);
    write_json(dir, "model.safetensors.index.json", index);
    float *got = prompt_logits(dir, &nv);
    assert_memory_equal(got, want, (size_t)nv * sizeof *got);
    json_decref(index);
    json_decref(h1);
    json_decref(h2);
    json_decref(c.header);
    free(c.data);
    free(got);
    free(want);
    free(dir);
}

/* Rewrites the checkpoint with every vision and decoder-layer tensor in F32 (exact for bf16
 * values), one tensor in F16, and 2 bytes of padding before the first F32 tensor so that it is
 * misaligned in the file. */
static void test_f32_f16_misaligned(void **state) {
    (void)state;
    int64_t nv;
    char *orig = tu_fixture("llava-ov-tiny");
    float *want = prompt_logits(orig, &nv);
    free(orig);
    char *dir = make_folder(NULL, false);
    ckpt c = load_ckpt();
    json_t *h = json_object();
    size_t cap = c.n_data * 2 + 16, len = 2; /* two bytes of padding up front */
    uint8_t *out = calloc(1, cap);
    const char *key;
    json_t *v;
    json_object_foreach(c.header, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        json_t *off = json_object_get(v, "data_offsets");
        size_t b = (size_t)json_integer_value(json_array_get(off, 0));
        size_t e = (size_t)json_integer_value(json_array_get(off, 1));
        const uint16_t *src = (const uint16_t *)(c.data + b);
        size_t n = (e - b) / 2;
        const char *dt = "BF16";
        if (strcmp(key, "language_model.model.layers.0.self_attn.o_proj.weight") == 0) {
            dt = "F16";
            for (size_t i = 0; i < n; i++) {
                uint16_t x = lg_f32_to_f16(lg_bf16_to_f32(src[i]));
                memcpy(out + len + 2 * i, &x, 2);
            }
            len += 2 * n;
        } else if (strncmp(key, "vision_tower.", 13) == 0 || strstr(key, ".layers.")) {
            dt = "F32";
            for (size_t i = 0; i < n; i++) {
                float x = lg_bf16_to_f32(src[i]);
                memcpy(out + len + 4 * i, &x, 4);
            }
            len += 4 * n;
        } else {
            memcpy(out + len, src, e - b);
            len += e - b;
        }
        json_t *t = json_deep_copy(v);
        json_object_set_new(t, "dtype", json_string(dt));
        size_t nb = strcmp(dt, "F32") == 0 ? 4 * n : 2 * n;
        json_t *o = json_array();
        json_array_append_new(o, json_integer((json_int_t)(len - nb)));
        json_array_append_new(o, json_integer((json_int_t)len));
        json_object_set_new(t, "data_offsets", o);
        json_object_set_new(h, key, t);
    }
    write_ckpt(dir, "model.safetensors", h, out, len);
    /* The realignment path really ran: the file misaligns this F32 matrix, the model copied it. */
    lg_model *m = NULL;
    lg_error err;
    assert_int_equal(lg_model_open(dir, NULL, &m, &err), LG_OK);
    const st_tensor *q =
        st_find(&m->st, "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight");
    assert_true(q->dt == LG_DT_F32 && (uintptr_t)q->data % 4 != 0);
    assert_true(m->w.vit.layers[0].q.data != q->data);
    assert_true((uintptr_t)m->w.vit.layers[0].q.data % 4 == 0);
    lg_model_free(m);
    float *got = prompt_logits(dir, &nv);
    /* F32 is exact; the F16 tensor rounds a few tiny values, hence a tolerance. */
    tu_check_tensor(got, want, (size_t)nv, 1e-4, "f32/f16 checkpoint logits");
    json_decref(h);
    json_decref(c.header);
    free(c.data);
    free(out);
    free(got);
    free(want);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_files), cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_bad_params),    cmocka_unit_test(test_bad_checkpoints),
        cmocka_unit_test(test_sharded_model), cmocka_unit_test(test_f32_f16_misaligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
