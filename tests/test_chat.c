/* LAYERS: core text */
/*
 * test_chat.c — the chat templates: every template byte-exact on a short text (the strings of
 * the issue and of fixtures README 3.3, 6 and 7.3), the training-time user turns of
 * shared/reference/prompts (<image>\n + policy) inside qwen_1_5 and vicuna_v1, image expansion
 * and order, the model_type defaults, and argument errors.
 */
#include "testutil.h"

#include "llavaguard.h"

#include <stdlib.h>
#include <string.h>

static char *render(const char *tmpl, const char *text, int has_image, int64_t n, int image_first) {
    char *out = NULL;
    size_t len = 0;
    lg_error e;
    lg_status st =
        lg_chat_render(tmpl, text, strlen(text), has_image, n, image_first, &out, &len, &e);
    if (st) fail_msg("render %s: %s", tmpl ? tmpl : "(default)", e.msg);
    assert_int_equal(len, strlen(out));
    return out;
}

static void expect_render(const char *tmpl, const char *text, int has_image, int64_t n,
                          int image_first, const char *want) {
    char *got = render(tmpl, text, has_image, n, image_first);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n got: %s\nwant: %s", tmpl ? tmpl : "(default)", got, want);
    lg_free(got);
}

static void test_templates_exact(void **state) {
    (void)state;
    expect_render("qwen_1_5", "P", 1, 1, 1,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "<image>\nP<|im_end|>\n<|im_start|>assistant\n");
    expect_render(NULL, "P", 0, 0, 1,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "P<|im_end|>\n<|im_start|>assistant\n");
    expect_render("llava_onevision_hf", "P", 1, 3, 1,
                  "<|im_start|>user\n<image><image><image>\nP<|im_end|>\n<|im_start|>assistant\n");
    expect_render("vicuna_v1", "P", 1, 1, 1,
                  "A chat between a curious user and an artificial intelligence assistant. The "
                  "assistant gives helpful, detailed, and polite answers to the user's questions. "
                  "USER: <image>\nP ASSISTANT:");
    expect_render("vicuna_v1", "P", 0, 0, 1,
                  "A chat between a curious user and an artificial intelligence assistant. The "
                  "assistant gives helpful, detailed, and polite answers to the user's questions. "
                  "USER: P ASSISTANT:");
    expect_render("chatml_direct", "P", 1, 2, 0,
                  "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n"
                  "<image><image>\nP<|im_end|><|im_start|>assistant\n");
    expect_render("qwen2_vl", "P", 1, 2, 0,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "P<|vision_start|><|image_pad|><|image_pad|><|vision_end|><|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_render("qwen2_vl", "P", 1, 1, 1,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "<|vision_start|><|image_pad|><|vision_end|>P<|im_end|>\n"
                  "<|im_start|>assistant\n");
    expect_render("qwen2_vl", "P", 0, 0, 0,
                  "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                  "P<|im_end|>\n<|im_start|>assistant\n");
}

/* The user turn as the released models saw it in training, from shared/reference/prompts. */
static void expect_trained_turn(const char *tmpl, const char *policy_file, const char *turn_file,
                                const char *head, const char *tail) {
    char *p = tu_shared(policy_file), *t = tu_shared(turn_file);
    size_t plen, tlen;
    char *policy = (char *)tu_read(p, &plen), *turn = (char *)tu_read(t, &tlen);
    char *out;
    size_t olen;
    lg_error e;
    assert_int_equal(lg_chat_render(tmpl, policy, plen, 1, 1, 1, &out, &olen, &e), LG_OK);
    size_t hl = strlen(head), tl = strlen(tail);
    assert_int_equal(olen, hl + tlen + tl);
    assert_memory_equal(out, head, hl);
    assert_memory_equal(out + hl, turn, tlen);
    assert_memory_equal(out + hl + tlen, tail, tl);
    lg_free(out);
    free(policy);
    free(turn);
    free(p);
    free(t);
}

static void test_training_user_turns(void **state) {
    (void)state;
    expect_trained_turn("qwen_1_5", "reference/prompts/prompt_v1.2.txt",
                        "reference/prompts/prompt_v1.2_user_turn_as_trained.txt",
                        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                        "<|im_start|>user\n",
                        "<|im_end|>\n<|im_start|>assistant\n");
    expect_trained_turn("vicuna_v1", "reference/prompts/prompt_v1.0.txt",
                        "reference/prompts/prompt_v1.0_user_turn_as_trained.txt",
                        "A chat between a curious user and an artificial intelligence assistant. "
                        "The assistant gives helpful, detailed, and polite answers to the user's "
                        "questions. USER: ",
                        " ASSISTANT:");
}

static void test_defaults_and_lookups(void **state) {
    (void)state;
    assert_string_equal(lg_chat_template_for_model("llava_onevision"), "qwen_1_5");
    assert_string_equal(lg_chat_template_for_model("llava"), "vicuna_v1");
    assert_string_equal(lg_chat_template_for_model("llava_next"), "chatml_direct");
    assert_string_equal(lg_chat_template_for_model("qwen2_5_vl"), "qwen2_vl");
    assert_string_equal(lg_chat_template_for_model("qwen2_vl"), "qwen2_vl");
    assert_null(lg_chat_template_for_model("bert"));
    assert_null(lg_chat_template_for_model(NULL));
    assert_string_equal(lg_chat_image_token("qwen2_vl"), "<|image_pad|>");
    assert_string_equal(lg_chat_image_token("vicuna_v1"), "<image>");
    assert_null(lg_chat_image_token("nope"));
    const char *const *names = lg_chat_template_names();
    size_t n = 0;
    for (; names[n]; n++) {
        char *s = render(names[n], "x", 1, 1, 1); /* every listed template renders */
        assert_non_null(strstr(s, lg_chat_image_token(names[n])));
        lg_free(s);
    }
    assert_int_equal(n, 5);
}

static void test_errors(void **state) {
    (void)state;
    char *out = NULL;
    lg_error e;
    assert_int_equal(lg_chat_render("llama3", "x", 1, 0, 0, 1, &out, NULL, &e), LG_E_ARG);
    assert_non_null(strstr(e.msg, "unknown chat template \"llama3\""));
    assert_non_null(strstr(e.msg, "qwen_1_5"));
    assert_int_equal(lg_chat_render("qwen_1_5", "x", 1, 1, 0, 1, &out, NULL, &e), LG_E_ARG);
    assert_non_null(strstr(e.msg, "image_tokens"));
    assert_int_equal(lg_chat_render("qwen_1_5", "x", 1, 1, -5, 1, &out, NULL, &e), LG_E_ARG);
    assert_int_equal(lg_chat_render("qwen_1_5", NULL, 3, 0, 0, 1, &out, NULL, &e), LG_E_ARG);
    assert_null(out);
    /* the text is taken by length: embedded NUL bytes are kept */
    size_t len;
    assert_int_equal(lg_chat_render("vicuna_v1", "a\0b", 3, 0, 0, 1, &out, &len, &e), LG_OK);
    assert_non_null(memchr(out, 'b', len));
    lg_free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates_exact),
        cmocka_unit_test(test_training_user_turns),
        cmocka_unit_test(test_defaults_and_lookups),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
