/* `hidream shapes`: the shapes world (spec 09) as a folder of PNG pictures with same-name .txt
 * captions, or the world's tokenizer.json. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/exit_codes.h"
#include "data/prng.h"
#include "data/shapes.h"
#include "data/shapes_tokenizer.h"
#include "data/text_file.h"
#include "image/codec.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream shapes --out DIR --n N [--size WxH] [--seed S]\n"
            "       hidream shapes --tokenizer OUT.json\n"
            "  --out DIR        folder to write NNNNNN.png + NNNNNN.txt into (created if missing)\n"
            "  --n N            number of pictures\n"
            "  --size WxH       canvas size (default 64x64; sides >= %d)\n"
            "  --seed S         world seed (default 0); picture i uses a seed derived from S and i\n"
            "  --tokenizer F    write the world's byte-level BPE tokenizer.json to F\n",
            HD_SHAPES_MIN_SIDE);
}

static int parse_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '-' || errno || *end || end == s) {
        fprintf(stderr, "hidream shapes: %s: '%s' is not an unsigned integer\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_size(const char *s, int *w, int *h) {
    char *end;
    long a = strtol(s, &end, 10), b = 0;
    int ok = end != s && *end == 'x';
    if (ok) {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        ok = end != t && *end == 0;
    }
    if (!ok || a < HD_SHAPES_MIN_SIDE || b < HD_SHAPES_MIN_SIDE || a > 16384 || b > 16384) {
        fprintf(stderr, "hidream shapes: --size: '%s' is not WxH with sides in %d..16384\n", s,
                HD_SHAPES_MIN_SIDE);
        return -1;
    }
    *w = (int)a;
    *h = (int)b;
    return 0;
}

static int write_tokenizer(const char *path) {
    hd_error e = {0};
    int n;
    if (hd_shapes_tokenizer_write(path, &n, &e) < 0) {
        fprintf(stderr, "hidream shapes: %s\n", e.msg);
        return 2;
    }
    int ns = 0;
    while (hd_shapes_special_tokens[ns]) ns++;
    printf("%s: %d tokens (256 bytes, %d merges, special", path, n, n - 256 - ns);
    for (int i = 0; i < ns; i++) printf(" %s=%d", hd_shapes_special_tokens[i], n - ns + i);
    printf(")\n");
    return 0;
}

static int write_world(const char *dir, uint64_t count, int w, int h, uint64_t seed) {
    struct stat sb;
    if (stat(dir, &sb) != 0 && mkdir(dir, 0777) != 0) {
        fprintf(stderr, "hidream shapes: --out: cannot create '%s': %s\n", dir, strerror(errno));
        return 2;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "hidream shapes: --out: '%s' is not a folder\n", dir);
        return 2;
    }
    for (uint64_t i = 0; i < count; i++) {
        hd_error e = {0};
        hd_image im = {0};
        char prompt[HD_SHAPES_PROMPT_MAX], path[4096];
        if (hd_shapes_draw(hd_prng_derive(seed, i), w, h, &im, prompt, &e) < 0) {
            fprintf(stderr, "hidream shapes: %s\n", e.msg);
            return 2;
        }
        snprintf(path, sizeof path, "%s/%06" PRIu64 ".txt", dir, i);
        int rc = hd_write_text_file(path, prompt, strlen(prompt), &e);
        snprintf(path, sizeof path, "%s/%06" PRIu64 ".png", dir, i);
        if (rc == 0) rc = hd_image_save(path, &im, NULL, &e);
        hd_image_free(&im);
        if (rc < 0) {
            fprintf(stderr, "hidream shapes: %s\n", e.msg);
            return HD_EXIT_OUTPUT;
        }
    }
    printf("%s: %" PRIu64 " pictures of %dx%d (seed %" PRIu64 ")\n", dir, count, w, h, seed);
    return 0;
}

int cmd_shapes(int argc, char **argv) {
    const char *out = NULL, *tokenizer = NULL;
    uint64_t count = 0, seed = 0;
    int have_n = 0, w = 64, h = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int takes = !strcmp(a, "--out") || !strcmp(a, "--n") || !strcmp(a, "--size") ||
                    !strcmp(a, "--seed") || !strcmp(a, "--tokenizer");
        if (!takes) {
            fprintf(stderr, "hidream shapes: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "hidream shapes: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) out = val;
        else if (!strcmp(a, "--tokenizer")) tokenizer = val;
        else if (!strcmp(a, "--n")) {
            if (parse_u64(a, val, &count)) return 2;
            have_n = 1;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(a, val, &seed)) return 2;
        } else if (parse_size(val, &w, &h))
            return 2;
    }
    if (tokenizer && (out || have_n)) {
        fprintf(stderr, "hidream shapes: --tokenizer does not combine with --out/--n\n");
        return 2;
    }
    if (tokenizer) return write_tokenizer(tokenizer);
    if (!out || !have_n) {
        fprintf(stderr, "hidream shapes: --out DIR and --n N are required (see --help)\n");
        return 2;
    }
    if (count == 0 || count > 100000000) {
        fprintf(stderr, "hidream shapes: --n: %" PRIu64 " is not in 1..100000000\n", count);
        return 2;
    }
    return write_world(out, count, w, h, seed);
}
