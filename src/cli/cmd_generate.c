/* `hidream generate`: prompt (+ reference images) -> picture, with PNG metadata that can
 * regenerate it (--from-png).
 *
 * Defaults come from the model (hd_model_generate_defaults: its native size, presets and sampler
 * settings, or the official ones), then --from-png metadata, then explicit flags. Without -m the
 * embedded model is used: models/shapes next to the binary (<exe dir>/../models/shapes or
 * <exe dir>/models/shapes) or the installed copy (HIDREAM_MODELS_DIR/shapes) — never a path
 * relative to the current directory. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/embedded_model.h"
#include "cli/refine_cli.h"
#include "hidream.h"
#include "image/codec.h"
#include "image/layout.h"

#define MAX_REFS 32

typedef struct gen_opts {
    const char *model, *output, *from_png, *preview_dir;
    const char *ref_paths[MAX_REFS];
    int n_refs;
    int threads, verbose, bf16_gemm;
    const char *backend;
    hd_generate_params p;
    /* which fields the user set explicitly (they override --from-png and mode defaults) */
    int set_steps, set_cfg, set_shift, set_seed, set_size, set_sched, set_noise, set_clip;
    int set_width, set_height;
    char *own[8]; /* strings taken from PNG metadata */
    int n_own;
} gen_opts;

static const char *keep(gen_opts *o, const char *s) {
    char *d = strdup(s);
    if (d && o->n_own < 8) o->own[o->n_own++] = d;
    else {
        free(d);
        return s; /* unreachable in practice: at most 4 strings are kept */
    }
    return d;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream generate [-m DIR] -p PROMPT -o OUT.png [options]\n"
            "       hidream generate --from-png IMAGE.png [-m DIR] -o OUT.png [overrides]\n"
            "  -m, --model DIR          model directory (default: the embedded model, models/shapes\n"
            "                           next to the binary or in " HIDREAM_MODELS_DIR ")\n"
            "  -p, --prompt TEXT        the prompt\n"
            "  -o, --output FILE        .png (with metadata), .jpg/.jpeg or .webp\n"
            "  --mode full|dev          official defaults: full = UniPC 50 steps, CFG 5, shift 3;\n"
            "                           dev = flash sampler, 28 fixed timesteps, no CFG, noise 7.5/clip 2.5\n"
            "                           (a model's config.json may state its own; see hidream info)\n"
            "  --steps N --cfg G --shift S --seed N\n"
            "  --width W --height H     requested size (snapped to the nearest preset aspect of the\n"
            "                           model; default: its native size, else 2048x2048)\n"
            "  --no-snap                keep the requested size (multiples of the model's patch size;\n"
            "                           a model with a native size allows up to twice it per side)\n"
            "  --scheduler unipc|flow_match|flash   --timesteps 999,877,...\n"
            "  --noise-scale X [--noise-scale-end Y] --noise-clip-std X   (flash)\n"
            "  --uncond TEXT            CFG's unconditional prompt (default \" \", as upstream)\n"
            "  --ref FILE (repeatable)  reference images (editing, personalization)\n"
            "  --layout JSON_OR_FILE    layout boxes [[x1,x2,y1,y2],...] for the references\n"
            "  --keep-aspect            one reference: the output takes its size\n"
            "  --bf16-compat            round the sample to bf16 where the official GPU code does\n"
            "  --bf16-gemm              bf16 matrix products (faster with AVX512-BF16, less exact)\n"
            "  --threads N              CPU threads (default: all)\n"
            "  --backend cpu|cuda       compute backend (cuda when built with it)\n"
            "  --preview DIR --preview-every N   write x0 previews as PNG\n"
            "  -v, --verbose\n"
            "  --refine                 rewrite the prompt with the prompt agent first (see\n"
            "                           'hidream refine'); the PNG keeps both prompts. Its options\n"
            "                           (each implies --refine):\n");
    refine_cli_usage(f, "refine-");
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "hidream generate: %s: '%s' is not an integer in [%ld, %ld]\n", flag, s,
                lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-') {
        fprintf(stderr, "hidream generate: %s: '%s' must not be negative\n", flag, s);
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s) {
        fprintf(stderr, "hidream generate: %s: '%s' is not an unsigned integer\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) {
        fprintf(stderr, "hidream generate: %s: '%s' is not a number\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_timesteps(const char *s, hd_generate_params *p) {
    int n = 0;
    const char *c = s;
    while (*c) {
        char *end;
        errno = 0;
        long v = strtol(c, &end, 10);
        if (end == c || errno || v < 0 || v > 999 || n >= HD_MAX_TIMESTEPS) {
            fprintf(stderr, "hidream generate: --timesteps: '%s' is not a list of integers in 0..999\n", s);
            return -1;
        }
        p->timesteps[n++] = (int)v;
        c = end;
        if (*c == ',') c++;
        else if (*c) {
            fprintf(stderr, "hidream generate: --timesteps: unexpected '%c' in '%s'\n", *c, s);
            return -1;
        }
    }
    if (n == 0) {
        fprintf(stderr, "hidream generate: --timesteps: empty list\n");
        return -1;
    }
    p->n_timesteps = n;
    return 0;
}

static const char *sched_name(hd_scheduler_kind k) {
    switch (k) {
    case HD_SCHEDULER_UNIPC: return "unipc";
    case HD_SCHEDULER_FLOW_MATCH: return "flow_match";
    case HD_SCHEDULER_FLASH: return "flash";
    default: return "auto";
    }
}

static int parse_sched(const char *s, hd_scheduler_kind *k) {
    if (!strcmp(s, "unipc") || !strcmp(s, "default")) *k = HD_SCHEDULER_UNIPC;
    else if (!strcmp(s, "flow_match") || !strcmp(s, "euler")) *k = HD_SCHEDULER_FLOW_MATCH;
    else if (!strcmp(s, "flash")) *k = HD_SCHEDULER_FLASH;
    else if (!strcmp(s, "auto")) *k = HD_SCHEDULER_AUTO;
    else {
        fprintf(stderr, "hidream generate: --scheduler: unknown '%s' (unipc, flow_match, flash)\n", s);
        return -1;
    }
    return 0;
}

/* Applies the metadata of a PNG written by hidream (keys "hidream:*"); explicit flags win. */
static int apply_png_metadata(gen_opts *o) {
    hd_png_text t = {0};
    hd_error e = {0};
    if (hd_png_read_text(o->from_png, &t, &e) < 0) {
        fprintf(stderr, "hidream generate: --from-png: %s\n", e.msg);
        return -1;
    }
    int rc = 0;
    const char *v;
    hd_generate_params *p = &o->p;
    if (!hd_png_text_get(&t, "hidream:prompt")) {
        fprintf(stderr, "hidream generate: --from-png: %s: no hidream metadata (hidream:prompt)\n",
                o->from_png);
        rc = -1;
        goto done;
    }
    if (!p->prompt) p->prompt = keep(o, hd_png_text_get(&t, "hidream:prompt"));
    if ((v = hd_png_text_get(&t, "hidream:uncond")) && !p->uncond_prompt) p->uncond_prompt = keep(o, v);
    long iv;
    double dv;
    uint64_t uv;
    if ((v = hd_png_text_get(&t, "hidream:seed")) && !o->set_seed && parse_u64("seed", v, &uv) == 0)
        p->seed = uv;
    if ((v = hd_png_text_get(&t, "hidream:cfg")) && !o->set_cfg && parse_double("cfg", v, &dv) == 0)
        p->cfg = dv;
    if ((v = hd_png_text_get(&t, "hidream:shift")) && !o->set_shift && parse_double("shift", v, &dv) == 0)
        p->shift = dv;
    if ((v = hd_png_text_get(&t, "hidream:scheduler")) && !o->set_sched) parse_sched(v, &p->scheduler);
    if ((v = hd_png_text_get(&t, "hidream:timesteps")) && !o->set_sched && !o->set_steps)
        rc |= parse_timesteps(v, p);
    if ((v = hd_png_text_get(&t, "hidream:steps")) && !o->set_steps && parse_int("steps", v, 1, HD_MAX_TIMESTEPS, &iv) == 0)
        p->steps = (int)iv;
    if ((v = hd_png_text_get(&t, "hidream:noise_scale")) && !o->set_noise) {
        double a, b;
        if (sscanf(v, "%lf,%lf", &a, &b) == 2) {
            p->noise_scale_start = a;
            p->noise_scale_end = b;
        }
    }
    if ((v = hd_png_text_get(&t, "hidream:noise_clip_std")) && !o->set_clip && parse_double("clip", v, &dv) == 0)
        p->noise_clip_std = dv;
    if ((v = hd_png_text_get(&t, "hidream:bf16_compat"))) p->bf16_compat = p->bf16_compat || !strcmp(v, "1");
    if ((v = hd_png_text_get(&t, "hidream:size")) && !o->set_size) {
        int w, h;
        if (sscanf(v, "%dx%d", &w, &h) == 2) {
            p->width = w;
            p->height = h;
            p->no_snap = 1; /* the stored size is already the final one */
        }
    }
    if ((v = hd_png_text_get(&t, "hidream:model_dir")) && !o->model) o->model = keep(o, v);
    if (hd_png_text_get(&t, "hidream:references") && o->n_refs == 0) {
        fprintf(stderr, "hidream generate: --from-png: %s was made with reference images; pass "
                        "them again with --ref\n", o->from_png);
        rc = -1;
    }
done:
    hd_png_text_free(&t);
    return rc;
}

/* ---- progress bar ---- */
typedef struct progress_ctx {
    int tty, verbose;
    double t0;
    const char *preview_dir;
    int failed_preview;
} progress_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int on_progress(void *user, int step, int total, const hd_image *preview) {
    progress_ctx *c = user;
    double el = now_s() - c->t0, per = el / step, eta = per * (total - step);
    /* like tqdm: it/s when faster than one step a second, s/it otherwise */
    char rate[32];
    if (per < 1.0) snprintf(rate, sizeof rate, "%.2f it/s", per > 0 ? 1.0 / per : 0.0);
    else snprintf(rate, sizeof rate, "%.2f s/it", per);
    if (c->tty) {
        int width = 30, fill = total ? step * width / total : width;
        fprintf(stderr, "\r[%.*s%*s] %d/%d  %s  ETA %.0fs ", fill,
                "##############################", width - fill, "", step, total, rate, eta);
        if (step == total) fputc('\n', stderr);
    } else if (c->verbose) {
        fprintf(stderr, "step %d/%d  %s  ETA %.0fs\n", step, total, rate, eta);
    }
    if (preview && c->preview_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/step_%04d.png", c->preview_dir, step);
        hd_error e = {0};
        if (hd_image_save(path, preview, NULL, &e) < 0 && !c->failed_preview) {
            fprintf(stderr, "\nhidream generate: preview: %s\n", e.msg);
            c->failed_preview = 1;
        }
    }
    return 0;
}

static void free_own(gen_opts *o) {
    for (int k = 0; k < o->n_own; k++) free(o->own[k]);
    o->n_own = 0;
}

/* The model directory recorded in a --from-png picture (NULL if none or unreadable; the
 * metadata is read again, with its errors, once the model is loaded). */
static const char *png_model_dir(gen_opts *o) {
    hd_png_text t = {0};
    hd_error e = {0};
    if (hd_png_read_text(o->from_png, &t, &e) < 0) return NULL;
    const char *v = hd_png_text_get(&t, "hidream:model_dir");
    const char *dir = v ? keep(o, v) : NULL;
    hd_png_text_free(&t);
    return dir;
}

/* The model's own defaults (native size, sampler settings) for every field no flag set. */
static void apply_model_defaults(gen_opts *o, const hd_model *m, hd_mode mode) {
    hd_generate_params d;
    hd_model_generate_defaults(m, &d, mode);
    hd_generate_params *p = &o->p;
    if (!o->set_width) p->width = d.width;
    if (!o->set_height) p->height = d.height;
    if (!o->set_steps) p->steps = d.steps;
    if (!o->set_cfg) p->cfg = d.cfg;
    if (!o->set_shift) p->shift = d.shift;
    if (!o->set_seed) p->seed = d.seed;
    if (!o->set_sched) p->scheduler = d.scheduler;
    if (!o->set_noise) {
        p->noise_scale_start = d.noise_scale_start;
        p->noise_scale_end = d.noise_scale_end;
    }
    if (!o->set_clip) p->noise_clip_std = d.noise_clip_std;
}

/* Checks that the output can be written before spending minutes on compute. */
static int check_output_path(const char *out) {
    hd_image_format f = hd_image_format_from_name(out);
    if (f == HD_FMT_UNKNOWN) {
        fprintf(stderr, "hidream generate: %s: unknown output format (use .png, .jpg or .webp)\n", out);
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", out);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    if (slash && dir[0] == 0) snprintf(dir, sizeof dir, "/");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "hidream generate: %s: output directory '%s' does not exist\n", out, dir);
        return -1;
    }
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "hidream generate: %s: output directory '%s' is not writable\n", out, dir);
        return -1;
    }
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "hidream generate: %s: is a directory\n", out);
        return -1;
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    memset(&o, 0, sizeof o);
    /* mode first: it sets the defaults the other flags override */
    hd_mode mode = HD_MODE_FULL;
    int mode_given = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--from-png")) {
            /* the stored mode sets the defaults unless --mode says otherwise */
            hd_png_text t = {0};
            hd_error e = {0};
            if (hd_png_read_text(argv[i + 1], &t, &e) == 0) {
                const char *v = hd_png_text_get(&t, "hidream:mode");
                if (v && !strcmp(v, "dev") && !mode_given) mode = HD_MODE_DEV;
                hd_png_text_free(&t);
            }
        } else if (!strcmp(argv[i], "--mode")) {
            mode_given = 1;
            if (!strcmp(argv[i + 1], "dev")) mode = HD_MODE_DEV;
            else if (!strcmp(argv[i + 1], "full")) mode = HD_MODE_FULL;
            else {
                fprintf(stderr, "hidream generate: --mode: '%s' is not full or dev\n", argv[i + 1]);
                return 2;
            }
        }
    hd_generate_defaults(&o.p, mode);
    hd_generate_params *p = &o.p;
    double noise_end = NAN;
    refine_cli rcli; /* --refine: the prompt agent's options, and its result */
    refine_cli_init(&rcli, "hidream generate", "refine-");
    hd_refine_result refined = {0};
    int do_refine = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED()                                                                         \
    do {                                                                               \
        if (!val) {                                                                    \
            fprintf(stderr, "hidream generate: %s needs a value\n", a);                \
            return 2;                                                                  \
        }                                                                              \
        i++;                                                                           \
    } while (0)
        long iv;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEED(); o.model = val; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEED(); p->prompt = val; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { NEED(); o.output = val; }
        else if (!strcmp(a, "--mode")) { NEED(); }
        else if (!strcmp(a, "--from-png")) { NEED(); o.from_png = val; }
        else if (!strcmp(a, "--uncond")) { NEED(); p->uncond_prompt = val; }
        else if (!strcmp(a, "--steps")) {
            NEED();
            if (parse_int(a, val, 1, HD_MAX_TIMESTEPS, &iv)) return 2;
            p->steps = (int)iv;
            o.set_steps = 1;
        } else if (!strcmp(a, "--cfg")) {
            NEED();
            if (parse_double(a, val, &p->cfg)) return 2;
            o.set_cfg = 1;
        } else if (!strcmp(a, "--shift")) {
            NEED();
            if (parse_double(a, val, &p->shift)) return 2;
            o.set_shift = 1;
        } else if (!strcmp(a, "--seed")) {
            NEED();
            if (parse_u64(a, val, &p->seed)) return 2;
            o.set_seed = 1;
        } else if (!strcmp(a, "--width") || !strcmp(a, "--height")) {
            NEED();
            if (parse_int(a, val, 1, 1 << 20, &iv)) return 2;
            if (a[2] == 'w') p->width = (int)iv, o.set_width = 1;
            else p->height = (int)iv, o.set_height = 1;
            o.set_size = 1;
        } else if (!strcmp(a, "--no-snap")) p->no_snap = 1;
        else if (!strcmp(a, "--scheduler")) {
            NEED();
            if (parse_sched(val, &p->scheduler)) return 2;
            o.set_sched = 1;
        } else if (!strcmp(a, "--timesteps")) {
            NEED();
            if (parse_timesteps(val, p)) return 2;
            o.set_sched = 1;
        } else if (!strcmp(a, "--noise-scale")) {
            NEED();
            if (parse_double(a, val, &p->noise_scale_start)) return 2;
            o.set_noise = 1;
        } else if (!strcmp(a, "--noise-scale-end")) {
            NEED();
            if (parse_double(a, val, &noise_end)) return 2;
            o.set_noise = 1;
        } else if (!strcmp(a, "--noise-clip-std")) {
            NEED();
            if (parse_double(a, val, &p->noise_clip_std)) return 2;
            o.set_clip = 1;
        } else if (!strcmp(a, "--ref")) {
            NEED();
            if (o.n_refs >= MAX_REFS) {
                fprintf(stderr, "hidream generate: at most %d --ref images\n", MAX_REFS);
                return 2;
            }
            o.ref_paths[o.n_refs++] = val;
        } else if (!strcmp(a, "--layout")) { NEED(); p->layout = val; }
        else if (!strcmp(a, "--keep-aspect")) p->keep_aspect = 1;
        else if (!strcmp(a, "--bf16-compat")) p->bf16_compat = 1;
        else if (!strcmp(a, "--bf16-gemm")) o.bf16_gemm = 1;
        else if (!strcmp(a, "--threads")) {
            NEED();
            if (parse_int(a, val, 1, 1024, &iv)) return 2;
            o.threads = (int)iv;
        } else if (!strcmp(a, "--backend")) { NEED(); o.backend = val; }
        else if (!strcmp(a, "--preview")) { NEED(); o.preview_dir = val; }
        else if (!strcmp(a, "--preview-every")) {
            NEED();
            if (parse_int(a, val, 1, HD_MAX_TIMESTEPS, &iv)) return 2;
            p->preview_every = (int)iv;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o.verbose = 1;
        else if (!strcmp(a, "--refine")) do_refine = 1;
        else if ((iv = refine_cli_flag(&rcli, argc, argv, &i)) < 0) return 2;
        else if (iv == 0) {
            fprintf(stderr, "hidream generate: unknown option '%s' (see --help)\n", a);
            return 2;
        } else do_refine = 1; /* a --refine-* option implies --refine */
#undef NEED
    }
    if (o.set_noise) p->noise_scale_end = isnan(noise_end) ? p->noise_scale_start : noise_end;

    /* the model: -m, else the one a --from-png picture names, else the embedded one */
    char embedded[4096], searched[8192];
    if (!o.model && o.from_png) o.model = png_model_dir(&o);
    if (!o.model) {
        if (hd_find_embedded_model(embedded, sizeof embedded, searched, sizeof searched) < 0) {
            fprintf(stderr, "hidream generate: no -m/--model given and no embedded model found "
                            "(looked in %s)\n", searched);
            free_own(&o);
            return 2;
        }
        o.model = embedded;
    }
    int rc = 2;
    hd_error e = {0};
    hd_model *m = NULL;
    hd_image refs[MAX_REFS];
    memset(refs, 0, sizeof refs);
    hd_image out = {0};
    if (!o.output) {
        fprintf(stderr, "hidream generate: -o/--output is required\n");
        goto done;
    }
    if (p->preview_every && !o.preview_dir) {
        fprintf(stderr, "hidream generate: --preview-every needs --preview DIR\n");
        goto done;
    }
    if (o.preview_dir && !p->preview_every) p->preview_every = 1;
    if (check_output_path(o.output) < 0) goto done;

    hd_model_options mo = {o.backend ? o.backend : "cpu", o.threads, o.bf16_gemm};
    if (hd_model_load(&m, o.model, &mo, &e) < 0) {
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        goto done;
    }
    apply_model_defaults(&o, m, mode);
    if (o.from_png && apply_png_metadata(&o) < 0) goto done;
    if (!p->prompt) {
        fprintf(stderr, "hidream generate: -p/--prompt is required\n");
        goto done;
    }
    /* what this model cannot do is refused before any image is read or computed */
    p->n_refs = o.n_refs;
    p->refs = refs;
    if (hd_model_check_request(m, p, &e) < 0) {
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        goto done;
    }
    const char *raw_prompt = p->prompt;
    if (do_refine) { /* never fails for network reasons: the raw prompt is the fallback */
        rcli.verbose = o.verbose;
        if (refine_cli_finish(&rcli) < 0) goto done;
        rcli.stream = o.verbose;
        if (refine_cli_run(&rcli, raw_prompt, &refined, &e) < 0) {
            fprintf(stderr, "hidream generate: %s\n", e.msg);
            goto done;
        }
        p->prompt = refined.prompt;
        if (o.verbose) fprintf(stderr, "refined prompt: %s\n", p->prompt);
    }
    if (o.preview_dir) {
        struct stat sb;
        if (stat(o.preview_dir, &sb) != 0 && mkdir(o.preview_dir, 0777) != 0) {
            fprintf(stderr, "hidream generate: --preview: cannot create '%s': %s\n", o.preview_dir,
                    strerror(errno));
            goto done;
        }
    }
    for (int k = 0; k < o.n_refs; k++) {
        if (hd_image_load(o.ref_paths[k], &refs[k], &e) < 0) {
            fprintf(stderr, "hidream generate: --ref: %s\n", e.msg);
            goto done;
        }
    }
    /* The official code warns and carries on in these two cases; so do we. */
    if (p->keep_aspect && o.n_refs != 1)
        fprintf(stderr, "hidream generate: warning: --keep-aspect needs exactly one --ref; the "
                        "size is snapped instead\n");
    if (p->layout && o.n_refs == 0) {
        fprintf(stderr, "hidream generate: warning: --layout is ignored without --ref images\n");
    } else if (p->layout && p->keep_aspect && o.n_refs == 1) {
        fprintf(stderr, "hidream generate: warning: --layout is ignored with --keep-aspect\n");
    } else if (p->layout && p->layout[0]) {
        hd_layout lay = {0};
        int lrc = hd_layout_load(p->layout, &lay, &e);
        hd_layout_free(&lay);
        if (lrc == HD_EFORMAT)
            fprintf(stderr, "hidream generate: warning: --layout ignored: %s\n", e.msg);
        else if (lrc < 0) {
            fprintf(stderr, "hidream generate: --layout: %s\n", e.msg);
            goto done;
        }
    }

    progress_ctx pc = {isatty(2), o.verbose, now_s(), o.preview_dir, 0};
    p->progress = on_progress;
    p->progress_user = &pc;
    if (hd_generate(m, p, &out, &e) < 0) {
        if (pc.tty) fputc('\n', stderr);
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        rc = 1;
        goto done;
    }

    /* Metadata: everything needed to regenerate the picture (--from-png). */
    char seed[32], steps[16], cfg[32], shift[32], size[32], noise[64], clip[32], ts[8 * HD_MAX_TIMESTEPS];
    snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
    snprintf(steps, sizeof steps, "%d", p->n_timesteps ? p->n_timesteps : p->steps);
    snprintf(cfg, sizeof cfg, "%.17g", p->cfg);
    snprintf(shift, sizeof shift, "%.17g", p->shift);
    snprintf(size, sizeof size, "%dx%d", out.w, out.h);
    snprintf(noise, sizeof noise, "%.17g,%.17g", p->noise_scale_start, p->noise_scale_end);
    snprintf(clip, sizeof clip, "%.17g", p->noise_clip_std);
    ts[0] = 0;
    for (int i = 0; i < p->n_timesteps; i++) {
        size_t l = strlen(ts);
        snprintf(ts + l, sizeof ts - l, "%s%d", i ? "," : "", p->timesteps[i]);
    }
    char refs_note[16];
    snprintf(refs_note, sizeof refs_note, "%d", o.n_refs);
    hd_text_kv kv[24];
    int nk = 0;
    kv[nk++] = (hd_text_kv){"hidream:prompt", p->prompt};
    if (do_refine) {
        kv[nk++] = (hd_text_kv){"hidream:raw_prompt", raw_prompt};
        kv[nk++] = (hd_text_kv){"hidream:refine", !refined.refined ? "fallback"
                                                  : rcli.lo.dir ? rcli.lo.dir : rcli.o.model};
    }
    kv[nk++] = (hd_text_kv){"hidream:uncond", p->uncond_prompt ? p->uncond_prompt : " "};
    kv[nk++] = (hd_text_kv){"hidream:mode", p->mode == HD_MODE_DEV ? "dev" : "full"};
    kv[nk++] = (hd_text_kv){"hidream:seed", seed};
    kv[nk++] = (hd_text_kv){"hidream:steps", steps};
    kv[nk++] = (hd_text_kv){"hidream:cfg", cfg};
    kv[nk++] = (hd_text_kv){"hidream:shift", shift};
    kv[nk++] = (hd_text_kv){"hidream:scheduler", sched_name(p->scheduler)};
    if (p->n_timesteps) kv[nk++] = (hd_text_kv){"hidream:timesteps", ts};
    kv[nk++] = (hd_text_kv){"hidream:noise_scale", noise};
    kv[nk++] = (hd_text_kv){"hidream:noise_clip_std", clip};
    kv[nk++] = (hd_text_kv){"hidream:bf16_compat", p->bf16_compat ? "1" : "0"};
    kv[nk++] = (hd_text_kv){"hidream:size", size};
    kv[nk++] = (hd_text_kv){"hidream:model", hd_model_name(m)};
    kv[nk++] = (hd_text_kv){"hidream:model_dir", o.model};
    if (o.n_refs) kv[nk++] = (hd_text_kv){"hidream:references", refs_note};
    if (p->layout) kv[nk++] = (hd_text_kv){"hidream:layout", p->layout};
    kv[nk++] = (hd_text_kv){"hidream:version", hd_version()};
    kv[nk++] = (hd_text_kv){"Software", "hidream.c"};
    hd_save_opts so = {0, 0, kv, nk};
    if (hd_image_save(o.output, &out, &so, &e) < 0) {
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        rc = 2;
        goto done;
    }
    if (o.verbose) fprintf(stderr, "wrote %s (%dx%d)\n", o.output, out.w, out.h);
    rc = 0;
done:
    hd_image_free(&out);
    for (int k = 0; k < o.n_refs; k++) hd_image_free(&refs[k]);
    hd_model_free(m);
    free_own(&o);
    hd_refine_result_free(&refined);
    refine_cli_free(&rcli);
    return rc;
}
