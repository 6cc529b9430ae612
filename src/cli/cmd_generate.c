/* `hidream generate`: prompt (+ reference images) -> picture, with a PNG recipe that can
 * regenerate it (--from-png, src/cli/gen_recipe.c).
 *
 * Precedence: explicit flags, then the --from-png recipe (the library's hd_recipe), then the
 * model's defaults for the mode
 * (hd_model_generate_defaults: its native size, presets and sampler settings, or the official
 * ones). Without -m (and no model in the recipe) the embedded model is used: models/shapes next
 * to the binary or the installed copy (HIDREAM_MODELS_DIR/shapes), never a path relative to the
 * current directory. Exit codes: see exit_codes.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/embedded_model.h"
#include "cli/exit_codes.h"
#include "cli/gen_opts.h"
#include "hidream.h"
#include "image/codec.h"
#include "image/layout.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream generate [-m DIR] -p PROMPT -o OUT.png [options]\n"
            "       hidream generate --from-png IMAGE.png [-m DIR] -o OUT.png [overrides]\n"
            "  -m, --model DIR          model directory (default: the embedded model, models/shapes\n"
            "                           next to the binary or in " HIDREAM_MODELS_DIR ")\n"
            "  -p, --prompt TEXT        the prompt (at most " STR(HD_MAX_PROMPT_TOKENS) " tokens and "
            STR(HD_MAX_PROMPT_BYTES) " bytes)\n"
            "  -o, --output FILE        .png (with the recipe as metadata), .jpg/.jpeg or .webp;\n"
            "                           a symbolic link is replaced by the picture, not followed\n"
            "  --from-png IMAGE.png     regenerate from the recipe in a PNG of ours: every setting\n"
            "                           that changes the pixels; flags given too override it\n"
            "  --mode full|dev          official defaults: full = UniPC 50 steps, CFG 5, shift 3;\n"
            "                           dev = flash sampler, 28 fixed timesteps, no CFG, noise 7.5/clip 2.5\n"
            "                           (a model's config.json may state its own; see hidream info)\n"
            "  --steps N --cfg G --shift S --seed N\n"
            "  --width W --height H     requested size (snapped to the nearest preset aspect of the\n"
            "                           model, with a notice; default: its native size, else 2048x2048)\n"
            "  --no-snap                keep the requested size (multiples of the model's patch size;\n"
            "                           a model with a native size allows up to twice it per side)\n"
            "  --scheduler unipc|flow_match|flash   --timesteps 999,877,... (sets the step count)\n"
            "  --noise-scale X [--noise-scale-end Y] --noise-clip-std X   (flash)\n"
            "  --uncond TEXT            CFG's unconditional prompt (default \" \", as upstream)\n"
            "  --ref FILE (repeatable)  reference images (editing, personalization)\n"
            "  --layout JSON_OR_FILE    layout boxes [[x1,x2,y1,y2],...] for the references\n"
            "  --keep-aspect            one reference: the output takes its size\n"
            "  --bf16-compat            round the sample to bf16 where the official GPU code does\n"
            "  --threads N              CPU threads (default: all)\n");
    precision_cli_usage(f, 24);
    fprintf(f,
            "  --backend cpu|cuda       compute backend (cuda when built with it)\n"
            "  --preview DIR --preview-every N   write x0 previews as PNG\n"
            "  -v, --verbose\n"
            "  --refine                 rewrite the prompt with the prompt agent first (see\n"
            "                           'hidream refine'); the PNG keeps both prompts. Its options\n"
            "                           (each implies --refine):\n");
    refine_cli_usage(f, "refine-");
    fprintf(f, "exit status:\n" HD_EXIT_CODES_TEXT);
}

/* Options that take a value; a value that is itself one of these is a forgotten value
 * ("-p --mode dev"), not a prompt. */
static const char *const value_flags[] = {
    "-m", "--model", "-p", "--prompt", "-o", "--output", "--mode", "--from-png", "--uncond",
    "--steps", "--cfg", "--shift", "--seed", "--width", "--height", "--scheduler", "--timesteps",
    "--noise-scale", "--noise-scale-end", "--noise-clip-std", "--ref", "--layout", "--threads",
    "--backend", "--preview", "--preview-every", NULL};
static const char *const plain_flags[] = {"--no-snap", "--keep-aspect", "--bf16-compat", "-v",
                                          "--verbose", "-h", "--help", NULL};

static int is_flag(const char *s) {
    if (!strcmp(s, "--refine") || !strncmp(s, "--refine-", 9)) return 1; /* the agent's */
    if (precision_cli_is_flag(s)) return 1;
    for (int i = 0; value_flags[i]; i++)
        if (!strcmp(s, value_flags[i])) return 1;
    for (int i = 0; plain_flags[i]; i++)
        if (!strcmp(s, plain_flags[i])) return 1;
    return 0;
}

/* One flag with its value; -1 on a bad value (message printed), 1 if the flag is unknown. */
static int parse_valued(gen_opts *o, const char *a, const char *val, double *noise_end) {
    hd_generate_params *p = &o->p;
    long iv;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = val;
    else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) p->prompt = val;
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->output = val;
    else if (!strcmp(a, "--mode")) return o->set_mode = 1, gen_parse_mode(a, val, &o->mode);
    else if (!strcmp(a, "--from-png")) o->from_png = val;
    else if (!strcmp(a, "--uncond")) p->uncond_prompt = val;
    else if (!strcmp(a, "--steps")) {
        if (gen_parse_int(a, val, 1, HD_MAX_TIMESTEPS, &iv)) return -1;
        p->steps = (int)iv, o->set_steps = 1;
    } else if (!strcmp(a, "--cfg")) return o->set_cfg = 1, gen_parse_double(a, val, &p->cfg);
    else if (!strcmp(a, "--shift")) return o->set_shift = 1, gen_parse_double(a, val, &p->shift);
    else if (!strcmp(a, "--seed")) return o->set_seed = 1, gen_parse_u64(a, val, &p->seed);
    else if (!strcmp(a, "--width") || !strcmp(a, "--height")) {
        if (gen_parse_int(a, val, 1, 1 << 20, &iv)) return -1;
        if (a[2] == 'w') p->width = (int)iv, o->set_width = 1;
        else p->height = (int)iv, o->set_height = 1;
    } else if (!strcmp(a, "--scheduler"))
        return o->set_sched = 1, gen_parse_sched(a, val, &p->scheduler);
    else if (!strcmp(a, "--timesteps")) return o->set_timesteps = 1, gen_parse_timesteps(a, val, p);
    else if (!strcmp(a, "--noise-scale"))
        return o->set_noise = 1, gen_parse_double(a, val, &p->noise_scale_start);
    else if (!strcmp(a, "--noise-scale-end"))
        return o->set_noise = 1, gen_parse_double(a, val, noise_end);
    else if (!strcmp(a, "--noise-clip-std"))
        return o->set_clip = 1, gen_parse_double(a, val, &p->noise_clip_std);
    else if (!strcmp(a, "--ref")) {
        if (o->n_refs >= GEN_MAX_REFS) {
            fprintf(stderr, "hidream generate: at most %d --ref images\n", GEN_MAX_REFS);
            return -1;
        }
        o->ref_paths[o->n_refs++] = val;
    } else if (!strcmp(a, "--layout")) p->layout = val, o->set_layout = 1;
    else if (!strcmp(a, "--threads")) {
        if (gen_parse_int(a, val, 1, 1024, &iv)) return -1;
        o->threads = (int)iv;
    } else if (!strcmp(a, "--backend")) o->backend = val, o->set_backend = 1;
    else if (!strcmp(a, "--preview")) o->preview_dir = val;
    else if (!strcmp(a, "--preview-every")) {
        if (gen_parse_int(a, val, 1, HD_MAX_TIMESTEPS, &iv)) return -1;
        p->preview_every = (int)iv;
    } else return 1;
    return 0;
}

/* Returns 0 to go on, 1 after --help, -1 on bad usage (message printed). */
static int parse_args(gen_opts *o, int argc, char **argv) {
    hd_generate_params *p = &o->p;
    double noise_end = NAN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--no-snap")) p->no_snap = 1;
        else if (!strcmp(a, "--keep-aspect")) p->keep_aspect = 1;
        else if (!strcmp(a, "--bf16-compat")) p->bf16_compat = 1;
        else if (precision_cli_is_flag(a)) {
            if (precision_cli_flag(&o->prec, "hidream generate", argc, argv, &i) < 0) return -1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) o->verbose = 1;
        else if (!strcmp(a, "--refine")) o->do_refine = 1;
        else if (!strncmp(a, "--refine-", 9)) {
            int r = refine_cli_flag(&o->rcli, argc, argv, &i); /* takes its value itself */
            if (r < 0) return -1;
            if (r == 0) {
                fprintf(stderr, "hidream generate: unknown option '%s' (see --help)\n", a);
                return -1;
            }
            o->do_refine = 1; /* a --refine-* option implies --refine */
        } else if (!is_flag(a)) {
            fprintf(stderr, "hidream generate: unknown option '%s' (see --help)\n", a);
            return -1;
        } else if (i + 1 >= argc || is_flag(argv[i + 1])) {
            fprintf(stderr, "hidream generate: %s needs a value%s%s%s\n", a,
                    i + 1 < argc ? " (got the option '" : "", i + 1 < argc ? argv[i + 1] : "",
                    i + 1 < argc ? "')" : "");
            return -1;
        } else if (parse_valued(o, a, argv[++i], &noise_end)) {
            return -1;
        }
    }
    o->steps_by_flag = o->set_steps;
    o->timesteps_by_flag = o->set_timesteps;
    if (o->set_noise) p->noise_scale_end = isnan(noise_end) ? p->noise_scale_start : noise_end;
    if (o->set_steps && o->set_timesteps && p->steps != p->n_timesteps) {
        fprintf(stderr, "hidream generate: --steps %d disagrees with the %d values of --timesteps "
                        "(the list sets the step count)\n", p->steps, p->n_timesteps);
        return -1;
    }
    return 0;
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

/* The model's own defaults (native size, sampler settings) for every field nothing set. */
static void apply_model_defaults(gen_opts *o, const hd_model *m) {
    hd_generate_params d;
    hd_model_generate_defaults(m, &d, o->mode);
    hd_generate_params *p = &o->p;
    p->mode = o->mode;
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

/* Checks that the output can be written before spending minutes on compute. The output is
 * replaced by rename: a symbolic link there is replaced by the picture, not followed. */
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
    if (lstat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "hidream generate: %s: is a directory\n", out);
        return -1;
    }
    return 0;
}

/* --layout: inline JSON or a file, resolved to inline JSON (what the recipe records). It runs
 * after hd_model_check_request, which refused a missing file or invalid boxes and warned about a
 * layout it ignores (no references, keep-aspect, not JSON, as upstream does): such a layout is
 * dropped here. */
static int resolve_layout(gen_opts *o) {
    hd_generate_params *p = &o->p;
    if (!p->layout) return 0;
    if (!p->layout[0] || o->n_refs == 0 || (p->keep_aspect && o->n_refs == 1)) {
        p->layout = NULL;
        return 0;
    }
    hd_error e = {0};
    char *text = NULL;
    if (hd_layout_read(p->layout, &text, &e) < 0) {
        fprintf(stderr, "hidream generate: --layout: %s\n", e.msg);
        return -1;
    }
    hd_layout lay = {0};
    int rc = hd_layout_parse(text, strlen(text), p->layout, &lay, &e);
    hd_layout_free(&lay);
    if (rc < 0) free(text);
    if (rc == HD_EFORMAT) { /* not JSON: warned, and generated without the layout */
        p->layout = NULL;
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "hidream generate: --layout: %s\n", e.msg);
        return -1;
    }
    if (!(p->layout = gen_keep(o, text))) {
        fprintf(stderr, "hidream generate: out of memory\n");
        return -1;
    }
    return 0;
}

/* The model: -m, else the recipe's, else the embedded one. */
static int load_model(gen_opts *o, hd_model **m, char *embedded, size_t n) {
    char searched[8192];
    if (!o->model) {
        if (hd_find_embedded_model(embedded, n, searched, sizeof searched) < 0) {
            fprintf(stderr, "hidream generate: no -m/--model given and no embedded model found "
                            "(looked in %s)\n", searched);
            return -1;
        }
        o->model = embedded;
    }
    if (o->model_from_png && o->model[0] != '/')
        fprintf(stderr, "hidream generate: note: %s records the relative model directory '%s'; "
                        "it is taken relative to the current directory\n", o->from_png, o->model);
    hd_model_options mo = {o->backend ? o->backend : "cpu", o->threads, o->prec.value};
    hd_error e = {0};
    if (hd_model_load(m, o->model, &mo, &e) < 0) {
        fprintf(stderr, "hidream generate: %s%s%s%s\n", e.msg,
                o->model_from_png || o->backend_from_png ? " (" : "",
                o->model_from_png ? "the model directory recorded in --from-png; -m overrides it"
                : o->backend_from_png ? "the backend recorded in --from-png; --backend overrides it"
                                      : "",
                o->model_from_png || o->backend_from_png ? ")" : "");
        return -1;
    }
    return 0;
}

/* Reference images, layout and the request check; the size notice. -1 on error (printed). */
static int prepare_request(gen_opts *o, const hd_model *m, hd_image *refs) {
    hd_generate_params *p = &o->p;
    hd_error e = {0};
    p->n_refs = o->n_refs;
    p->refs = refs;
    p->warnings = &o->warnings;
    /* what this model cannot do is refused before any image is read or computed; what the
     * official code warns about and goes on without comes back in o->warnings */
    if (hd_model_check_request(m, p, &e) < 0) {
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        return -1;
    }
    if (resolve_layout(o) < 0) return -1;
    for (int k = 0; k < o->n_refs; k++) {
        if (hd_image_load(o->ref_paths[k], &refs[k], &e) < 0) {
            fprintf(stderr, "hidream generate: --ref: %s\n", e.msg);
            return -1;
        }
    }
    for (int k = 0; k < o->warnings.n; k++)
        fprintf(stderr, "hidream generate: warning: %s\n", o->warnings.msg[k]);
    p->warnings = NULL; /* printed once: hd_generate would collect them again */
    int w, h;
    if ((o->set_width || o->set_height) && !p->no_snap && !(p->keep_aspect && o->n_refs == 1) &&
        hd_model_output_size(m, p, &w, &h, &e) == 0 && (w != p->width || h != p->height))
        fprintf(stderr, "hidream generate: note: %dx%d is snapped to %dx%d, the model's nearest "
                        "preset size (--no-snap keeps the requested size)\n",
                p->width, p->height, w, h);
    if (o->preview_dir) {
        struct stat sb;
        if (stat(o->preview_dir, &sb) != 0 && mkdir(o->preview_dir, 0777) != 0) {
            fprintf(stderr, "hidream generate: --preview: cannot create '%s': %s\n",
                    o->preview_dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* --refine: the prompt agent rewrites the prompt (remote, or local with --refine-local). It
 * never fails for network reasons (the raw prompt is the fallback, with a warning); bad agent
 * options or an unusable local model are errors. Returns the exit status, 0 to go on. */
static int refine_prompt(gen_opts *o) {
    hd_generate_params *p = &o->p;
    hd_error e = {0};
    const char *raw = p->prompt;
    o->rcli.stream = o->verbose;
    int rc = refine_cli_run(&o->rcli, raw, &o->refined, &e);
    if (rc < 0) {
        fprintf(stderr, "hidream generate: %s\n", e.msg);
        return hd_exit_code(rc);
    }
    p->prompt = o->refined.prompt;
    o->refine_raw = raw;
    o->refine_by = !o->refined.refined ? "fallback" : o->rcli.lo.dir ? o->rcli.lo.dir
                                                                       : o->rcli.o.model;
    if (o->verbose) fprintf(stderr, "refined prompt: %s\n", p->prompt);
    return 0;
}

/* Generates and saves; returns the exit status. */
static int run(gen_opts *o) {
    hd_generate_params *p = &o->p;
    if (!o->output) {
        fprintf(stderr, "hidream generate: -o/--output is required\n");
        return HD_EXIT_USAGE;
    }
    if (p->preview_every && !o->preview_dir) {
        fprintf(stderr, "hidream generate: --preview-every needs --preview DIR\n");
        return HD_EXIT_USAGE;
    }
    if (o->preview_dir && !p->preview_every) p->preview_every = 1;
    if (check_output_path(o->output) < 0) return HD_EXIT_USAGE;
    o->rcli.verbose = o->verbose;
    if (o->do_refine && refine_cli_finish(&o->rcli) < 0) return HD_EXIT_USAGE;
    if (o->from_png && gen_recipe_read(o) < 0) return HD_EXIT_USAGE;
    if (!p->prompt) {
        fprintf(stderr, "hidream generate: -p/--prompt is required\n");
        return HD_EXIT_USAGE;
    }
    char embedded[4096];
    hd_model *m = NULL;
    if (load_model(o, &m, embedded, sizeof embedded) < 0) return HD_EXIT_USAGE;
    if (o->verbose)
        fprintf(stderr, "precision: %s%s\n", hd_precision_name(hd_model_precision(m)),
                o->prec.flag ? "" : o->prec.value ? " (the recipe's)" : " (auto)");
    if (o->from_png) gen_recipe_check_model(o, m);
    apply_model_defaults(o, m);

    int rc = HD_EXIT_USAGE;
    hd_error e = {0};
    hd_image refs[GEN_MAX_REFS], out = {0};
    memset(refs, 0, sizeof refs);
    if (prepare_request(o, m, refs) == 0 && (!o->do_refine || (rc = refine_prompt(o)) == 0)) {
        progress_ctx pc = {isatty(2), o->verbose, now_s(), o->preview_dir, 0};
        p->progress = on_progress;
        p->progress_user = &pc;
        int grc = hd_generate(m, p, &out, &e);
        if (grc < 0) {
            if (pc.tty) fputc('\n', stderr);
            fprintf(stderr, "hidream generate: %s\n", e.msg);
            rc = hd_exit_code(grc);
        } else if (gen_recipe_save(o, m, &out, &e) < 0) {
            fprintf(stderr, "hidream generate: %s\n", e.msg);
            rc = HD_EXIT_OUTPUT;
        } else {
            rc = HD_EXIT_OK;
            if (o->verbose) fprintf(stderr, "wrote %s (%dx%d)\n", o->output, out.w, out.h);
        }
    }
    hd_image_free(&out);
    for (int k = 0; k < o->n_refs; k++) hd_image_free(&refs[k]);
    hd_model_free(m);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    memset(&o, 0, sizeof o);
    refine_cli_init(&o.rcli, "hidream generate", "refine-");
    int rc = parse_args(&o, argc, argv);
    if (rc) rc = rc > 0 ? HD_EXIT_OK : HD_EXIT_USAGE;
    else rc = run(&o);
    gen_opts_free(&o);
    return rc;
}
