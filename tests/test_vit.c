/* The vision tower (src/model/vit.c): golden outputs of every forward case that has pixel values
 * (in every golden model directory under $HIDREAM_SHARED/golden), block-diagonal attention across
 * images, the host-side tables, and rejection of models / inputs it cannot run.
 * The backend is "cpu" unless HIDREAM_TEST_BACKEND names another. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/vit.h"
#include "model/vit_internal.h"
#include "testutil.h"

#define MAX_DIRS 16
#define MAX_CASES 64

static hd_backend *make_backend(void) {
    const char *name = getenv("HIDREAM_TEST_BACKEND");
    hd_backend_options opt = {0};
    opt.n_threads = 2;
    hd_backend *be = NULL;
    hd_error e = {0};
    int rc = hd_backend_create(&be, name ? name : "cpu", &opt, &e);
    CHECKF(rc == 0, "backend: %s", e.msg);
    return rc == 0 ? be : NULL;
}

static int file_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Model directories under golden/ that carry a config, weights and golden.safetensors (sorted). */
static int golden_model_dirs(char **out, int max) {
    char root[1024], p[2048];
    hd_test_shared(root, sizeof root, "golden");
    DIR *d = opendir(root);
    if (!d) return 0;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < max) {
        if (ent->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s/golden.safetensors", root, ent->d_name);
        if (!file_exists(p)) continue;
        snprintf(p, sizeof p, "%s/%s/config.json", root, ent->d_name);
        if (!file_exists(p)) continue;
        snprintf(p, sizeof p, "%s/%s", root, ent->d_name);
        out[n++] = strdup(p);
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

/* The first golden model directory whose config has a vision tower, into buf; 0 if none. */
static int vision_model_dir(char *buf, size_t n) {
    char *dirs[MAX_DIRS];
    int n_dirs = golden_model_dirs(dirs, MAX_DIRS), found = 0;
    for (int d = 0; d < n_dirs; d++) {
        hd_config cfg;
        hd_error e = {0};
        if (!found && hd_config_load_dir(&cfg, dirs[d], &e) == 0 && cfg.vision.present) {
            snprintf(buf, n, "%s", dirs[d]);
            found = 1;
        }
        free(dirs[d]);
    }
    CHECKF(found, "no golden model directory with a vision tower");
    return found;
}

/* A loaded model directory: config, weights and the vision tower on a backend. */
typedef struct vit_fixture {
    hd_backend *be;
    hd_config cfg;
    hd_safetensors st;
    hd_vit *vit;
} vit_fixture;

static int fixture_open(vit_fixture *f, const char *dir) {
    memset(f, 0, sizeof *f);
    hd_error e = {0};
    f->be = make_backend();
    if (!f->be) return -1;
    int rc = hd_config_load_dir(&f->cfg, dir, &e);
    CHECKF(rc == 0, "%s: config: %s", dir, e.msg);
    if (!rc) {
        rc = hd_st_open_dir(&f->st, dir, &e);
        CHECKF(rc == 0, "%s: weights: %s", dir, e.msg);
    }
    if (!rc) {
        rc = hd_vit_create(&f->vit, f->be, &f->cfg, &f->st, &e);
        CHECKF(rc == 0, "%s: vit: %s", dir, e.msg);
    }
    return rc;
}

static void fixture_close(vit_fixture *f) {
    hd_vit_free(f->vit);
    hd_st_close(&f->st);
    hd_backend_destroy(f->be);
    memset(f, 0, sizeof *f);
}

/* Device tensor -> malloc'd host floats. */
static float *read_host(hd_backend *be, const hd_tensor *t) {
    float *h = malloc((size_t)(t->rows * t->cols) * sizeof(float));
    if (h) be->ops->read(be, t, h);
    return h;
}

static double rel_err(const float *a, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Compares one output matrix against the float64 golden tensor `name`. */
static void check_against(hd_backend *be, const hd_tensor *t, const hd_safetensors *g,
                          const char *name) {
    const hd_st_tensor *ref = hd_st_find(g, name);
    CHECKF(ref != NULL, "%s missing", name);
    if (!ref) return;
    CHECKF(ref->ndim == 2 && ref->shape[0] == t->rows && ref->shape[1] == t->cols,
           "%s: golden shape differs from output [%lld, %lld]", name, (long long)t->rows,
           (long long)t->cols);
    if (ref->numel != t->rows * t->cols) return;
    size_t n = (size_t)ref->numel;
    double *want = malloc(n * sizeof *want);
    float *got = read_host(be, t);
    hd_error e = {0};
    int rc = want && got ? hd_st_read_f64(ref, want, n, &e) : HD_ENOMEM;
    CHECKF(rc == 0, "%s: %s", name, e.msg);
    if (!rc) {
        double err = rel_err(got, want, n);
        printf("  %s: relative error %.3g\n", name, err);
        CHECKF(err <= 1e-4, "%s: relative error %.3g > 1e-4", name, err);
    }
    free(want);
    free(got);
}

/* Runs one golden case (prefix "forward.<case>.") and checks embeds and every DeepStack output. */
static void run_golden_case(vit_fixture *f, const hd_safetensors *g, const char *prefix) {
    char name[512];
    hd_error e = {0};
    snprintf(name, sizeof name, "%simage_grid_thw", prefix);
    const hd_st_tensor *tg = hd_st_find(g, name);
    snprintf(name, sizeof name, "%spixel_values", prefix);
    const hd_st_tensor *tp = hd_st_find(g, name);
    CHECKF(tg && tg->ndim == 2 && tg->shape[1] == 3, "%simage_grid_thw missing or not [K,3]",
           prefix);
    CHECKF(tp && tp->ndim == 2, "%spixel_values not 2-D", prefix);
    if (!tg || tg->ndim != 2 || tg->shape[1] != 3 || !tp || tp->ndim != 2) return;

    int n_img = (int)tg->shape[0];
    int64_t(*grid)[3] = malloc((size_t)n_img * sizeof *grid);
    float *px = malloc((size_t)tp->numel * sizeof(float));
    int rc = grid && px ? 0 : HD_ENOMEM;
    if (!rc) rc = hd_st_read_i64(tg, &grid[0][0], (size_t)n_img * 3, &e);
    if (!rc) rc = hd_st_read_f32(tp, px, (size_t)tp->numel, &e);
    CHECKF(rc == 0, "%s inputs: %s", prefix, e.msg);

    hd_vit_output out = {0};
    if (!rc) {
        rc = hd_vit_forward(f->vit, px, (const int64_t(*)[3])grid, n_img, &out, &e);
        CHECKF(rc == 0, "%s forward: %s", prefix, e.msg);
    }
    if (!rc) {
        snprintf(name, sizeof name, "%svision_embeds", prefix);
        check_against(f->be, &out.embeds, g, name);
        int n_ds = 0;
        for (;; n_ds++) {
            snprintf(name, sizeof name, "%svision_deepstack_%d", prefix, n_ds);
            if (!hd_st_find(g, name)) break;
            CHECKF(n_ds < out.n_deepstack, "%s: golden has more DeepStack outputs than the ViT",
                   name);
            if (n_ds < out.n_deepstack) check_against(f->be, &out.deepstack[n_ds], g, name);
        }
        CHECKF(n_ds == out.n_deepstack, "%s: %d golden DeepStack outputs, ViT made %d", prefix,
               n_ds, out.n_deepstack);
    }
    hd_vit_output_free(f->be, &out);
    free(grid);
    free(px);
}

/* The "forward.<case>." prefixes of golden cases that carry pixel_values (malloc'd, sorted). */
static int vit_case_prefixes(const hd_safetensors *g, char **out, int max) {
    static const char suffix[] = ".pixel_values";
    size_t sl = strlen(suffix);
    int n = 0;
    for (int i = 0; i < g->n_tensors && n < max; i++) {
        const char *nm = g->tensors[i].name;
        size_t len = strlen(nm);
        if (strncmp(nm, "forward.", 8) != 0 || len <= 8 + sl || strcmp(nm + len - sl, suffix))
            continue;
        out[n] = malloc(len - sl + 2);
        if (!out[n]) break;
        snprintf(out[n], len - sl + 2, "%.*s", (int)(len - sl + 1), nm);
        n++;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

static void test_golden_vision_outputs_match_reference(void) {
    char *dirs[MAX_DIRS];
    int n_dirs = golden_model_dirs(dirs, MAX_DIRS), n_cases = 0;
    for (int d = 0; d < n_dirs; d++) {
        char path[2048], *cases[MAX_CASES];
        hd_error e = {0};
        hd_safetensors g = {0};
        snprintf(path, sizeof path, "%s/golden.safetensors", dirs[d]);
        int rc = hd_st_open(&g, path, &e);
        CHECKF(rc == 0, "%s", e.msg);
        int n = rc == 0 ? vit_case_prefixes(&g, cases, MAX_CASES) : 0;
        vit_fixture f;
        if (n > 0 && fixture_open(&f, dirs[d]) == 0) {
            for (int c = 0; c < n; c++) {
                printf("  %s: case %s\n", dirs[d], cases[c]);
                run_golden_case(&f, &g, cases[c]);
                n_cases++;
            }
        }
        if (n > 0) fixture_close(&f);
        for (int c = 0; c < n; c++) free(cases[c]);
        hd_st_close(&g);
        free(dirs[d]);
    }
    CHECKF(n_cases > 0, "no golden forward case with pixel_values found under %s/golden",
           getenv("HIDREAM_SHARED") ? getenv("HIDREAM_SHARED") : "../shared");
}

/* Deterministic pseudo-random pixels in [-1, 1]. */
static void fill_pixels(float *p, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 32767.5f - 1.0f;
    }
}

/* Largest |a−b| over the first n values. */
static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m) m = d;
    }
    return m;
}

/* Two images of different grids: the rows of image 1 depend only on image 1. */
static void test_attention_is_block_diagonal_per_image(void) {
    char dir[2048];
    if (!vision_model_dir(dir, sizeof dir)) return;
    vit_fixture f;
    if (fixture_open(&f, dir) == 0) {
        const hd_vision_config *v = &f.cfg.vision;
        int64_t m = v->spatial_merge_size, mm = m * m;
        int64_t pd = (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size *
                     v->patch_size;
        int64_t grid[2][3] = {{1, 2 * m, 3 * m}, {1, 3 * m, m}};
        int64_t n1 = grid[0][1] * grid[0][2], n2 = grid[1][1] * grid[1][2];
        int64_t out1 = n1 / mm, width = v->out_hidden_size;
        float *px = malloc((size_t)((n1 + n2) * pd) * sizeof(float));
        float *a[1 + HD_MAX_DEEPSTACK] = {0}, *b[1 + HD_MAX_DEEPSTACK] = {0},
              *solo[1 + HD_MAX_DEEPSTACK] = {0};
        hd_error e = {0};
        hd_vit_output o = {0};
        int n_out = 1 + v->n_deepstack;
        /* run 0: [A, B]; run 1: [A, B'] (B changed); run 2: [A] alone */
        for (int run = 0; run < 3 && px; run++) {
            fill_pixels(px, (size_t)(n1 * pd), 1);
            fill_pixels(px + n1 * pd, (size_t)(n2 * pd), run == 0 ? 2 : 3);
            int rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])grid, run == 2 ? 1 : 2, &o, &e);
            CHECKF(rc == 0, "forward: %s", e.msg);
            if (rc) break;
            CHECK(o.n_tokens == (run == 2 ? out1 : out1 + n2 / mm));
            float **dst = run == 0 ? a : run == 1 ? b : solo;
            for (int k = 0; k < n_out; k++)
                dst[k] = read_host(f.be, k == 0 ? &o.embeds : &o.deepstack[k - 1]);
            hd_vit_output_free(f.be, &o);
        }
        for (int k = 0; k < n_out && a[k] && b[k] && solo[k]; k++) {
            size_t n_a = (size_t)(out1 * width), n_b = (size_t)((n2 / mm) * width);
            double scale = 0;
            for (size_t i = 0; i < n_a; i++) scale = fmax(scale, fabs((double)a[k][i]));
            /* a leak across images moves values by O(scale); summation-order noise is ~1e-7 */
            double tol = 1e-5 * scale + 1e-30;
            double d_same = max_diff(a[k], b[k], n_a), d_solo = max_diff(a[k], solo[k], n_a);
            double d_other = max_diff(a[k] + n_a, b[k] + n_a, n_b);
            CHECKF(d_same <= tol, "output %d: image 1 changed by %g when image 2 changed", k,
                   d_same);
            CHECKF(d_solo <= tol, "output %d: image 1 alone differs by %g", k, d_solo);
            CHECKF(d_other > 100 * tol, "output %d: image 2's rows did not follow its pixels (%g)",
                   k, d_other);
        }
        for (int k = 0; k < n_out; k++) {
            free(a[k]);
            free(b[k]);
            free(solo[k]);
        }
        free(px);
    }
    fixture_close(&f);
}

/* Bad grids fail with a message and leave the output empty. */
static void test_invalid_grids_are_rejected(void) {
    char dir[2048];
    if (!vision_model_dir(dir, sizeof dir)) return;
    vit_fixture f;
    if (fixture_open(&f, dir) == 0) {
        int64_t m = f.cfg.vision.spatial_merge_size;
        float px[1] = {0}; /* never read: the grids are checked first */
        hd_vit_output o;
        hd_error e = {0};
        int64_t odd[1][3] = {{1, 2 * m + 1, 2 * m}};
        int64_t video[1][3] = {{2, 2 * m, 2 * m}};
        int64_t empty[1][3] = {{1, 0, 2 * m}};
        int64_t huge[1][3] = {{1, INT64_MAX / 2, 2 * m}};
        int rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])odd, 1, &o, &e);
        CHECKF(m == 1 || rc == HD_EINVAL, "odd grid: rc %d", rc);
        CHECK(o.n_tokens == 0 && o.embeds.data == NULL);
        rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])video, 1, &o, &e);
        CHECK(rc == HD_EUNSUPPORTED && strstr(e.msg, "image_grid_thw[0]"));
        rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])empty, 1, &o, &e);
        CHECK(rc == HD_EINVAL && e.msg[0]);
        rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])huge, 1, &o, &e);
        CHECK(rc == HD_EINVAL && e.msg[0]);
        rc = hd_vit_forward(f.vit, px, (const int64_t(*)[3])video, 0, &o, &e);
        CHECK(rc == HD_EINVAL);
    }
    fixture_close(&f);
}

/* A config without vision_config, weights without model.visual.*, and weights whose shapes do
 * not match the config are each refused with a one-line message naming the culprit. */
static void test_model_without_vision_tower_is_rejected(void) {
    char dir[2048];
    if (!vision_model_dir(dir, sizeof dir)) return;
    hd_backend *be = make_backend();
    hd_config cfg;
    hd_error e = {0};
    int rc = be ? hd_config_load_dir(&cfg, dir, &e) : -1;
    CHECKF(rc == 0, "config: %s", e.msg);
    if (rc == 0) {
        static int sentinel;
        hd_vit *vit = (hd_vit *)(void *)&sentinel; /* create must reset it on failure */
        /* 1. no vision_config */
        hd_config novis = cfg;
        novis.vision.present = 0;
        hd_safetensors empty = {0};
        rc = hd_vit_create(&vit, be, &novis, &empty, &e);
        CHECK(rc == HD_EUNSUPPORTED && vit == NULL);
        CHECKF(strstr(e.msg, "vision") != NULL, "message: %s", e.msg);

        /* 2. a text-only checkpoint */
        char tmp[512], path[1024];
        hd_test_tmpdir(tmp, sizeof tmp);
        snprintf(path, sizeof path, "%s/model.safetensors", tmp);
        float one[4] = {1, 2, 3, 4};
        hd_st_write_item item = {.name = "model.language_model.norm.weight", .dtype = HD_F32,
                                 .ndim = 1, .shape = {4}, .data = one};
        rc = hd_st_write(path, &item, 1, &e);
        CHECKF(rc == 0, "write: %s", e.msg);
        hd_safetensors text_only = {0};
        if (rc == 0) rc = hd_st_open(&text_only, path, &e);
        CHECKF(rc == 0, "open: %s", e.msg);
        if (rc == 0) {
            vit = (hd_vit *)(void *)&sentinel;
            rc = hd_vit_create(&vit, be, &cfg, &text_only, &e);
            CHECK((rc == HD_EFORMAT || rc == HD_EUNSUPPORTED) && vit == NULL);
            CHECKF(strstr(e.msg, "model.visual.") != NULL, "message: %s", e.msg);
            hd_st_close(&text_only);
        }
        remove(path);
        remove(tmp);

        /* 3. the real weights against a config with a different MLP width */
        hd_safetensors st = {0};
        rc = hd_st_open_dir(&st, dir, &e);
        CHECKF(rc == 0, "weights: %s", e.msg);
        if (rc == 0) {
            hd_config wrong = cfg;
            wrong.vision.intermediate_size += 4;
            vit = (hd_vit *)(void *)&sentinel;
            rc = hd_vit_create(&vit, be, &wrong, &st, &e);
            CHECK(rc == HD_EFORMAT && vit == NULL);
            CHECKF(strstr(e.msg, "blocks.0.mlp.linear_fc1.weight") != NULL, "message: %s", e.msg);
            /* a DeepStack index past the last block */
            wrong = cfg;
            wrong.vision.n_deepstack = 1;
            wrong.vision.deepstack_indexes[0] = cfg.vision.depth;
            rc = hd_vit_create(&vit, be, &wrong, &st, &e);
            CHECK(rc == HD_EFORMAT && strstr(e.msg, "deepstack_visual_indexes"));
            hd_st_close(&st);
        }
    }
    hd_backend_destroy(be);
}

/* The rotary inverse frequencies of the 8B ViT (head dim 72) as listed in spec 04 §5. */
static void test_rope_inv_freq_matches_spec_for_head_dim_72(void) {
    static const float want[18] = {1.0f,        0.59948421f, 0.35938138f, 0.21544348f,
                                   0.12915497f, 0.07742636f, 0.04641588f, 0.02782559f,
                                   0.01668101f, 0.01f,       0.00599484f, 0.00359381f,
                                   0.00215443f, 0.00129155f, 0.00077426f, 0.00046416f,
                                   0.00027826f, 0.00016681f};
    float got[18];
    hd_vit_rope_inv_freq(got, 72);
    for (int k = 0; k < 18; k++)
        CHECKF(fabsf(got[k] - want[k]) <= 1e-6f * want[k] + 5e-9f, "k=%d: %.9g vs %.9g", k,
               got[k], want[k]);
}

/* Rotary tables follow the processor token order: token 1 of a 2×2 block is patch (0, 1),
 * token m² is the next block to the right; both halves of a row are equal. */
static void test_rope_tables_follow_block_token_order(void) {
    enum { HD = 8, GH = 4, GW = 4 };
    float inv[HD / 4], c[GH * GW * HD], s[GH * GW * HD];
    hd_vit_rope_inv_freq(inv, HD);
    hd_vit_rope_fill(inv, HD, GH, GW, 2, c, s);
    /* token 1: y = 0, x = 1; token 4: y = 0, x = 2; token 2: y = 1, x = 0 */
    CHECK(c[1 * HD + 0] == 1.0f && c[1 * HD + 2] == cosf(1.0f * inv[0]));
    CHECK(s[4 * HD + 2] == sinf(2.0f * inv[0]) && s[4 * HD + 0] == 0.0f);
    CHECK(s[2 * HD + 0] == sinf(1.0f * inv[0]) && s[2 * HD + 3] == 0.0f);
    for (int i = 0; i < GH * GW; i++)
        for (int d = 0; d < HD / 2; d++)
            CHECK(c[i * HD + d] == c[i * HD + HD / 2 + d] && s[i * HD + d] == s[i * HD + HD / 2 + d]);
}

/* On a grid the size of the table the interpolation is exact: every token gets its own row. */
static void test_posembed_on_table_grid_is_the_table(void) {
    enum { SIDE = 6, HID = 5 };
    float table[SIDE * SIDE * HID], out[SIDE * SIDE * HID];
    for (int i = 0; i < SIDE * SIDE * HID; i++) table[i] = (float)i * 0.25f - 3.0f;
    hd_vit_posembed_fill(table, SIDE, HID, SIDE, SIDE, 2, out);
    for (int i = 0; i < SIDE * SIDE; i++) {
        int64_t y, x;
        hd_vit_token_yx(i, SIDE, 2, &y, &x);
        CHECKF(memcmp(out + i * HID, table + (y * SIDE + x) * HID, HID * sizeof(float)) == 0,
               "token %d (y %lld, x %lld)", i, (long long)y, (long long)x);
    }
    /* a 2×2 grid samples the four corners of the table */
    float two[2 * 2 * HID];
    hd_vit_posembed_fill(table, SIDE, HID, 2, 2, 2, two);
    CHECK(memcmp(two + 1 * HID, table + (SIDE - 1) * HID, HID * sizeof(float)) == 0);
    CHECK(memcmp(two + 3 * HID, table + (SIDE * SIDE - 1) * HID, HID * sizeof(float)) == 0);
}

/* PyTorch's linspace counts the second half down from the end, so the last patch column samples
 * the last table column exactly (a plain step·i would land 1 ulp short for some widths). */
static void test_posembed_last_column_is_the_table_edge(void) {
    enum { SIDE = 48, MAXW = 160 };
    float *table = malloc(SIDE * SIDE * sizeof(float)), *row = malloc(MAXW * sizeof(float));
    if (!table || !row) {
        CHECK(0);
        free(table);
        free(row);
        return;
    }
    for (int r = 0; r < SIDE; r++)
        for (int c = 0; c < SIDE; c++) table[r * SIDE + c] = (float)c; /* value = column */
    int bad = 0;
    for (int gw = 2; gw <= MAXW; gw++) {
        hd_vit_posembed_fill(table, SIDE, 1, 1, gw, 1, row);
        if (row[gw - 1] != (float)(SIDE - 1) || row[0] != 0.0f) bad++;
        for (int j = 1; j < gw; j++)
            if (!(row[j] > row[j - 1])) bad++;
    }
    CHECKF(bad == 0, "%d widths miss the table edges or are not increasing", bad);
    free(table);
    free(row);
}

int main(void) {
    RUN_TEST(test_rope_inv_freq_matches_spec_for_head_dim_72);
    RUN_TEST(test_rope_tables_follow_block_token_order);
    RUN_TEST(test_posembed_on_table_grid_is_the_table);
    RUN_TEST(test_posembed_last_column_is_the_table_edge);
    RUN_TEST(test_model_without_vision_tower_is_rejected);
    RUN_TEST(test_invalid_grids_are_rejected);
    RUN_TEST(test_golden_vision_outputs_match_reference);
    RUN_TEST(test_attention_is_block_diagonal_per_image);
    return hd_test_finish();
}
