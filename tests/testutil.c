#include "testutil.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int hd_test_failures = 0, hd_test_checks = 0;

const char *hd_test_shared(char *buf, size_t n, const char *rel) {
    const char *root = getenv("HIDREAM_SHARED");
    snprintf(buf, n, "%s/%s", root ? root : "../shared", rel);
    return buf;
}

/* The folders hd_test_tmpdir made, removed with their contents when the test process exits
 * (not in forked children, nor with HIDREAM_KEEP_TEST_TMP set, for a post-mortem). */
#define MAX_TMPDIRS 64
static char *tmpdirs[MAX_TMPDIRS];
static int n_tmpdirs;
static pid_t tmpdir_owner;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0; /* go on: remove what can be removed */
}

static void remove_tmpdirs(void) {
    if (getpid() != tmpdir_owner || getenv("HIDREAM_KEEP_TEST_TMP")) return;
    for (int i = 0; i < n_tmpdirs; i++) {
        nftw(tmpdirs[i], remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(tmpdirs[i]);
    }
    n_tmpdirs = 0;
}

const char *hd_test_tmpdir(char *buf, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/hidream-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    if (n_tmpdirs == 0 && !tmpdir_owner) {
        tmpdir_owner = getpid();
        atexit(remove_tmpdirs);
    }
    if (n_tmpdirs < MAX_TMPDIRS && getpid() == tmpdir_owner) {
        char *copy = strdup(buf);
        if (copy) tmpdirs[n_tmpdirs++] = copy;
    }
    return buf;
}

int hd_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

char *hd_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[sz] = 0;
    fclose(f);
    if (len) *len = (size_t)sz;
    return buf;
}

int hd_test_run(const char *cmd, char *out, size_t n) {
    char full[8192];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t used = 0;
    if (out && n) out[0] = 0;
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, p)) > 0) {
        if (out && used + 1 < n) {
            size_t c = r < n - 1 - used ? r : n - 1 - used;
            memcpy(out + used, chunk, c);
            used += c;
            out[used] = 0;
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int hd_test_finish(void) {
    int passed = hd_test_checks - hd_test_failures;
    printf("%d passed, %d failed\n", passed, hd_test_failures);
    return hd_test_failures ? 1 : 0;
}
