/* Backend construction by name; the CUDA backend is a module loaded on first use. */
#include "backend/backend.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

#ifdef HIDREAM_HAVE_CUDA
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Loaded once per process and never unloaded (the CUDA runtime does not survive dlclose). */
static struct {
    pthread_once_t once;
    hd_backend_create_fn create;
    int code;
    char why[sizeof(((hd_error *)0)->msg)];
} cuda_module = {.once = PTHREAD_ONCE_INIT};

/* Tries one path: 1 = loaded, 0 = no file there, -1 = a file that does not load (why set). */
static int cuda_try(const char *path) {
    if (access(path, F_OK) != 0) return 0;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *d = dlerror();
        cuda_module.code = HD_EUNSUPPORTED;
        snprintf(cuda_module.why, sizeof cuda_module.why, "backend 'cuda': %s does not load: %s",
                 path, d ? d : "unknown reason");
        return -1;
    }
    uint32_t (*abi)(void) = (uint32_t(*)(void))dlsym(h, HD_BACKEND_CUDA_ABI);
    hd_backend_create_fn create = (hd_backend_create_fn)dlsym(h, HD_BACKEND_CUDA_CREATE);
    if (!abi || !create || abi() != hd_backend_abi()) {
        cuda_module.code = HD_EUNSUPPORTED;
        snprintf(cuda_module.why, sizeof cuda_module.why,
                 "backend 'cuda': %s is not the CUDA module of this build (%s)", path,
                 !abi || !create ? "missing entry points" : "different interface version");
        dlclose(h);
        return -1;
    }
    cuda_module.create = create;
    return 1;
}

static void cuda_load(void) {
    const char *env = getenv("HIDREAM_CUDA_MODULE");
    if (env && *env) {
        int r = cuda_try(env);
        if (r == 0) {
            cuda_module.code = HD_EUNSUPPORTED;
            snprintf(cuda_module.why, sizeof cuda_module.why,
                     "backend 'cuda': HIDREAM_CUDA_MODULE=%s: no such file", env);
        }
        return;
    }
    /* beside the running program (build tree, unpacked tree), then the install folder */
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(path, sizeof path, "%s/%s", exe, HD_BACKEND_CUDA_MODULE);
        int r = cuda_try(path);
        if (r != 0) return;
    }
    snprintf(path, sizeof path, "%s/%s", HIDREAM_CUDA_MODULE_DIR, HD_BACKEND_CUDA_MODULE);
    if (cuda_try(path) != 0) return;
    cuda_module.code = HD_EUNSUPPORTED;
    snprintf(cuda_module.why, sizeof cuda_module.why,
             "backend 'cuda': %s not found beside the program nor in %s (set "
             "HIDREAM_CUDA_MODULE to its path)",
             HD_BACKEND_CUDA_MODULE, HIDREAM_CUDA_MODULE_DIR);
}

static int cuda_create(hd_backend **out, const hd_backend_options *opt, hd_error *e) {
    pthread_once(&cuda_module.once, cuda_load);
    if (!cuda_module.create) return hd_fail(e, cuda_module.code, "%s", cuda_module.why);
    return cuda_module.create(out, opt, e);
}
#endif

int hd_backend_create(hd_backend **out, const char *name, const hd_backend_options *opt,
                      hd_error *e) {
    *out = NULL;
    if (!name || strcmp(name, "cpu") == 0) return hd_backend_cpu_create(out, opt, e);
    if (strcmp(name, "cuda") == 0) {
#ifdef HIDREAM_HAVE_CUDA
        return cuda_create(out, opt, e);
#else
        return hd_fail(e, HD_EUNSUPPORTED,
                       "backend 'cuda': this build has no CUDA support (configure with nvcc "
                       "available and -DHIDREAM_CUDA=ON)");
#endif
    }
    return hd_fail(e, HD_EINVAL, "backend '%s': unknown (expected 'cpu' or 'cuda')", name);
}

int hd_backend_native_bf16(const char *name, const hd_backend_options *opt) {
    if (name && !strcmp(name, "cuda")) return 1; /* the module is built for sm_90 */
    if (name && strcmp(name, "cpu")) return 0;
    return hd_backend_cpu_native_bf16(opt);
}

void hd_backend_destroy(hd_backend *be) {
    if (be && be->ops && be->ops->destroy) be->ops->destroy(be);
}

const char *hd_weight_use_name(hd_weight_use use) {
    switch (use) {
    case HD_USE_LINEAR:
    case HD_USE_LINEAR_ONCE:
    case HD_USE_LINEAR_OUTLIERS: return "matrix products";
    case HD_USE_ROWS: return "embedding lookups";
    case HD_USE_VECTOR: return "vector parameters";
    default: return "?";
    }
}

void hd_backend_linears(hd_backend *be, hd_tensor *const *ys, const hd_tensor *x,
                        const hd_tensor *const *ws, int n) {
    if (be->ops->linears && n <= HD_LINEARS_MAX) {
        be->ops->linears(be, ys, x, ws, n);
        return;
    }
    for (int i = 0; i < n; i++) be->ops->linear(be, ys[i], x, ws[i], NULL);
}

int hd_backend_bind_weight(hd_backend *be, hd_tensor *t, hd_weight_use use, hd_dtype dtype,
                           int64_t rows, int64_t cols, const void *host, float scale,
                           hd_error *e) {
    memset(t, 0, sizeof *t);
    if (!hd_dtype_is_weight(dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "dtype %s is not a weight format", hd_dtype_name(dtype));
    int blk = hd_dtype_block(dtype);
    if (cols % blk != 0)
        return hd_fail(e, HD_EFORMAT, "%s rows of %lld values are not whole blocks of %d",
                       hd_dtype_name(dtype), (long long)cols, blk);
    if (!be->ops->supports(be, use, dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "the %s backend cannot use %s weights for %s",
                       be->ops->name, hd_dtype_name(dtype), hd_weight_use_name(use));
    int fp8 = dtype == HD_F8_E4M3 || dtype == HD_F8_E5M2;
    if (!(scale > 0 && isfinite(scale)) || (!fp8 && scale != 1.0f))
        return hd_fail(e, HD_EFORMAT, "weight scale %g is not a positive finite number (or is "
                       "given for %s, which has none)", scale, hd_dtype_name(dtype));
    HD_TRY(be->ops->weight(be, t, dtype, rows, cols, host, e));
    t->wscale = scale;
    if ((use == HD_USE_LINEAR || use == HD_USE_LINEAR_OUTLIERS) && be->ops->prepare_linear) {
        int rc = be->ops->prepare_linear(be, t, use, e);
        if (rc < 0) {
            if (be->ops->free) be->ops->free(be, t);
            return rc;
        }
    }
    return 0;
}
