/* Writing a small text file atomically: a temporary name in the same folder, renamed over the
 * target once complete, so a failure never leaves a half-written caption or tokenizer. */
#ifndef HD_DATA_TEXT_FILE_H
#define HD_DATA_TEXT_FILE_H

#include <stddef.h>

#include "hidream.h"

int hd_write_text_file(const char *path, const char *data, size_t len, hd_error *e);

#endif
