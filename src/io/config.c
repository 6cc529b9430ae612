/* config.json (Qwen3-VL layout) and the special-token ids from tokenizer.json.
 *
 * Every field the released checkpoint's config.json carries is required: the transformers class
 * defaults are not the 8B values (spec 01 §2), so a silently defaulted field would give a model
 * of the wrong shape. Only mrope_interleaved (Qwen3-VL always interleaves) and the vision
 * hidden_act (one choice exists) get defaults. Bounds keep every derived size and parameter count
 * far from int64 overflow, whatever a hostile file says. */
#include "io/config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

#define CFG_MAX_FILE_BYTES (256u << 20) /* tokenizer.json of the real model is ~11 MB */

/* ---- field readers: each names "<file>: <path>" in its message --------------------------- */

static int get_int(json_t *obj, const char *key, const char *path, const char *what, int lo, int hi,
                   int *out, hd_error *e) {
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v) return hd_fail(e, HD_EFORMAT, "%s: %s%s: missing", what, path, key);
    if (!json_is_integer(v))
        return hd_fail(e, HD_EFORMAT, "%s: %s%s: not an integer", what, path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hd_fail(e, HD_EFORMAT, "%s: %s%s = %lld is out of range [%d, %d]", what, path, key,
                       (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_pos_real(json_t *v, const char *field, const char *what, double *out, hd_error *e) {
    if (!json_is_number(v)) return hd_fail(e, HD_EFORMAT, "%s: %s: not a number", what, field);
    double x = json_number_value(v);
    if (!(x > 0) || !isfinite(x))
        return hd_fail(e, HD_EFORMAT, "%s: %s = %g must be positive", what, field, x);
    *out = x;
    return 0;
}

/* Optional boolean flag (absent -> def). */
static int get_flag(json_t *obj, const char *key, const char *path, const char *what, int def,
                    int *out, hd_error *e) {
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return hd_fail(e, HD_EFORMAT, "%s: %s%s: not a boolean", what, path, key);
    *out = json_is_true(v);
    return 0;
}

static int copy_string(json_t *v, const char *field, const char *what, char *dst, size_t n,
                       hd_error *e) {
    if (!json_is_string(v)) return hd_fail(e, HD_EFORMAT, "%s: %s: not a string", what, field);
    if (json_string_length(v) >= n)
        return hd_fail(e, HD_EFORMAT, "%s: %s: longer than %zu characters", what, field, n - 1);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

/* ---- text_config --------------------------------------------------------------------------- */

static int parse_rope(hd_text_config *t, json_t *root, json_t *tc, const char *what, hd_error *e) {
    /* transformers 4.x writes text_config.rope_scaling; 5.x renames it rope_parameters; older
     * Qwen2-VL style files put rope_scaling at the top level. */
    const char *rs_path = "text_config.rope_scaling.";
    json_t *rs = json_object_get(tc, "rope_scaling");
    if (!rs) {
        rs = json_object_get(tc, "rope_parameters");
        rs_path = "text_config.rope_parameters.";
    }
    if (!rs) {
        rs = json_object_get(root, "rope_scaling");
        rs_path = "rope_scaling.";
    }
    if (!rs) return hd_fail(e, HD_EFORMAT, "%s: text_config.rope_scaling: missing", what);
    if (!json_is_object(rs))
        return hd_fail(e, HD_EFORMAT, "%s: %.*s: not an object", what, (int)strlen(rs_path) - 1,
                       rs_path);

    json_t *type = json_object_get(rs, "rope_type");
    if (!type) type = json_object_get(rs, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "default")))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: %srope_type: only \"default\" is supported", what,
                       rs_path);

    json_t *ms = json_object_get(rs, "mrope_section");
    if (!ms) return hd_fail(e, HD_EFORMAT, "%s: %smrope_section: missing", what, rs_path);
    if (!json_is_array(ms) || json_array_size(ms) != 3)
        return hd_fail(e, HD_EFORMAT, "%s: %smrope_section: not an array of 3 integers", what,
                       rs_path);
    int sum = 0;
    for (int i = 0; i < 3; i++) {
        json_t *v = json_array_get(ms, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 4096)
            return hd_fail(e, HD_EFORMAT, "%s: %smrope_section[%d]: not an integer in [0, 4096]",
                           what, rs_path, i);
        t->mrope_section[i] = (int)json_integer_value(v);
        sum += t->mrope_section[i];
    }
    if (sum * 2 != t->head_dim)
        return hd_fail(e, HD_EFORMAT,
                       "%s: %smrope_section sums to %d, but head_dim/2 = %d (head_dim %d)", what,
                       rs_path, sum, t->head_dim / 2, t->head_dim);

    /* Qwen3-VL always uses the interleaved layout; the flag may sit in several places */
    json_t *mi_holder = json_object_get(rs, "mrope_interleaved")   ? rs
                        : json_object_get(tc, "mrope_interleaved") ? tc
                                                                   : root;
    HD_TRY(get_flag(mi_holder, "mrope_interleaved",
                    mi_holder == rs   ? rs_path
                    : mi_holder == tc ? "text_config."
                                      : "",
                    what, 1, &t->mrope_interleaved, e));

    /* rope_theta: text_config first, then the rope dict, then the top level */
    json_t *th = json_object_get(tc, "rope_theta");
    char th_field[64] = "text_config.rope_theta";
    if (!th) {
        th = json_object_get(rs, "rope_theta");
        snprintf(th_field, sizeof th_field, "%srope_theta", rs_path);
    }
    if (!th) {
        th = json_object_get(root, "rope_theta");
        snprintf(th_field, sizeof th_field, "rope_theta");
    }
    if (!th) return hd_fail(e, HD_EFORMAT, "%s: text_config.rope_theta: missing", what);
    return get_pos_real(th, th_field, what, &t->rope_theta, e);
}

static int parse_text(hd_text_config *t, json_t *root, const char *what, hd_error *e) {
    json_t *tc = json_object_get(root, "text_config");
    if (!tc) return hd_fail(e, HD_EFORMAT, "%s: text_config: missing", what);
    if (!json_is_object(tc)) return hd_fail(e, HD_EFORMAT, "%s: text_config: not an object", what);
    const char *p = "text_config.";
    HD_TRY(get_int(tc, "vocab_size", p, what, 1, 1 << 24, &t->vocab_size, e));
    HD_TRY(get_int(tc, "hidden_size", p, what, 1, 1 << 16, &t->hidden_size, e));
    HD_TRY(get_int(tc, "intermediate_size", p, what, 1, 1 << 20, &t->intermediate_size, e));
    HD_TRY(get_int(tc, "num_hidden_layers", p, what, 1, 1024, &t->num_layers, e));
    HD_TRY(get_int(tc, "num_attention_heads", p, what, 1, 1024, &t->num_heads, e));
    HD_TRY(get_int(tc, "num_key_value_heads", p, what, 1, 1024, &t->num_kv_heads, e));
    HD_TRY(get_int(tc, "head_dim", p, what, 1, 4096, &t->head_dim, e));
    json_t *eps = json_object_get(tc, "rms_norm_eps");
    if (!eps) return hd_fail(e, HD_EFORMAT, "%s: text_config.rms_norm_eps: missing", what);
    HD_TRY(get_pos_real(eps, "text_config.rms_norm_eps", what, &t->rms_norm_eps, e));

    if (t->head_dim % 2)
        return hd_fail(e, HD_EFORMAT, "%s: text_config.head_dim = %d is not even", what,
                       t->head_dim);
    if (t->num_heads % t->num_kv_heads)
        return hd_fail(e, HD_EFORMAT,
                       "%s: text_config.num_attention_heads = %d is not a multiple of "
                       "num_key_value_heads = %d",
                       what, t->num_heads, t->num_kv_heads);

    /* features the decoder does not implement must be off */
    json_t *act = json_object_get(tc, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: text_config.hidden_act: only \"silu\" is supported",
                       what);
    json_t *bias = json_object_get(tc, "attention_bias");
    if (bias && !json_is_false(bias))
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: text_config.attention_bias: only false is supported", what);
    return parse_rope(t, root, tc, what, e);
}

/* ---- vision_config ------------------------------------------------------------------------- */

static int parse_vision(hd_vision_config *v, json_t *root, int text_hidden, const char *what,
                        hd_error *e) {
    json_t *vc = json_object_get(root, "vision_config");
    if (!vc || json_is_null(vc)) {
        v->present = 0;
        return 0;
    }
    if (!json_is_object(vc))
        return hd_fail(e, HD_EFORMAT, "%s: vision_config: not an object", what);
    v->present = 1;
    const char *p = "vision_config.";
    HD_TRY(get_int(vc, "depth", p, what, 1, 1024, &v->depth, e));
    HD_TRY(get_int(vc, "hidden_size", p, what, 1, 1 << 16, &v->hidden_size, e));
    HD_TRY(get_int(vc, "num_heads", p, what, 1, 1024, &v->num_heads, e));
    HD_TRY(get_int(vc, "intermediate_size", p, what, 1, 1 << 20, &v->intermediate_size, e));
    HD_TRY(get_int(vc, "patch_size", p, what, 1, 256, &v->patch_size, e));
    HD_TRY(get_int(vc, "temporal_patch_size", p, what, 1, 16, &v->temporal_patch_size, e));
    HD_TRY(get_int(vc, "spatial_merge_size", p, what, 1, 16, &v->spatial_merge_size, e));
    HD_TRY(get_int(vc, "in_channels", p, what, 1, 16, &v->in_channels, e));
    HD_TRY(get_int(vc, "out_hidden_size", p, what, 1, 1 << 16, &v->out_hidden_size, e));
    HD_TRY(get_int(vc, "num_position_embeddings", p, what, 1, 1 << 24, &v->num_position_embeddings,
                   e));

    json_t *act = json_object_get(vc, "hidden_act");
    if (act)
        HD_TRY(copy_string(act, "vision_config.hidden_act", what, v->hidden_act,
                           sizeof v->hidden_act, e));
    else
        snprintf(v->hidden_act, sizeof v->hidden_act, "gelu_pytorch_tanh");

    json_t *ds = json_object_get(vc, "deepstack_visual_indexes");
    if (!ds)
        return hd_fail(e, HD_EFORMAT, "%s: vision_config.deepstack_visual_indexes: missing", what);
    if (!json_is_array(ds) || json_array_size(ds) > HD_MAX_DEEPSTACK)
        return hd_fail(e, HD_EFORMAT,
                       "%s: vision_config.deepstack_visual_indexes: not an array of at most %d "
                       "integers",
                       what, HD_MAX_DEEPSTACK);
    v->n_deepstack = (int)json_array_size(ds);
    for (int i = 0; i < v->n_deepstack; i++) {
        json_t *x = json_array_get(ds, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= v->depth)
            return hd_fail(e, HD_EFORMAT,
                           "%s: vision_config.deepstack_visual_indexes[%d]: not an integer in "
                           "[0, depth = %d)",
                           what, i, v->depth);
        v->deepstack_indexes[i] = (int)json_integer_value(x);
    }

    if (v->hidden_size % v->num_heads || (v->hidden_size / v->num_heads) % 2)
        return hd_fail(e, HD_EFORMAT,
                       "%s: vision_config.hidden_size = %d does not split into %d heads of even "
                       "size",
                       what, v->hidden_size, v->num_heads);
    if (v->out_hidden_size != text_hidden)
        return hd_fail(e, HD_EFORMAT,
                       "%s: vision_config.out_hidden_size = %d differs from text_config."
                       "hidden_size = %d",
                       what, v->out_hidden_size, text_hidden);
    /* the learned position grid is square (spec 04: side = sqrt(num_position_embeddings)) */
    int side = (int)lround(sqrt((double)v->num_position_embeddings));
    if (side * side != v->num_position_embeddings)
        return hd_fail(e, HD_EFORMAT,
                       "%s: vision_config.num_position_embeddings = %d is not a square", what,
                       v->num_position_embeddings);
    return 0;
}

/* ---- "hidream" object (generation settings of the model) ------------------------------------ */

void hd_gen_config_defaults(hd_gen_config *g) {
    memset(g, 0, sizeof *g);
    g->patch_size = 32;
    g->noise_scale = 8.0;
    g->guidance = -1;
    g->shift = -1;
}

/* A real number in [lo, hi] (lo_open: > lo). */
static int gen_real(json_t *v, const char *key, const char *what, double lo, int lo_open,
                    double hi, double *out, hd_error *e) {
    if (!json_is_number(v)) return hd_fail(e, HD_EFORMAT, "%s: hidream.%s: not a number", what, key);
    double x = json_number_value(v);
    if (!isfinite(x) || (lo_open ? !(x > lo) : !(x >= lo)) || x > hi)
        return hd_fail(e, HD_EFORMAT, "%s: hidream.%s = %g must be %s %g and at most %g", what, key,
                       x, lo_open ? ">" : ">=", lo, hi);
    *out = x;
    return 0;
}

/* [w, h]: positive multiples of the patch size, at most HD_GEN_MAX_SIDE. */
static int gen_size(json_t *v, const char *field, const char *what, int patch, int out[2],
                    hd_error *e) {
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
        !json_is_integer(json_array_get(v, 1)))
        return hd_fail(e, HD_EFORMAT, "%s: %s: not [width, height] integers", what, field);
    for (int i = 0; i < 2; i++) {
        json_int_t x = json_integer_value(json_array_get(v, (size_t)i));
        if (x < patch || x > HD_GEN_MAX_SIDE || x % patch)
            return hd_fail(e, HD_EFORMAT,
                           "%s: %s: %s %lld is not a positive multiple of the patch size %d up to "
                           "%d",
                           what, field, i ? "height" : "width", (long long)x, patch,
                           HD_GEN_MAX_SIDE);
        out[i] = (int)x;
    }
    return 0;
}

static int parse_gen(hd_gen_config *g, json_t *root, const char *what, hd_error *e) {
    hd_gen_config_defaults(g);
    json_t *h = json_object_get(root, "hidream");
    if (!h || json_is_null(h)) return 0;
    if (!json_is_object(h)) return hd_fail(e, HD_EFORMAT, "%s: hidream: not an object", what);
    g->stated = 1;
    static const char *const known[] = {"patch_size", "native_size", "resolutions", "noise_scale",
                                        "scheduler",  "steps",       "guidance",    "shift"};
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v) {
        size_t k = 0;
        while (k < sizeof known / sizeof *known && strcmp(key, known[k])) k++;
        if (k == sizeof known / sizeof *known)
            return hd_fail(e, HD_EFORMAT,
                           "%s: hidream.%s: unknown field (known: patch_size, noise_scale, "
                           "native_size, resolutions, scheduler, steps, guidance, shift)",
                           what, key);
    }
    /* the patch size first: every size is checked against it */
    if (json_object_get(h, "patch_size"))
        HD_TRY(get_int(h, "patch_size", "hidream.", what, 1, HD_GEN_MAX_PATCH, &g->patch_size, e));
    if ((v = json_object_get(h, "noise_scale")))
        HD_TRY(gen_real(v, "noise_scale", what, 0, 1, 1e4, &g->noise_scale, e));
    int native[2] = {0, 0};
    if ((v = json_object_get(h, "native_size"))) {
        HD_TRY(gen_size(v, "hidream.native_size", what, g->patch_size, native, e));
        g->native_w = native[0];
        g->native_h = native[1];
    }
    if ((v = json_object_get(h, "resolutions"))) {
        size_t n = json_is_array(v) ? json_array_size(v) : 0;
        if (n < 1 || n > HD_MAX_RESOLUTIONS)
            return hd_fail(e, HD_EFORMAT,
                           "%s: hidream.resolutions: not an array of 1 to %d [width, height] "
                           "pairs",
                           what, HD_MAX_RESOLUTIONS);
        for (size_t i = 0; i < n; i++) {
            char field[64];
            snprintf(field, sizeof field, "hidream.resolutions[%zu]", i);
            HD_TRY(gen_size(json_array_get(v, i), field, what, g->patch_size, g->resolutions[i], e));
        }
        g->n_resolutions = (int)n;
        if (g->native_w) {
            int found = 0;
            for (int i = 0; i < g->n_resolutions; i++)
                found |= g->resolutions[i][0] == g->native_w && g->resolutions[i][1] == g->native_h;
            if (!found)
                return hd_fail(e, HD_EFORMAT,
                               "%s: hidream.native_size %dx%d is not one of hidream.resolutions",
                               what, g->native_w, g->native_h);
        }
    }
    if ((v = json_object_get(h, "scheduler"))) {
        HD_TRY(copy_string(v, "hidream.scheduler", what, g->scheduler, sizeof g->scheduler, e));
        if (strcmp(g->scheduler, "unipc") && strcmp(g->scheduler, "flow_match") &&
            strcmp(g->scheduler, "flash"))
            return hd_fail(e, HD_EFORMAT,
                           "%s: hidream.scheduler = \"%s\": not unipc, flow_match or flash", what,
                           g->scheduler);
    }
    if (json_object_get(h, "steps"))
        HD_TRY(get_int(h, "steps", "hidream.", what, 1, HD_MAX_TIMESTEPS, &g->steps, e));
    if ((v = json_object_get(h, "guidance")))
        HD_TRY(gen_real(v, "guidance", what, 0, 0, 1e4, &g->guidance, e));
    if ((v = json_object_get(h, "shift"))) HD_TRY(gen_real(v, "shift", what, 0, 1, 1e4, &g->shift, e));
    return 0;
}

/* ---- config.json ----------------------------------------------------------------------------- */

static int check_token_id(int id, const char *field, const char *file, int vocab, hd_error *e) {
    if (id < 0 || id >= vocab)
        return hd_fail(e, HD_EFORMAT, "%s: %s = %d is outside the vocabulary [0, %d)", file, field,
                       id, vocab);
    return 0;
}

int hd_config_parse_json(hd_config *cfg, const char *json, size_t len, const char *what,
                         hd_error *e) {
    memset(cfg, 0, sizeof *cfg);
    hd_gen_config_defaults(&cfg->gen);
    cfg->ids = (hd_token_ids){-1, -1, -1, -1, -1, -1, -1, -1, -1};
    if (!what) what = "config.json";
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", what,
                       jerr.text, jerr.line, jerr.column);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = hd_fail(e, HD_EFORMAT, "%s: not a JSON object", what);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!mt) {
        rc = hd_fail(e, HD_EFORMAT, "%s: model_type: missing", what);
        goto done;
    }
    if ((rc = copy_string(mt, "model_type", what, cfg->model_type, sizeof cfg->model_type, e)))
        goto done;
    if (strcmp(cfg->model_type, "qwen3_vl")) {
        rc = hd_fail(e, HD_EUNSUPPORTED, "%s: model_type = \"%s\", expected \"qwen3_vl\"", what,
                     cfg->model_type);
        goto done;
    }
    if ((rc = parse_text(&cfg->text, root, what, e))) goto done;
    if ((rc = parse_vision(&cfg->vision, root, cfg->text.hidden_size, what, e))) goto done;
    if ((rc = parse_gen(&cfg->gen, root, what, e))) goto done;

    int vocab = cfg->text.vocab_size;
    hd_token_ids *ids = &cfg->ids;
    if ((rc = get_int(root, "image_token_id", "", what, INT_MIN, INT_MAX, &ids->image_pad, e)) ||
        (rc = get_int(root, "video_token_id", "", what, INT_MIN, INT_MAX, &ids->video_pad, e)) ||
        (rc = get_int(root, "vision_start_token_id", "", what, INT_MIN, INT_MAX, &ids->vision_start,
                      e)) ||
        (rc = get_int(root, "vision_end_token_id", "", what, INT_MIN, INT_MAX, &ids->vision_end,
                      e)) ||
        (rc = check_token_id(ids->image_pad, "image_token_id", what, vocab, e)) ||
        (rc = check_token_id(ids->video_pad, "video_token_id", what, vocab, e)) ||
        (rc = check_token_id(ids->vision_start, "vision_start_token_id", what, vocab, e)) ||
        (rc = check_token_id(ids->vision_end, "vision_end_token_id", what, vocab, e)))
        goto done;
done:
    json_decref(root);
    return rc;
}

/* ---- tokenizer.json -------------------------------------------------------------------------- */

int hd_config_parse_tokenizer_ids(hd_token_ids *ids, const char *json, size_t len, const char *what,
                                  hd_error *e) {
    ids->tms = ids->boi = ids->im_start = ids->im_end = ids->endoftext = -1;
    if (!what) what = "tokenizer.json";
    json_error_t jerr;
    /* token texts are arbitrary strings and may legally contain NUL */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: not valid JSON: %s (line %d, column %d)", what,
                       jerr.text, jerr.line, jerr.column);
    int rc = 0;
    json_t *added = json_is_object(root) ? json_object_get(root, "added_tokens") : NULL;
    if (!json_is_array(added)) {
        rc = hd_fail(e, HD_EFORMAT, "%s: added_tokens: missing or not an array", what);
        goto done;
    }
    static const char *const names[] = {"<|tms_token|>", "<|boi_token|>", "<|im_start|>",
                                        "<|im_end|>", "<|endoftext|>"};
    int *slots[] = {&ids->tms, &ids->boi, &ids->im_start, &ids->im_end, &ids->endoftext};
    size_t i;
    json_t *tok;
    json_array_foreach(added, i, tok) {
        json_t *id = json_object_get(tok, "id"), *content = json_object_get(tok, "content");
        if (!json_is_object(tok) || !json_is_integer(id) || !json_is_string(content)) {
            rc = hd_fail(e, HD_EFORMAT,
                         "%s: added_tokens[%zu]: needs integer 'id' and string "
                         "'content'",
                         what, i);
            goto done;
        }
        json_int_t v = json_integer_value(id);
        if (v < 0 || v > INT_MAX) {
            rc = hd_fail(e, HD_EFORMAT, "%s: added_tokens[%zu]: id %lld out of range", what, i,
                         (long long)v);
            goto done;
        }
        for (int k = 0; k < 5; k++) {
            if (json_string_length(content) != strlen(names[k]) ||
                memcmp(json_string_value(content), names[k], strlen(names[k])))
                continue;
            if (*slots[k] >= 0 && *slots[k] != (int)v) {
                rc = hd_fail(e, HD_EFORMAT, "%s: added token %s appears twice (ids %d and %lld)",
                             what, names[k], *slots[k], (long long)v);
                goto done;
            }
            *slots[k] = (int)v;
        }
    }
    if (ids->tms < 0)
        rc = hd_fail(e, HD_EFORMAT, "%s: added_tokens has no <|tms_token|> (not a HiDream model)",
                     what);
    else if (ids->boi < 0)
        rc = hd_fail(e, HD_EFORMAT, "%s: added_tokens has no <|boi_token|> (not a HiDream model)",
                     what);
done:
    json_decref(root);
    return rc;
}

/* ---- model directory ------------------------------------------------------------------------- */

static char *read_text_file(const char *path, size_t *len, hd_error *e) {
    char *buf;
    return hd_read_file(path, CFG_MAX_FILE_BYTES, &buf, len, e) < 0 ? NULL : buf;
}

/* Base name of dir, ignoring trailing slashes ("a/b/" -> "b"). */
static void dir_base_name(const char *dir, char *out, size_t n) {
    size_t end = strlen(dir);
    while (end > 1 && dir[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    size_t len = end - start;
    if (len >= n) len = n - 1;
    memcpy(out, dir + start, len);
    out[len] = 0;
}

int hd_config_load_dir(hd_config *cfg, const char *dir, hd_error *e) {
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *text = read_text_file(path, &len, e);
    if (!text) {
        memset(cfg, 0, sizeof *cfg);
        return e ? e->code : HD_EIO;
    }
    int rc = hd_config_parse_json(cfg, text, len, path, e);
    free(text);
    if (rc) return rc;
    dir_base_name(dir, cfg->name, sizeof cfg->name);

    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (!(text = read_text_file(path, &len, e))) return e ? e->code : HD_EIO;
    rc = hd_config_parse_tokenizer_ids(&cfg->ids, text, len, path, e);
    free(text);
    if (rc) return rc;

    const hd_token_ids *ids = &cfg->ids;
    int vocab = cfg->text.vocab_size;
    HD_TRY(check_token_id(ids->tms, "<|tms_token|> id", path, vocab, e));
    HD_TRY(check_token_id(ids->boi, "<|boi_token|> id", path, vocab, e));
    if (ids->im_start >= 0)
        HD_TRY(check_token_id(ids->im_start, "<|im_start|> id", path, vocab, e));
    if (ids->im_end >= 0) HD_TRY(check_token_id(ids->im_end, "<|im_end|> id", path, vocab, e));
    if (ids->endoftext >= 0)
        HD_TRY(check_token_id(ids->endoftext, "<|endoftext|> id", path, vocab, e));
    return 0;
}
