/* hd_make_model — writes a HiDream-O1-Image model directory of random weights for any config.
 *
 *   hd_make_model (--preset tiny|8b | --config FILE) --out DIR [--seed N] [--dtype bf16|f32]
 *                 [--shards N] [--no-vision] [--patch P] [--native WxH] [--noise-scale S]
 *                 [--hidream JSON]
 *
 * --patch, --native, --noise-scale and --hidream write the config's "hidream" object (generation
 * settings of a small model, src/io/config.h): --hidream merges a JSON object into it, the other
 * three set patch_size, native_size and noise_scale. The patch embedding and head then have
 * 3·P² values per patch.
 *
 * Writes DIR/config.json, DIR/tokenizer.json (byte-level BPE without merges, the layout of
 * shared/golden/model-tiny/tokenizer.json: byte b is id b+1, plus the special tokens) and the
 * weights, either DIR/model.safetensors or N shards + model.safetensors.index.json. Tensors are
 * generated chunk by chunk through hd_st_write's fill callback from a counter-based PRNG, so the
 * 8B preset (~17 GB) never needs more than a few MB of memory and every value depends only on
 * (seed, tensor name, element index) — not on sharding or write order.
 * Weights: matrices and embeddings ~N(0, 0.02), biases ~N(0, 0.01), norm weights 1, norm biases 0,
 * which keeps a forward pass finite. The result is validated by reading it back. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/inventory.h"

/* ---- presets ------------------------------------------------------------------------------ */

/* The tiny golden model's config (shared/golden/model-tiny/config.json). */
static const char preset_tiny[] =
    "{\n"
    "  \"architectures\": [\"Qwen3VLForConditionalGeneration\"],\n"
    "  \"model_type\": \"qwen3_vl\",\n"
    "  \"image_token_id\": 1000,\n"
    "  \"video_token_id\": 1001,\n"
    "  \"vision_start_token_id\": 1002,\n"
    "  \"vision_end_token_id\": 1003,\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"text_config\": {\n"
    "    \"model_type\": \"qwen3_vl_text\", \"dtype\": \"bfloat16\",\n"
    "    \"vocab_size\": 1024, \"hidden_size\": 256, \"intermediate_size\": 512,\n"
    "    \"num_hidden_layers\": 3, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
    "    \"head_dim\": 64, \"rms_norm_eps\": 1e-06, \"rope_theta\": 5000000.0,\n"
    "    \"max_position_embeddings\": 262144, \"hidden_act\": \"silu\",\n"
    "    \"attention_bias\": false, \"attention_dropout\": 0.0, \"tie_word_embeddings\": false,\n"
    "    \"rope_scaling\": {\"rope_type\": \"default\", \"mrope_section\": [12, 10, 10],\n"
    "                     \"mrope_interleaved\": true}\n"
    "  },\n"
    "  \"vision_config\": {\n"
    "    \"model_type\": \"qwen3_vl\", \"depth\": 3, \"hidden_size\": 64,\n"
    "    \"hidden_act\": \"gelu_pytorch_tanh\", \"intermediate_size\": 128, \"num_heads\": 2,\n"
    "    \"in_channels\": 3, \"patch_size\": 16, \"spatial_merge_size\": 2,\n"
    "    \"temporal_patch_size\": 2, \"out_hidden_size\": 256, \"num_position_embeddings\": 64,\n"
    "    \"deepstack_visual_indexes\": [0, 2], \"initializer_range\": 0.02\n"
    "  },\n"
    "  \"torch_dtype\": \"bfloat16\"\n"
    "}\n";

/* HiDream-O1-Image = Qwen3-VL-8B-Instruct's config (spec 01 §2). */
static const char preset_8b[] =
    "{\n"
    "  \"architectures\": [\"Qwen3VLForConditionalGeneration\"],\n"
    "  \"model_type\": \"qwen3_vl\",\n"
    "  \"image_token_id\": 151655,\n"
    "  \"video_token_id\": 151656,\n"
    "  \"vision_start_token_id\": 151652,\n"
    "  \"vision_end_token_id\": 151653,\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"text_config\": {\n"
    "    \"model_type\": \"qwen3_vl_text\", \"dtype\": \"bfloat16\",\n"
    "    \"bos_token_id\": 151643, \"eos_token_id\": 151645,\n"
    "    \"vocab_size\": 151936, \"hidden_size\": 4096, \"intermediate_size\": 12288,\n"
    "    \"num_hidden_layers\": 36, \"num_attention_heads\": 32, \"num_key_value_heads\": 8,\n"
    "    \"head_dim\": 128, \"rms_norm_eps\": 1e-06, \"rope_theta\": 5000000,\n"
    "    \"max_position_embeddings\": 262144, \"hidden_act\": \"silu\",\n"
    "    \"attention_bias\": false, \"attention_dropout\": 0.0, \"initializer_range\": 0.02,\n"
    "    \"use_cache\": true,\n"
    "    \"rope_scaling\": {\"rope_type\": \"default\", \"mrope_section\": [24, 20, 20],\n"
    "                     \"mrope_interleaved\": true}\n"
    "  },\n"
    "  \"vision_config\": {\n"
    "    \"model_type\": \"qwen3_vl\", \"depth\": 27, \"hidden_size\": 1152,\n"
    "    \"hidden_act\": \"gelu_pytorch_tanh\", \"intermediate_size\": 4304, \"num_heads\": 16,\n"
    "    \"in_channels\": 3, \"patch_size\": 16, \"spatial_merge_size\": 2,\n"
    "    \"temporal_patch_size\": 2, \"out_hidden_size\": 4096,\n"
    "    \"num_position_embeddings\": 2304, \"deepstack_visual_indexes\": [8, 16, 24],\n"
    "    \"initializer_range\": 0.02\n"
    "  },\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.57.1\"\n"
    "}\n";

/* ---- special tokens ----------------------------------------------------------------------- */

typedef struct special_token {
    int id;
    const char *content;
    int special; /* HF "special" flag */
} special_token;

#define MAX_SPECIALS 40

typedef struct token_plan {
    int n;
    special_token tok[MAX_SPECIALS];
} token_plan;

static void plan_add(token_plan *p, int id, const char *content, int special) {
    if (p->n < MAX_SPECIALS) p->tok[p->n++] = (special_token){id, content, special};
}

static int plan_has_id(const token_plan *p, int id) {
    for (int i = 0; i < p->n; i++)
        if (p->tok[i].id == id) return 1;
    return 0;
}

/* The real Qwen3-VL added tokens (ids 151643..151668) followed by HiDream's five. */
static void plan_qwen(token_plan *p) {
    static const char *const qwen[] = {"<|endoftext|>",
                                       "<|im_start|>",
                                       "<|im_end|>",
                                       "<|object_ref_start|>",
                                       "<|object_ref_end|>",
                                       "<|box_start|>",
                                       "<|box_end|>",
                                       "<|quad_start|>",
                                       "<|quad_end|>",
                                       "<|vision_start|>",
                                       "<|vision_end|>",
                                       "<|vision_pad|>",
                                       "<|image_pad|>",
                                       "<|video_pad|>",
                                       "<tool_call>",
                                       "</tool_call>",
                                       "<|fim_prefix|>",
                                       "<|fim_middle|>",
                                       "<|fim_suffix|>",
                                       "<|fim_pad|>",
                                       "<|repo_name|>",
                                       "<|file_sep|>",
                                       "<tool_response>",
                                       "</tool_response>",
                                       "<think>",
                                       "</think>"};
    for (int i = 0; i < (int)(sizeof qwen / sizeof *qwen); i++)
        plan_add(p, 151643 + i, qwen[i], i < 14);
    static const char *const hidream[] = {"<|boi_token|>", "<|bor_token|>", "<|eor_token|>",
                                          "<|bot_token|>", "<|tms_token|>"};
    for (int i = 0; i < 5; i++)
        plan_add(p, 151669 + i, hidream[i], 1);
}

/* Reads an optional integer from the config's "hidream_tiny_test" block (-1 if absent). */
static int tiny_test_id(json_t *root, const char *key) {
    json_t *v = json_object_get(json_object_get(root, "hidream_tiny_test"), key);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* Small vocabularies: the config's four vision ids, then tms/boi/im_start/im_end right after
 * the largest of them (the tiny golden model's layout) unless the config names them. */
static int plan_small(token_plan *p, const hd_config *c, json_t *root, hd_error *e) {
    const hd_token_ids *ids = &c->ids;
    plan_add(p, ids->image_pad, "<|image_pad|>", 1);
    plan_add(p, ids->video_pad, "<|video_pad|>", 1);
    plan_add(p, ids->vision_start, "<|vision_start|>", 1);
    plan_add(p, ids->vision_end, "<|vision_end|>", 1);
    static const char *const keys[] = {"tms_token_id", "boi_token_id", "im_start_id", "im_end_id"};
    static const char *const names[] = {"<|tms_token|>", "<|boi_token|>", "<|im_start|>",
                                        "<|im_end|>"};
    int next = ids->image_pad;
    for (int i = 1; i < 4; i++)
        if (p->tok[i].id > next) next = p->tok[i].id;
    next++;
    for (int k = 0; k < 4; k++) {
        int id = tiny_test_id(root, keys[k]);
        if (id < 0) {
            while (plan_has_id(p, next))
                next++;
            id = next++;
        }
        if (id >= c->text.vocab_size || plan_has_id(p, id) || id < 257)
            return hd_fail(e, HD_EINVAL,
                           "config: no room for %s (id %d) in a vocabulary of %d after the 257 "
                           "byte ids",
                           names[k], id, c->text.vocab_size);
        plan_add(p, id, names[k], 1);
    }
    for (int i = 0; i < 4; i++)
        if (p->tok[i].id < 257)
            return hd_fail(e, HD_EINVAL, "config: %s id %d collides with the byte ids 1..256",
                           p->tok[i].content, p->tok[i].id);
    return 0;
}

/* ---- tokenizer.json ----------------------------------------------------------------------- */

static const char tokenizer_template[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],"
    " \"normalizer\": {\"type\": \"NFC\"},"
    " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
    "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(?i:'s|'t|'re|'ve|'m|'ll|'d)|"
    "[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
    "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"}, \"behavior\": \"Isolated\", \"invert\": false},"
    " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false,"
    " \"use_regex\": false}]},"
    " \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false,"
    " \"trim_offsets\": false, \"use_regex\": false},"
    " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false,"
    " \"use_regex\": false},"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null,"
    " \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false,"
    " \"byte_fallback\": false, \"ignore_merges\": false, \"vocab\": {}, \"merges\": []}}";

/* GPT-2 byte -> printable code point map (the ByteLevel alphabet). */
static unsigned byte_to_codepoint(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (unsigned)b;
    int n = 0; /* index among the bytes that are remapped, in byte order */
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256u + (unsigned)n;
}

static void utf8_encode(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else { /* all byte-level code points are below 0x800 */
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static int write_text_file(const char *dir, const char *name, const char *text, hd_error *e) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return hd_fail(e, HD_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return hd_fail(e, HD_EIO, "%s: write failed", path);
    }
    return 0;
}

static int write_tokenizer(const char *dir, const token_plan *p, hd_error *e) {
    json_error_t jerr;
    json_t *root = json_loads(tokenizer_template, 0, &jerr);
    if (!root) return hd_fail(e, HD_EINVAL, "tokenizer template: %s", jerr.text);
    json_t *added = json_object_get(root, "added_tokens");
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    int max_id = 0, rc = 0;
    for (int i = 0; i < p->n; i++) {
        const special_token *t = &p->tok[i];
        if (t->id > max_id) max_id = t->id;
        json_t *o = json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", t->id, "content",
                              t->content, "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized",
                              0, "special", t->special);
        if (!o || json_array_append_new(added, o)) rc = HD_ENOMEM;
    }
    /* every id below the largest special that is not a special gets a vocabulary entry:
     * byte b at id b+1, the rest placeholders (unreachable without merges) */
    char key[32];
    for (int id = 0; id < max_id && rc == 0; id++) {
        if (plan_has_id(p, id)) continue;
        if (id >= 1 && id <= 256)
            utf8_encode(byte_to_codepoint(id - 1), key);
        else
            snprintf(key, sizeof key, "<unused_%d>", id);
        if (json_object_set_new(vocab, key, json_integer(id))) rc = HD_ENOMEM;
    }
    char *text = rc ? NULL : json_dumps(root, JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return hd_fail(e, HD_ENOMEM, "tokenizer.json: out of memory");
    rc = write_text_file(dir, "tokenizer.json", text, e);
    free(text);
    return rc;
}

/* ---- weights ------------------------------------------------------------------------------ */

typedef enum init_kind { INIT_NORMAL, INIT_ONES, INIT_ZEROS } init_kind;

typedef struct tensor_plan {
    hd_inv_entry ent;
    init_kind kind;
    float std;
    uint64_t key; /* seed mixed with the tensor name */
    int shard;
} tensor_plan;

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Approximately standard normal: Irwin-Hall sum of four 16-bit uniforms from one hash,
 * rescaled to unit variance (range ±3.46, which also keeps weights bounded). */
static float gauss_at(uint64_t key, uint64_t i) {
    uint64_t h = splitmix64(key ^ splitmix64(i));
    float s = (float)(h & 0xffff) + (float)((h >> 16) & 0xffff) + (float)((h >> 32) & 0xffff) +
              (float)(h >> 48);
    return (s / 65535.0f - 2.0f) * 1.7320508f;
}

static int fill_tensor(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                       hd_error *e) {
    (void)e;
    const tensor_plan *tp = ctx;
    size_t es = hd_dtype_size(it->dtype);
    uint64_t first = off / es;
    size_t count = n / es;
    for (size_t k = 0; k < count; k++) {
        float v = tp->kind == INIT_ONES    ? 1.0f
                  : tp->kind == INIT_ZEROS ? 0.0f
                                           : tp->std * gauss_at(tp->key, first + k);
        if (it->dtype == HD_BF16) {
            uint16_t h = hd_f32_to_bf16(v);
            memcpy((char *)buf + 2 * k, &h, 2);
        } else {
            memcpy((char *)buf + 4 * k, &v, 4);
        }
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Norm layers: RMSNorm weights (text), LayerNorm weights/biases (vision). */
static void choose_init(tensor_plan *tp) {
    const char *n = tp->ent.name;
    int is_norm = strstr(n, "layernorm.") || strstr(n, "_norm.") || strstr(n, ".norm.") ||
                  strstr(n, ".norm1.") || strstr(n, ".norm2.");
    if (is_norm)
        tp->kind = ends_with(n, ".bias") ? INIT_ZEROS : INIT_ONES;
    else if (ends_with(n, ".bias"))
        tp->kind = INIT_NORMAL, tp->std = 0.01f;
    else
        tp->kind = INIT_NORMAL, tp->std = 0.02f;
}

typedef struct plan_list {
    tensor_plan *t;
    int n, cap, no_vision, oom;
} plan_list;

static void plan_visit(void *ctx, const hd_inv_entry *ent) {
    plan_list *l = ctx;
    if (l->oom || (l->no_vision && ent->part == HD_PART_VISION)) return;
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 256;
        tensor_plan *p = realloc(l->t, (size_t)nc * sizeof *p);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->t = p;
        l->cap = nc;
    }
    memset(&l->t[l->n], 0, sizeof *l->t);
    l->t[l->n++].ent = *ent;
}

static int write_weights(const char *dir, const hd_config *c, uint64_t seed, hd_dtype dtype,
                         int shards, int no_vision, hd_error *e) {
    plan_list l = {.no_vision = no_vision};
    hd_inventory_foreach(c, plan_visit, &l);
    /* the real checkpoint also carries the (unused) text LM head */
    hd_inv_entry lm = {.name = "lm_head.weight",
                       .part = HD_PART_TEXT,
                       .ndim = 2,
                       .shape = {c->text.vocab_size, c->text.hidden_size}};
    plan_visit(&l, &lm);
    if (l.oom) {
        free(l.t);
        return hd_fail(e, HD_ENOMEM, "out of memory planning tensors");
    }
    if (shards > l.n) {
        free(l.t);
        return hd_fail(e, HD_EINVAL, "--shards %d: only %d tensors to distribute", shards, l.n);
    }
    uint64_t total = 0;
    for (int i = 0; i < l.n; i++) {
        tensor_plan *tp = &l.t[i];
        choose_init(tp);
        tp->key = splitmix64(seed ^ fnv1a(tp->ent.name));
        total += (uint64_t)hd_inv_numel(&tp->ent) * hd_dtype_size(dtype);
    }
    /* contiguous runs of roughly total/shards bytes; every shard gets at least one tensor */
    uint64_t acc = 0;
    int s = 0, in_shard = 0;
    for (int i = 0; i < l.n; i++) {
        int must_move = l.n - i <= shards - 1 - s; /* only enough tensors left for later shards */
        if (s < shards - 1 && in_shard > 0 &&
            (must_move || acc >= total / (uint64_t)shards * (uint64_t)(s + 1))) {
            s++;
            in_shard = 0;
        }
        l.t[i].shard = s;
        in_shard++;
        acc += (uint64_t)hd_inv_numel(&l.t[i].ent) * hd_dtype_size(dtype);
    }

    int rc = 0;
    hd_st_write_item *items = calloc((size_t)l.n, sizeof *items);
    json_t *index = json_object(), *wm = json_object();
    if (!items || !index || !wm) rc = hd_fail(e, HD_ENOMEM, "out of memory");
    char fname[64], path[4096];
    for (int sh = 0; sh < shards && rc == 0; sh++) {
        if (shards == 1)
            snprintf(fname, sizeof fname, "model.safetensors");
        else
            snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, shards);
        int n = 0;
        for (int i = 0; i < l.n; i++) {
            if (l.t[i].shard != sh) continue;
            hd_st_write_item *it = &items[n++];
            memset(it, 0, sizeof *it);
            it->name = l.t[i].ent.name;
            it->dtype = dtype;
            it->ndim = l.t[i].ent.ndim;
            for (int d = 0; d < it->ndim; d++)
                it->shape[d] = l.t[i].ent.shape[d];
            it->fill = fill_tensor;
            it->fill_ctx = &l.t[i];
            if (json_object_set_new(wm, it->name, json_string(fname)))
                rc = hd_fail(e, HD_ENOMEM, "out of memory");
        }
        snprintf(path, sizeof path, "%s/%s", dir, fname);
        if (rc == 0) rc = hd_st_write(path, items, n, e);
        if (rc == 0) fprintf(stderr, "wrote %s (%d tensors)\n", path, n);
    }
    if (rc == 0 && shards > 1) {
        json_object_set_new(index, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
        json_object_set(index, "weight_map", wm);
        char *text = json_dumps(index, JSON_INDENT(2));
        if (!text)
            rc = hd_fail(e, HD_ENOMEM, "out of memory");
        else
            rc = write_text_file(dir, "model.safetensors.index.json", text, e);
        free(text);
    }
    json_decref(wm);
    json_decref(index);
    free(items);
    free(l.t);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f, "usage: hd_make_model (--preset tiny|8b | --config FILE) --out DIR [--seed N]\n"
               "                     [--dtype bf16|f32] [--shards N] [--no-vision]\n"
               "                     [--patch P] [--native WxH] [--noise-scale S] [--hidream JSON]\n"
               "Writes a model directory (config.json, tokenizer.json, random weights).\n");
}

/* The "hidream" object edits of the command line. */
typedef struct gen_edits {
    long patch;          /* 0 = not given */
    int native_w, native_h;
    double noise_scale;  /* 0 = not given */
    const char *json;    /* object merged into "hidream", NULL = none */
} gen_edits;

/* Rewrites *text with the edits applied to its "hidream" object. */
static int apply_gen_edits(char **text, size_t *len, const gen_edits *g, hd_error *e) {
    if (!g->patch && !g->native_w && !g->noise_scale && !g->json) return 0;
    json_error_t jerr;
    json_t *root = json_loadb(*text, *len, 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return hd_fail(e, HD_EFORMAT, "config: not a JSON object");
    }
    json_t *h = json_object_get(root, "hidream");
    if (!json_is_object(h)) {
        h = json_object();
        json_object_set_new(root, "hidream", h);
    }
    int rc = 0;
    if (g->json) {
        json_t *add = json_loads(g->json, 0, &jerr);
        if (!json_is_object(add))
            rc = hd_fail(e, HD_EFORMAT, "--hidream: not a JSON object: %s", jerr.text);
        else
            json_object_update(h, add);
        json_decref(add);
    }
    if (g->patch) json_object_set_new(h, "patch_size", json_integer(g->patch));
    if (g->native_w)
        json_object_set_new(h, "native_size", json_pack("[ii]", g->native_w, g->native_h));
    if (g->noise_scale) json_object_set_new(h, "noise_scale", json_real(g->noise_scale));
    char *out = rc == 0 ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (rc) return rc;
    if (!out) return hd_fail(e, HD_ENOMEM, "out of memory");
    free(*text);
    *text = out;
    *len = strlen(out);
    return 0;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, used = 0, r;
    do {
        if (used + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        r = fread(buf + used, 1, cap - used - 1, f);
        used += r;
    } while (r > 0 && used < (64u << 20));
    fclose(f);
    buf[used] = 0;
    *len = used;
    return buf;
}

int main(int argc, char **argv) {
    const char *preset = NULL, *config_file = NULL, *out = NULL;
    uint64_t seed = 0;
    hd_dtype dtype = HD_BF16;
    int shards = 1, no_vision = 0;
    gen_edits ge = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-vision")) {
            no_vision = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "hd_make_model: %s needs a value\n", a);
            return 2;
        }
        i++;
        char *end = NULL;
        if (!strcmp(a, "--preset"))
            preset = v;
        else if (!strcmp(a, "--config"))
            config_file = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--seed")) {
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || !*v || *end) {
                fprintf(stderr, "hd_make_model: --seed '%s' is not a number\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "bf16"))
                dtype = HD_BF16;
            else if (!strcmp(v, "f32"))
                dtype = HD_F32;
            else {
                fprintf(stderr, "hd_make_model: --dtype must be bf16 or f32\n");
                return 2;
            }
        } else if (!strcmp(a, "--shards")) {
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 99999) {
                fprintf(stderr, "hd_make_model: --shards must be 1..99999\n");
                return 2;
            }
            shards = (int)n;
        } else if (!strcmp(a, "--patch")) {
            ge.patch = strtol(v, &end, 10);
            if (!*v || *end || ge.patch < 1 || ge.patch > 64) {
                fprintf(stderr, "hd_make_model: --patch must be 1..64\n");
                return 2;
            }
        } else if (!strcmp(a, "--native")) {
            if (sscanf(v, "%dx%d", &ge.native_w, &ge.native_h) != 2 || ge.native_w < 1 ||
                ge.native_h < 1) {
                fprintf(stderr, "hd_make_model: --native must be WxH\n");
                return 2;
            }
        } else if (!strcmp(a, "--noise-scale")) {
            ge.noise_scale = strtod(v, &end);
            if (!*v || *end || !(ge.noise_scale > 0)) {
                fprintf(stderr, "hd_make_model: --noise-scale must be a positive number\n");
                return 2;
            }
        } else if (!strcmp(a, "--hidream")) {
            ge.json = v;
        } else {
            fprintf(stderr, "hd_make_model: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out || (!preset == !config_file)) {
        usage(stderr);
        return 2;
    }

    char *config_text = NULL;
    size_t config_len = 0;
    if (preset) {
        const char *src = !strcmp(preset, "tiny") ? preset_tiny
                          : !strcmp(preset, "8b") ? preset_8b
                                                  : NULL;
        if (!src) {
            fprintf(stderr, "hd_make_model: unknown preset '%s' (tiny or 8b)\n", preset);
            return 2;
        }
        config_text = strdup(src);
        config_len = strlen(src);
    } else if (!(config_text = slurp(config_file, &config_len))) {
        fprintf(stderr, "hd_make_model: %s: cannot read: %s\n", config_file, strerror(errno));
        return 2;
    }

    hd_error e = {0};
    hd_config cfg;
    token_plan plan = {0};
    if (config_text && apply_gen_edits(&config_text, &config_len, &ge, &e) < 0) {
        fprintf(stderr, "hd_make_model: %s\n", e.msg);
        free(config_text);
        return 2;
    }
    int rc = config_text ? hd_config_parse_json(&cfg, config_text, config_len,
                                                config_file ? config_file : preset, &e)
                         : hd_fail(&e, HD_ENOMEM, "out of memory");
    if (rc == 0) {
        const hd_token_ids *ids = &cfg.ids;
        if (cfg.text.vocab_size > 151673 && ids->image_pad == 151655 && ids->video_pad == 151656 &&
            ids->vision_start == 151652 && ids->vision_end == 151653)
            plan_qwen(&plan); /* the real Qwen3-VL layout */
        else {
            json_t *root = json_loadb(config_text, config_len, 0, NULL);
            rc = plan_small(&plan, &cfg, root, &e);
            json_decref(root);
        }
    }
    if (rc == 0 && mkdir(out, 0777) != 0 && errno != EEXIST)
        rc = hd_fail(&e, HD_EIO, "%s: cannot create directory: %s", out, strerror(errno));
    if (rc == 0) rc = write_text_file(out, "config.json", config_text, &e);
    if (rc == 0) rc = write_tokenizer(out, &plan, &e);
    if (rc == 0) rc = write_weights(out, &cfg, seed, dtype, shards, no_vision, &e);
    free(config_text);

    /* read the result back the way the library will */
    hd_safetensors st = {0};
    if (rc == 0) rc = hd_config_load_dir(&cfg, out, &e);
    if (rc == 0) rc = hd_st_open_dir(&st, out, &e);
    if (rc == 0) rc = hd_inventory_check(&cfg, &st, !no_vision && cfg.vision.present, &e);
    hd_st_close(&st);
    if (rc) {
        fprintf(stderr, "hd_make_model: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "hd_make_model: %s is a valid model directory (tms %d, boi %d)\n", out,
            cfg.ids.tms, cfg.ids.boi);
    return 0;
}
