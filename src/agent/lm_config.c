#include "agent/lm_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"

static int get_int(json_t *o, const char *key, const char *what, int lo, int hi, int *out,
                   hd_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v) return hd_fail(e, HD_EFORMAT, "%s: %s: missing", what, key);
    if (!json_is_integer(v)) return hd_fail(e, HD_EFORMAT, "%s: %s: not an integer", what, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hd_fail(e, HD_EFORMAT, "%s: %s = %lld is out of range [%d, %d]", what, key,
                       (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_real(json_t *o, const char *key, const char *what, double *out, hd_error *e) {
    json_t *v = json_object_get(o, key);
    if (!v) return hd_fail(e, HD_EFORMAT, "%s: %s: missing", what, key);
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return hd_fail(e, HD_EFORMAT, "%s: %s: not a positive number", what, key);
    *out = json_number_value(v);
    return 0;
}

/* rope_theta at the top (transformers 4) or in rope_parameters (transformers 5); only the
 * default rope type is computed. Qwen3-VL's mrope parameters are fine for text. */
static int read_rope(json_t *t, const char *what, int vl, double *theta, hd_error *e) {
    json_t *rp = json_object_get(t, "rope_parameters"), *rs = json_object_get(t, "rope_scaling");
    json_t *src = json_object_get(t, "rope_theta") ? t : json_is_object(rp) ? rp : t;
    HD_TRY(get_real(src, "rope_theta", what, theta, e));
    json_t *scale = json_is_object(rp) ? rp : rs;
    const char *type = json_string_value(json_object_get(scale, "rope_type"));
    if (!type) type = json_string_value(json_object_get(scale, "type"));
    if (json_is_object(scale) && type && strcmp(type, "default") && !(vl && !strcmp(type, "mrope")))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: rope_scaling: type '%s' is not supported", what,
                       type);
    return 0;
}

static int parse_text(json_t *t, const char *what, int vl, hd_lm_config *c, hd_error *e) {
    HD_TRY(get_int(t, "vocab_size", what, 1, 1 << 24, &c->vocab, e));
    HD_TRY(get_int(t, "hidden_size", what, 1, 1 << 16, &c->dim, e));
    HD_TRY(get_int(t, "num_hidden_layers", what, 1, 1024, &c->n_layers, e));
    HD_TRY(get_int(t, "num_attention_heads", what, 1, 1024, &c->n_heads, e));
    HD_TRY(get_int(t, "num_key_value_heads", what, 1, 1024, &c->n_kv_heads, e));
    HD_TRY(get_int(t, "intermediate_size", what, 1, 1 << 20, &c->ffn, e));
    c->head_dim = c->dim / c->n_heads;
    if (json_object_get(t, "head_dim")) HD_TRY(get_int(t, "head_dim", what, 2, 1024, &c->head_dim, e));
    if (c->head_dim % 2) return hd_fail(e, HD_EFORMAT, "%s: head_dim = %d is odd", what, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return hd_fail(e, HD_EFORMAT, "%s: num_attention_heads = %d is not a multiple of "
                                      "num_key_value_heads = %d", what, c->n_heads, c->n_kv_heads);
    c->max_pos = 1 << 20;
    if (json_object_get(t, "max_position_embeddings"))
        HD_TRY(get_int(t, "max_position_embeddings", what, 1, 1 << 24, &c->max_pos, e));
    HD_TRY(get_real(t, "rms_norm_eps", what, &c->eps, e));
    HD_TRY(read_rope(t, what, vl, &c->theta, e));
    if (json_is_true(json_object_get(t, "attention_bias")))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: attention_bias: true is not supported", what);
    if (json_is_true(json_object_get(t, "use_sliding_window")))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: use_sliding_window: true is not supported", what);
    const char *act = json_string_value(json_object_get(t, "hidden_act"));
    if (act && strcmp(act, "silu"))
        return hd_fail(e, HD_EUNSUPPORTED, "%s: hidden_act: '%s' is not silu", what, act);
    return 0;
}

int hd_lm_config_parse(const char *json, size_t len, const char *what, hd_lm_config *c,
                       hd_error *e) {
    memset(c, 0, sizeof *c);
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hd_fail(e, HD_EFORMAT, "%s: line %d: %s", what, je.line, je.text);
    int rc = 0;
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    json_t *text = json_object_get(root, "text_config");
    if (!json_is_object(root)) {
        rc = hd_fail(e, HD_EFORMAT, "%s: not a JSON object", what);
    } else if (json_is_object(text)) { /* Qwen3-VL layout (HiDream-O1-Image) */
        rc = parse_text(text, what, 1, c, e);
        snprintf(c->prefix, sizeof c->prefix, "model.language_model.");
        c->tied = json_is_true(json_object_get(root, "tie_word_embeddings")) ||
                  json_is_true(json_object_get(text, "tie_word_embeddings"));
    } else if (mt && !strcmp(mt, "qwen3")) {
        rc = parse_text(root, what, 0, c, e);
        snprintf(c->prefix, sizeof c->prefix, "model.");
        c->tied = json_is_true(json_object_get(root, "tie_word_embeddings"));
    } else {
        rc = hd_fail(e, HD_EUNSUPPORTED, "%s: model_type: '%s' is not a Qwen3 causal LM (qwen3, "
                                         "or a Qwen3-VL text_config)", what, mt ? mt : "(missing)");
    }
    json_decref(root);
    return rc;
}

int hd_lm_config_load(const char *dir, hd_lm_config *c, hd_error *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *buf;
    size_t len;
    HD_TRY(hd_read_file(path, 1u << 20, &buf, &len, e));
    int rc = hd_lm_config_parse(buf, len, path, c, e);
    free(buf);
    return rc;
}
