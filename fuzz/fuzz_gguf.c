/* libFuzzer target: arbitrary bytes as a GGUF image (io/gguf.c). Parsing must never crash, leak
 * or read outside the buffer; a successful parse must give tensors whose values (dequantized for
 * the block formats) read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* every input is taken as GGUF: inputs without the magic get it (the rest still varies) */
    uint8_t *buf = malloc(size + 4);
    if (!buf) return 0;
    size_t n = size;
    if (hd_gguf_is_gguf(data, size)) {
        memcpy(buf, data, size);
    } else {
        memcpy(buf, HD_GGUF_MAGIC, 4);
        memcpy(buf + 4, data, size);
        n = size + 4;
    }
    hd_safetensors st;
    hd_error e = {0};
    if (hd_st_open_buffer(&st, buf, n, "fuzz.gguf", &e) == 0) {
        for (int i = 0; i < st.n_tensors; i++) {
            const hd_st_tensor *t = &st.tensors[i];
            if (hd_st_find(&st, t->name) == NULL) abort(); /* sorted table must be searchable */
            if (t->numel > 4096 || !hd_dtype_is_float(t->dtype)) continue;
            size_t k = (size_t)t->numel;
            double *vals = malloc((k ? k : 1) * sizeof *vals);
            if (!vals) continue;
            if (hd_st_read_f32(t, (float *)vals, k, &e) != 0) abort();
            if (hd_st_read_f64(t, vals, k, &e) != 0) abort();
            free(vals);
        }
    }
    hd_st_close(&st);
    free(buf);
    return 0;
}
