/* Sample grid pictures and the shapes-world score of a model (judge.h). */
#include "train/judge.h"

#include <string.h>

#include "core/error.h"
#include "data/prng.h"

int hd_train_draw_samples(hd_model *m, const char (*prompts)[256], int n, hd_image *out,
                          hd_error *e) {
    for (int i = 0; i < n; i++) {
        hd_generate_params p;
        hd_model_generate_defaults(m, &p, HD_MODE_FULL);
        p.prompt = prompts[i];
        p.seed = (uint64_t)i;
        int rc = hd_generate(m, &p, &out[i], e);
        if (rc < 0) {
            for (int k = 0; k < i; k++) hd_image_free(&out[k]);
            return hd_error_prefix(e, "sample '%s'", prompts[i]);
        }
    }
    return 0;
}

int hd_train_judge_shapes(hd_model *m, int n, uint64_t seed, hd_shapes_tally *t, hd_error *e) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < n; i++) {
        hd_prng r;
        hd_prng_seed(&r, hd_prng_derive(seed, (uint64_t)i));
        hd_shapes_prompt sp;
        hd_shapes_prompt_sample(&r, &sp);
        char prompt[HD_SHAPES_PROMPT_MAX];
        hd_shapes_prompt_format(&sp, prompt, sizeof prompt);
        hd_generate_params p;
        hd_model_generate_defaults(m, &p, HD_MODE_FULL);
        p.prompt = prompt;
        p.seed = seed + (uint64_t)i;
        hd_image im = {0};
        HD_TRY(hd_generate(m, &p, &im, e));
        hd_shapes_verdict v;
        hd_shapes_judge_parsed(&im, &sp, &v);
        hd_shapes_tally_add(t, &v);
        hd_image_free(&im);
    }
    return 0;
}
