/* The precision option: names, the default's resolution (bf16 only where the backend multiplies
 * bf16 natively), and what a loaded model reports. */
#include <string.h>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "hidream.h"
#include "pipeline/precision.h"
#include "testutil.h"

static char model[512];

static void names_parse_back_and_unknown_ones_are_refused(void) {
    for (int p = HD_PRECISION_AUTO; p <= HD_PRECISION_INT8; p++) {
        hd_precision back = (hd_precision)-1;
        const char *name = hd_precision_name((hd_precision)p);
        CHECKF(name && hd_precision_parse(name, &back) == 0 && back == (hd_precision)p, "%d", p);
    }
    hd_precision x;
    CHECK(hd_precision_parse("fp32", &x) < 0 && hd_precision_parse("", &x) < 0);
    CHECK(hd_precision_parse("BF16", &x) < 0 && hd_precision_parse(NULL, &x) < 0);
    CHECK(hd_precision_name((hd_precision)4) == NULL && hd_precision_name((hd_precision)-1) == NULL);
}

static void auto_is_bf16_only_where_bf16_is_native(void) {
    CHECK(hd_precision_resolve(HD_PRECISION_AUTO, 1) == HD_PRECISION_BF16);
    CHECK(hd_precision_resolve(HD_PRECISION_AUTO, 0) == HD_PRECISION_EXACT);
    for (int native = 0; native <= 1; native++) {
        CHECK(hd_precision_resolve(HD_PRECISION_EXACT, native) == HD_PRECISION_EXACT);
        CHECK(hd_precision_resolve(HD_PRECISION_BF16, native) == HD_PRECISION_BF16);
        CHECK(hd_precision_resolve(HD_PRECISION_INT8, native) == HD_PRECISION_INT8);
    }
    /* the CUDA module is built for sm_90 (bf16 tensor cores); the AVX2 kernels have no bf16 */
    CHECK(hd_backend_native_bf16("cuda", NULL) == 1);
    CHECK(hd_backend_native_bf16("tpu", NULL) == 0);
    hd_backend_options avx2 = {.isa = 2};
    CHECK(hd_backend_native_bf16("cpu", &avx2) == 0);
    /* a CPU with AMX multiplies bf16 fast only on the tiles (VDPBF16PS runs at half the float32
     * FMA rate there): without them bf16 is not native */
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    hd_backend_options no_tiles = {.no_amx = 1};
    CHECK(hd_backend_native_bf16("cpu", &no_tiles) ==
          (f.amx_cpu ? 0 : hd_backend_native_bf16("cpu", NULL)));
    if (f.amx) CHECK(hd_backend_native_bf16("cpu", NULL) == 1);
}

static hd_precision loaded(hd_precision asked) {
    hd_model *m = NULL;
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .n_threads = 1, .precision = asked};
    CHECKF(hd_model_load(&m, model, &mo, &e) == 0, "%s", e.msg);
    hd_precision got = m ? hd_model_precision(m) : (hd_precision)-1;
    hd_model_free(m);
    return got;
}

static void a_loaded_model_reports_what_auto_resolved_to(void) {
    int native = hd_backend_native_bf16("cpu", NULL);
    CHECK(loaded(HD_PRECISION_AUTO) == (native ? HD_PRECISION_BF16 : HD_PRECISION_EXACT));
    CHECK(loaded(HD_PRECISION_EXACT) == HD_PRECISION_EXACT);
    CHECK(loaded(HD_PRECISION_BF16) == HD_PRECISION_BF16);
    CHECK(loaded(HD_PRECISION_INT8) == HD_PRECISION_INT8);
    /* NULL options are the defaults */
    hd_model *m = NULL;
    hd_error e = {0};
    CHECKF(hd_model_load(&m, model, NULL, &e) == 0, "%s", e.msg);
    CHECK(m && hd_model_precision(m) == loaded(HD_PRECISION_AUTO));
    hd_model_free(m);
}

static void bad_precisions_are_refused_at_load(void) {
    hd_model *m = NULL;
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .precision = (hd_precision)7};
    CHECK(hd_model_load(&m, model, &mo, &e) == HD_EINVAL && m == NULL);
    CHECKF(strstr(e.msg, "precision 7 out of range"), "%s", e.msg);
    mo = (hd_model_options){.backend = "cuda", .precision = HD_PRECISION_INT8};
    CHECK(hd_model_load(&m, model, &mo, &e) == HD_EUNSUPPORTED && m == NULL);
    CHECKF(strstr(e.msg, "int8 products run on the cpu backend only"), "%s", e.msg);
}

int main(void) {
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    RUN_TEST(names_parse_back_and_unknown_ones_are_refused);
    RUN_TEST(auto_is_bf16_only_where_bf16_is_native);
    RUN_TEST(a_loaded_model_reports_what_auto_resolved_to);
    RUN_TEST(bad_precisions_are_refused_at_load);
    return hd_test_finish();
}
