/* Request bodies → hd_srv_request (see request.h). The multipart form of /v1/images/edits is
 * turned into a JSON object of strings first, so both paths share one set of field rules; in
 * that object numbers and booleans may be written as text. */
#include "server/request.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "server/base64.h"

void hd_srv_limits_default(hd_srv_limits *l) {
    l->max_side = 4096;
    l->max_steps = 200;
    l->max_n = 4;
    l->max_ref_pixels = (int64_t)4096 * 4096;
}

hd_image_format hd_srv_format_by_name(const char *s) {
    if (!strcasecmp(s, "png")) return HD_FMT_PNG;
    if (!strcasecmp(s, "jpeg") || !strcasecmp(s, "jpg")) return HD_FMT_JPEG;
    if (!strcasecmp(s, "webp")) return HD_FMT_WEBP;
    return HD_FMT_UNKNOWN;
}

const char *hd_srv_format_name(hd_image_format f) {
    return f == HD_FMT_JPEG ? "jpeg" : f == HD_FMT_WEBP ? "webp" : "png";
}

const char *hd_srv_format_mime(hd_image_format f) {
    return f == HD_FMT_JPEG ? "image/jpeg" : f == HD_FMT_WEBP ? "image/webp" : "image/png";
}

void hd_srv_request_free(hd_srv_request *r) {
    free(r->prompt);
    free(r->uncond);
    free(r->layout);
    for (int i = 0; i < r->n_refs; i++) hd_image_free(&r->refs[i]);
    memset(r, 0, sizeof *r);
}

/* ---- field getters: 0 absent (or null), 1 present, < 0 refused ---- */

typedef struct fields {
    json_t *obj;
    int text_numbers; /* a form: numbers and booleans arrive as text */
    hd_error *e;
    hd_api_kind api;
} fields;

static int get_str(const fields *f, const char *key, const char **out) {
    json_t *v = json_object_get(f->obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return hd_fail(f->e, HD_EINVAL, "%s: must be a string", key);
    *out = json_string_value(v);
    return 1;
}

static int get_num(const fields *f, const char *key, double lo, double hi, double *out) {
    json_t *v = json_object_get(f->obj, key);
    if (!v || json_is_null(v)) return 0;
    double d;
    if (json_is_number(v)) d = json_number_value(v);
    else if (f->text_numbers && json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end) return hd_fail(f->e, HD_EINVAL, "%s: must be a number", key);
    } else {
        return hd_fail(f->e, HD_EINVAL, "%s: must be a number", key);
    }
    if (!(d >= lo && d <= hi))
        return hd_fail(f->e, HD_EINVAL, "%s: %g is outside %g..%g", key, d, lo, hi);
    *out = d;
    return 1;
}

static int get_int(const fields *f, const char *key, long lo, long hi, long *out) {
    double d;
    int rc = get_num(f, key, (double)lo, (double)hi, &d);
    if (rc <= 0) return rc;
    if (d != floor(d)) return hd_fail(f->e, HD_EINVAL, "%s: must be an integer", key);
    *out = (long)d;
    return 1;
}

static int get_bool(const fields *f, const char *key, int *out) {
    json_t *v = json_object_get(f->obj, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_boolean(v)) *out = json_is_true(v);
    else if (f->text_numbers && json_is_string(v) &&
             (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false")))
        *out = !strcmp(json_string_value(v), "true");
    else return hd_fail(f->e, HD_EINVAL, "%s: must be true or false", key);
    return 1;
}

static int dup_str(char **dst, const char *s, hd_error *e) {
    free(*dst);
    *dst = strdup(s);
    return *dst ? 0 : hd_fail(e, HD_ENOMEM, "out of memory");
}

/* ---- the field groups ---- */

/* "WxH" (OpenAI size) → exact size; "auto" keeps the model's default. */
static int parse_size(const fields *f, hd_srv_request *r, const hd_srv_limits *lim) {
    const char *s;
    int rc = get_str(f, "size", &s);
    if (rc <= 0 || !strcmp(s, "auto")) return rc;
    char *x, *end;
    errno = 0;
    long w = strtol(s, &x, 10);
    if (x == s || (*x != 'x' && *x != 'X'))
        return hd_fail(f->e, HD_EINVAL, "size: '%.40s' is not WIDTHxHEIGHT", s);
    long h = strtol(x + 1, &end, 10);
    if (errno || end == x + 1 || *end || w < 1 || h < 1 || w > lim->max_side || h > lim->max_side)
        return hd_fail(f->e, HD_EINVAL, "size: '%.40s' is not WIDTHxHEIGHT with sides 1..%d", s,
                       lim->max_side);
    r->p.width = (int)w;
    r->p.height = (int)h;
    r->p.no_snap = 1;
    return 1;
}

static int parse_sched(const fields *f, const char *key, hd_srv_request *r) {
    const char *s;
    int rc = get_str(f, key, &s);
    if (rc <= 0) return rc;
    if (!strcasecmp(s, "unipc") || !strcasecmp(s, "default")) r->p.scheduler = HD_SCHEDULER_UNIPC;
    else if (!strcasecmp(s, "flow_match") || !strcasecmp(s, "euler")) r->p.scheduler = HD_SCHEDULER_FLOW_MATCH;
    else if (!strcasecmp(s, "flash")) r->p.scheduler = HD_SCHEDULER_FLASH;
    else if (!strcasecmp(s, "auto")) r->p.scheduler = HD_SCHEDULER_AUTO;
    /* A1111 sampler names (Euler a, DPM++, ...) and, on its API, its noise schedules (automatic,
     * karras, ...; webuiapi always sends one): ours, as A1111 itself ignores a schedule it lacks */
    else if (!strcmp(key, "sampler_name") || f->api == HD_API_A1111) return 0;
    else return hd_fail(f->e, HD_EINVAL, "%s: '%.40s' is not unipc, flow_match, flash or auto", key, s);
    return 1;
}

/* Fields every API takes (after the mode has set the defaults). */
static int parse_common(const fields *f, hd_srv_request *r, const hd_srv_limits *lim) {
    hd_error *e = f->e;
    hd_generate_params *p = &r->p;
    long iv;
    double dv;
    int rc;
    const char *s;
    if ((rc = get_str(f, "prompt", &s)) < 0) return rc;
    if (rc == 0 || !s[0]) return hd_fail(e, HD_EINVAL, "prompt: missing");
    HD_TRY(dup_str(&r->prompt, s, e));
    if ((rc = get_str(f, "negative_prompt", &s)) < 0) return rc;
    if (rc && s[0]) HD_TRY(dup_str(&r->uncond, s, e));
    json_t *seed = json_object_get(f->obj, "seed");
    if (seed && json_is_integer(seed) && json_integer_value(seed) >= 0) {
        p->seed = (uint64_t)json_integer_value(seed); /* exact beyond 2^53 */
        r->seed_given = 1;
    } else if ((rc = get_num(f, "seed", -1, 18446744073709551615.0, &dv)) < 0) {
        return rc;
    } else if (rc && dv >= 0) {
        if (dv != floor(dv)) return hd_fail(e, HD_EINVAL, "seed: must be an integer");
        p->seed = (uint64_t)dv;
        r->seed_given = 1; /* A1111's -1: random */
    }
    if ((rc = get_int(f, "steps", 1, lim->max_steps, &iv)) < 0) return rc;
    if (rc) p->steps = (int)iv;
    const char *cfg_keys[] = {"cfg", "guidance_scale", "cfg_scale"};
    for (int k = 0; k < 3; k++) {
        if ((rc = get_num(f, cfg_keys[k], 0, 100, &dv)) < 0) return rc;
        if (rc) p->cfg = dv;
    }
    if ((rc = get_num(f, "shift", 0.01, 100, &dv)) < 0) return rc;
    if (rc) p->shift = dv;
    if (parse_sched(f, "sampler_name", r) < 0 || parse_sched(f, "scheduler", r) < 0) return e->code;
    if ((rc = get_str(f, "layout", &s)) < 0) return rc;
    if (rc && s[0]) {
        /* JSON text only: a path would let a client read the server's files */
        if (s[0] != '[') return hd_fail(e, HD_EINVAL, "layout: must be JSON boxes [[x1,x2,y1,y2],...]");
        HD_TRY(dup_str(&r->layout, s, e));
    }
    int b;
    if ((rc = get_bool(f, "keep_aspect", &b)) < 0) return rc;
    if (rc) p->keep_aspect = b;
    if ((rc = get_int(f, "preview_every", 0, lim->max_steps, &iv)) < 0) return rc;
    if (rc) p->preview_every = (int)iv;
    if ((rc = get_str(f, "output_format", &s)) < 0) return rc;
    if (rc && (r->format = hd_srv_format_by_name(s)) == HD_FMT_UNKNOWN)
        return hd_fail(e, HD_EINVAL, "output_format: '%.20s' is not png, jpeg or webp", s);
    if ((rc = get_int(f, "output_compression", 0, 100, &iv)) < 0) return rc;
    if (rc) r->quality = iv ? (int)iv : 1;
    return 0;
}

static int parse_openai(const fields *f, hd_srv_request *r, const hd_srv_limits *lim) {
    long iv;
    int rc, b;
    const char *s;
    HD_TRY(parse_size(f, r, lim));
    if ((rc = get_int(f, "n", 1, lim->max_n, &iv)) < 0) return rc;
    if (rc) r->n = (int)iv;
    if ((rc = get_str(f, "response_format", &s)) < 0) return rc;
    if (rc && strcmp(s, "b64_json") && strcmp(s, "url"))
        return hd_fail(f->e, HD_EINVAL, "response_format: '%.20s' is not b64_json or url", s);
    if (rc) r->want_url = !strcmp(s, "url");
    if ((rc = get_bool(f, "stream", &b)) < 0) return rc;
    if (rc) r->stream = b;
    if ((rc = get_int(f, "partial_images", 0, 3, &iv)) < 0) return rc;
    if (rc) r->partial_images = (int)iv;
    return 0;
}

/* A1111 and native: width/height; A1111 batch_size × n_iter pictures. */
static int parse_wh(const fields *f, hd_srv_request *r, const hd_srv_limits *lim) {
    long w = 0, h = 0, bs = 1, it = 1;
    int rw, rh, rc;
    if ((rw = get_int(f, "width", 1, lim->max_side, &w)) < 0) return rw;
    if ((rh = get_int(f, "height", 1, lim->max_side, &h)) < 0) return rh;
    if (rw || rh) {
        if (rw) r->p.width = (int)w;
        if (rh) r->p.height = (int)h;
        r->p.no_snap = 1;
    }
    if ((rc = get_int(f, "batch_size", 1, lim->max_n, &bs)) < 0) return rc;
    if ((rc = get_int(f, "n_iter", 1, lim->max_n, &it)) < 0) return rc;
    if ((rc = get_int(f, "n", 1, lim->max_n, &it)) < 0) return rc;
    if (bs * it > lim->max_n)
        return hd_fail(f->e, HD_EINVAL, "batch_size: %ld pictures asked for; at most %d", bs * it,
                       lim->max_n);
    r->n = (int)(bs * it);
    return 0;
}

static int add_ref(hd_srv_request *r, const char *what, const void *data, size_t len,
                   const hd_srv_limits *lim, hd_error *e) {
    if (r->n_refs >= HD_SRV_MAX_REFS)
        return hd_fail(e, HD_EINVAL, "%s: at most %d reference images", what, HD_SRV_MAX_REFS);
    int rc = hd_image_decode(data, len, what, lim->max_ref_pixels, &r->refs[r->n_refs], e);
    if (rc < 0 && rc != HD_ENOMEM) e->code = HD_EINVAL; /* a bad picture is a bad request */
    if (rc < 0) return e->code;
    r->n_refs++;
    return 0;
}

/* A JSON array of base64 pictures (A1111 init_images, native refs). */
static int parse_b64_images(const fields *f, const char *key, hd_srv_request *r,
                            const hd_srv_limits *lim) {
    json_t *a = json_object_get(f->obj, key);
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) return hd_fail(f->e, HD_EINVAL, "%s: must be an array of base64 images", key);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char what[64];
        snprintf(what, sizeof what, "%s[%zu]", key, i);
        if (!json_is_string(v)) return hd_fail(f->e, HD_EINVAL, "%s: must be a base64 string", what);
        uint8_t *buf;
        size_t n;
        if (hd_base64_decode(json_string_value(v), json_string_length(v), &buf, &n) < 0)
            return hd_fail(f->e, HD_EINVAL, "%s: not valid base64", what);
        int rc = add_ref(r, what, buf, n, lim, f->e);
        free(buf);
        HD_TRY(rc);
    }
    return 0;
}

/* The mode first: it chooses the defaults the other fields override. */
static int start(hd_srv_request *r, const fields *f, const hd_generate_params defaults[2]) {
    const char *s;
    int rc = get_str(f, "mode", &s);
    if (rc < 0) return rc;
    hd_mode mode = HD_MODE_FULL;
    if (rc && !strcmp(s, "dev")) mode = HD_MODE_DEV;
    else if (rc && strcmp(s, "full"))
        return hd_fail(f->e, HD_EINVAL, "mode: '%.20s' is not full or dev", s);
    r->p = defaults[mode];
    r->n = 1;
    r->format = HD_FMT_PNG;
    return 0;
}

static void finish(hd_srv_request *r) {
    r->p.prompt = r->prompt;
    r->p.uncond_prompt = r->uncond;
    r->p.layout = r->layout;
    r->p.refs = r->n_refs ? r->refs : NULL;
    r->p.n_refs = r->n_refs;
}

static int parse_fields(hd_srv_request *r, hd_api_kind api, const fields *f,
                        const hd_generate_params defaults[2], const hd_srv_limits *lim) {
    HD_TRY(start(r, f, defaults));
    HD_TRY(parse_common(f, r, lim));
    if (api == HD_API_OPENAI) return parse_openai(f, r, lim);
    HD_TRY(parse_wh(f, r, lim));
    if (api == HD_API_A1111) return parse_b64_images(f, "init_images", r, lim);
    return parse_b64_images(f, "refs", r, lim);
}

int hd_srv_request_from_json(hd_srv_request *r, hd_api_kind api, const char *body, size_t len,
                             const hd_generate_params defaults[2], const hd_srv_limits *lim,
                             hd_error *e) {
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hd_fail(e, HD_EFORMAT, "body: not JSON (line %d: %s)", je.line, je.text);
    int rc = 0;
    if (!json_is_object(root)) rc = hd_fail(e, HD_EFORMAT, "body: must be a JSON object");
    fields f = {root, 0, e, api};
    if (rc == 0) rc = parse_fields(r, api, &f, defaults, lim);
    json_decref(root);
    if (rc < 0) hd_srv_request_free(r);
    else finish(r);
    return rc;
}

int hd_srv_request_from_form(hd_srv_request *r, const hd_multipart *form,
                             const hd_generate_params defaults[2], const hd_srv_limits *lim,
                             hd_error *e) {
    memset(r, 0, sizeof *r);
    json_t *obj = json_object();
    if (!obj) return hd_fail(e, HD_ENOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; rc == 0 && i < form->n; i++) {
        const hd_part *p = &form->parts[i];
        if (p->filename[0] || !strcmp(p->name, "image") || !strcmp(p->name, "image[]") ||
            !strcmp(p->name, "mask"))
            continue;
        json_t *s = json_stringn(p->data, p->len);
        if (!s) rc = hd_fail(e, HD_EINVAL, "%s: not UTF-8 text", p->name);
        else if (json_object_set_new(obj, p->name, s) < 0)
            rc = hd_fail(e, HD_ENOMEM, "out of memory");
    }
    fields f = {obj, 1, e, HD_API_OPENAI};
    if (rc == 0) rc = start(r, &f, defaults);
    if (rc == 0) rc = parse_common(&f, r, lim);
    if (rc == 0) rc = parse_openai(&f, r, lim);
    if (rc == 0 && hd_multipart_get(form, "mask"))
        rc = hd_fail(e, HD_EUNSUPPORTED, "mask: inpainting masks are not supported");
    for (int i = 0; rc == 0 && i < form->n; i++) {
        const hd_part *p = &form->parts[i];
        if (strcmp(p->name, "image") && strcmp(p->name, "image[]")) continue;
        char what[300];
        snprintf(what, sizeof what, "%s (%s)", p->name, p->filename[0] ? p->filename : "no name");
        rc = add_ref(r, what, p->data, p->len, lim, e);
    }
    if (rc == 0 && r->n_refs == 0) rc = hd_fail(e, HD_EINVAL, "image: at least one picture is required");
    json_decref(obj);
    if (rc < 0) hd_srv_request_free(r);
    else finish(r);
    return rc;
}
