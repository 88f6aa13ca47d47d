/*
 * chat.c — the chat templates, spelled out in one table: the exact text around one user turn
 * (image placeholder + policy) and the assistant generation prompt, for each model family
 * LlavaGuard ships. Must match byte for byte: LLaVA-NeXT's conv_qwen_1_5 (training template of
 * LlavaGuard v1.2 OneVision), the Hugging Face chat templates of the model folders
 * (llava-onevision, llava-1.5 vicuna_v1, llava-1.6-34b chatml_direct, Qwen2.5-VL) rendered with
 * add_generation_prompt=True — see fixtures README sections 3.3, 6 and 7.3.
 */
#include "text.h"

#include <string.h>

typedef struct chat_template {
    const char *name;
    const char *head;        /* system turn (if any) and the opening of the user turn */
    const char *image_open;  /* before the image tokens */
    const char *image_token; /* repeated image_tokens times */
    const char *image_close; /* after the image tokens */
    const char *tail;        /* end of the user turn and the assistant generation prompt */
    bool image_after_text;   /* the image may follow the text (else it always comes first) */
} chat_template;

static const chat_template templates[] = {
    /* LLaVA-NeXT conv_qwen_1_5 (SeparatorStyle.CHATML): system + "<|im_end|>\n", each turn
     * role + "\n" + message + "<|im_end|>\n", then "<|im_start|>assistant\n"; the message is
     * "<image>\n" + policy. */
    {"qwen_1_5", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
     "", "<image>", "\n", "<|im_end|>\n<|im_start|>assistant\n", false},
    /* transformers' llava-onevision template: images first, each "<image>\n", no system turn. */
    {"llava_onevision_hf", "<|im_start|>user\n", "", "<image>", "\n",
     "<|im_end|>\n<|im_start|>assistant\n", false},
    /* LLaVA conv_vicuna_v1: one space before USER: and ASSISTANT:, nothing after the colon. */
    {"vicuna_v1",
     "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
     "helpful, detailed, and polite answers to the user's questions. USER: ",
     "", "<image>", "\n", " ASSISTANT:", false},
    /* LLaVA conv_chatml_direct (LLaVA-1.6-34B): no newline after <|im_end|>. */
    {"chatml_direct", "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n", "",
     "<image>", "\n", "<|im_end|><|im_start|>assistant\n", false},
    /* Qwen2-VL / Qwen2.5-VL: default system turn; the vision block has no separator from the
     * text and may come before or after it. */
    {"qwen2_vl", "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
     "<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|im_end|>\n<|im_start|>assistant\n",
     true},
};
#define N_TEMPLATES (sizeof templates / sizeof templates[0])

static const char *const template_names[N_TEMPLATES + 1] = {
    "qwen_1_5", "llava_onevision_hf", "vicuna_v1", "chatml_direct", "qwen2_vl", NULL};

static const struct {
    const char *model_type;
    const char *template_name;
} model_defaults[] = {
    {"llava_onevision", "qwen_1_5"}, /* LlavaGuard v1.2 OV: its training template */
    {"llava", "vicuna_v1"},          /* LlavaGuard v1.0 7B/13B */
    {"llava_next", "chatml_direct"}, /* LlavaGuard v1.1 34B */
    {"qwen2_vl", "qwen2_vl"},        {"qwen2_5_vl", "qwen2_vl"}, /* QwenGuard */
};

static const chat_template *find_template(const char *name) {
    for (size_t i = 0; i < N_TEMPLATES; i++)
        if (strcmp(templates[i].name, name) == 0) return &templates[i];
    return NULL;
}

const char *const *lg_chat_template_names(void) {
    return template_names;
}

const char *lg_chat_template_for_model(const char *model_type) {
    if (!model_type) return NULL;
    for (size_t i = 0; i < sizeof model_defaults / sizeof model_defaults[0]; i++)
        if (strcmp(model_defaults[i].model_type, model_type) == 0)
            return model_defaults[i].template_name;
    return NULL;
}

const char *lg_chat_image_token(const char *template_name) {
    const chat_template *t = template_name ? find_template(template_name) : NULL;
    return t ? t->image_token : NULL;
}

static void put_image(lg_buf *b, const chat_template *t, int64_t image_tokens) {
    lg_buf_puts(b, t->image_open);
    size_t tl = strlen(t->image_token);
    for (int64_t i = 0; i < image_tokens && !b->failed; i++) lg_buf_append(b, t->image_token, tl);
    lg_buf_puts(b, t->image_close);
}

lg_status lg_chat_render(const char *template_name, const char *user_text, size_t user_len,
                         int has_image, int64_t image_tokens, int image_first, char **out,
                         size_t *out_len, lg_error *err) {
    if (!template_name) template_name = "qwen_1_5";
    if (!out || (!user_text && user_len))
        return lg_err_set(err, LG_E_ARG, "chat template: NULL argument");
    const chat_template *t = find_template(template_name);
    if (!t) {
        lg_buf names;
        lg_buf_init(&names);
        for (size_t i = 0; i < N_TEMPLATES; i++)
            lg_buf_printf(&names, "%s%s", i ? ", " : "", templates[i].name);
        lg_status st = lg_err_set(err, LG_E_ARG, "unknown chat template \"%s\" (known: %s)",
                                  template_name, names.data ? names.data : "");
        lg_buf_free(&names);
        return st;
    }
    /* an upper bound that keeps the rendered prompt addressable */
    if (has_image && (image_tokens < 1 || image_tokens > ((int64_t)1 << 24)))
        return lg_err_set(err, LG_E_ARG, "chat template: image_tokens %lld out of range [1, 2^24]",
                          (long long)image_tokens);
    lg_buf b;
    lg_buf_init(&b);
    lg_buf_puts(&b, t->head);
    bool image_last = has_image && !image_first && t->image_after_text;
    if (has_image && !image_last) put_image(&b, t, image_tokens);
    lg_buf_append(&b, user_text, user_len);
    if (image_last) put_image(&b, t, image_tokens);
    lg_buf_puts(&b, t->tail);
    if (b.failed) {
        lg_buf_free(&b);
        return lg_err_set(err, LG_E_NOMEM, "out of memory");
    }
    size_t l;
    *out = lg_buf_detach(&b, &l);
    if (out_len) *out_len = l;
    return LG_OK;
}
