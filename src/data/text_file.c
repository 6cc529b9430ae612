#include "data/text_file.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/temp_guard.h"

int hd_write_text_file(const char *path, const char *data, size_t len, hd_error *e) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    sigset_t mask;
    hd_temp_guard_block(&mask);
    int fd = mkstemp(tmp);
    int guard = fd >= 0 ? hd_temp_guard_add(tmp) : -1;
    hd_temp_guard_unblock(&mask);
    if (fd < 0) {
        int rc = hd_fail(e, HD_EIO, "%s: cannot create a temporary file: %s", path,
                         strerror(errno));
        free(tmp);
        return rc;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a caption or tokenizer is not secret */
    FILE *f = fdopen(fd, "wb");
    int rc = 0;
    if (!f) {
        close(fd);
        rc = hd_fail(e, HD_EIO, "%s: cannot write: %s", path, strerror(errno));
    } else {
        if (fwrite(data, 1, len, f) != len || fflush(f) != 0)
            rc = hd_fail(e, HD_EIO, "%s: write failed: %s", path, strerror(errno));
        if (fclose(f) != 0 && rc == 0)
            rc = hd_fail(e, HD_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    if (rc == 0 && rename(tmp, path) != 0)
        rc = hd_fail(e, HD_EIO, "%s: cannot rename the temporary file into place: %s", path,
                     strerror(errno));
    if (rc < 0) unlink(tmp);
    hd_temp_guard_remove(guard); /* after the unlink: no window without a guard */
    free(tmp);
    return rc;
}
