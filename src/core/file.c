#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

int hd_read_file(const char *path, size_t max_bytes, char **buf, size_t *len, hd_error *e) {
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; anything but a
     * regular file is refused before a byte is read. A regular file reads normally. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return hd_fail(e, HD_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hd_fail(e, HD_EIO, "%s: not a regular file", path);
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        close(fd);
        return hd_fail(e, HD_EIO, "%s: cannot open: %s", path, strerror(err));
    }
    if ((unsigned long long)sb.st_size > max_bytes) {
        fclose(f);
        return hd_fail(e, HD_ENOMEM, "%s: larger than %zu bytes (%lld)", path, max_bytes,
                       (long long)sb.st_size);
    }
    size_t n = (size_t)sb.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != n) {
        free(b);
        return hd_fail(e, HD_EIO, "%s: read error", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}
