#include "cli/embedded_model.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int has_config(const char *dir) {
    char path[PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path) return 0;
    return access(path, R_OK) == 0;
}

static void append(char *buf, size_t n, const char *s) {
    size_t l = strlen(buf);
    if (l + 1 < n && snprintf(buf + l, n - l, "%s%s", l ? ", " : "", s) >= (int)(n - l))
        buf[n - 1] = 0; /* truncated: still a string */
}

int hd_find_embedded_model_from(const char *exe, char *dir, size_t n, char *searched,
                                size_t searched_n) {
    char self[PATH_MAX], exe_dir[PATH_MAX] = "";
    if (!exe) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len > 0) {
            self[len] = 0;
            exe = self;
        }
    }
    if (exe && exe[0] == '/') { /* only an absolute path says where the binary is */
        if (snprintf(exe_dir, sizeof exe_dir, "%s", exe) >= (int)sizeof exe_dir) exe_dir[0] = 0;
        char *slash = strrchr(exe_dir, '/');
        if (slash == exe_dir) slash[1] = 0;
        else if (slash) *slash = 0;
    }
    char cand[4][PATH_MAX + 64];
    int nc = 0;
    char parent[PATH_MAX + 8], parent_real[PATH_MAX] = "";
    if (exe_dir[0] && (snprintf(parent, sizeof parent, "%s/..", exe_dir) >= (int)sizeof parent ||
                       !realpath(parent, parent_real)))
        parent_real[0] = 0;
    if (parent_real[0] &&
        snprintf(cand[nc], sizeof cand[0], "%s/models/" HD_EMBEDDED_MODEL_NAME, parent_real) <
            (int)sizeof cand[0])
        nc++;
    if (exe_dir[0] &&
        snprintf(cand[nc], sizeof cand[0], "%s/models/" HD_EMBEDDED_MODEL_NAME, exe_dir) <
            (int)sizeof cand[0])
        nc++;
    /* an install tree moved elsewhere: <prefix>/bin/hidream, <prefix>/share/hidream/models */
    if (parent_real[0] &&
        snprintf(cand[nc], sizeof cand[0], "%s/share/hidream/models/" HD_EMBEDDED_MODEL_NAME,
                 parent_real) < (int)sizeof cand[0])
        nc++;
    if (snprintf(cand[nc], sizeof cand[0], "%s/" HD_EMBEDDED_MODEL_NAME, HIDREAM_MODELS_DIR) <
        (int)sizeof cand[0])
        nc++;
    if (searched_n) searched[0] = 0;
    for (int i = 0; i < nc; i++) {
        /* resolve "..": the path is shown to the user and stored in PNG metadata */
        char real[PATH_MAX];
        const char *c = realpath(cand[i], real) ? real : cand[i];
        if (has_config(c) && snprintf(dir, n, "%s", c) < (int)n) return 0;
        append(searched, searched_n, c);
    }
    return -1;
}

int hd_find_embedded_model(char *dir, size_t n, char *searched, size_t searched_n) {
    return hd_find_embedded_model_from(NULL, dir, n, searched, searched_n);
}
