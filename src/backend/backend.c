/* Backend construction by name. */
#include "backend/backend.h"

#include <string.h>

#include "core/error.h"

int hd_backend_create(hd_backend **out, const char *name, const hd_backend_options *opt,
                      hd_error *e) {
    *out = NULL;
    if (!name || strcmp(name, "cpu") == 0) return hd_backend_cpu_create(out, opt, e);
    if (strcmp(name, "cuda") == 0) {
#ifdef HIDREAM_HAVE_CUDA
        return hd_backend_cuda_create(out, opt, e);
#else
        return hd_fail(e, HD_EUNSUPPORTED,
                       "backend 'cuda': this build has no CUDA support (configure with nvcc "
                       "available and -DHIDREAM_CUDA=ON)");
#endif
    }
    return hd_fail(e, HD_EINVAL, "backend '%s': unknown (expected 'cpu' or 'cuda')", name);
}

void hd_backend_destroy(hd_backend *be) {
    if (be && be->ops && be->ops->destroy) be->ops->destroy(be);
}
