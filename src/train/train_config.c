/* Parsing the training recipe (train_config.h). Defaults are the small shapes-world model of
 * docs/TRAINING.md; every bound keeps derived sizes far from overflow whatever the file says. */
#include "train/train_config.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "io/config.h"

#define TRAIN_CONFIG_MAX_BYTES (1u << 20)

typedef struct ctx {
    const char *what; /* file name for messages */
    hd_error *e;
} ctx;

/* Unknown keys are errors: a misspelt field must not train with a default silently. */
static int check_keys(const ctx *c, json_t *obj, const char *path, const char *const *allowed) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(key, allowed[i]);
        if (!ok) return hd_fail(c->e, HD_EFORMAT, "%s: %s%s: unknown field", c->what, path, key);
    }
    return 0;
}

static int get_i64(const ctx *c, json_t *obj, const char *key, const char *path, int64_t lo,
                   int64_t hi, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_integer(v))
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s: not an integer", c->what, path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s = %lld is out of range [%lld, %lld]", c->what,
                       path, key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int get_int(const ctx *c, json_t *obj, const char *key, const char *path, int lo, int hi,
                   int *out) {
    int64_t x = *out;
    HD_TRY(get_i64(c, obj, key, path, lo, hi, &x));
    *out = (int)x;
    return 0;
}

/* Optional real in [lo, hi] (open at lo when lo_open). */
static int get_real(const ctx *c, json_t *obj, const char *key, const char *path, double lo,
                    int lo_open, double hi, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return 0;
    if (!json_is_number(v))
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s: not a number", c->what, path, key);
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || (lo_open && x == lo) || x > hi)
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s = %g is out of range %s%g, %g]", c->what, path,
                       key, x, lo_open ? "(" : "[", lo, hi);
    *out = x;
    return 0;
}

static int get_str(const ctx *c, json_t *obj, const char *key, const char *path, char *out,
                   size_t cap) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v))
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s: not a string", c->what, path, key);
    const char *s = json_string_value(v);
    if (strlen(s) >= cap)
        return hd_fail(c->e, HD_EFORMAT, "%s: %s%s: longer than %zu bytes", c->what, path, key,
                       cap - 1);
    strcpy(out, s);
    return 0;
}

static int get_obj(const ctx *c, json_t *root, const char *key, json_t **out) {
    *out = json_object_get(root, key);
    if (*out && !json_is_object(*out))
        return hd_fail(c->e, HD_EFORMAT, "%s: %s: not an object", c->what, key);
    return 0;
}

/* [[w, h], ...]: positive multiples of the patch size, at most HD_DATASET_MAX_BUCKETS. */
static int get_sizes(const ctx *c, json_t *v, const char *path, int patch, hd_train_stage *st) {
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > HD_DATASET_MAX_BUCKETS)
        return hd_fail(c->e, HD_EFORMAT, "%s: %s: not a list of 1..%d [width, height] pairs",
                       c->what, path, HD_DATASET_MAX_BUCKETS);
    st->n_sizes = (int)json_array_size(v);
    for (int i = 0; i < st->n_sizes; i++) {
        json_t *p = json_array_get(v, (size_t)i);
        for (int k = 0; k < 2; k++) {
            json_t *x = json_is_array(p) && json_array_size(p) == 2 ? json_array_get(p, (size_t)k)
                                                                    : NULL;
            json_int_t n = json_is_integer(x) ? json_integer_value(x) : -1;
            if (n < patch || n > 1024 || n % patch)
                return hd_fail(c->e, HD_EFORMAT,
                               "%s: %s[%d]: sizes must be [width, height], multiples of the "
                               "patch size %d in [%d, 1024]",
                               c->what, path, i, patch, patch);
            st->sizes[i][k] = (int)n;
        }
    }
    return 0;
}

static void set_defaults(hd_train_config *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->out, "runs/train");
    c->seed = 1;
    c->model = (hd_train_model){.hidden_size = 256, .layers = 6, .heads = 4, .kv_heads = 2,
                                .head_dim = 64, .intermediate_size = 768, .patch_size = 8,
                                .noise_scale = 1.0, .rope_theta = 10000.0, .init_std = 0.02};
    c->data_kind = HD_DATASET_SHAPES;
    c->filter = HD_FILTER_LANCZOS;
    c->batch = 16;
    c->accum = 1;
    c->optim = (hd_train_optim){.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8,
                                .weight_decay = 0.01, .warmup = 200, .min_lr_ratio = 0.1,
                                .clip = 1.0, .ema_decay = 0.999};
    c->objective = (hd_train_objective){.sigma_dist = HD_SIGMA_LOGIT_NORMAL, .sigma_mean = 0.8,
                                        .sigma_std = 1.0, .sigma_min = 0.05, .cfg_dropout = 0.1,
                                        .lm_weight = 0.1};
    c->generate = (hd_train_generate){.scheduler = "unipc", .steps = 30, .guidance = 3.0,
                                      .shift = 1.0};
    c->log_every = 10;
    c->checkpoint_every = 500;
    c->sample_every = 0;
    c->eval_every = 0;
    c->eval_n = 100;
    c->eval_seed = 1000003;
    c->export_bf16 = 1;
}

static int parse_model(const ctx *c, json_t *m, hd_train_model *o) {
    static const char *const keys[] = {"hidden_size", "layers", "heads", "kv_heads", "head_dim",
                                       "intermediate_size", "patch_size", "noise_scale",
                                       "rope_theta", "init_std", "init_from", NULL};
    const char *p = "model.";
    HD_TRY(check_keys(c, m, p, keys));
    HD_TRY(get_int(c, m, "hidden_size", p, 8, 8192, &o->hidden_size));
    HD_TRY(get_int(c, m, "layers", p, 1, 128, &o->layers));
    HD_TRY(get_int(c, m, "heads", p, 1, 128, &o->heads));
    HD_TRY(get_int(c, m, "kv_heads", p, 1, 128, &o->kv_heads));
    HD_TRY(get_int(c, m, "head_dim", p, 8, 512, &o->head_dim));
    HD_TRY(get_int(c, m, "intermediate_size", p, 8, 65536, &o->intermediate_size));
    HD_TRY(get_int(c, m, "patch_size", p, 1, HD_GEN_MAX_PATCH, &o->patch_size));
    HD_TRY(get_real(c, m, "noise_scale", p, 0, 1, 1000, &o->noise_scale));
    HD_TRY(get_real(c, m, "rope_theta", p, 1, 0, 1e12, &o->rope_theta));
    HD_TRY(get_real(c, m, "init_std", p, 0, 1, 10, &o->init_std));
    HD_TRY(get_str(c, m, "init_from", p, o->init_from, sizeof o->init_from));
    if (o->head_dim % 8)
        return hd_fail(c->e, HD_EFORMAT, "%s: model.head_dim = %d must be a multiple of 8 (MRoPE "
                       "sections)", c->what, o->head_dim);
    if (o->heads % o->kv_heads)
        return hd_fail(c->e, HD_EFORMAT, "%s: model.heads = %d is not a multiple of "
                       "model.kv_heads = %d", c->what, o->heads, o->kv_heads);
    return 0;
}

/* data.categories: {"single": w, ..., "two objects": w}, names as hd_category_name gives them;
 * a category left out gets weight 0. */
static int parse_categories(const ctx *c, json_t *d, hd_train_config *o) {
    json_t *cat = json_object_get(d, "categories");
    if (!cat) return 0;
    if (!json_is_object(cat))
        return hd_fail(c->e, HD_EFORMAT, "%s: data.categories: not an object of weights", c->what);
    const char *key;
    json_t *v;
    double total = 0;
    json_object_foreach(cat, key, v) {
        int k = -1;
        for (int i = 0; i < HD_N_CATEGORIES; i++)
            if (!strcmp(key, hd_category_name((hd_shapes_category)i))) k = i;
        if (k < 0)
            return hd_fail(c->e, HD_EFORMAT, "%s: data.categories.%s: unknown category (single, "
                           "position, counting, relation, two objects)", c->what, key);
        double w = json_is_number(v) ? json_number_value(v) : -1;
        if (!(w >= 0 && w <= 1e6))
            return hd_fail(c->e, HD_EFORMAT, "%s: data.categories.%s: expected a weight in "
                           "[0, 1e6]", c->what, key);
        o->category_weights[k] = w;
        total += w;
    }
    if (!(total > 0))
        return hd_fail(c->e, HD_EFORMAT, "%s: data.categories: every weight is 0", c->what);
    if (o->data_kind != HD_DATASET_SHAPES)
        return hd_fail(c->e, HD_EFORMAT, "%s: data.categories: only the shapes world has "
                       "categories", c->what);
    return 0;
}

static int parse_data(const ctx *c, json_t *d, hd_train_config *o) {
    static const char *const keys[] = {"kind", "folder", "filter", "categories", NULL};
    HD_TRY(check_keys(c, d, "data.", keys));
    char kind[16] = "shapes", filter[16] = "lanczos";
    HD_TRY(get_str(c, d, "kind", "data.", kind, sizeof kind));
    HD_TRY(get_str(c, d, "folder", "data.", o->folder, sizeof o->folder));
    HD_TRY(get_str(c, d, "filter", "data.", filter, sizeof filter));
    if (!strcmp(kind, "shapes"))
        o->data_kind = HD_DATASET_SHAPES;
    else if (!strcmp(kind, "folder"))
        o->data_kind = HD_DATASET_FOLDER;
    else
        return hd_fail(c->e, HD_EFORMAT, "%s: data.kind = \"%s\": expected \"shapes\" or "
                       "\"folder\"", c->what, kind);
    if (o->data_kind == HD_DATASET_FOLDER && !o->folder[0])
        return hd_fail(c->e, HD_EFORMAT, "%s: data.folder: missing (data.kind is \"folder\")",
                       c->what);
    HD_TRY(parse_categories(c, d, o));
    static const char *const filters[] = {"box", "bilinear", "bicubic", "lanczos"};
    o->filter = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(filter, filters[i])) o->filter = i;
    if (o->filter < 0)
        return hd_fail(c->e, HD_EFORMAT, "%s: data.filter = \"%s\": expected box, bilinear, "
                       "bicubic or lanczos", c->what, filter);
    return 0;
}

static int parse_stages(const ctx *c, json_t *root, hd_train_config *o) {
    json_t *st = json_object_get(root, "stages");
    if (!st) return hd_fail(c->e, HD_EFORMAT, "%s: stages: missing (a list of {\"steps\": N, "
                            "\"sizes\": [[w, h], ...]})", c->what);
    if (!json_is_array(st) || json_array_size(st) == 0 ||
        json_array_size(st) > HD_TRAIN_MAX_STAGES)
        return hd_fail(c->e, HD_EFORMAT, "%s: stages: not a list of 1..%d stages", c->what,
                       HD_TRAIN_MAX_STAGES);
    o->n_stages = (int)json_array_size(st);
    for (int i = 0; i < o->n_stages; i++) {
        json_t *s = json_array_get(st, (size_t)i);
        char path[48];
        snprintf(path, sizeof path, "stages[%d].", i);
        if (!json_is_object(s))
            return hd_fail(c->e, HD_EFORMAT, "%s: stages[%d]: not an object", c->what, i);
        static const char *const keys[] = {"steps", "sizes", NULL};
        HD_TRY(check_keys(c, s, path, keys));
        o->stages[i].steps = 0;
        HD_TRY(get_i64(c, s, "steps", path, 1, 100000000, &o->stages[i].steps));
        if (!o->stages[i].steps)
            return hd_fail(c->e, HD_EFORMAT, "%s: %ssteps: missing", c->what, path);
        json_t *sz = json_object_get(s, "sizes");
        char spath[64];
        snprintf(spath, sizeof spath, "%ssizes", path);
        if (!sz) return hd_fail(c->e, HD_EFORMAT, "%s: %s: missing", c->what, spath);
        HD_TRY(get_sizes(c, sz, spath, o->model.patch_size, &o->stages[i]));
    }
    return 0;
}

static int parse_optim(const ctx *c, json_t *v, hd_train_optim *o) {
    static const char *const keys[] = {"lr", "beta1", "beta2", "eps", "weight_decay", "warmup",
                                       "min_lr_ratio", "clip", "ema_decay", NULL};
    const char *p = "optimizer.";
    HD_TRY(check_keys(c, v, p, keys));
    HD_TRY(get_real(c, v, "lr", p, 0, 1, 10, &o->lr));
    HD_TRY(get_real(c, v, "beta1", p, 0, 0, 0.999999, &o->beta1));
    HD_TRY(get_real(c, v, "beta2", p, 0, 0, 0.999999, &o->beta2));
    HD_TRY(get_real(c, v, "eps", p, 0, 1, 1, &o->eps));
    HD_TRY(get_real(c, v, "weight_decay", p, 0, 0, 10, &o->weight_decay));
    HD_TRY(get_i64(c, v, "warmup", p, 0, 100000000, &o->warmup));
    HD_TRY(get_real(c, v, "min_lr_ratio", p, 0, 0, 1, &o->min_lr_ratio));
    HD_TRY(get_real(c, v, "clip", p, 0, 0, 1e6, &o->clip));
    HD_TRY(get_real(c, v, "ema_decay", p, 0, 0, 0.999999, &o->ema_decay));
    return 0;
}

static int parse_objective(const ctx *c, json_t *v, hd_train_objective *o) {
    static const char *const keys[] = {"sigma", "sigma_mean", "sigma_std", "sigma_min",
                                       "cfg_dropout", "lm_weight", NULL};
    const char *p = "objective.";
    HD_TRY(check_keys(c, v, p, keys));
    char dist[32] = "logit_normal";
    HD_TRY(get_str(c, v, "sigma", p, dist, sizeof dist));
    if (!strcmp(dist, "logit_normal"))
        o->sigma_dist = HD_SIGMA_LOGIT_NORMAL;
    else if (!strcmp(dist, "uniform"))
        o->sigma_dist = HD_SIGMA_UNIFORM;
    else
        return hd_fail(c->e, HD_EFORMAT, "%s: objective.sigma = \"%s\": expected "
                       "\"logit_normal\" or \"uniform\"", c->what, dist);
    HD_TRY(get_real(c, v, "sigma_mean", p, -10, 0, 10, &o->sigma_mean));
    HD_TRY(get_real(c, v, "sigma_std", p, 0, 1, 10, &o->sigma_std));
    HD_TRY(get_real(c, v, "sigma_min", p, 0, 1, 1, &o->sigma_min));
    HD_TRY(get_real(c, v, "cfg_dropout", p, 0, 0, 1, &o->cfg_dropout));
    HD_TRY(get_real(c, v, "lm_weight", p, 0, 0, 100, &o->lm_weight));
    return 0;
}

static int parse_generate(const ctx *c, json_t *v, hd_train_generate *o) {
    static const char *const keys[] = {"scheduler", "steps", "guidance", "shift", NULL};
    const char *p = "generate.";
    HD_TRY(check_keys(c, v, p, keys));
    HD_TRY(get_str(c, v, "scheduler", p, o->scheduler, sizeof o->scheduler));
    if (strcmp(o->scheduler, "unipc") && strcmp(o->scheduler, "flow_match") &&
        strcmp(o->scheduler, "flash"))
        return hd_fail(c->e, HD_EFORMAT, "%s: generate.scheduler = \"%s\": expected unipc, "
                       "flow_match or flash", c->what, o->scheduler);
    HD_TRY(get_int(c, v, "steps", p, 1, 1000, &o->steps));
    HD_TRY(get_real(c, v, "guidance", p, 0, 0, 100, &o->guidance));
    HD_TRY(get_real(c, v, "shift", p, 0, 1, 100, &o->shift));
    return 0;
}

static int parse_prompts(const ctx *c, json_t *root, hd_train_config *o) {
    json_t *v = json_object_get(root, "sample_prompts");
    if (!v) return 0;
    if (!json_is_array(v) || json_array_size(v) == 0 ||
        json_array_size(v) > HD_TRAIN_MAX_PROMPTS)
        return hd_fail(c->e, HD_EFORMAT, "%s: sample_prompts: not a list of 1..%d strings",
                       c->what, HD_TRAIN_MAX_PROMPTS);
    o->n_prompts = (int)json_array_size(v);
    for (int i = 0; i < o->n_prompts; i++) {
        json_t *s = json_array_get(v, (size_t)i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) >= HD_TRAIN_PROMPT_MAX)
            return hd_fail(c->e, HD_EFORMAT, "%s: sample_prompts[%d]: not a string of 1..%d bytes",
                           c->what, i, HD_TRAIN_PROMPT_MAX - 1);
        strcpy(o->prompts[i], json_string_value(s));
    }
    return 0;
}

static int parse_top(const ctx *c, json_t *root, hd_train_config *o) {
    static const char *const keys[] = {
        "out", "seed", "threads", "model", "data", "tokenizer", "stages", "batch", "accum",
        "optimizer", "objective", "generate", "log_every", "checkpoint_every", "sample_every",
        "eval_every", "eval_n", "eval_seed", "sample_prompts", "export_bf16", "comment", NULL};
    HD_TRY(check_keys(c, root, "", keys));
    HD_TRY(get_str(c, root, "out", "", o->out, sizeof o->out));
    if (!o->out[0]) return hd_fail(c->e, HD_EFORMAT, "%s: out: empty", c->what);
    int64_t seed = (int64_t)o->seed, eval_seed = (int64_t)o->eval_seed;
    HD_TRY(get_i64(c, root, "seed", "", 0, INT64_MAX, &seed));
    HD_TRY(get_i64(c, root, "eval_seed", "", 0, INT64_MAX, &eval_seed));
    o->seed = (uint64_t)seed;
    o->eval_seed = (uint64_t)eval_seed;
    HD_TRY(get_int(c, root, "threads", "", 0, 1024, &o->threads));
    HD_TRY(get_str(c, root, "tokenizer", "", o->tokenizer, sizeof o->tokenizer));
    HD_TRY(get_int(c, root, "batch", "", 1, 4096, &o->batch));
    HD_TRY(get_int(c, root, "accum", "", 1, 1024, &o->accum));
    HD_TRY(get_i64(c, root, "log_every", "", 1, INT32_MAX, &o->log_every));
    HD_TRY(get_i64(c, root, "checkpoint_every", "", 0, INT32_MAX, &o->checkpoint_every));
    HD_TRY(get_i64(c, root, "sample_every", "", 0, INT32_MAX, &o->sample_every));
    HD_TRY(get_i64(c, root, "eval_every", "", 0, INT32_MAX, &o->eval_every));
    HD_TRY(get_int(c, root, "eval_n", "", 1, 100000, &o->eval_n));
    json_t *b = json_object_get(root, "export_bf16");
    if (b && !json_is_boolean(b))
        return hd_fail(c->e, HD_EFORMAT, "%s: export_bf16: not a boolean", c->what);
    if (b) o->export_bf16 = json_is_true(b);
    return 0;
}

int hd_train_config_parse(hd_train_config *o, const char *json, size_t len, const char *what,
                          hd_error *e) {
    set_defaults(o);
    snprintf(o->path, sizeof o->path, "%s", what);
    ctx c = {what, e};
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: line %d: %s", what, je.line, je.text);
    int rc = 0;
    json_t *m = NULL, *d = NULL, *op = NULL, *ob = NULL, *g = NULL;
    if (!json_is_object(root)) rc = hd_fail(e, HD_EFORMAT, "%s: not a JSON object", what);
    if (!rc) rc = get_obj(&c, root, "model", &m);
    if (!rc) rc = get_obj(&c, root, "data", &d);
    if (!rc) rc = get_obj(&c, root, "optimizer", &op);
    if (!rc) rc = get_obj(&c, root, "objective", &ob);
    if (!rc) rc = get_obj(&c, root, "generate", &g);
    if (!rc) rc = parse_top(&c, root, o);
    if (!rc && m) rc = parse_model(&c, m, &o->model);
    if (!rc && d) rc = parse_data(&c, d, o);
    if (!rc) rc = parse_stages(&c, root, o);
    if (!rc && op) rc = parse_optim(&c, op, &o->optim);
    if (!rc && ob) rc = parse_objective(&c, ob, &o->objective);
    if (!rc && g) rc = parse_generate(&c, g, &o->generate);
    if (!rc) rc = parse_prompts(&c, root, o);
    json_decref(root);
    return rc;
}

int hd_train_config_load(hd_train_config *c, const char *path, hd_error *e) {
    char *buf = NULL;
    size_t len = 0;
    HD_TRY(hd_read_file(path, TRAIN_CONFIG_MAX_BYTES, &buf, &len, e));
    int rc = hd_train_config_parse(c, buf, len, path, e);
    free(buf);
    return rc;
}

int64_t hd_train_total_steps(const hd_train_config *c) {
    int64_t n = 0;
    for (int i = 0; i < c->n_stages; i++) n += c->stages[i].steps;
    return n;
}

int hd_train_stage_of(const hd_train_config *c, int64_t step) {
    for (int i = 0; i < c->n_stages; i++) {
        if (step < c->stages[i].steps) return i;
        step -= c->stages[i].steps;
    }
    return c->n_stages - 1;
}
