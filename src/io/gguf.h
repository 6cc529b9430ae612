/* GGUF reader and writer: the tensor container of ggml, used by the community's quantized
 * checkpoints (llama.cpp, stable-diffusion.cpp, ComfyUI-GGUF).
 *
 * A GGUF file is read into the same tensor set as safetensors (hd_safetensors, zero copy from the
 * mapping): hd_st_open / hd_st_open_buffer / hd_st_open_dir recognise the "GGUF" magic and call
 * hd_gguf_parse. Shapes are turned into safetensors order (GGUF lists the innermost dimension
 * first). Names are the checkpoint's own tensor names, as the diffusion GGUF converters keep
 * them; a "model.diffusion_model." prefix (ComfyUI) is dropped, and a tensor of more than four
 * dimensions stored flattened gets its shape back from the "comfy.gguf.orig_shape.NAME" key.
 *
 * Everything read is treated as hostile: version 2 or 3 only, strings and arrays bounded by the
 * bytes left, every key/value type known, alignment a power of two ≥ 8, each tensor a supported
 * type whose rows are whole blocks, its byte range aligned, inside the data area and not
 * overlapping another, names unique. Each failure is one line naming the file and the key or
 * tensor. */
#ifndef HD_IO_GGUF_H
#define HD_IO_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "io/safetensors.h"

#define HD_GGUF_MAGIC "GGUF"
#define HD_GGUF_ALIGNMENT 32 /* the default, and what the writer uses */

/* 1 if the first bytes of a file are the GGUF magic. */
int hd_gguf_is_gguf(const void *buf, size_t len);

/* Parses the GGUF image buf[0, len) (file index `file` of st, named `what` in messages) and
 * appends its tensors to st. */
int hd_gguf_parse(hd_safetensors *st, int file, const uint8_t *buf, size_t len, const char *what,
                  hd_error *e);

/* A string metadata entry for the writer. */
typedef struct hd_gguf_kv {
    const char *key, *value;
} hd_gguf_kv;

/* Writes a GGUF v3 file: the string keys given, general.alignment, and per item a tensor of
 * its dtype (plain or block-quantized; ndim ≤ 4 is written as is, more dimensions flattened to
 * [shape[0], rest] with a comfy.gguf.orig_shape key). Item data as for hd_st_write: `data`, or
 * fill() producing the tensor's bytes in pieces. Writes PATH.tmp and renames. */
int hd_gguf_write(const char *path, const hd_st_write_item *items, int n_items,
                  const hd_gguf_kv *kv, int n_kv, hd_error *e);

#endif
