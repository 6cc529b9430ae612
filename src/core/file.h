/* Reading a whole (small) file into memory: config.json, index files, tokenizer.json, images,
 * layout files. One implementation so every reader refuses the same things the same way. */
#ifndef HD_CORE_FILE_H
#define HD_CORE_FILE_H

#include <stddef.h>

#include "hidream.h"

/* Reads the regular file at path into a malloc'd buffer with a NUL byte after the last byte
 * (*len excludes it). Files over max_bytes are refused before reading (HD_ENOMEM); a path that
 * cannot be opened or is not a regular file gives HD_EIO. Messages start with the path. */
int hd_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, hd_error *e);

#endif
