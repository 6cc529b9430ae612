/* hd_model: a model directory opened, validated and bound to a backend. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/inventory.h"
#include "pipeline/pipeline.h"
#include "pipeline/precision.h"

int hd_model_check_patch_size(const hd_config *cfg, const hd_safetensors *st, const char *dir,
                              hd_error *e) {
    const char *name = "model.x_embedder.proj1.weight";
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t || t->ndim != 2) return 0; /* the inventory check names a missing or odd tensor */
    int p = cfg->gen.patch_size;
    int64_t want = (int64_t)3 * p * p, have = t->shape[1];
    if (have == want) return 0;
    /* the patch size the weights imply, when there is one */
    int64_t q = (int64_t)llround(sqrt((double)have / 3.0));
    char hint[96] = "";
    if (q >= 1 && 3 * q * q == have)
        snprintf(hint, sizeof hint, " (the weights are for patch size %lld)", (long long)q);
    return hd_fail(e, HD_EMISMATCH,
                   "%s/config.json: hidream.patch_size = %d needs %s with input width 3·%d² = "
                   "%lld, but it has %lld%s",
                   dir, p, name, p, (long long)want, (long long)have, hint);
}

int hd_model_load(hd_model **out, const char *dir, const hd_model_options *opt, hd_error *e) {
    *out = NULL;
    hd_model *m = calloc(1, sizeof *m);
    if (!m) return hd_fail(e, HD_ENOMEM, "out of memory");
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    hd_backend_options bo = {.n_threads = opt ? opt->n_threads : 0};
    const char *backend = opt && opt->backend ? opt->backend : "cpu";
    snprintf(m->backend, sizeof m->backend, "%s", backend);
    if (opt && !hd_precision_name(opt->precision)) {
        free(m);
        return hd_fail(e, HD_EINVAL, "model options: precision %d out of range", (int)opt->precision);
    }
    m->precision = hd_precision_resolve(opt ? opt->precision : HD_PRECISION_AUTO,
                                        hd_backend_native_bf16(backend, &bo));
    bo.gemm_bf16 = m->precision == HD_PRECISION_BF16;
    bo.gemm_int8 = m->precision == HD_PRECISION_INT8;
    if (bo.gemm_int8 && strcmp(backend, "cpu")) {
        free(m);
        return hd_fail(e, HD_EUNSUPPORTED, "int8 products run on the cpu backend only, not '%s'",
                       backend);
    }
    int rc = hd_config_load_dir(&m->cfg, dir, e);
    if (rc == 0) rc = hd_st_open_dir(&m->st, dir, e);
    if (rc == 0) rc = hd_model_check_patch_size(&m->cfg, &m->st, dir, e);
    if (rc == 0) rc = hd_inventory_check(&m->cfg, &m->st, 0, e);
    if (rc == 0) rc = hd_tokenizer_load(&m->tok, dir, e);
    if (rc == 0) rc = hd_backend_create(&m->be, backend, &bo, e);
    if (rc == 0) rc = hd_uit_create(&m->uit, m->be, &m->cfg, &m->st, e);
    /* the inventory check made the tower all there or absent: a checkpoint without its tensors
     * still serves text-to-image, and reference requests are refused (hd_model_check_request) */
    if (rc == 0 && m->cfg.vision.present &&
        hd_st_find(&m->st, "model.visual.patch_embed.proj.weight")) {
        rc = hd_vit_create(&m->vit, m->be, &m->cfg, &m->st, e);
        if (rc == HD_EUNSUPPORTED) { /* text-to-image still works without the tower */
            snprintf(m->vit_unusable, sizeof m->vit_unusable, "%s", e ? e->msg : "unsupported");
            rc = 0;
        }
    }
    if (rc < 0) {
        hd_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void hd_model_free(hd_model *m) {
    if (!m) return;
    hd_vit_free(m->vit);
    hd_uit_free(m->uit);
    if (m->be) hd_backend_destroy(m->be);
    hd_tokenizer_free(m->tok);
    hd_st_close(&m->st);
    free(m);
}

const char *hd_model_name(const hd_model *m) { return m->cfg.name; }

hd_precision hd_model_precision(const hd_model *m) { return m->precision; }
