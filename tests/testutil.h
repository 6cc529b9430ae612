/* Minimal test harness: CHECK records a failure and continues; a test program returns
 * hd_test_finish(), which prints "N passed, M failed" and exits non-zero on any failure. */
#ifndef HD_TESTUTIL_H
#define HD_TESTUTIL_H

#include <stdio.h>

extern int hd_test_failures, hd_test_checks;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        hd_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            hd_test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECKF(cond, ...)                                                              \
    do {                                                                               \
        hd_test_checks++;                                                              \
        if (!(cond)) {                                                                 \
            hd_test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
        }                                                                              \
    } while (0)

/* Runs one named test function and reports it. */
#define RUN_TEST(fn)                                                                   \
    do {                                                                               \
        int before_ = hd_test_failures;                                                \
        fn();                                                                          \
        printf("%s %s\n", hd_test_failures == before_ ? "ok  " : "FAIL", #fn);         \
    } while (0)

/* Path under $HIDREAM_SHARED (the shared/ folder); static buffer per call site is not used:
 * the result is written into buf. Returns buf. */
const char *hd_test_shared(char *buf, size_t n, const char *rel);
/* A fresh temporary directory, removed with its contents when the test process exits (kept
 * with HIDREAM_KEEP_TEST_TMP set); returns buf. */
const char *hd_test_tmpdir(char *buf, size_t n);
/* Writes len bytes to path; returns 0 on success. */
int hd_test_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on failure. */
char *hd_test_read_file(const char *path, size_t *len);
/* Runs a shell command, captures its combined output into out (truncated), returns exit code. */
int hd_test_run(const char *cmd, char *out, size_t n);
int hd_test_finish(void);

#endif
