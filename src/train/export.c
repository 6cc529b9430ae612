/* The exported model directory (export.h). The config is built as JSON and read back through the
 * ordinary config parser, so the trainer trains exactly the model `generate` will load. */
#include "train/export.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "text/tokenizer.h"

static json_t *size_pair(const int s[2]) { return json_pack("[i, i]", s[0], s[1]); }

static json_t *hidream_object(const hd_train_config *c) {
    const hd_train_stage *last = &c->stages[c->n_stages - 1];
    json_t *res = json_array();
    for (int i = 0; i < last->n_sizes; i++) json_array_append_new(res, size_pair(last->sizes[i]));
    return json_pack("{s:i, s:f, s:o, s:o, s:s, s:i, s:f, s:f}", "patch_size",
                     c->model.patch_size, "noise_scale", c->model.noise_scale, "native_size",
                     size_pair(last->sizes[0]), "resolutions", res, "scheduler",
                     c->generate.scheduler, "steps", c->generate.steps, "guidance",
                     c->generate.guidance, "shift", c->generate.shift);
}

static json_t *text_config(const hd_train_config *c, int vocab) {
    const hd_train_model *m = &c->model;
    int half = m->head_dim / 2, hw = half * 10 / 32; /* the release's 24/20/20 proportions */
    json_t *rs = json_pack("{s:s, s:[i, i, i], s:b, s:f}", "rope_type", "default",
                           "mrope_section", half - 2 * hw, hw, hw, "mrope_interleaved", 1,
                           "rope_theta", m->rope_theta);
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:s, s:b, s:o}",
                     "model_type", "qwen3_vl_text", "dtype", c->export_bf16 ? "bfloat16" : "float32",
                     "vocab_size", vocab, "hidden_size", m->hidden_size, "intermediate_size",
                     m->intermediate_size, "num_hidden_layers", m->layers, "num_attention_heads",
                     m->heads, "num_key_value_heads", m->kv_heads, "head_dim", m->head_dim,
                     "rms_norm_eps", 1e-6, "rope_theta", m->rope_theta, "hidden_act", "silu",
                     "tie_word_embeddings", 0, "rope_scaling", rs);
}

/* config.json text (malloc'd) for the recipe and its tokenizer. */
static int config_text(const hd_train_config *c, const char *tok_json, size_t tok_len,
                       char **out, hd_error *e) {
    hd_tokenizer *tok = NULL;
    HD_TRY(hd_tokenizer_load_buffer(&tok, tok_json, tok_len, "tokenizer.json", e));
    static const char *const need[] = {"<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                       "<|vision_end|>"};
    int id[4], vocab = hd_tokenizer_vocab_size(tok);
    for (int i = 0; i < 4; i++) id[i] = hd_tokenizer_token_id(tok, need[i]);
    hd_tokenizer_free(tok);
    for (int i = 0; i < 4; i++)
        if (id[i] < 0)
            return hd_fail(e, HD_EFORMAT, "%s: tokenizer: no %s token (the sequence needs it)",
                           c->path, need[i]);
    json_t *root = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:b, s:o, s:s, s:o}",
                             "architectures", "Qwen3VLForConditionalGeneration", "model_type",
                             "qwen3_vl", "image_token_id", id[0], "video_token_id", id[1],
                             "vision_start_token_id", id[2], "vision_end_token_id", id[3],
                             "tie_word_embeddings", 0, "text_config", text_config(c, vocab),
                             "torch_dtype", c->export_bf16 ? "bfloat16" : "float32", "hidream",
                             hidream_object(c));
    *out = root ? json_dumps(root, JSON_INDENT(2)) : NULL;
    json_decref(root);
    if (!*out) return hd_fail(e, HD_ENOMEM, "config.json: out of memory");
    return 0;
}

int hd_train_model_config(hd_config *cfg, const hd_train_config *c, const char *tokenizer_json,
                          size_t tokenizer_len, hd_error *e) {
    char *text = NULL;
    HD_TRY(config_text(c, tokenizer_json, tokenizer_len, &text, e));
    int rc = hd_config_parse_json(cfg, text, strlen(text), c->path, e);
    free(text);
    if (rc == 0)
        rc = hd_config_parse_tokenizer_ids(&cfg->ids, tokenizer_json, tokenizer_len,
                                           "tokenizer.json", e);
    return rc;
}

static int write_file(const char *dir, const char *name, const char *text, size_t len,
                      hd_error *e) {
    char path[4200];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return hd_fail(e, HD_EINVAL, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return hd_fail(e, HD_EIO, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return hd_fail(e, HD_EIO, "%s: write failed: %s", path, strerror(errno));
    return 0;
}

static int write_weights(const char *dir, const hd_train_config *c, const hd_train_optimizer *o,
                         hd_error *e) {
    hd_st_write_item *items = calloc((size_t)o->n, sizeof *items);
    float *buf = NULL;
    size_t total = 0;
    for (int i = 0; i < o->n; i++) total += (size_t)(o->ps[i].w->rows * o->ps[i].w->cols);
    buf = malloc(total * sizeof *buf);
    if (!items || !buf) {
        free(items);
        free(buf);
        return hd_fail(e, HD_ENOMEM, "export: out of memory");
    }
    hd_dtype dt = c->export_bf16 ? HD_BF16 : HD_F32;
    size_t off = 0; /* in bytes of dt */
    char *bytes = (char *)buf;
    for (int i = 0; i < o->n; i++) {
        const hd_uit_param *p = &o->ps[i];
        const hd_tensor *t = o->ema ? &o->ema[i] : p->w;
        size_t n = (size_t)(t->rows * t->cols);
        float *f = malloc(n * sizeof *f);
        if (!f) {
            free(items);
            free(buf);
            return hd_fail(e, HD_ENOMEM, "export: out of memory");
        }
        o->be->ops->read(o->be, t, f);
        if (dt == HD_BF16)
            for (size_t k = 0; k < n; k++) ((uint16_t *)(bytes + off))[k] = hd_f32_to_bf16(f[k]);
        else
            memcpy(bytes + off, f, n * sizeof *f);
        free(f);
        hd_st_write_item *it = &items[i];
        it->name = p->name;
        it->dtype = dt;
        it->ndim = p->ndim;
        it->shape[0] = p->ndim == 1 ? (int64_t)n : t->rows;
        it->shape[1] = t->cols;
        it->data = bytes + off;
        off += n * hd_dtype_size(dt);
    }
    char path[4200];
    int rc = snprintf(path, sizeof path, "%s/model.safetensors", dir) < (int)sizeof path
                 ? hd_st_write(path, items, o->n, e)
                 : hd_fail(e, HD_EINVAL, "%s: path too long", dir);
    free(items);
    free(buf);
    return rc;
}

static int remove_tree(const char *dir) {
    static const char *const files[] = {"config.json", "tokenizer.json", "model.safetensors",
                                        "model.safetensors.tmp"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) < (int)sizeof path) unlink(path);
    }
    return rmdir(dir);
}

int hd_train_export(const char *dir, const hd_train_config *c,
                    const hd_train_optimizer *o, const char *tokenizer_json, size_t tokenizer_len,
                    hd_error *e) {
    char tmp[4200], old[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", dir) >= (int)sizeof tmp ||
        snprintf(old, sizeof old, "%s.old", dir) >= (int)sizeof old)
        return hd_fail(e, HD_EINVAL, "%s: path too long", dir);
    remove_tree(tmp);
    if (mkdir(tmp, 0755) < 0)
        return hd_fail(e, HD_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    char *text = NULL;
    int rc = config_text(c, tokenizer_json, tokenizer_len, &text, e);
    if (rc == 0) rc = write_file(tmp, "config.json", text, strlen(text), e);
    free(text);
    if (rc == 0) rc = write_file(tmp, "tokenizer.json", tokenizer_json, tokenizer_len, e);
    if (rc == 0) rc = write_weights(tmp, c, o, e);
    if (rc < 0) {
        remove_tree(tmp);
        return rc;
    }
    /* swap: the old export stays until the new one is in place */
    remove_tree(old);
    struct stat sb;
    if (stat(dir, &sb) == 0 && rename(dir, old) < 0)
        rc = hd_fail(e, HD_EIO, "%s: cannot replace: %s", dir, strerror(errno));
    if (rc == 0 && rename(tmp, dir) < 0)
        rc = hd_fail(e, HD_EIO, "%s: cannot create: %s", dir, strerror(errno));
    if (rc == 0) remove_tree(old);
    return rc;
}
