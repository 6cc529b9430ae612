/* libFuzzer target: arbitrary bytes as a safetensors image. Parsing must never crash, leak or
 * read outside the buffer; a successful parse must give tensors that read back. */
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hd_safetensors st;
    hd_error e = {0};
    if (hd_st_open_buffer(&st, data, size, "fuzz", &e) == 0) {
        /* touch every tensor's bytes through the typed readers (small ones only) */
        for (int i = 0; i < st.n_tensors; i++) {
            const hd_st_tensor *t = &st.tensors[i];
            if (hd_st_find(&st, t->name) == NULL) abort(); /* sorted table must be searchable */
            if (t->numel > 4096) continue;
            size_t n = (size_t)t->numel;
            double *buf = malloc((n ? n : 1) * sizeof *buf);
            if (!buf) continue;
            if (hd_dtype_is_float(t->dtype)) {
                hd_st_read_f32(t, (float *)buf, n, &e);
                hd_st_read_f64(t, buf, n, &e);
            } else {
                hd_st_read_i64(t, (int64_t *)buf, n, &e);
            }
            free(buf);
        }
    }
    hd_st_close(&st);
    return 0;
}
