/* hidream.c — public C API of libhidream.
 *
 * HiDream-O1-Image inference in C: load a model directory, build the token sequence, run the
 * Unified Transformer, sample, and write the picture. Every function that can fail returns 0 or a
 * negative HD_E* code and fills an hd_error with one line naming the file and the field at fault.
 * The caller owns what it allocates; objects returned by the open/load functions are released by the
 * matching close/free function. No function prints. */
#ifndef HIDREAM_H
#define HIDREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ------------------------------------------------------------------------------ */
enum {
    HD_OK = 0,
    HD_EIO = -1,          /* a file could not be opened, read or written */
    HD_EFORMAT = -2,      /* malformed input: JSON, safetensors, image, UTF-8, ... */
    HD_EINVAL = -3,       /* an argument or parameter is out of range */
    HD_ENOMEM = -4,       /* allocation failed or a size limit was hit */
    HD_EUNSUPPORTED = -5, /* well-formed but not supported (dtype, architecture, ...) */
    HD_ECANCELLED = -6,   /* the caller's cancel flag was raised */
    HD_EMISMATCH = -7,    /* shapes or values disagree (model vs config, golden checks) */
};

typedef struct hd_error {
    int code;
    char msg[1024];
} hd_error;

/* Short name of a status code ("malformed input", ...). */
const char *hd_status_name(int code);

const char *hd_version(void);

#ifdef __cplusplus
}
#endif
#endif
