/* Where the embedded default model (models/shapes) is found: next to the binary, then in the
 * install tree. Never relative to the current directory, so `hidream generate` behaves the same
 * wherever it is run from. */
#ifndef HD_CLI_EMBEDDED_MODEL_H
#define HD_CLI_EMBEDDED_MODEL_H

#include <stddef.h>

/* The install tree's model folder, compiled in (CMake: ${CMAKE_INSTALL_PREFIX}/share/hidream/models). */
#ifndef HIDREAM_MODELS_DIR
#define HIDREAM_MODELS_DIR "/usr/local/share/hidream/models"
#endif

#define HD_EMBEDDED_MODEL_NAME "shapes"

/* Candidates in order: <exe dir>/../models/shapes, <exe dir>/models/shapes,
 * <exe dir>/../share/hidream/models/shapes (a relocated install tree), HIDREAM_MODELS_DIR/shapes; the first holding a config.json wins. exe is the binary's path
 * (NULL = /proc/self/exe). Writes the directory to dir and returns 0, or returns -1 with the
 * candidates looked at, comma-separated, in searched. */
int hd_find_embedded_model_from(const char *exe, char *dir, size_t n, char *searched,
                                size_t searched_n);
int hd_find_embedded_model(char *dir, size_t n, char *searched, size_t searched_n);

#endif
