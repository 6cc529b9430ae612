/* libFuzzer target: what `hidream serve` parses from the network — the first byte picks the
 * path: JSON bodies of the three APIs (OpenAI, A1111, native jobs; base64 pictures inside), a
 * multipart/form-data body through the /v1/images/edits form rules, the Content-Type boundary,
 * and base64 text. Nothing may crash or leak; a parsed request must be consistent. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/base64.h"
#include "server/multipart.h"
#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const hd_srv_request *r) {
    if (!r->p.prompt || r->n < 1 || r->n_refs < 0 || r->n_refs > HD_SRV_MAX_REFS) abort();
    for (int i = 0; i < r->n_refs; i++)
        if (!r->refs[i].px || r->refs[i].w < 1) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int path = data[0] % 6;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    hd_generate_params d[2];
    hd_generate_defaults(&d[0], HD_MODE_FULL);
    hd_generate_defaults(&d[1], HD_MODE_DEV);
    hd_srv_limits lim;
    hd_srv_limits_default(&lim);
    lim.max_ref_pixels = 1 << 16; /* a hostile header cannot make one run slow */
    hd_srv_request r;
    hd_error e;
    if (path < 3) {
        if (hd_srv_request_from_json(&r, (hd_api_kind)path, body, len, d, &lim, &e) == 0) check(&r);
        hd_srv_request_free(&r);
    } else if (path == 3) {
        hd_multipart *m = malloc(sizeof *m);
        if (hd_multipart_parse(body, len, "XyZ", m, &e) == 0) {
            for (int i = 0; i < m->n; i++)
                if (m->parts[i].data < body || m->parts[i].data + m->parts[i].len > body + len) abort();
            if (hd_srv_request_from_form(&r, m, d, &lim, &e) == 0) check(&r);
            hd_srv_request_free(&r);
        }
        free(m);
    } else if (path == 4) {
        char *ct = malloc(len + 1), b[128];
        memcpy(ct, body, len);
        ct[len] = 0;
        if (hd_multipart_boundary(ct, b, sizeof b, &e) == 0 && (!b[0] || strlen(b) > 70)) abort();
        free(ct);
    } else {
        uint8_t *out;
        size_t n;
        if (hd_base64_decode(body, len, &out, &n) == 0) {
            char *again = hd_base64_encode(out, n);
            if (!again) abort();
            free(again);
            free(out);
        }
    }
    return 0;
}
