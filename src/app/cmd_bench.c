/*
 * cmd_bench.c — `llavaguard bench`: measures this machine's limits (lg_machine_limits_measure:
 * the best matrix unit's instruction peak and the memory read bandwidth), then every stage of a
 * verdict on a real-shaped model — image decode, preprocessing, the vision tower per crop, the
 * projector, prefill of N tokens, decode per token, a whole 1024x768 verdict with the rationale
 * off and on — as median times, GFLOP/s or GB/s, % of the measured limit, and the speedup over
 * the --exact (reference-kernel) path measured in the same run. --synthetic 0.5b|7b writes random
 * weights with the LlavaGuard v1.2 shapes (LLaVA-OneVision: SigLIP so400m + Qwen2), qwen2.5-vl-3b
 * those of QwenGuard-v1.2-3B and llava-1.5-7b those of LlavaGuard-7B (CLIP ViT-L/14-336 + Llama)
 * to a temporary folder, so no download is needed; with no tokenizer there, the verdicts are
 * simulated (random prompt ids, single-token evals), while a --model folder with tokenizer.json
 * runs the real guard (lg_guard_assess). Output: a table, or one JSON object with --json (issue 7).
 */
#include "app.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define CMD "bench"

typedef struct bench_opts {
    const char *synthetic, *model, *image, *keep;
    bool json, quick, no_exact, batch;
    int threads, runs, batch_images;
    long prefill, decode, policy_tokens, verdict_tokens, rationale_tokens;
    lg_precision precision;
    lg_kv_type kv_type; /* LG_KV_AUTO (the default): the library's choice, i16 */
} bench_opts;

/* Shapes read back from config.json (synthetic or real). */
typedef enum family { FAM_ONEVISION = 0, FAM_LLAVA, FAM_QWEN25 } family;

typedef struct dims {
    int v_d, v_ff, v_layers, v_heads, image_size, patch; /* image_size: 0 for Qwen2.5-VL */
    int t_d, t_ff, t_layers, t_heads, t_kv;
    int64_t vocab;
    bool tie;
    family fam;
} dims;

static void print_help(void) {
    printf(
        "Usage: llavaguard bench (--synthetic 0.5b|7b|qwen2.5-vl-3b|llava-1.5-7b | --model DIR)\n"
        "                        [options]\n"
        "\n"
        "Measures this machine's limits (matrix-unit instruction peak, memory bandwidth), then\n"
        "each stage of a verdict: median time, GFLOP/s or GB/s, %% of the limit, and the\n"
        "speedup over the --exact path measured in the same run.\n"
        "\n"
        "  --synthetic SIZE       random weights with LlavaGuard v1.2 shapes: 0.5b (SigLIP\n"
        "                         so400m + Qwen2-0.5B, 1.8 GB written to a temporary folder)\n"
        "                         or 7b (Qwen2-7B, 16 GB; needs that much disk and memory);\n"
        "                         qwen2.5-vl-3b (QwenGuard-v1.2-3B, 7.5 GB) or llava-1.5-7b\n"
        "                         (LlavaGuard-7B: CLIP ViT-L/14-336 + Llama-7B, 14 GB)\n"
        "  --model DIR            a real LLaVA-OneVision folder instead (with\n"
        "                         tokenizer.json the verdict stages run the real guard)\n"
        "  --image IMG            the image for the image stages (default: a synthetic\n"
        "                         1024x768 BMP made in memory)\n"
        "  --json                 print one JSON object (limits, stages) instead of a table\n"
        "  --runs N               runs per stage, the median is reported (default 3)\n"
        "  --prefill N            tokens of the prefill stage (default 4096)\n"
        "  --decode N             tokens timed for decode per token (default 32)\n"
        "  --quick                1 run, prefill 1024, 8 decode tokens, no rationale stage\n"
        "  --no-exact             skip the reference-kernel comparison\n"
        "  --threads N            compute threads (default: one per core)\n"
        "  --precision P          fast kernels' activations: accurate (default; two bf16\n"
        "                         halves) or bf16 (rounded once: faster, less exact)\n"
        "  --kv-type T            KV cache: i16 (default: int16 with a scale per head row,\n"
        "                         half of f32, logits within ~2e-4 of it), f32, bf16 or f16\n"
        "                         (these two move the logits by ~1e-3..1e-2)\n"
        "  --keep DIR             write the synthetic model to DIR and keep it\n"
        "  --batch                also the batch engine's stages: decode_step_batch (ms per\n"
        "                         step at 1..16 sequences), and with a tokenizer in the\n"
        "                         folder verdict_batch (images/s at max_batch 1/4/8 next to\n"
        "                         one-by-one lg_guard_assess), category_scoring (one pass vs\n"
        "                         one call per option), policies_per_image (1 image x 4\n"
        "                         policies, shared vs separate); 384x384 images\n"
        "  --batch-images N       images per verdict_batch run (default 8)\n"
        "  -h, --help             show this help\n");
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---- the synthetic model ---- */

typedef struct preset {
    const char *name;
    dims d;
} preset;

static const preset PRESETS[] = {
    {"0.5b", {1152, 4304, 26, 16, 384, 14, 896, 4864, 24, 14, 2, 151936, true, FAM_ONEVISION}},
    {"7b", {1152, 4304, 26, 16, 384, 14, 3584, 18944, 28, 28, 4, 152064, false, FAM_ONEVISION}},
    /* Qwen2.5-VL-3B: its 32-block tower (1280 wide, SwiGLU 3420) + a Qwen2.5-3B decoder */
    {"qwen2.5-vl-3b",
     {1280, 3420, 32, 16, 0, 14, 2048, 11008, 36, 16, 2, 151936, true, FAM_QWEN25}},
    /* llava-hf/llava-1.5-7b-hf: CLIP ViT-L/14-336 + Vicuna-7B (32064 rows, untied head) */
    {"llava-1.5-7b",
     {1024, 4096, 24, 16, 336, 14, 4096, 11008, 32, 32, 32, 32064, false, FAM_LLAVA}},
};

static const preset *find_preset(const char *name) {
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, name) == 0) return &PRESETS[i];
    return NULL;
}

static json_t *pinpoints(void) {
    json_t *a = json_array();
    for (int h = 1; h <= 6; h++)
        for (int w = 1; w <= 6; w++) json_array_append_new(a, json_pack("[ii]", 384 * h, 384 * w));
    return a;
}

static int write_json(const char *dir, const char *name, json_t *j) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = json_dump_file(j, path, JSON_INDENT(1));
    json_decref(j);
    return rc;
}

static int write_configs_ov(const char *dir, const dims *d) {
    json_t *tc =
        json_pack("{s:[s],s:i,s:i,s:i,s:i,s:i,s:s,s:i,s:i,s:i,s:f,s:f,s:b,s:s,s:I,s:i}",
                  "architectures", "Qwen2ForCausalLM", "bos_token_id", 151643, "eos_token_id",
                  151645, "hidden_size", d->t_d, "intermediate_size", d->t_ff, "max_window_layers",
                  d->t_layers, "model_type", "qwen2", "num_attention_heads", d->t_heads,
                  "num_hidden_layers", d->t_layers, "num_key_value_heads", d->t_kv, "rope_theta",
                  1000000.0, "rms_norm_eps", 1e-6, "tie_word_embeddings", d->tie, "torch_dtype",
                  "bfloat16", "vocab_size", (json_int_t)d->vocab, "max_position_embeddings", 32768);
    json_t *vc =
        json_pack("{s:i,s:i,s:i,s:s,s:i,s:i,s:i,s:f,s:b}", "hidden_size", d->v_d, "image_size",
                  d->image_size, "intermediate_size", d->v_ff, "model_type", "siglip_vision_model",
                  "num_attention_heads", d->v_heads, "num_hidden_layers", d->v_layers, "patch_size",
                  d->patch, "layer_norm_eps", 1e-6, "vision_use_head", false);
    json_t *cfg = json_pack(
        "{s:[s],s:o,s:i,s:i,s:s,s:s,s:o,s:b,s:s,s:s,s:b,s:i,s:s,s:o,s:i,s:s}", "architectures",
        "LlavaOnevisionForConditionalGeneration", "image_grid_pinpoints", pinpoints(),
        "image_seq_length", 729, "image_token_index", 151646, "model_type", "llava_onevision",
        "projector_hidden_act", "gelu", "text_config", tc, "tie_word_embeddings", d->tie,
        "torch_dtype", "bfloat16", "transformers_version", "4.45.2", "use_image_newline_parameter",
        true, "video_token_index", 151647, "vision_aspect_ratio", "anyres_max_9", "vision_config",
        vc, "vision_feature_layer", -1, "vision_feature_select_strategy", "full");
    json_t *pre =
        json_pack("{s:b,s:b,s:b,s:b,s:b,s:o,s:[f,f,f],s:s,s:[f,f,f],s:s,s:i,s:f,s:{s:i,s:i}}",
                  "do_convert_rgb", true, "do_normalize", true, "do_pad", true, "do_rescale", true,
                  "do_resize", true, "image_grid_pinpoints", pinpoints(), "image_mean", 0.5, 0.5,
                  0.5, "image_processor_type", "LlavaOnevisionImageProcessor", "image_std", 0.5,
                  0.5, 0.5, "processor_class", "LlavaOnevisionProcessor", "resample", 3,
                  "rescale_factor", 1.0 / 255.0, "size", "height", 384, "width", 384);
    json_t *gen = json_pack("{s:i,s:i}", "bos_token_id", 151643, "eos_token_id", 151645);
    if (!tc || !vc || !cfg || !pre || !gen) return -1;
    if (write_json(dir, "config.json", cfg) || write_json(dir, "preprocessor_config.json", pre) ||
        write_json(dir, "generation_config.json", gen))
        return -1;
    return 0;
}

static json_t *clip_norm(void) {
    return json_pack("[f,f,f]", 0.48145466, 0.4578275, 0.40821073);
}

static json_t *clip_std(void) {
    return json_pack("[f,f,f]", 0.26862954, 0.26130258, 0.27577711);
}

/* llava-hf/llava-1.5-7b-hf's configs (LlavaForConditionalGeneration, transformers 4.45). */
static int write_configs_llava(const char *dir, const dims *d) {
    json_t *tc = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:I,s:i,s:b}", "model_type", "llama",
                           "hidden_size", d->t_d, "intermediate_size", d->t_ff, "num_hidden_layers",
                           d->t_layers, "num_attention_heads", d->t_heads, "num_key_value_heads",
                           d->t_kv, "rms_norm_eps", 1e-5, "vocab_size", (json_int_t)d->vocab,
                           "max_position_embeddings", 4096, "tie_word_embeddings", d->tie);
    json_t *vc =
        json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:f}", "model_type", "clip_vision_model",
                  "hidden_size", d->v_d, "intermediate_size", d->v_ff, "num_hidden_layers",
                  d->v_layers, "num_attention_heads", d->v_heads, "image_size", d->image_size,
                  "patch_size", d->patch, "hidden_act", "quick_gelu", "layer_norm_eps", 1e-5);
    json_t *cfg =
        json_pack("{s:[s],s:s,s:i,s:s,s:o,s:o,s:i,s:s}", "architectures",
                  "LlavaForConditionalGeneration", "model_type", "llava", "image_token_index",
                  32000, "projector_hidden_act", "gelu", "text_config", tc, "vision_config", vc,
                  "vision_feature_layer", -2, "vision_feature_select_strategy", "default");
    json_t *pre = json_pack(
        "{s:{s:i,s:i},s:b,s:b,s:b,s:b,s:b,s:o,s:s,s:o,s:i,s:f,s:{s:i}}", "crop_size", "height",
        d->image_size, "width", d->image_size, "do_center_crop", true, "do_convert_rgb", true,
        "do_normalize", true, "do_rescale", true, "do_resize", true, "image_mean", clip_norm(),
        "image_processor_type", "CLIPImageProcessor", "image_std", clip_std(), "resample", 3,
        "rescale_factor", 1.0 / 255.0, "size", "shortest_edge", d->image_size);
    json_t *gen = json_pack("{s:i,s:i}", "bos_token_id", 1, "eos_token_id", 2);
    if (!tc || !vc || !cfg || !pre || !gen) return -1;
    if (write_json(dir, "config.json", cfg) || write_json(dir, "preprocessor_config.json", pre) ||
        write_json(dir, "generation_config.json", gen))
        return -1;
    return 0;
}

/* Qwen/Qwen2.5-VL-3B-Instruct's configs (transformers 4.50 layout: text fields at the top). */
static int write_configs_qwen(const char *dir, const dims *d) {
    int hd2 = d->t_d / d->t_heads / 2, t = hd2 / 4, h = (hd2 - t) / 2;
    json_t *vc = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:[i,i,i,i]}",
                           "model_type", "qwen2_5_vl", "depth", d->v_layers, "hidden_size", d->v_d,
                           "intermediate_size", d->v_ff, "num_heads", d->v_heads, "in_channels", 3,
                           "patch_size", d->patch, "spatial_merge_size", 2, "temporal_patch_size",
                           2, "window_size", 112, "out_hidden_size", d->t_d, "hidden_act", "silu",
                           "fullatt_block_indexes", 7, 15, 23, 31);
    json_t *cfg = json_pack(
        "{s:[s],s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:f,s:I,s:i,s:b,s:b,s:i,s:i,s:i,s:{s:s,s:[i,i,i]},s:o}",
        "architectures", "Qwen2_5_VLForConditionalGeneration", "model_type", "qwen2_5_vl",
        "hidden_size", d->t_d, "intermediate_size", d->t_ff, "num_hidden_layers", d->t_layers,
        "num_attention_heads", d->t_heads, "num_key_value_heads", d->t_kv, "rms_norm_eps", 1e-6,
        "rope_theta", 1000000.0, "vocab_size", (json_int_t)d->vocab, "max_position_embeddings",
        128000, "tie_word_embeddings", d->tie, "use_sliding_window", false, "image_token_id",
        151655, "vision_start_token_id", 151652, "eos_token_id", 151645, "rope_scaling", "type",
        "mrope", "mrope_section", t, h, hd2 - t - h, "vision_config", vc);
    json_t *pre = json_pack(
        "{s:b,s:b,s:b,s:b,s:o,s:s,s:o,s:I,s:i,s:i,s:i,s:i,s:f,s:i}", "do_convert_rgb", true,
        "do_normalize", true, "do_rescale", true, "do_resize", true, "image_mean", clip_norm(),
        "image_processor_type", "Qwen2VLImageProcessor", "image_std", clip_std(), "max_pixels",
        (json_int_t)12845056, "min_pixels", 3136, "merge_size", 2, "patch_size", d->patch,
        "resample", 3, "rescale_factor", 1.0 / 255.0, "temporal_patch_size", 2);
    json_t *gen = json_pack("{s:i,s:i}", "bos_token_id", 151643, "eos_token_id", 151645);
    if (!vc || !cfg || !pre || !gen) return -1;
    if (write_json(dir, "config.json", cfg) || write_json(dir, "preprocessor_config.json", pre) ||
        write_json(dir, "generation_config.json", gen))
        return -1;
    return 0;
}

static int write_configs(const char *dir, const dims *d) {
    return d->fam == FAM_QWEN25  ? write_configs_qwen(dir, d)
           : d->fam == FAM_LLAVA ? write_configs_llava(dir, d)
                                 : write_configs_ov(dir, d);
}

/* One tensor of the synthetic checkpoint: its name, shape and what its values look like. */
typedef enum init_kind { INIT_WEIGHT, INIT_BIAS, INIT_ONES } init_kind;
typedef struct syn_tensor {
    char name[128];
    int n_dims;
    int64_t shape[5];
    init_kind init;
} syn_tensor;

typedef struct tensor_list {
    syn_tensor *t;
    size_t n, cap;
} tensor_list;

static void add(tensor_list *l, init_kind init, int n_dims, int64_t s0, int64_t s1, int64_t s2,
                int64_t s3, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static void add(tensor_list *l, init_kind init, int n_dims, int64_t s0, int64_t s1, int64_t s2,
                int64_t s3, const char *fmt, ...) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        syn_tensor *nt = realloc(l->t, l->cap * sizeof *nt);
        if (!nt) {
            fprintf(stderr, "llavaguard bench: out of memory\n");
            exit(APP_EXIT_FAIL);
        }
        l->t = nt;
    }
    syn_tensor *t = &l->t[l->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->n_dims = n_dims;
    t->shape[0] = s0, t->shape[1] = s1, t->shape[2] = s2, t->shape[3] = s3;
    t->init = init;
}

/* The decoder of a transformers 4.45 Llava* / Qwen2.5-VL checkpoint under prefix lp; biases on
 * q/k/v when qkv_bias (Qwen2). */
static void list_decoder(const dims *d, tensor_list *l, const char *lp, bool qkv_bias) {
    int64_t td = d->t_d, kvd = td / d->t_heads * d->t_kv;
    add(l, INIT_WEIGHT, 2, d->vocab, td, 0, 0, "%s.embed_tokens.weight", lp);
    for (int i = 0; i < d->t_layers; i++) {
        add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.layers.%d.input_layernorm.weight", lp, i);
        add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.layers.%d.post_attention_layernorm.weight", lp, i);
        static const char *qkv[] = {"q_proj", "k_proj", "v_proj"};
        for (int p = 0; p < 3; p++) {
            int64_t out = p ? kvd : td;
            add(l, INIT_WEIGHT, 2, out, td, 0, 0, "%s.layers.%d.self_attn.%s.weight", lp, i,
                qkv[p]);
            if (qkv_bias)
                add(l, INIT_BIAS, 1, out, 0, 0, 0, "%s.layers.%d.self_attn.%s.bias", lp, i, qkv[p]);
        }
        add(l, INIT_WEIGHT, 2, td, td, 0, 0, "%s.layers.%d.self_attn.o_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, d->t_ff, td, 0, 0, "%s.layers.%d.mlp.gate_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, d->t_ff, td, 0, 0, "%s.layers.%d.mlp.up_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, td, d->t_ff, 0, 0, "%s.layers.%d.mlp.down_proj.weight", lp, i);
    }
    add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.norm.weight", lp);
}

/* Qwen2.5-VL (transformers 4.50 names): visual.* and model.*, tied head as in the 3B model. */
static void list_tensors_qwen(const dims *d, tensor_list *l) {
    int64_t vd = d->v_d, ff = d->v_ff, wide = 4 * vd;
    add(l, INIT_WEIGHT, 4, vd, 3, 2, d->patch, "visual.patch_embed.proj.weight");
    l->t[l->n - 1].n_dims = 5, l->t[l->n - 1].shape[4] = d->patch; /* Conv3d: [vd, 3, 2, p, p] */
    for (int i = 0; i < d->v_layers; i++) {
        add(l, INIT_ONES, 1, vd, 0, 0, 0, "visual.blocks.%d.norm1.weight", i);
        add(l, INIT_ONES, 1, vd, 0, 0, 0, "visual.blocks.%d.norm2.weight", i);
        add(l, INIT_WEIGHT, 2, 3 * vd, vd, 0, 0, "visual.blocks.%d.attn.qkv.weight", i);
        add(l, INIT_BIAS, 1, 3 * vd, 0, 0, 0, "visual.blocks.%d.attn.qkv.bias", i);
        add(l, INIT_WEIGHT, 2, vd, vd, 0, 0, "visual.blocks.%d.attn.proj.weight", i);
        add(l, INIT_BIAS, 1, vd, 0, 0, 0, "visual.blocks.%d.attn.proj.bias", i);
        add(l, INIT_WEIGHT, 2, ff, vd, 0, 0, "visual.blocks.%d.mlp.gate_proj.weight", i);
        add(l, INIT_BIAS, 1, ff, 0, 0, 0, "visual.blocks.%d.mlp.gate_proj.bias", i);
        add(l, INIT_WEIGHT, 2, ff, vd, 0, 0, "visual.blocks.%d.mlp.up_proj.weight", i);
        add(l, INIT_BIAS, 1, ff, 0, 0, 0, "visual.blocks.%d.mlp.up_proj.bias", i);
        add(l, INIT_WEIGHT, 2, vd, ff, 0, 0, "visual.blocks.%d.mlp.down_proj.weight", i);
        add(l, INIT_BIAS, 1, vd, 0, 0, 0, "visual.blocks.%d.mlp.down_proj.bias", i);
    }
    add(l, INIT_ONES, 1, vd, 0, 0, 0, "visual.merger.ln_q.weight");
    add(l, INIT_WEIGHT, 2, wide, wide, 0, 0, "visual.merger.mlp.0.weight");
    add(l, INIT_BIAS, 1, wide, 0, 0, 0, "visual.merger.mlp.0.bias");
    add(l, INIT_WEIGHT, 2, d->t_d, wide, 0, 0, "visual.merger.mlp.2.weight");
    add(l, INIT_BIAS, 1, d->t_d, 0, 0, 0, "visual.merger.mlp.2.bias");
    list_decoder(d, l, "model", true);
    if (!d->tie) add(l, INIT_WEIGHT, 2, d->vocab, d->t_d, 0, 0, "lm_head.weight");
}

/* LLaVA-1.5 (transformers 4.45 names): CLIP with class token and pre_layrnorm, no newline. */
static void list_tensors_llava(const dims *d, tensor_list *l) {
    const char *vp = "vision_tower.vision_model";
    int64_t vd = d->v_d, g = d->image_size / d->patch;
    add(l, INIT_WEIGHT, 1, vd, 0, 0, 0, "%s.embeddings.class_embedding", vp);
    add(l, INIT_WEIGHT, 4, vd, 3, d->patch, d->patch, "%s.embeddings.patch_embedding.weight", vp);
    add(l, INIT_WEIGHT, 2, g * g + 1, vd, 0, 0, "%s.embeddings.position_embedding.weight", vp);
    add(l, INIT_ONES, 1, vd, 0, 0, 0, "%s.pre_layrnorm.weight", vp);
    add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.pre_layrnorm.bias", vp);
    for (int i = 0; i < d->v_layers; i++) {
        static const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) {
            add(l, INIT_WEIGHT, 2, vd, vd, 0, 0, "%s.encoder.layers.%d.self_attn.%s.weight", vp, i,
                proj[p]);
            add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.self_attn.%s.bias", vp, i,
                proj[p]);
        }
        for (int n = 1; n <= 2; n++) {
            add(l, INIT_ONES, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.layer_norm%d.weight", vp, i, n);
            add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.layer_norm%d.bias", vp, i, n);
        }
        add(l, INIT_WEIGHT, 2, d->v_ff, vd, 0, 0, "%s.encoder.layers.%d.mlp.fc1.weight", vp, i);
        add(l, INIT_BIAS, 1, d->v_ff, 0, 0, 0, "%s.encoder.layers.%d.mlp.fc1.bias", vp, i);
        add(l, INIT_WEIGHT, 2, vd, d->v_ff, 0, 0, "%s.encoder.layers.%d.mlp.fc2.weight", vp, i);
        add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.mlp.fc2.bias", vp, i);
    }
    add(l, INIT_ONES, 1, vd, 0, 0, 0, "%s.post_layernorm.weight", vp);
    add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.post_layernorm.bias", vp);
    int64_t td = d->t_d;
    add(l, INIT_WEIGHT, 2, td, vd, 0, 0, "multi_modal_projector.linear_1.weight");
    add(l, INIT_BIAS, 1, td, 0, 0, 0, "multi_modal_projector.linear_1.bias");
    add(l, INIT_WEIGHT, 2, td, td, 0, 0, "multi_modal_projector.linear_2.weight");
    add(l, INIT_BIAS, 1, td, 0, 0, 0, "multi_modal_projector.linear_2.bias");
    list_decoder(d, l, "language_model.model", false);
    if (!d->tie) add(l, INIT_WEIGHT, 2, d->vocab, td, 0, 0, "language_model.lm_head.weight");
}

/* The tensor names and shapes of a transformers 4.45 LLaVA-OneVision checkpoint. */
static void list_tensors_ov(const dims *d, tensor_list *l) {
    const char *vp = "vision_tower.vision_model";
    int64_t vd = d->v_d, n_pos = (int64_t)(d->image_size / d->patch) * (d->image_size / d->patch);
    add(l, INIT_WEIGHT, 4, vd, 3, d->patch, d->patch, "%s.embeddings.patch_embedding.weight", vp);
    add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.embeddings.patch_embedding.bias", vp);
    add(l, INIT_WEIGHT, 2, n_pos, vd, 0, 0, "%s.embeddings.position_embedding.weight", vp);
    for (int i = 0; i < d->v_layers; i++) {
        static const char *proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) {
            add(l, INIT_WEIGHT, 2, vd, vd, 0, 0, "%s.encoder.layers.%d.self_attn.%s.weight", vp, i,
                proj[p]);
            add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.self_attn.%s.bias", vp, i,
                proj[p]);
        }
        for (int n = 1; n <= 2; n++) {
            add(l, INIT_ONES, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.layer_norm%d.weight", vp, i, n);
            add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.layer_norm%d.bias", vp, i, n);
        }
        add(l, INIT_WEIGHT, 2, d->v_ff, vd, 0, 0, "%s.encoder.layers.%d.mlp.fc1.weight", vp, i);
        add(l, INIT_BIAS, 1, d->v_ff, 0, 0, 0, "%s.encoder.layers.%d.mlp.fc1.bias", vp, i);
        add(l, INIT_WEIGHT, 2, vd, d->v_ff, 0, 0, "%s.encoder.layers.%d.mlp.fc2.weight", vp, i);
        add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.encoder.layers.%d.mlp.fc2.bias", vp, i);
    }
    add(l, INIT_ONES, 1, vd, 0, 0, 0, "%s.post_layernorm.weight", vp);
    add(l, INIT_BIAS, 1, vd, 0, 0, 0, "%s.post_layernorm.bias", vp);
    int64_t td = d->t_d, kvd = td / d->t_heads * d->t_kv;
    add(l, INIT_WEIGHT, 2, td, vd, 0, 0, "multi_modal_projector.linear_1.weight");
    add(l, INIT_BIAS, 1, td, 0, 0, 0, "multi_modal_projector.linear_1.bias");
    add(l, INIT_WEIGHT, 2, td, td, 0, 0, "multi_modal_projector.linear_2.weight");
    add(l, INIT_BIAS, 1, td, 0, 0, 0, "multi_modal_projector.linear_2.bias");
    add(l, INIT_WEIGHT, 1, td, 0, 0, 0, "image_newline");
    const char *lp = "language_model.model";
    add(l, INIT_WEIGHT, 2, d->vocab, td, 0, 0, "%s.embed_tokens.weight", lp);
    for (int i = 0; i < d->t_layers; i++) {
        add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.layers.%d.input_layernorm.weight", lp, i);
        add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.layers.%d.post_attention_layernorm.weight", lp, i);
        add(l, INIT_WEIGHT, 2, td, td, 0, 0, "%s.layers.%d.self_attn.q_proj.weight", lp, i);
        add(l, INIT_BIAS, 1, td, 0, 0, 0, "%s.layers.%d.self_attn.q_proj.bias", lp, i);
        add(l, INIT_WEIGHT, 2, kvd, td, 0, 0, "%s.layers.%d.self_attn.k_proj.weight", lp, i);
        add(l, INIT_BIAS, 1, kvd, 0, 0, 0, "%s.layers.%d.self_attn.k_proj.bias", lp, i);
        add(l, INIT_WEIGHT, 2, kvd, td, 0, 0, "%s.layers.%d.self_attn.v_proj.weight", lp, i);
        add(l, INIT_BIAS, 1, kvd, 0, 0, 0, "%s.layers.%d.self_attn.v_proj.bias", lp, i);
        add(l, INIT_WEIGHT, 2, td, td, 0, 0, "%s.layers.%d.self_attn.o_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, d->t_ff, td, 0, 0, "%s.layers.%d.mlp.gate_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, d->t_ff, td, 0, 0, "%s.layers.%d.mlp.up_proj.weight", lp, i);
        add(l, INIT_WEIGHT, 2, td, d->t_ff, 0, 0, "%s.layers.%d.mlp.down_proj.weight", lp, i);
    }
    add(l, INIT_ONES, 1, td, 0, 0, 0, "%s.norm.weight", lp);
    if (!d->tie) add(l, INIT_WEIGHT, 2, d->vocab, td, 0, 0, "language_model.lm_head.weight");
}

static void list_tensors(const dims *d, tensor_list *l) {
    if (d->fam == FAM_QWEN25)
        list_tensors_qwen(d, l);
    else if (d->fam == FAM_LLAVA)
        list_tensors_llava(d, l);
    else
        list_tensors_ov(d, l);
}

static int64_t numel(const syn_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}

/* Random bf16 values, uniform with standard deviation 0.02 (a transformer's usual init scale):
 * activations stay finite through every layer, which is all the timings need. */
static void fill(uint16_t *buf, size_t n, init_kind init, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) {
        if (init == INIT_ONES) {
            buf[i] = 0x3f80;
        } else if (init == INIT_BIAS) {
            buf[i] = 0;
        } else {
            *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
            float v = ((float)(*rng >> 40) / 16777216.0f - 0.5f) * 0.0693f;
            uint32_t u;
            memcpy(&u, &v, 4);
            buf[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
}

static int write_safetensors(const char *dir, const dims *d) {
    tensor_list l = {0};
    list_tensors(d, &l);
    json_t *hdr = json_object();
    uint64_t off = 0;
    for (size_t i = 0; i < l.n; i++) {
        json_t *shape = json_array();
        for (int k = 0; k < l.t[i].n_dims; k++)
            json_array_append_new(shape, json_integer((json_int_t)l.t[i].shape[k]));
        uint64_t bytes = (uint64_t)numel(&l.t[i]) * 2;
        json_object_set_new(hdr, l.t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", "BF16", "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    int rc = -1;
    if (h && f) {
        size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
        uint64_t n8 = padded;
        uint8_t le[8];
        for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n8 >> (8 * i));
        fwrite(le, 1, 8, f);
        fwrite(h, 1, hl, f);
        for (size_t i = hl; i < padded; i++) fputc(' ', f);
        size_t chunk = (size_t)1 << 22;
        uint16_t *buf = malloc(chunk * 2);
        uint64_t rng = 0x2545f4914f6cdd1dull;
        rc = buf ? 0 : -1;
        for (size_t i = 0; i < l.n && rc == 0; i++) {
            int64_t left = numel(&l.t[i]);
            while (left > 0 && rc == 0) {
                size_t n = left < (int64_t)chunk ? (size_t)left : chunk;
                fill(buf, n, l.t[i].init, &rng);
                if (fwrite(buf, 2, n, f) != n) rc = -1;
                left -= (int64_t)n;
            }
        }
        free(buf);
    }
    if (f && fclose(f) != 0) rc = -1;
    free(h);
    free(l.t);
    return rc;
}

/* ---- reading the shapes of any folder ---- */

static int get_int(json_t *o, const char *k, int dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : dflt;
}

static int read_dims(const char *dir, dims *d) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t je;
    json_t *c = json_load_file(path, 0, &je);
    if (!c) return -1;
    json_t *tc = json_object_get(c, "text_config"), *vc = json_object_get(c, "vision_config");
    json_t *mt = json_object_get(c, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : "";
    d->fam = strcmp(type, "qwen2_5_vl") == 0                                 ? FAM_QWEN25
             : strcmp(type, "llava") == 0 || strcmp(type, "llava_next") == 0 ? FAM_LLAVA
                                                                             : FAM_ONEVISION;
    if (d->fam == FAM_QWEN25 && !tc) tc = c; /* 4.50 keeps the text fields at the top level */
    d->t_d = get_int(tc, "hidden_size", 896);
    d->t_ff = get_int(tc, "intermediate_size", 4864);
    d->t_layers = get_int(tc, "num_hidden_layers", 24);
    d->t_heads = get_int(tc, "num_attention_heads", 14);
    d->t_kv = get_int(tc, "num_key_value_heads", d->t_heads);
    d->vocab = get_int(tc, "vocab_size", 151936);
    json_t *tie = json_object_get(c, "tie_word_embeddings");
    d->tie = tie ? json_is_true(tie) : false;
    d->v_d = get_int(vc, "hidden_size", 1152);
    d->v_ff = get_int(vc, "intermediate_size", 4304);
    d->v_layers = get_int(vc, "num_hidden_layers", 26);
    d->v_heads = get_int(vc, "num_attention_heads", 16);
    d->image_size = get_int(vc, "image_size", 384);
    d->patch = get_int(vc, "patch_size", 14);
    if (d->fam == FAM_QWEN25) { /* Qwen2_5_VLVisionConfig's names */
        d->v_layers = get_int(vc, "depth", 32);
        d->v_heads = get_int(vc, "num_heads", 16);
        d->image_size = 0;
    }
    json_decref(c);
    return 0;
}

/* Patches one vision pass sees: a crop's grid (LLaVA), or the whole image's patch grid
 * (Qwen2.5-VL, one pass per image). */
static double pass_patches(const dims *d, const lg_pixels *px) {
    if (d->fam == FAM_QWEN25) return (double)px->grid_h * px->grid_w;
    return (double)(d->image_size / d->patch) * (d->image_size / d->patch);
}

/* FLOPs of one vision pass of n patches (matrix products and attention; Qwen2.5-VL's window
 * blocks are counted as full attention, an upper bound; its SwiGLU has three products). */
static double vision_flop(const dims *d, double n) {
    double vd = d->v_d, mlp = d->fam == FAM_QWEN25 ? 3 : 2;
    double per_layer = 2 * n * (4 * vd * vd + mlp * vd * d->v_ff) + 4 * n * n * vd;
    double in = 3.0 * d->patch * d->patch * (d->fam == FAM_QWEN25 ? 2 : 1);
    return per_layer * d->v_layers + 2 * n * vd * in;
}

/* FLOPs of the projector over `passes` passes of n patches: linear_1 and linear_2 on every row
 * the tower hands over (Qwen2.5-VL: the merger, 4 patches per row). */
static double projector_flop(const dims *d, double n, int64_t passes) {
    double td = d->t_d, vd = d->v_d;
    if (d->fam == FAM_QWEN25) return 2 * (n / 4) * (16 * vd * vd + 4 * vd * td) * (double)passes;
    return 2 * n * (double)passes * (vd * td + td * td);
}

/* Weights of one decoder layer's products (elements). */
static double layer_params(const dims *d) {
    double td = d->t_d, kvd = (double)d->t_d / d->t_heads * d->t_kv;
    return 2 * td * td + 2 * td * kvd + 3 * td * d->t_ff;
}

/* FLOPs of a prefill of n tokens at position pos0 (logits of the last position only). */
static double prefill_flop(const dims *d, double n, double pos0) {
    double att = 4 * d->t_d * (n * pos0 + n * (n + 1) / 2) * d->t_layers;
    return 2 * n * layer_params(d) * d->t_layers + att + 2.0 * d->t_d * (double)d->vocab;
}

/* Bytes of bf16 weights one decode step reads. */
static double decode_bytes(const dims *d) {
    return 2.0 * (layer_params(d) * d->t_layers + (double)d->t_d * (double)d->vocab);
}

/* ---- stages ---- */

typedef struct stage {
    char name[64];
    double median_s;
    double work;        /* flop or bytes per run (0: none) */
    bool is_bytes;      /* work is bytes (GB/s vs bandwidth) */
    double exact_s;     /* the exact path on the same work (0: not measured) */
    double fast_s;      /* the fast path on that same work */
    const char *method; /* verdicts: "guard" or "simulated" (NULL: not reported) */
    char note[192];
} stage;

typedef struct bench {
    bench_opts o;
    lg_machine_limits lim;
    dims d;
    const char *dir;
    lg_model *model, *exact;
    lg_preprocessor *pp;
    uint8_t *img_bytes;
    size_t img_size;
    stage st[48];
    int n_st;
    lg_kv_type kv; /* the fast model's KV cache type (as the model resolved it) */
} bench;

static stage *new_stage(bench *b, const char *name, double t, double work, bool bytes) {
    stage *s = &b->st[b->n_st++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->median_s = t, s->work = work, s->is_bytes = bytes;
    return s;
}

/* A 24-bit BMP of w x h with a smooth pattern (what the decoder does, not what it sees). */
static uint8_t *make_bmp(int w, int h, size_t *size) {
    size_t row = ((size_t)w * 3 + 3) / 4 * 4, n = 54 + row * (size_t)h;
    uint8_t *p = calloc(1, n);
    if (!p) return NULL;
    uint32_t v[13] = {
        (uint32_t)n, 0,    54, 40, (uint32_t)w, (uint32_t)h, 0, 0, (uint32_t)(row * h),
        2835,        2835, 0,  0};
    p[0] = 'B', p[1] = 'M';
    memcpy(p + 2, &v[0], 4);
    memcpy(p + 10, &v[2], 4);
    memcpy(p + 14, &v[3], 4);
    memcpy(p + 18, &v[4], 4);
    memcpy(p + 22, &v[5], 4);
    uint16_t planes = 1, bpp = 24;
    memcpy(p + 26, &planes, 2);
    memcpy(p + 28, &bpp, 2);
    memcpy(p + 34, &v[8], 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *px = p + 54 + (size_t)y * row + (size_t)x * 3;
            px[0] = (uint8_t)(x * 255 / w), px[1] = (uint8_t)(y * 255 / h),
            px[2] = (uint8_t)((x ^ y) & 255);
        }
    *size = n;
    return p;
}

static int fail_model(const char *what, lg_session *s) {
    return app_fail(CMD, "%s: %s", what, s ? lg_session_errmsg(s) : "failed");
}

/* Ids for a prompt of n tokens: ordinary text ids, never special. */
static int32_t *text_ids(size_t n, int32_t salt) {
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return NULL;
    /* ids 1000..30999: plain pieces in every family's vocabulary (Llama's has 32000, its image
     * token is 32000), never an image token */
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(1000 + (i * 7919 + (size_t)salt) % 30000);
    return ids;
}

/* Prefill of n tokens on a fresh cache; returns seconds (negative on failure). */
static double time_prefill(lg_session *s, const int32_t *ids, size_t n) {
    const float *logits = NULL;
    if (lg_session_truncate(s, 0) != LG_OK) return -1;
    double t0 = now();
    if (lg_session_eval(s, ids, n, NULL, 0, 0, &logits) != LG_OK) return -1;
    return now() - t0;
}

/* Median seconds per token of `count` single-token evals after the current cache. */
static double time_decode(lg_session *s, int count) {
    double t[256];
    if (count > 256) count = 256;
    const float *logits = NULL;
    for (int i = 0; i < count; i++) {
        int32_t id = 2000 + i;
        double t0 = now();
        if (lg_session_eval(s, &id, 1, NULL, 0, 0, &logits) != LG_OK) return -1;
        t[i] = now() - t0;
    }
    return median(t, count);
}

static int stage_image(bench *b) {
    double td[32], tp[32];
    int runs = b->o.runs;
    for (int r = 0; r < runs; r++) {
        lg_image *img = NULL;
        lg_pixels *px = NULL;
        lg_error err;
        double t0 = now();
        if (lg_image_load_memory(b->img_bytes, b->img_size, "bench image", NULL, &img, &err) !=
            LG_OK)
            return app_fail_err(CMD, &err);
        double t1 = now();
        if (lg_preprocess(b->pp, img, &px, &err) != LG_OK) {
            lg_image_free(img);
            return app_fail_err(CMD, &err);
        }
        td[r] = t1 - t0, tp[r] = now() - t1;
        lg_pixels_free(px);
        lg_image_free(img);
    }
    new_stage(b, "decode_image", median(td, runs), 0, false);
    new_stage(b, "preprocess", median(tp, runs), 0, false);
    return 0;
}

/* The vision tower, projector and packing over every crop: the whole call (encode_image) and,
 * from the session's own timings, the tower per crop (vision_crop) and the projector per image. */
static int stage_vision(bench *b, lg_session *s) {
    lg_image *img = NULL;
    lg_pixels *px = NULL;
    lg_error err;
    if (lg_image_load_memory(b->img_bytes, b->img_size, "bench image", NULL, &img, &err) != LG_OK ||
        lg_preprocess(b->pp, img, &px, &err) != LG_OK) {
        lg_image_free(img);
        return app_fail_err(CMD, &err);
    }
    double t[32], tv[32], tp[32], tk[32];
    int64_t rows = 0;
    for (int r = 0; r < b->o.runs; r++) {
        float *feat = NULL;
        lg_encode_timings et;
        double t0 = now();
        if (lg_session_encode_image(s, px, &feat, &rows) != LG_OK) {
            lg_pixels_free(px), lg_image_free(img);
            return fail_model("encode image", s);
        }
        t[r] = now() - t0;
        lg_free(feat);
        if (lg_session_last_encode_timings(s, &et) != LG_OK) {
            lg_pixels_free(px), lg_image_free(img);
            return fail_model("encode timings", s);
        }
        tv[r] = et.vision_s, tp[r] = et.projector_s, tk[r] = et.packing_s;
    }
    int crops = b->d.fam == FAM_QWEN25 ? 1 : px->n_crops; /* vision passes */
    int runs = b->o.runs;
    double med = median(t, runs), mv = median(tv, runs), mp = median(tp, runs),
           mk = median(tk, runs);
    double np = pass_patches(&b->d, px), vflop = vision_flop(&b->d, np);
    double pflop = projector_flop(&b->d, np, crops);
    stage *ei = new_stage(b, "encode_image", med, vflop * crops + pflop, false);
    snprintf(ei->note, sizeof ei->note,
             "%d crops, %lld image tokens: tower %.4f s + projector %.4f s + packing %.4f s", crops,
             (long long)rows, mv, mp, mk);
    stage *vc = new_stage(b, "vision_crop", mv / crops, vflop, false);
    snprintf(vc->note, sizeof vc->note, "vision tower only, per crop (%d crops)", crops);
    stage *pj = new_stage(b, "projector", mp, pflop, false);
    snprintf(pj->note, sizeof pj->note, "per image: %d crops x %d rows, linear_1 + gelu + linear_2",
             crops, (int)(b->d.fam == FAM_QWEN25 ? np / 4 : np));
    lg_pixels_free(px);
    lg_image_free(img);
    return 0;
}

static int stage_text(bench *b, lg_session *s, lg_session *ex) {
    size_t n = (size_t)b->o.prefill;
    int32_t *ids = text_ids(n, 1);
    if (!ids) return app_fail(CMD, "out of memory");
    double t[32];
    for (int r = 0; r < b->o.runs; r++)
        if ((t[r] = time_prefill(s, ids, n)) < 0) return free(ids), fail_model("prefill", s);
    stage *pf =
        new_stage(b, "prefill", median(t, b->o.runs), prefill_flop(&b->d, (double)n, 0), false);
    snprintf(pf->note, sizeof pf->note, "%zu tokens", n);
    /* decode at the end of that prompt: the cache holds n tokens */
    double td = time_decode(s, (int)b->o.decode);
    if (td < 0) return free(ids), fail_model("decode", s);
    stage *dt = new_stage(b, "decode_token", td, decode_bytes(&b->d), true);
    snprintf(dt->note, sizeof dt->note, "after %zu cached tokens", n);
    if (ex) { /* the exact path on small work, and the fast path on the same work */
        size_t ne = 16;
        double fe = time_prefill(s, ids, ne), ee = time_prefill(ex, ids, ne);
        double fd = time_decode(s, 3), ed = time_decode(ex, 1);
        if (fe < 0 || ee < 0 || fd < 0 || ed < 0) return free(ids), fail_model("exact path", ex);
        pf->fast_s = fe, pf->exact_s = ee;
        snprintf(pf->note, sizeof pf->note, "%zu tokens; speedup measured on %zu", n, ne);
        dt->fast_s = fd, dt->exact_s = ed;
        snprintf(dt->note, sizeof dt->note, "after %zu cached tokens; speedup after %zu", n, ne);
    }
    free(ids);
    return 0;
}

/* A whole verdict as the guard runs it: decode, preprocess, encode, prefill of the image tokens
 * and the policy prompt, then the generated tokens one by one (the JSON verdict, and with the
 * rationale a longer answer). */
static int stage_verdict(bench *b, lg_session *s, const char *name, long gen_tokens) {
    double t[32];
    int32_t img_tok = lg_model_image_token_id(b->model);
    for (int r = 0; r < b->o.runs; r++) {
        lg_image *img = NULL;
        lg_pixels *px = NULL;
        lg_error err;
        float *feat = NULL;
        int64_t rows = 0;
        const float *logits = NULL;
        double t0 = now();
        if (lg_image_load_memory(b->img_bytes, b->img_size, "bench image", NULL, &img, &err) !=
                LG_OK ||
            lg_preprocess(b->pp, img, &px, &err) != LG_OK) {
            lg_image_free(img);
            return app_fail_err(CMD, &err);
        }
        if (lg_session_encode_image(s, px, &feat, &rows) != LG_OK) {
            lg_pixels_free(px), lg_image_free(img);
            return fail_model("encode image", s);
        }
        size_t n = (size_t)rows + (size_t)b->o.policy_tokens;
        int32_t *ids = text_ids(n, 3);
        if (!ids) return app_fail(CMD, "out of memory");
        for (int64_t i = 0; i < rows; i++) ids[20 + i] = img_tok; /* after a short preamble */
        lg_status st = lg_session_truncate(s, 0);
        if (st == LG_OK) st = lg_session_eval(s, ids, n, feat, rows, 0, &logits);
        for (long k = 0; st == LG_OK && k < gen_tokens; k++) {
            int32_t id = 3000 + (int32_t)k;
            st = lg_session_eval(s, &id, 1, NULL, 0, 0, &logits);
        }
        t[r] = now() - t0;
        free(ids);
        lg_free(feat);
        lg_pixels_free(px);
        lg_image_free(img);
        if (st != LG_OK) return fail_model(name, s);
    }
    stage *v = new_stage(b, name, median(t, b->o.runs), 0, false);
    v->method = "simulated";
    snprintf(v->note, sizeof v->note,
             "simulated: no tokenizer in the folder; %ld prompt tokens + image, %ld generated",
             b->o.policy_tokens, gen_tokens);
    return 0;
}

/* A whole verdict through the public guard: image bytes -> lg_image -> lg_guard_assess (greedy)
 * -> verdict, the path `llavaguard assess` takes, with the real chat template, policy prompt
 * and tokenizer. */
static int stage_guard(bench *b, lg_guard *g, const lg_policy *pol, const char *name,
                       lg_rationale_mode mode) {
    lg_assess_params ap = lg_assess_params_default();
    ap.rationale = mode;
    /* random weights would otherwise write the whole 512-token default */
    ap.max_rationale_tokens = b->o.rationale_tokens > 0 ? (int)b->o.rationale_tokens : 160;
    double t[32];
    lg_verdict *last = NULL;
    for (int r = 0; r < b->o.runs; r++) {
        lg_image *img = NULL;
        lg_verdict *v = NULL;
        lg_error err;
        double t0 = now();
        if (lg_image_load_memory(b->img_bytes, b->img_size, "bench image", NULL, &img, &err) !=
            LG_OK)
            return lg_verdict_free(last), app_fail_err(CMD, &err);
        lg_status st = lg_guard_assess(g, img, pol, &ap, &v);
        t[r] = now() - t0;
        lg_image_free(img);
        if (st != LG_OK)
            return lg_verdict_free(last), app_fail(CMD, "%s: %s", name, lg_guard_errmsg(g));
        lg_verdict_free(last);
        last = v;
    }
    stage *s = new_stage(b, name, median(t, b->o.runs), 0, false);
    s->method = "guard";
    snprintf(s->note, sizeof s->note,
             "guard: real prompt %lld tokens (%lld image), %lld generated%s; last run: vision "
             "%.3f s, prefill %.3f s, answer %.3f s",
             (long long)last->prompt_tokens, (long long)last->image_tokens,
             (long long)last->answer_tokens, last->rationale_truncated ? " (rationale capped)" : "",
             last->timings.vision, last->timings.prefill, last->timings.verdict);
    lg_verdict_free(last);
    return 0;
}

/* ms per decoder step for k sequences at once (lg_session_eval_batch), k = 1..16: the curve a
 * batch size is chosen by. Each sequence holds a short prompt, so the step is the weights'
 * traffic plus k rows of arithmetic; attention over long contexts adds per sequence. */
static int stage_decode_batch(bench *b) {
    enum { MAXK = 16, CTX = 128 };
    lg_session *s[MAXK] = {0};
    lg_error err;
    int rc = 0;
    int32_t *ids = text_ids(CTX, 5);
    if (!ids) return app_fail(CMD, "out of memory");
    const float *logits = NULL;
    for (int i = 0; i < MAXK && !rc; i++)
        if (lg_session_create(b->model, &s[i], &err) != LG_OK)
            rc = app_fail_err(CMD, &err);
        else if (lg_session_eval(s[i], ids, CTX, NULL, 0, 0, &logits) != LG_OK)
            rc = fail_model("decode_step_batch prefill", s[i]);
    static const int ks[] = {1, 2, 4, 8, 16};
    double one = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0] && !rc; ki++) {
        int k = ks[ki], steps = (int)b->o.decode;
        double t[256];
        lg_eval_item items[MAXK];
        int32_t tok[MAXK];
        for (int r = 0; r < steps + 1 && !rc; r++) { /* the first step warms up */
            for (int i = 0; i < k; i++) {
                tok[i] = 4000 + r * MAXK + i;
                items[i] = (lg_eval_item){.session = s[i], .ids = &tok[i], .n = 1};
            }
            double t0 = now();
            lg_status st = lg_session_eval_batch(items, (size_t)k);
            if (r > 0) t[r - 1] = now() - t0;
            for (int i = 0; i < k && st == LG_OK; i++) st = items[i].status;
            if (st != LG_OK) rc = fail_model("decode_step_batch", s[0]);
        }
        for (int i = 0; i < k; i++) lg_session_truncate(s[i], CTX);
        if (rc) break;
        double med = median(t, steps);
        if (k == 1) one = med;
        char name[64];
        snprintf(name, sizeof name, "decode_step_batch%d", k);
        stage *st = new_stage(b, name, med, 0, false);
        snprintf(st->note, sizeof st->note,
                 "%d sequences (%d cached tokens each): %.2f ms per step, %.2f ms per sequence, "
                 "x%.2f the cost of one",
                 k, CTX, med * 1e3, med * 1e3 / k, one > 0 ? med / one : 1.0);
    }
    for (int i = 0; i < MAXK; i++) lg_session_free(s[i]);
    free(ids);
    return rc;
}

/* The batch engine on n copies of the image: images/s at max_batch mb, next to one-by-one
 * lg_guard_assess on the same guard parts. */
static int time_engine(bench *b, lg_guard *g, const uint8_t *img, size_t size, int n,
                       const lg_assess_params *ap, const lg_policy *const *pols, int n_pols,
                       double *seconds) {
    lg_request *reqs = calloc((size_t)n, sizeof *reqs);
    lg_result **res = calloc((size_t)n, sizeof *res);
    if (!reqs || !res) return free(reqs), free(res), app_fail(CMD, "out of memory");
    for (int i = 0; i < n; i++)
        reqs[i] = (lg_request){.image_bytes = img,
                               .image_size = size,
                               .name = "bench image",
                               .policies = pols,
                               .n_policies = (size_t)n_pols,
                               .params = ap};
    lg_error err;
    double t0 = now();
    int rc =
        lg_guard_assess_many(g, reqs, (size_t)n, res, &err) == LG_OK ? 0 : app_fail_err(CMD, &err);
    *seconds = now() - t0;
    for (int i = 0; i < n && !rc; i++)
        if (res[i]->status != LG_OK) rc = app_fail(CMD, "batch verdict: %s", res[i]->error);
    for (int i = 0; i < n; i++) lg_result_free(res[i]);
    free(reqs);
    free(res);
    (void)b;
    return rc;
}

static int time_one_by_one(lg_guard *g, const uint8_t *img, size_t size, int n,
                           const lg_assess_params *ap, const lg_policy *const *pols, int n_pols,
                           double *seconds, double *answer_s) {
    double t0 = now();
    *answer_s = 0;
    for (int i = 0; i < n; i++) {
        lg_image *im = NULL;
        lg_error err;
        if (lg_image_load_memory(img, size, "bench image", NULL, &im, &err) != LG_OK)
            return app_fail_err(CMD, &err);
        for (int p = 0; p < n_pols; p++) {
            lg_verdict *v = NULL;
            if (lg_guard_assess(g, im, pols[p], ap, &v) != LG_OK) {
                lg_image_free(im);
                return app_fail(CMD, "verdict: %s", lg_guard_errmsg(g));
            }
            *answer_s += v->timings.verdict;
            lg_verdict_free(v);
        }
        lg_image_free(im);
    }
    *seconds = now() - t0;
    return 0;
}

/* The batch engine's stages on the real guard (--batch): 384x384 images. */
static int guard_batch_stages(bench *b, const lg_model_params *mp) {
    size_t size = 0;
    uint8_t *img = make_bmp(384, 384, &size);
    if (!img) return app_fail(CMD, "out of memory");
    lg_policy *pols[4] = {0};
    lg_error err;
    int rc = 0;
    static const char *allow[4] = {NULL, "O3,O4", "O1", "O6,O7"};
    for (int i = 0; i < 4 && !rc; i++) {
        if (lg_policy_create_default("v1.2", &pols[i], &err) != LG_OK)
            rc = app_fail_err(CMD, &err);
        else if (allow[i])
            lg_policy_set_states(pols[i], allow[i], LG_CATEGORY_NONVIOLATING);
    }
    const lg_policy *const *cp = (const lg_policy *const *)pols;
    int n = b->o.batch_images;
    lg_assess_params ap = lg_assess_params_default();
    ap.max_rationale_tokens = b->o.rationale_tokens > 0 ? (int)b->o.rationale_tokens : 160;
    static const int mbs[] = {1, 4, 8};
    static const lg_rationale_mode modes[] = {LG_RATIONALE_ALWAYS, LG_RATIONALE_NEVER};
    for (size_t mi = 0; mi < 2 && !rc; mi++) {
        ap.rationale = modes[mi];
        const char *mname = mi == 0 ? "rationale" : "norationale";
        double base = 0, answer = 0;
        for (size_t k = 0; k < 3 && !rc; k++) {
            lg_guard_params gp = lg_guard_params_default();
            gp.model = *mp;
            gp.max_batch = mbs[k];
            lg_guard *g = NULL;
            if (lg_guard_open(b->dir, &gp, &g, &err) != LG_OK) {
                rc = app_fail_err(CMD, &err);
                break;
            }
            double warm = 0, t = 0;
            rc = time_engine(b, g, img, size, 1, &ap, cp, 1, &warm); /* packs the weights */
            if (!rc && k == 0) {
                rc = time_one_by_one(g, img, size, n, &ap, cp, 1, &base, &answer);
                if (!rc) {
                    char name[64];
                    snprintf(name, sizeof name, "verdict_one_by_one_%s", mname);
                    stage *st = new_stage(b, name, base / n, 0, false);
                    snprintf(st->note, sizeof st->note,
                             "lg_guard_assess x%d, 384x384: %.3f images/s (answer %.3f s each)", n,
                             n / base, answer / n);
                }
            }
            if (!rc) rc = time_engine(b, g, img, size, n, &ap, cp, 1, &t);
            if (!rc) {
                lg_guard_stats gs;
                lg_guard_stats_get(g, &gs);
                char name[64];
                snprintf(name, sizeof name, "verdict_batch%d_%s", mbs[k], mname);
                stage *st = new_stage(b, name, t / n, 0, false);
                snprintf(st->note, sizeof st->note,
                         "engine, %d images: %.3f images/s = x%.2f one-by-one; %.2f sequences "
                         "per step",
                         n, n / t, base / t,
                         gs.steps ? (double)gs.step_seqs / (double)gs.steps : 0.0);
            }
            lg_guard_free(g);
        }
    }
    /* category scoring and several policies per image, on one guard */
    lg_guard_params gp = lg_guard_params_default();
    gp.model = *mp;
    gp.max_batch = 1;
    lg_guard *g = NULL;
    if (!rc && lg_guard_open(b->dir, &gp, &g, &err) != LG_OK) rc = app_fail_err(CMD, &err);
    ap.rationale = LG_RATIONALE_NEVER;
    double t_sep = 0, a_one = 0, a_pass = 0, t_shared = 0, dummy = 0;
    if (!rc) rc = time_one_by_one(g, img, size, 1, &ap, cp, 1, &dummy, &a_pass); /* warm-up */
    for (int r = 0; r < 2 && !rc; r++) {
        ap.options_one_by_one = r == 0;
        double t = 0, a = 0;
        rc = time_one_by_one(g, img, size, b->o.runs, &ap, cp, 1, &t, &a);
        if (r == 0)
            a_one = a / b->o.runs;
        else
            a_pass = a / b->o.runs;
    }
    ap.options_one_by_one = 0;
    if (!rc) {
        stage *st = new_stage(b, "category_scoring_one_by_one", a_one, 0, false);
        snprintf(st->note, sizeof st->note,
                 "rating + category options, one model call per option: %.1f ms per verdict",
                 a_one * 1e3);
        st = new_stage(b, "category_scoring_one_pass", a_pass, 0, false);
        snprintf(st->note, sizeof st->note,
                 "every option in one batched pass: %.1f ms per verdict (x%.2f faster)",
                 a_pass * 1e3, a_pass > 0 ? a_one / a_pass : 0.0);
    }
    ap.rationale = LG_RATIONALE_ALWAYS;
    if (!rc) rc = time_one_by_one(g, img, size, 1, &ap, cp, 4, &t_sep, &dummy);
    if (!rc) rc = time_engine(b, g, img, size, 1, &ap, cp, 4, &t_shared);
    if (!rc) {
        stage *st = new_stage(b, "policies_per_image_separate", t_sep, 0, false);
        snprintf(st->note, sizeof st->note, "1 image x 4 policies, 4 lg_guard_assess calls");
        st = new_stage(b, "policies_per_image_shared", t_shared, 0, false);
        snprintf(st->note, sizeof st->note,
                 "one request with 4 policies: vision and the shared prefix once: x%.2f",
                 t_shared > 0 ? t_sep / t_shared : 0.0);
    }
    lg_guard_free(g);
    for (int i = 0; i < 4; i++) lg_policy_free(pols[i]);
    free(img);
    return rc;
}

static bool has_tokenizer(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    return access(path, R_OK) == 0;
}

/* The verdict stages on the real guard. The bench's own model and sessions are freed first, so
 * the guard's copy of the weights is the only one resident. */
static int guard_verdicts(bench *b, const lg_model_params *mp) {
    lg_guard_params gp = lg_guard_params_default();
    gp.model = *mp;
    lg_guard *g = NULL;
    lg_policy *pol = NULL;
    lg_error err;
    if (lg_guard_open(b->dir, &gp, &g, &err) != LG_OK) return app_fail_err(CMD, &err);
    int rc = 0;
    if (lg_policy_create_default(lg_guard_default_policy_version(g), &pol, &err) != LG_OK)
        rc = app_fail_err(CMD, &err);
    if (!rc) rc = stage_guard(b, g, pol, "verdict_1024x768_norationale", LG_RATIONALE_NEVER);
    if (!rc && b->o.rationale_tokens > 0)
        rc = stage_guard(b, g, pol, "verdict_1024x768_rationale", LG_RATIONALE_ALWAYS);
    lg_policy_free(pol);
    lg_guard_free(g);
    if (!rc && b->o.batch) {
        if (!b->o.json) fprintf(stderr, "bench: the batch engine's verdict stages\n");
        rc = guard_batch_stages(b, mp);
    }
    return rc;
}

/* ---- output ---- */

static double stage_rate(const bench *b, const stage *s, double *pct) {
    if (s->work <= 0 || s->median_s <= 0) return *pct = 0, 0;
    double rate = s->work / s->median_s / 1e9;
    double lim = s->is_bytes ? b->lim.bandwidth_gbps : b->lim.gemm_gflops;
    *pct = lim > 0 ? 100.0 * rate / lim : 0;
    return rate;
}

static void print_table(const bench *b) {
    printf("llavaguard bench — %s, %d threads, kernels %s, precision %s, KV cache %s\n", b->lim.cpu,
           b->lim.n_threads, b->lim.kernels, app_precision_name(b->o.precision),
           app_kv_type_name(b->kv));
    printf("limits: %s peak %.0f GFLOP/s, f32 FMA peak %.0f GFLOP/s, read bandwidth %.1f GB/s\n",
           b->lim.gemm_unit, b->lim.gemm_gflops, b->lim.fma_gflops, b->lim.bandwidth_gbps);
    if (b->lim.kernels_note && *b->lim.kernels_note) printf("note: %s\n", b->lim.kernels_note);
    printf("%-32s %12s %14s %9s %10s  %s\n", "stage", "median", "rate", "% limit", "vs exact",
           "note");
    for (int i = 0; i < b->n_st; i++) {
        const stage *s = &b->st[i];
        double pct, rate = stage_rate(b, s, &pct);
        char r[32] = "", p[16] = "", x[16] = "";
        if (rate > 0) {
            snprintf(r, sizeof r, "%.1f %s", rate, s->is_bytes ? "GB/s" : "GFLOP/s");
            snprintf(p, sizeof p, "%.1f%%", pct);
        }
        if (s->exact_s > 0 && s->fast_s > 0) snprintf(x, sizeof x, "x%.1f", s->exact_s / s->fast_s);
        printf("%-32s %10.4f s %14s %9s %10s  %s\n", s->name, s->median_s, r, p, x, s->note);
    }
}

static void print_json(const bench *b) {
    json_t *lim = json_pack("{s:f,s:s,s:f,s:f,s:i,s:s,s:s}", "gemm_gflops", b->lim.gemm_gflops,
                            "gemm_unit", b->lim.gemm_unit, "fma_gflops", b->lim.fma_gflops,
                            "bandwidth_gbps", b->lim.bandwidth_gbps, "threads", b->lim.n_threads,
                            "cpu", b->lim.cpu, "kernels", b->lim.kernels);
    if (b->lim.kernels_note && *b->lim.kernels_note)
        json_object_set_new(lim, "kernels_note", json_string(b->lim.kernels_note));
    json_t *stages = json_array();
    for (int i = 0; i < b->n_st; i++) {
        const stage *s = &b->st[i];
        json_t *o = json_pack("{s:s,s:f}", "name", s->name, "median_s", s->median_s);
        double pct, rate = stage_rate(b, s, &pct);
        if (rate > 0) {
            json_object_set_new(o, s->is_bytes ? "gbps" : "gflops", json_real(rate));
            json_object_set_new(o, "pct_of_limit", json_real(pct));
        }
        if (s->exact_s > 0 && s->fast_s > 0)
            json_object_set_new(o, "speedup_vs_exact", json_real(s->exact_s / s->fast_s));
        if (s->method) json_object_set_new(o, "method", json_string(s->method));
        if (s->note[0]) json_object_set_new(o, "note", json_string(s->note));
        json_array_append_new(stages, o);
    }
    json_t *root =
        json_pack("{s:s,s:s,s:s,s:o,s:o}", "model", b->o.synthetic ? b->o.synthetic : b->dir,
                  "precision", app_precision_name(b->o.precision), "kv_type",
                  app_kv_type_name(b->kv), "limits", lim, "stages", stages);
    char *txt = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (txt) puts(txt);
    free(txt);
    json_decref(root);
}

/* ---- main ---- */

static int parse_args(int argc, char **argv, bench_opts *o) {
    static const struct option longs[] = {{"synthetic", required_argument, 0, 'S'},
                                          {"model", required_argument, 0, 'm'},
                                          {"image", required_argument, 0, 'i'},
                                          {"json", no_argument, 0, 'J'},
                                          {"runs", required_argument, 0, 'r'},
                                          {"prefill", required_argument, 0, 'P'},
                                          {"decode", required_argument, 0, 'D'},
                                          {"quick", no_argument, 0, 'Q'},
                                          {"no-exact", no_argument, 0, 'X'},
                                          {"threads", required_argument, 0, 't'},
                                          {"precision", required_argument, 0, 'p'},
                                          {"kv-type", required_argument, 0, 'k'},
                                          {"keep", required_argument, 0, 'K'},
                                          {"batch", no_argument, 0, 'B'},
                                          {"batch-images", required_argument, 0, 'N'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
    *o = (bench_opts){.runs = 3,
                      .prefill = 4096,
                      .decode = 32,
                      .policy_tokens = 1120,
                      .verdict_tokens = 24,
                      .rationale_tokens = 160,
                      .batch_images = 8,
                      .kv_type = LG_KV_AUTO};
    bool runs_set = false, prefill_set = false, decode_set = false;
    long long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'S':
            o->synthetic = optarg;
            break;
        case 'm':
            o->model = optarg;
            break;
        case 'i':
            o->image = optarg;
            break;
        case 'J':
            o->json = true;
            break;
        case 'Q':
            o->quick = true;
            break;
        case 'X':
            o->no_exact = true;
            break;
        case 'K':
            o->keep = optarg;
            break;
        case 'B':
            o->batch = true;
            break;
        case 'N':
            if (!app_parse_ll(optarg, 1, 256, &v))
                return app_usage_error(CMD, "--batch-images: 1..256");
            o->batch_images = (int)v;
            break;
        case 'r':
            if (!app_parse_ll(optarg, 1, 31, &v)) return app_usage_error(CMD, "--runs: 1..31");
            o->runs = (int)v, runs_set = true;
            break;
        case 'P':
            if (!app_parse_ll(optarg, 1, 32000, &v))
                return app_usage_error(CMD, "--prefill: 1..32000");
            o->prefill = v, prefill_set = true;
            break;
        case 'D':
            if (!app_parse_ll(optarg, 1, 256, &v)) return app_usage_error(CMD, "--decode: 1..256");
            o->decode = v, decode_set = true;
            break;
        case 't':
            if (!app_parse_ll(optarg, 0, 1024, &v))
                return app_usage_error(CMD, "--threads: 0..1024");
            o->threads = (int)v;
            break;
        case 'p':
            if (!app_parse_precision(optarg, &o->precision))
                return app_usage_error(CMD, "--precision: accurate or bf16, not '%s'", optarg);
            break;
        case 'k': {
            lg_kv_type t;
            if (!app_parse_kv_type(optarg, &t))
                return app_usage_error(CMD, "--kv-type: f32, i16, bf16 or f16, not '%s'", optarg);
            o->kv_type = t;
            break;
        }
        case 'h':
            print_help();
            return -1;
        default:
            return app_usage_error(CMD, "unknown option");
        }
    }
    if (optind < argc) return app_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
    if (!o->synthetic == !o->model)
        return app_usage_error(CMD, "give exactly one of --synthetic SIZE and --model DIR");
    if (o->synthetic && !find_preset(o->synthetic))
        return app_usage_error(
            CMD, "--synthetic: 0.5b, 7b, qwen2.5-vl-3b or llava-1.5-7b, not '%s'", o->synthetic);
    if (o->quick) {
        if (!runs_set) o->runs = 1;
        if (!prefill_set) o->prefill = 1024;
        if (!decode_set) o->decode = 8;
        o->rationale_tokens = 0;
    }
    return 0;
}

/* Bytes of the synthetic checkpoint's tensors (bf16). */
static uint64_t synthetic_bytes(const dims *d) {
    tensor_list l = {0};
    list_tensors(d, &l);
    uint64_t bytes = 0;
    for (size_t i = 0; i < l.n; i++) bytes += (uint64_t)numel(&l.t[i]) * 2;
    free(l.t);
    return bytes;
}

/* Refuses before writing anything when the folder's file system or this machine's memory
 * cannot hold the checkpoint (a 7b run needs ~16 GB of each): a clear message instead of a
 * full disk half-way or the kernel's OOM killer. */
static int check_room(const char *dir, uint64_t need) {
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0) {
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (avail < need + need / 50)
            return app_fail(CMD,
                            "the synthetic model needs %.1f GB free in %s, which has %.1f GB; set "
                            "TMPDIR or --keep DIR to a larger file system",
                            need / 1e9, dir, avail / 1e9);
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (uint64_t)pages * (uint64_t)page < need + need / 10)
        return app_fail(CMD,
                        "the synthetic model needs about %.1f GB of memory; this machine has "
                        "%.1f GB",
                        need * 1.1 / 1e9, (double)pages * (double)page / 1e9);
    return 0;
}

static void remove_synthetic(const char *dir);

static int make_synthetic(bench *b, char *tmpl, size_t tmpl_size) {
    const preset *p = find_preset(b->o.synthetic);
    if (!p) return app_usage_error(CMD, "--synthetic: unknown size '%s'", b->o.synthetic);
    if (b->o.keep) {
        snprintf(tmpl, tmpl_size, "%s", b->o.keep);
        if (mkdir(tmpl, 0755) != 0 && errno != EEXIST)
            return app_fail(CMD, "cannot create %s: %s", tmpl, strerror(errno));
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(tmpl, tmpl_size, "%s/llavaguard-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl))
            return app_fail(CMD, "cannot create a temporary folder: %s", strerror(errno));
    }
    int rc = check_room(tmpl, synthetic_bytes(&p->d));
    if (rc != 0) {
        if (!b->o.keep) rmdir(tmpl);
        return rc;
    }
    if (!b->o.json) fprintf(stderr, "bench: writing the synthetic %s model to %s\n", p->name, tmpl);
    if (write_configs(tmpl, &p->d) != 0 || write_safetensors(tmpl, &p->d) != 0) {
        remove_synthetic(tmpl); /* nothing half-written stays behind */
        return app_fail(CMD, "cannot write the synthetic model to %s (disk full?)", tmpl);
    }
    b->dir = tmpl;
    return 0;
}

static void remove_synthetic(const char *dir) {
    static const char *files[] = {"config.json", "preprocessor_config.json",
                                  "generation_config.json", "model.safetensors"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int run_stages(bench *b) {
    lg_error err;
    lg_model_params mp = lg_model_params_default();
    mp.n_threads = b->o.threads;
    mp.precision = b->o.precision;
    mp.kv_type = b->o.kv_type;
    /* The default open packs each weight on its first use; timed alone, then the model the
     * stages use is opened with every weight packed at once, so no stage pays for packing. */
    double t0 = now();
    lg_model *lazy = NULL;
    if (lg_model_open(b->dir, &mp, &lazy, &err) != LG_OK) return app_fail_err(CMD, &err);
    snprintf(new_stage(b, "model_open", now() - t0, 0, false)->note, 128,
             "default: config, mmap, checks; weights packed on first use");
    lg_model_free(lazy);
    mp.prepack = 1;
    t0 = now();
    if (lg_model_open(b->dir, &mp, &b->model, &err) != LG_OK) return app_fail_err(CMD, &err);
    b->kv = lg_model_kv_type(b->model);
    snprintf(new_stage(b, "model_open_prepack", now() - t0, 0, false)->note, 128,
             "prepack 1: every weight packed during the open");
    if (lg_preprocessor_open(b->dir, &b->pp, &err) != LG_OK) return app_fail_err(CMD, &err);
    if (!b->o.no_exact) {
        lg_model_params ep = lg_model_params_default();
        ep.n_threads = b->o.threads;
        ep.kernels = "ref";
        if (lg_model_open(b->dir, &ep, &b->exact, &err) != LG_OK) return app_fail_err(CMD, &err);
    }
    lg_session *s = NULL, *ex = NULL;
    int rc = 0;
    if (lg_session_create(b->model, &s, &err) != LG_OK ||
        (b->exact && lg_session_create(b->exact, &ex, &err) != LG_OK))
        rc = app_fail_err(CMD, &err);
    if (!rc && !b->o.json) fprintf(stderr, "bench: image stages\n");
    if (!rc) rc = stage_image(b);
    if (!rc) rc = stage_vision(b, s);
    if (!rc && !b->o.json) fprintf(stderr, "bench: prefill and decode\n");
    if (!rc) rc = stage_text(b, s, ex);
    if (!rc && b->o.batch) {
        if (!b->o.json) fprintf(stderr, "bench: batched decode steps\n");
        rc = stage_decode_batch(b);
    }
    bool guard = has_tokenizer(b->dir);
    if (!rc && !b->o.json)
        fprintf(stderr, "bench: whole verdicts (%s)\n",
                guard ? "the guard, real prompt" : "simulated: no tokenizer");
    if (!rc && !guard) {
        rc = stage_verdict(b, s, "verdict_1024x768_norationale", b->o.verdict_tokens);
        if (!rc && b->o.rationale_tokens > 0)
            rc = stage_verdict(b, s, "verdict_1024x768_rationale",
                               b->o.verdict_tokens + b->o.rationale_tokens);
    }
    lg_session_free(ex);
    lg_session_free(s);
    if (!rc && guard) {
        lg_model_free(b->exact), b->exact = NULL;
        lg_model_free(b->model), b->model = NULL;
        rc = guard_verdicts(b, &mp);
    }
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench b;
    memset(&b, 0, sizeof b);
    int rc = parse_args(argc, argv, &b.o);
    if (rc) return rc < 0 ? APP_EXIT_OK : rc;
    char dir[4096];
    lg_error err;
    if (!b.o.json) fprintf(stderr, "bench: measuring this machine's limits\n");
    if (lg_machine_limits_measure(b.o.threads, &b.lim, &err) != LG_OK)
        return app_fail_err(CMD, &err);
    if (b.o.synthetic) {
        if ((rc = make_synthetic(&b, dir, sizeof dir)) != 0) return rc;
    } else {
        b.dir = b.o.model;
    }
    if (read_dims(b.dir, &b.d) != 0) rc = app_fail(CMD, "%s/config.json: cannot read", b.dir);
    if (!rc) {
        if (b.o.image) {
            lg_error fe;
            uint8_t *data = NULL;
            if (lg_read_file(b.o.image, (size_t)1 << 30, &data, &b.img_size, &fe) != LG_OK)
                rc = app_fail_err(CMD, &fe);
            b.img_bytes = data;
        } else {
            b.img_bytes = make_bmp(1024, 768, &b.img_size);
            if (!b.img_bytes) rc = app_fail(CMD, "out of memory");
        }
    }
    if (!rc) rc = run_stages(&b);
    if (!rc) b.o.json ? print_json(&b) : print_table(&b);
    lg_preprocessor_free(b.pp);
    lg_model_free(b.exact);
    lg_model_free(b.model);
    free(b.img_bytes);
    if (b.o.synthetic && !b.o.keep && b.dir) remove_synthetic(b.dir);
    return rc;
}
