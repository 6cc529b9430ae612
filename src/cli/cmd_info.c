/* `hidream info DIR`: what a model directory holds, or the one-line reason it is unusable.
 *
 * Loads the model exactly as generate does (hd_model_load: config.json, tokenizer.json, the
 * weights checked against the inventory, the vision tower if present and usable) and encodes a
 * test prompt, so "usable" here means generate can use it. Prints the
 * architecture, dimensions, special token ids, the generation settings (patch size, noise scale,
 * native size, presets, sampler defaults), parameter counts, dtypes, bytes on disk and a memory
 * estimate for the model's default image size (2048x2048 for the release). Exit 0 = usable, 2 = unusable or bad usage. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cli/cli.h"
#include "core/error.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/inventory.h"
#include "pipeline/pipeline.h"
#include "pipeline/prompt.h"
#include "text/chat_template.h"
#include "pipeline/resolution.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Assumptions of the memory estimate (a typical prompt). */
#define EST_PROMPT_TOKENS 128
#define EST_CONDITION_SIDE 384 /* VLM condition copy of a reference image (spec 01 §5) */

static void usage(FILE *f) {
    fprintf(f, "usage: hidream info DIR\n"
               "Describes the model directory DIR (config.json, tokenizer.json, weights) or says\n"
               "in one line why it cannot be used (exit status 2).\n");
}

/* "7.57 B", "37.8 M", "4096" */
static const char *human_count(char *buf, size_t n, int64_t v) {
    if (v >= 1000000000)
        snprintf(buf, n, "%.2f B", (double)v / 1e9);
    else if (v >= 1000000)
        snprintf(buf, n, "%.1f M", (double)v / 1e6);
    else if (v >= 1000)
        snprintf(buf, n, "%.1f K", (double)v / 1e3);
    else
        snprintf(buf, n, "%lld", (long long)v);
    return buf;
}

/* "architectures"[0] from config.json, which hd_config does not keep. */
static void read_architecture(const char *dir, char *out, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(out, n, "?");
    json_t *root = json_load_file(path, 0, NULL);
    json_t *a = json_array_get(json_object_get(root, "architectures"), 0);
    if (json_is_string(a)) snprintf(out, n, "%s", json_string_value(a));
    json_decref(root);
}

/* Float32 activation bytes of one decoder forward over S positions: residual + normed input,
 * q/k/v/attention output, SwiGLU gate and up, plus one head's S x S score block (a kernel that
 * tiles attention needs less). */
static double decoder_activation_bytes(const hd_text_config *t, double S) {
    double D = t->hidden_size, q = (double)t->num_heads * t->head_dim,
           kv = (double)t->num_kv_heads * t->head_dim, F = t->intermediate_size;
    return 4.0 * (S * (2 * D + 2 * q + 2 * kv + 2 * F) + S * S);
}

/* Float32 bytes of the sampler's per-patch rows for L target patches (3·p² values each): the
 * sample z, the model input (target + reference rows), one prediction per CFG branch, the
 * velocity, the initial noise, and the model's own input and output rows (x_proj input, head
 * output). Small next to the decoder for the release, these dominate for small models. */
static double sample_row_bytes(double L, double ref_rows, int patch, int branches) {
    double row = 3.0 * patch * patch;
    return 4.0 * row * (L * (6 + branches) + 2 * (L + ref_rows));
}

/* ViT activations for one condition image of side EST_CONDITION_SIDE. */
static double vit_activation_bytes(const hd_vision_config *v) {
    double per_side = (double)EST_CONDITION_SIDE / v->patch_size, n = per_side * per_side;
    double h = v->hidden_size, inner = v->intermediate_size;
    double patch_in =
        (double)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    return 4.0 * (n * (patch_in + 6 * h + inner) + n * n);
}

/* The size `generate` uses when none is asked for: the native size, else the first preset. */
static void default_size(const hd_gen_config *g, int *w, int *h) {
    int list[HD_MAX_RESOLUTIONS][2];
    hd_model_presets(g, list);
    *w = g->native_w > 0 ? g->native_w : hd_model_has_own_sizes(g) ? list[0][0] : 2048;
    *h = g->native_w > 0 ? g->native_h : hd_model_has_own_sizes(g) ? list[0][1] : 2048;
}

/* The "hidream" object of config.json as generate will use it. */
static void print_generation(const hd_gen_config *g) {
    int p = g->patch_size;
    printf("generation    patch %d (%d values per patch), noise scale %g, native size ", p,
           3 * p * p, g->noise_scale);
    if (g->native_w > 0) printf("%dx%d\n", g->native_w, g->native_h);
    else printf("not stated\n");
    int list[HD_MAX_RESOLUTIONS][2];
    int n = hd_model_presets(g, list);
    printf("              presets %s:", hd_model_has_own_sizes(g) ? "(the model's own)"
                                                                   : "(the release's)");
    for (int i = 0; i < n; i++) printf(" %dx%d", list[i][0], list[i][1]);
    printf("\n              sampler defaults: ");
    if (!g->scheduler[0] && g->steps <= 0 && g->guidance < 0 && g->shift <= 0) {
        printf("by mode (full: unipc, 50 steps, cfg 5, shift 3; dev: flash, 28 steps, no cfg)\n");
        return;
    }
    printf("scheduler %s", g->scheduler[0] ? g->scheduler : "by mode");
    if (g->steps > 0) printf(", %d steps", g->steps);
    else printf(", steps by mode");
    if (g->guidance >= 0) printf(", cfg %g", g->guidance);
    else printf(", cfg by mode");
    if (g->shift > 0) printf(", shift %g\n", g->shift);
    else printf(", shift by mode\n");
}

/* One prompt through the tokenizer and the chat template, as generate encodes it: a tokenizer
 * that loads but cannot encode (a pattern that fails to match, no <|boi_token|>) is unusable. */
static int probe_tokenizer(const hd_model *m, const char *dir, hd_error *e) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = hd_prompt_check(m->tok, "a red circle", "prompt", 1, e);
    if (rc == 0) rc = hd_chat_encode(m->tok, "a red circle", 0, NULL, &ids, &n, e);
    free(ids);
    if (rc < 0) return hd_error_prefix(e, "%s/tokenizer.json: cannot encode a test prompt", dir);
    return 0;
}

int cmd_info(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    const char *dir = argv[1];
    hd_error e = {0};
    hd_model *m = NULL;
    /* exactly what generate loads and checks (config, weights, inventory, tokenizer, vision
     * tower), on one CPU thread, plus one prompt through the tokenizer and the chat template */
    hd_model_options mo = {.backend = "cpu", .n_threads = 1};
    if (hd_model_load(&m, dir, &mo, &e) < 0 || probe_tokenizer(m, dir, &e) < 0) {
        fprintf(stderr, "hidream info: %s\n", e.msg);
        hd_model_free(m);
        return 2;
    }
    const hd_config cfg = m->cfg;
    const hd_safetensors *st = &m->st;

    const hd_text_config *t = &cfg.text;
    const hd_vision_config *v = &cfg.vision;
    char arch[128], b1[32], b2[32], b3[32];
    read_architecture(dir, arch, sizeof arch);
    int have_vision = v->present && hd_st_find(st, "model.visual.patch_embed.proj.weight");
    int vision_usable = m->vit != NULL;

    printf("model         %s (%s)\n", cfg.name, dir);
    printf("architecture  %s, model_type %s\n", arch, cfg.model_type);
    printf(
        "text          hidden %d, intermediate %d, %d layers, %d heads / %d KV heads of dim %d\n",
        t->hidden_size, t->intermediate_size, t->num_layers, t->num_heads, t->num_kv_heads,
        t->head_dim);
    printf("              vocab %d, rms_norm_eps %g, rope_theta %g, mrope_section [%d, %d, %d]%s\n",
           t->vocab_size, t->rms_norm_eps, t->rope_theta, t->mrope_section[0], t->mrope_section[1],
           t->mrope_section[2], t->mrope_interleaved ? " interleaved" : "");
    if (v->present) {
        printf(
            "vision        depth %d, hidden %d, %d heads, intermediate %d, patch %d, temporal %d,"
            " merge %d\n",
            v->depth, v->hidden_size, v->num_heads, v->intermediate_size, v->patch_size,
            v->temporal_patch_size, v->spatial_merge_size);
        printf("              in_channels %d, out_hidden %d, position grid %d, %s, deepstack [",
               v->in_channels, v->out_hidden_size, v->num_position_embeddings, v->hidden_act);
        for (int i = 0; i < v->n_deepstack; i++)
            printf("%s%d", i ? ", " : "", v->deepstack_indexes[i]);
        printf("]%s%s%s\n", !have_vision ? "  (weights absent: text-to-image only)" : "",
               m->vit_unusable[0] ? "\n              unusable: " : "", m->vit_unusable);
    } else {
        printf("vision        none (text-to-image only)\n");
    }
    print_generation(&cfg.gen);
    const hd_token_ids *id = &cfg.ids;
    printf("tokens        tms %d, boi %d, image_pad %d, video_pad %d, vision_start %d, "
           "vision_end %d,\n              im_start %d, im_end %d, endoftext %d (-1 = absent)\n",
           id->tms, id->boi, id->image_pad, id->video_pad, id->vision_start, id->vision_end,
           id->im_start, id->im_end, id->endoftext);

    hd_param_counts pc;
    hd_inventory_param_counts(&cfg, &pc);
    int64_t vision_params = have_vision ? pc.part[HD_PART_VISION] : 0;
    int64_t total = pc.part[HD_PART_TEXT] + pc.part[HD_PART_HIDREAM] + vision_params;
    int has_lm_head = hd_st_find(st, "lm_head.weight") != NULL;
    printf("parameters    text %lld (%s, %d tensors), hidream %lld (%s, %d tensors),\n",
           (long long)pc.part[HD_PART_TEXT], human_count(b1, sizeof b1, pc.part[HD_PART_TEXT]),
           pc.n_tensors[HD_PART_TEXT], (long long)pc.part[HD_PART_HIDREAM],
           human_count(b2, sizeof b2, pc.part[HD_PART_HIDREAM]), pc.n_tensors[HD_PART_HIDREAM]);
    printf("              vision %lld (%s, %d tensors), total %lld (%s)", (long long)vision_params,
           human_count(b1, sizeof b1, vision_params),
           have_vision ? pc.n_tensors[HD_PART_VISION] : 0, (long long)total,
           human_count(b3, sizeof b3, total));
    if (has_lm_head)
        printf("; + unused lm_head %lld (%s)", (long long)pc.lm_head,
               human_count(b2, sizeof b2, pc.lm_head));
    printf("\n");

    /* dtypes and bytes: per dtype over all tensors; mapped bytes per part for the estimate */
    int n_per_dtype[HD_DTYPE_COUNT] = {0};
    uint64_t bytes_per_dtype[HD_DTYPE_COUNT] = {0}, part_bytes[HD_PART_COUNT] = {0};
    uint64_t int8_bytes = 0; /* text-to-image weights with --int8 */
    for (int i = 0; i < st->n_tensors; i++) {
        const hd_st_tensor *x = &st->tensors[i];
        n_per_dtype[x->dtype]++;
        bytes_per_dtype[x->dtype] += x->nbytes;
        if (!strncmp(x->name, "model.visual.", 13)) {
            part_bytes[HD_PART_VISION] += x->nbytes;
            continue;
        } else if (!strncmp(x->name, "model.language_model.", 21))
            part_bytes[HD_PART_TEXT] += x->nbytes;
        else if (strcmp(x->name, "lm_head.weight"))
            part_bytes[HD_PART_HIDREAM] += x->nbytes;
        else
            continue;
        /* --int8 holds each float or Q8_0 matrix of a product as int8 + one float per row; the
         * token table (lookups) and the 4-6-bit matrices stay as stored */
        int product = x->ndim == 2 && x->shape[0] > 1 && hd_backend_cpu_int8_packs(x->dtype) &&
                      !strstr(x->name, "embed_tokens");
        int8_bytes += product ? (uint64_t)x->shape[0] * ((uint64_t)x->shape[1] + 4) : x->nbytes;
    }
    uint64_t disk = 0;
    for (int i = 0; i < st->n_files; i++)
        disk += st->files[i].size;
    const char *kind = st->n_files > 0 && st->files[0].map &&
                               hd_gguf_is_gguf(st->files[0].map, st->files[0].size)
                           ? "GGUF"
                           : "safetensors";
    printf("files         %d %s file%s, %d tensors, %.2f GiB on disk; dtypes:", st->n_files, kind,
           st->n_files == 1 ? "" : "s", st->n_tensors, (double)disk / GIB);
    for (int d = 0; d < HD_DTYPE_COUNT; d++)
        if (n_per_dtype[d])
            printf(" %s %d tensors (%.2f GiB)", hd_dtype_name((hd_dtype)d), n_per_dtype[d],
                   (double)bytes_per_dtype[d] / GIB);
    printf("\n");

    /* memory: weights stay mapped (only the parts a task touches are paged in), activations f32;
     * at the size a plain `generate` makes (the model's native size, or 2048x2048) */
    int est_w, est_h;
    default_size(&cfg.gen, &est_w, &est_h);
    const int patch = cfg.gen.patch_size;
    double L = (double)(est_w / patch) * (est_h / patch);
    double w_t2i = (double)(part_bytes[HD_PART_TEXT] + part_bytes[HD_PART_HIDREAM]);
    /* the default mode (full) uses CFG: two branches */
    double a_t2i = decoder_activation_bytes(t, EST_PROMPT_TOKENS + 2 + L) +
                   sample_row_bytes(L, 0, patch, 2);
    printf("memory        text-to-image %dx%d: weights %.2f GiB mapped + activations ~%.2f GiB"
           " = ~%.2f GiB\n",
           est_w, est_h, w_t2i / GIB, a_t2i / GIB, (w_t2i + a_t2i) / GIB);
    printf("              with --int8: weights %.2f GiB + activations ~%.2f GiB = ~%.2f GiB\n",
           (double)int8_bytes / GIB, a_t2i / GIB, ((double)int8_bytes + a_t2i) / GIB);
    if (vision_usable) {
        /* one reference at the output size: its patches join the sequence, its condition copy
         * becomes ViT tokens inside the prompt */
        double merge = v->spatial_merge_size, side = (double)EST_CONDITION_SIDE / v->patch_size;
        double vit_tokens = side * side / (merge * merge);
        double w_ref = w_t2i + (double)part_bytes[HD_PART_VISION];
        double a_ref = decoder_activation_bytes(t, EST_PROMPT_TOKENS + vit_tokens + 2 + 2 * L) +
                       sample_row_bytes(L, L, patch, 2);
        double a_vit = vit_activation_bytes(v);
        if (a_vit > a_ref) a_ref = a_vit; /* the ViT runs before the decoder */
        printf("              reference task (1 image): weights %.2f GiB mapped + activations"
               " ~%.2f GiB = ~%.2f GiB\n",
               w_ref / GIB, a_ref / GIB, (w_ref + a_ref) / GIB);
    } else {
        printf("              reference tasks: unavailable (%s)\n",
               have_vision ? "the vision tower cannot be used" : "no vision tower");
    }
    printf("              (estimate: %d-token prompt, float32 activations, one forward at a "
           "time)\n",
           EST_PROMPT_TOKENS);
    hd_model_free(m);
    return 0;
}
