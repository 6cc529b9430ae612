/* The recipe of a picture: the generation parameters written into PNG text chunks
 * ("hidream:*") and parsed back, so that a picture regenerates itself (`generate --from-png`,
 * the server's "regenerate"). The library owns the format so that every front end writes and
 * reads the same keys. Every setting that changes the pixels is written and every one is read
 * back; a value that cannot be honoured (malformed, out of range, a key this version does not
 * know, a key given twice) is an error rather than a silently different picture. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "hidream.h"
#include "pipeline/pipeline.h"

const char *hd_scheduler_name(hd_scheduler_kind k) {
    switch (k) {
    case HD_SCHEDULER_UNIPC: return "unipc";
    case HD_SCHEDULER_FLOW_MATCH: return "flow_match";
    case HD_SCHEDULER_FLASH: return "flash";
    default: return "auto";
    }
}

int hd_scheduler_from_name(const char *s, hd_scheduler_kind *k) {
    if (!strcmp(s, "unipc") || !strcmp(s, "default")) *k = HD_SCHEDULER_UNIPC;
    else if (!strcmp(s, "flow_match") || !strcmp(s, "euler")) *k = HD_SCHEDULER_FLOW_MATCH;
    else if (!strcmp(s, "flash")) *k = HD_SCHEDULER_FLASH;
    else if (!strcmp(s, "auto")) *k = HD_SCHEDULER_AUTO;
    else return -1;
    return 0;
}

static int dup_into(char **dst, const char *src, hd_error *e) {
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : hd_fail(e, HD_ENOMEM, "recipe: out of memory");
}

void hd_recipe_free(hd_recipe *r) {
    if (!r) return;
    free(r->prompt);
    free(r->uncond);
    free(r->layout);
    free(r->model);
    free(r->model_dir);
    free(r->version);
    free(r->backend);
    free(r->raw_prompt);
    free(r->refine);
    memset(r, 0, sizeof *r);
}

int hd_recipe_from_params(hd_recipe *r, const hd_generate_params *p, const hd_image *out,
                          const hd_model *m, hd_error *e) {
    memset(r, 0, sizeof *r);
    r->has = HD_RECIPE_PROMPT | HD_RECIPE_UNCOND | HD_RECIPE_MODE | HD_RECIPE_SEED |
             HD_RECIPE_STEPS | HD_RECIPE_CFG | HD_RECIPE_SHIFT | HD_RECIPE_SCHEDULER |
             HD_RECIPE_NOISE_SCALE | HD_RECIPE_NOISE_CLIP | HD_RECIPE_BF16_COMPAT |
             HD_RECIPE_KEEP_ASPECT | HD_RECIPE_REFS;
    int rc = dup_into(&r->prompt, p->prompt ? p->prompt : "", e);
    if (rc == 0) rc = dup_into(&r->uncond, p->uncond_prompt ? p->uncond_prompt : " ", e);
    if (rc == 0) rc = dup_into(&r->version, hd_version(), e);
    /* a layout does nothing without reference images (hd_model_check_request warns) */
    if (rc == 0 && p->layout && p->layout[0] && p->n_refs > 0) {
        rc = dup_into(&r->layout, p->layout, e);
        r->has |= HD_RECIPE_LAYOUT;
    }
    if (rc == 0 && m) {
        /* an absolute directory: the picture can be regenerated from any working directory */
        char abs[PATH_MAX];
        rc = dup_into(&r->model, hd_model_name(m), e);
        if (rc == 0) rc = dup_into(&r->model_dir, realpath(m->dir, abs) ? abs : m->dir, e);
        if (rc == 0) rc = dup_into(&r->backend, m->backend[0] ? m->backend : "cpu", e);
        r->bf16_gemm = m->precision == HD_PRECISION_BF16;
        r->int8 = m->precision == HD_PRECISION_INT8;
        r->has |= HD_RECIPE_MODEL | HD_RECIPE_MODEL_DIR | HD_RECIPE_BACKEND | HD_RECIPE_BF16_GEMM;
        if (r->int8) r->has |= HD_RECIPE_INT8; /* recorded when on: older readers keep working */
    }
    if (rc < 0) {
        hd_recipe_free(r);
        return rc;
    }
    r->mode = p->mode;
    r->seed = p->seed;
    r->steps = p->n_timesteps ? p->n_timesteps : p->steps;
    r->cfg = p->cfg;
    r->shift = p->shift;
    r->scheduler = p->scheduler;
    r->n_timesteps = p->n_timesteps;
    if (p->n_timesteps > 0) {
        memcpy(r->timesteps, p->timesteps, (size_t)p->n_timesteps * sizeof *p->timesteps);
        r->has |= HD_RECIPE_TIMESTEPS;
    }
    r->noise_scale_start = p->noise_scale_start;
    r->noise_scale_end = p->noise_scale_end;
    r->noise_clip_std = p->noise_clip_std;
    r->bf16_compat = p->bf16_compat != 0;
    r->keep_aspect = p->keep_aspect != 0;
    if (out && out->w > 0 && out->h > 0) {
        r->width = out->w;
        r->height = out->h;
        r->has |= HD_RECIPE_SIZE;
    }
    r->n_refs = p->n_refs > 0 ? p->n_refs : 0;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

#define MAX_KEYS 32

typedef struct kv_list {
    int n;
    const char *key[MAX_KEYS];
    char *val[MAX_KEYS];
} kv_list;

static int add(kv_list *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int add(kv_list *l, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *v = NULL;
    int rc = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (rc < 0) return -1;
    l->key[l->n] = key;
    l->val[l->n++] = v;
    return 0;
}

static int collect(const hd_recipe *r, kv_list *l) {
    unsigned h = r->has;
    int rc = 0;
    if (h & HD_RECIPE_PROMPT) rc |= add(l, "hidream:prompt", "%s", r->prompt ? r->prompt : "");
    if ((h & HD_RECIPE_REFINE) && r->raw_prompt && r->refine) {
        rc |= add(l, "hidream:raw_prompt", "%s", r->raw_prompt);
        rc |= add(l, "hidream:refine", "%s", r->refine);
    }
    if (h & HD_RECIPE_UNCOND) rc |= add(l, "hidream:uncond", "%s", r->uncond ? r->uncond : " ");
    if (h & HD_RECIPE_MODE) rc |= add(l, "hidream:mode", "%s", r->mode == HD_MODE_DEV ? "dev" : "full");
    if (h & HD_RECIPE_SEED) rc |= add(l, "hidream:seed", "%" PRIu64, r->seed);
    if (h & HD_RECIPE_STEPS) rc |= add(l, "hidream:steps", "%d", r->steps);
    if (h & HD_RECIPE_CFG) rc |= add(l, "hidream:cfg", "%.17g", r->cfg);
    if (h & HD_RECIPE_SHIFT) rc |= add(l, "hidream:shift", "%.17g", r->shift);
    if (h & HD_RECIPE_SCHEDULER) rc |= add(l, "hidream:scheduler", "%s", hd_scheduler_name(r->scheduler));
    if ((h & HD_RECIPE_TIMESTEPS) && r->n_timesteps > 0) {
        char *ts = malloc((size_t)r->n_timesteps * 5 + 1);
        if (!ts) return -1;
        size_t at = 0;
        for (int i = 0; i < r->n_timesteps; i++)
            at += (size_t)sprintf(ts + at, "%s%d", i ? "," : "", r->timesteps[i]);
        rc |= add(l, "hidream:timesteps", "%s", ts);
        free(ts);
    }
    if (h & HD_RECIPE_NOISE_SCALE)
        rc |= add(l, "hidream:noise_scale", "%.17g,%.17g", r->noise_scale_start, r->noise_scale_end);
    if (h & HD_RECIPE_NOISE_CLIP) rc |= add(l, "hidream:noise_clip_std", "%.17g", r->noise_clip_std);
    if (h & HD_RECIPE_BF16_COMPAT) rc |= add(l, "hidream:bf16_compat", "%d", r->bf16_compat ? 1 : 0);
    if (h & HD_RECIPE_BF16_GEMM) rc |= add(l, "hidream:bf16_gemm", "%d", r->bf16_gemm ? 1 : 0);
    if (h & HD_RECIPE_INT8) rc |= add(l, "hidream:int8", "%d", r->int8 ? 1 : 0);
    if ((h & HD_RECIPE_BACKEND) && r->backend) rc |= add(l, "hidream:backend", "%s", r->backend);
    if (h & HD_RECIPE_SIZE) rc |= add(l, "hidream:size", "%dx%d", r->width, r->height);
    if ((h & HD_RECIPE_MODEL) && r->model) rc |= add(l, "hidream:model", "%s", r->model);
    if ((h & HD_RECIPE_MODEL_DIR) && r->model_dir) rc |= add(l, "hidream:model_dir", "%s", r->model_dir);
    if (h & HD_RECIPE_REFS) rc |= add(l, "hidream:references", "%d", r->n_refs);
    if (h & HD_RECIPE_KEEP_ASPECT) rc |= add(l, "hidream:keep_aspect", "%d", r->keep_aspect ? 1 : 0);
    if ((h & HD_RECIPE_LAYOUT) && r->layout) rc |= add(l, "hidream:layout", "%s", r->layout);
    rc |= add(l, "hidream:version", "%s", r->version ? r->version : hd_version());
    rc |= add(l, "Software", "%s", "hidream.c");
    return rc;
}

int hd_recipe_to_text(const hd_recipe *r, hd_text_kv **kv, int *n, hd_error *e) {
    *kv = NULL;
    *n = 0;
    kv_list l = {0};
    int rc = collect(r, &l);
    /* one block: the kv array, then each key and value */
    size_t bytes = (size_t)l.n * sizeof(hd_text_kv);
    for (int i = 0; i < l.n; i++) bytes += strlen(l.key[i]) + 1 + (l.val[i] ? strlen(l.val[i]) + 1 : 1);
    hd_text_kv *out = rc == 0 ? malloc(bytes) : NULL;
    if (out) {
        char *at = (char *)(out + l.n);
        for (int i = 0; i < l.n; i++) {
            size_t kl = strlen(l.key[i]) + 1, vl = strlen(l.val[i]) + 1;
            out[i].key = memcpy(at, l.key[i], kl);
            at += kl;
            out[i].value = memcpy(at, l.val[i], vl);
            at += vl;
        }
        *kv = out;
        *n = l.n;
    }
    for (int i = 0; i < l.n; i++) free(l.val[i]);
    return out ? 0 : hd_fail(e, HD_ENOMEM, "recipe: out of memory");
}

int hd_image_save_with_recipe(const char *path, const hd_image *im, const hd_recipe *r,
                              hd_error *e) {
    hd_text_kv *kv = NULL;
    int n = 0;
    if (r && hd_image_format_from_name(path) == HD_FMT_PNG) HD_TRY(hd_recipe_to_text(r, &kv, &n, e));
    hd_save_opts so = {0, 0, kv, n};
    int rc = hd_image_save(path, im, &so, e);
    free(kv);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */
/* The value parsers are strict: the whole string is the value, with no blank or sign where none
 * belongs (strtol and strtoull would accept " -1" and wrap it), so a value the command line
 * refuses is refused in a recipe too. Each returns 0, or -1 for a value it does not accept. */

static int get_double(const char *v, double *out) {
    if (!v[0] || isspace((unsigned char)v[0])) return -1;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d)) return -1;
    *out = d;
    return 0;
}

static int get_int(const char *v, long lo, long hi, int *out) {
    if (!isdigit((unsigned char)v[0])) return -1; /* no sign, no blank: every range is >= 0 */
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *out = (int)x;
    return 0;
}

static int get_u64(const char *v, uint64_t *out) {
    if (!isdigit((unsigned char)v[0])) return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end) return -1;
    *out = x;
    return 0;
}

static int get_bool(const char *v, int *out) {
    if (strcmp(v, "0") && strcmp(v, "1")) return -1;
    *out = v[0] == '1';
    return 0;
}

/* "A<sep>B" with both parts accepted by the getter. */
static int get_pair(const char *v, char sep, char *buf, size_t n, const char **second) {
    if (strlen(v) >= n) return -1;
    strcpy(buf, v);
    char *at = strchr(buf, sep);
    if (!at) return -1;
    *at = 0;
    *second = at + 1;
    return 0;
}

static int get_timesteps(const char *v, hd_recipe *r) {
    int n = 0;
    const char *c = v;
    while (*c) {
        if (!isdigit((unsigned char)*c) || n >= HD_MAX_TIMESTEPS) return -1;
        char *end;
        errno = 0;
        long t = strtol(c, &end, 10);
        if (errno || t > 999) return -1;
        r->timesteps[n++] = (int)t;
        c = end;
        if (*c == ',') {
            if (!*++c) return -1; /* "999,500," */
        } else if (*c) {
            return -1;
        }
    }
    if (n == 0) return -1;
    r->n_timesteps = n;
    return 0;
}

static int bad(hd_error *e, const char *what, const char *key, const char *v, const char *want) {
    return hd_fail(e, HD_EFORMAT, "%s: %s: '%.80s' is not %s", what, key, v, want);
}

/* One numeric or enumerated value: 0, HD_EFORMAT (message set), or 1 for a key it does not
 * handle. */
static int parse_value(const char *key, const char *v, const char *what, hd_recipe *r,
                       hd_error *e) {
    char buf[128];
    const char *b;
    if (!strcmp(key, "hidream:mode")) {
        if (strcmp(v, "full") && strcmp(v, "dev")) return bad(e, what, key, v, "full or dev");
        r->mode = !strcmp(v, "dev") ? HD_MODE_DEV : HD_MODE_FULL;
        r->has |= HD_RECIPE_MODE;
    } else if (!strcmp(key, "hidream:seed")) {
        if (get_u64(v, &r->seed)) return bad(e, what, key, v, "an unsigned integer below 2^64");
        r->has |= HD_RECIPE_SEED;
    } else if (!strcmp(key, "hidream:steps")) {
        if (get_int(v, 1, HD_MAX_TIMESTEPS, &r->steps)) return bad(e, what, key, v, "a step count");
        r->has |= HD_RECIPE_STEPS;
    } else if (!strcmp(key, "hidream:cfg")) {
        if (get_double(v, &r->cfg)) return bad(e, what, key, v, "a finite number");
        r->has |= HD_RECIPE_CFG;
    } else if (!strcmp(key, "hidream:shift")) {
        if (get_double(v, &r->shift)) return bad(e, what, key, v, "a finite number");
        r->has |= HD_RECIPE_SHIFT;
    } else if (!strcmp(key, "hidream:scheduler")) {
        if (hd_scheduler_from_name(v, &r->scheduler))
            return bad(e, what, key, v, "a scheduler (unipc, flow_match, flash, auto)");
        r->has |= HD_RECIPE_SCHEDULER;
    } else if (!strcmp(key, "hidream:timesteps")) {
        if (get_timesteps(v, r))
            return bad(e, what, key, v, "a comma-separated list of integers in 0..999");
        r->has |= HD_RECIPE_TIMESTEPS;
    } else if (!strcmp(key, "hidream:noise_scale")) {
        if (get_pair(v, ',', buf, sizeof buf, &b) || get_double(buf, &r->noise_scale_start) ||
            get_double(b, &r->noise_scale_end))
            return bad(e, what, key, v, "two numbers 'start,end'");
        r->has |= HD_RECIPE_NOISE_SCALE;
    } else if (!strcmp(key, "hidream:noise_clip_std")) {
        if (get_double(v, &r->noise_clip_std)) return bad(e, what, key, v, "a finite number");
        r->has |= HD_RECIPE_NOISE_CLIP;
    } else if (!strcmp(key, "hidream:bf16_compat")) {
        if (get_bool(v, &r->bf16_compat)) return bad(e, what, key, v, "0 or 1");
        r->has |= HD_RECIPE_BF16_COMPAT;
    } else if (!strcmp(key, "hidream:bf16_gemm")) {
        if (get_bool(v, &r->bf16_gemm)) return bad(e, what, key, v, "0 or 1");
        r->has |= HD_RECIPE_BF16_GEMM;
    } else if (!strcmp(key, "hidream:int8")) {
        if (get_bool(v, &r->int8)) return bad(e, what, key, v, "0 or 1");
        r->has |= HD_RECIPE_INT8;
    } else if (!strcmp(key, "hidream:keep_aspect")) {
        if (get_bool(v, &r->keep_aspect)) return bad(e, what, key, v, "0 or 1");
        r->has |= HD_RECIPE_KEEP_ASPECT;
    } else if (!strcmp(key, "hidream:size")) {
        if (get_pair(v, 'x', buf, sizeof buf, &b) || get_int(buf, 1, 1 << 20, &r->width) ||
            get_int(b, 1, 1 << 20, &r->height))
            return bad(e, what, key, v, "a size WIDTHxHEIGHT");
        r->has |= HD_RECIPE_SIZE;
    } else if (!strcmp(key, "hidream:references")) {
        if (get_int(v, 0, 1 << 20, &r->n_refs)) return bad(e, what, key, v, "a count");
        r->has |= HD_RECIPE_REFS;
    } else {
        return 1;
    }
    return 0;
}

int hd_recipe_parse(const hd_png_text *t, const char *what, hd_recipe *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    if (!hd_png_text_get(t, "hidream:prompt"))
        return hd_fail(e, HD_EFORMAT, "%s: no hidream metadata (hidream:prompt)", what);
    static const struct {
        const char *key;
        size_t off;
        unsigned bit;
    } strs[] = {
        {"hidream:prompt", offsetof(hd_recipe, prompt), HD_RECIPE_PROMPT},
        {"hidream:uncond", offsetof(hd_recipe, uncond), HD_RECIPE_UNCOND},
        {"hidream:layout", offsetof(hd_recipe, layout), HD_RECIPE_LAYOUT},
        {"hidream:model", offsetof(hd_recipe, model), HD_RECIPE_MODEL},
        {"hidream:model_dir", offsetof(hd_recipe, model_dir), HD_RECIPE_MODEL_DIR},
        {"hidream:backend", offsetof(hd_recipe, backend), HD_RECIPE_BACKEND},
        {"hidream:raw_prompt", offsetof(hd_recipe, raw_prompt), 0},
        {"hidream:refine", offsetof(hd_recipe, refine), 0},
        {"hidream:version", offsetof(hd_recipe, version), 0},
    };
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->n; i++) {
        const char *key = t->keys[i], *v = t->values[i];
        if (strncmp(key, "hidream:", 8)) continue; /* "Software", other programs' chunks */
        for (int j = 0; rc == 0 && j < i; j++)
            if (!strcmp(t->keys[j], key))
                rc = hd_fail(e, HD_EFORMAT, "%s: %s: appears twice", what, key);
        if (rc == 0 && strlen(v) > HD_RECIPE_MAX_VALUE_BYTES)
            rc = hd_fail(e, HD_EFORMAT, "%s: %s: %zu bytes, over the limit of %d", what, key,
                         strlen(v), HD_RECIPE_MAX_VALUE_BYTES);
        if (rc < 0) break;
        size_t k = 0;
        while (k < sizeof strs / sizeof *strs && strcmp(strs[k].key, key)) k++;
        if (k < sizeof strs / sizeof *strs) {
            rc = dup_into((char **)((char *)r + strs[k].off), v, e);
            r->has |= strs[k].bit;
            continue;
        }
        rc = parse_value(key, v, what, r, e);
        if (rc == 1)
            rc = hd_fail(e, HD_EFORMAT, "%s: %s: unknown setting (made by a newer hidream?)",
                         what, key);
    }
    /* checks that need more than one key */
    if (rc == 0 && r->layout && (!r->layout[0] || !strchr("[{", r->layout[0])))
        rc = bad(e, what, "hidream:layout", r->layout, "inline JSON");
    if (rc == 0 && r->backend && strcmp(r->backend, "cpu") && strcmp(r->backend, "cuda"))
        rc = bad(e, what, "hidream:backend", r->backend, "cpu or cuda");
    if (rc == 0 && (!r->raw_prompt) != (!r->refine))
        rc = hd_fail(e, HD_EFORMAT, "%s: hidream:raw_prompt and hidream:refine come together",
                     what);
    if (rc == 0 && r->raw_prompt) r->has |= HD_RECIPE_REFINE;
    if (rc == 0 && (r->has & HD_RECIPE_STEPS) && (r->has & HD_RECIPE_TIMESTEPS) &&
        r->steps != r->n_timesteps)
        rc = hd_fail(e, HD_EFORMAT, "%s: hidream:steps: %d disagrees with the %d values of "
                     "hidream:timesteps", what, r->steps, r->n_timesteps);
    if (rc == 0 && r->int8 && r->bf16_gemm)
        rc = hd_fail(e, HD_EFORMAT, "%s: hidream:int8 and hidream:bf16_gemm are both 1 (one "
                     "precision per picture)", what);
    if (rc < 0) hd_recipe_free(r);
    return rc;
}

int hd_recipe_read(const char *png_path, hd_recipe *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    hd_png_text t = {0};
    HD_TRY(hd_png_read_text(png_path, &t, e));
    int rc = hd_recipe_parse(&t, png_path, r, e);
    hd_png_text_free(&t);
    return rc;
}

hd_precision hd_recipe_precision(const hd_recipe *r) {
    if ((r->has & HD_RECIPE_INT8) && r->int8) return HD_PRECISION_INT8;
    if ((r->has & HD_RECIPE_BF16_GEMM) && r->bf16_gemm) return HD_PRECISION_BF16;
    const unsigned model = HD_RECIPE_BF16_GEMM | HD_RECIPE_INT8 | HD_RECIPE_MODEL |
                           HD_RECIPE_MODEL_DIR | HD_RECIPE_BACKEND;
    return r->has & model ? HD_PRECISION_EXACT : HD_PRECISION_AUTO;
}

void hd_recipe_apply(const hd_recipe *r, hd_generate_params *p, unsigned fields) {
    unsigned h = r->has & fields;
    if (h & HD_RECIPE_PROMPT) p->prompt = r->prompt;
    if (h & HD_RECIPE_UNCOND) p->uncond_prompt = r->uncond;
    if (h & HD_RECIPE_MODE) p->mode = r->mode;
    if (h & HD_RECIPE_SEED) p->seed = r->seed;
    if (h & HD_RECIPE_STEPS) p->steps = r->steps;
    if (h & HD_RECIPE_CFG) p->cfg = r->cfg;
    if (h & HD_RECIPE_SHIFT) p->shift = r->shift;
    if (h & HD_RECIPE_SCHEDULER) p->scheduler = r->scheduler;
    if (h & HD_RECIPE_TIMESTEPS) {
        p->n_timesteps = r->n_timesteps;
        memcpy(p->timesteps, r->timesteps, (size_t)r->n_timesteps * sizeof *r->timesteps);
    }
    if (h & HD_RECIPE_NOISE_SCALE) {
        p->noise_scale_start = r->noise_scale_start;
        p->noise_scale_end = r->noise_scale_end;
    }
    if (h & HD_RECIPE_NOISE_CLIP) p->noise_clip_std = r->noise_clip_std;
    if (h & HD_RECIPE_BF16_COMPAT) p->bf16_compat = p->bf16_compat || r->bf16_compat;
    if (h & HD_RECIPE_KEEP_ASPECT) p->keep_aspect = p->keep_aspect || r->keep_aspect;
    if (h & HD_RECIPE_SIZE) {
        p->width = r->width;
        p->height = r->height;
        p->no_snap = 1;
    }
    if (h & HD_RECIPE_LAYOUT) p->layout = r->layout;
}
