/* Every fuzz target (fuzz/fuzz_*.c) has a seed corpus of at least three files under
 * fuzz/corpus/<target>/ (scripts/fuzz-smoke.sh, run by test.sh, starts from it), and the
 * safetensors and GGUF seeds are valid files that parse, so the fuzzer starts past the header. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "testutil.h"

static char src[1024];

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void every_fuzz_target_has_a_seed_corpus(void) {
    char fuzz[1100];
    snprintf(fuzz, sizeof fuzz, "%s/fuzz", src);
    DIR *d = opendir(fuzz);
    CHECK(d != NULL);
    if (!d) return;
    int targets = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (strncmp(de->d_name, "fuzz_", 5) || n < 3 || strcmp(de->d_name + n - 2, ".c")) continue;
        char corpus[1400];
        snprintf(corpus, sizeof corpus, "%s/corpus/%.*s", fuzz, (int)(n - 2), de->d_name);
        int files = count_files(corpus);
        CHECKF(files >= 3, "%s: %d seed files", corpus, files);
        targets++;
    }
    closedir(d);
    CHECKF(targets >= 6, "only %d fuzz targets found", targets);
}

/* Every seed of `target` parses; returns the largest tensor count seen (-1: no directory). */
static int seeds_parse(const char *target) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/fuzz/corpus/%s", src, target);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return -1;
    int most = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len;
        char *buf = hd_test_read_file(path, &len);
        hd_safetensors st;
        hd_error e = {0};
        int rc = buf ? hd_st_open_buffer(&st, buf, len, path, &e) : -1;
        CHECKF(rc == 0, "%s: %s", de->d_name, e.msg);
        if (rc == 0 && st.n_tensors > most) most = st.n_tensors;
        if (rc == 0) hd_st_close(&st);
        free(buf);
    }
    closedir(d);
    return most;
}

static void safetensors_seeds_are_valid_files(void) {
    int most = seeds_parse("fuzz_safetensors");
    CHECKF(most >= 10, "no seed with many tensors (most %d)", most);
}

/* and the GGUF seeds (written by the PyPI gguf package: fuzz/make_gguf_seeds.py) too, one of
 * them holding every block format */
static void gguf_seeds_are_valid_files(void) {
    int most = seeds_parse("fuzz_gguf");
    CHECKF(most >= 6, "no seed with every format (most %d tensors)", most);
}

int main(void) {
    const char *s = getenv("HIDREAM_SOURCE");
    if (!s) return fprintf(stderr, "HIDREAM_SOURCE is not set\n"), 2;
    snprintf(src, sizeof src, "%s", s);
    RUN_TEST(every_fuzz_target_has_a_seed_corpus);
    RUN_TEST(safetensors_seeds_are_valid_files);
    RUN_TEST(gguf_seeds_are_valid_files);
    return hd_test_finish();
}
