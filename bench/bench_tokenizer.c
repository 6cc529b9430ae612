/* Tokenizer benchmark: load time of tokenizer.json (median of several loads) and single-thread
 * encode throughput on a text file (median, min and max of several runs), side by side with the
 * Hugging Face `tokenizers` library when python3 can import it.
 *
 *   bench_tokenizer [TOKENIZER_JSON [TEXT_FILE [RUNS]]]
 *
 * Defaults: shared/data/qwen3-tokenizer/tokenizer.json and shared/bench/tokenizer_bench_text.txt,
 * with shared/ from $HIDREAM_SHARED or next to the source tree. Goals: load <= 150 ms,
 * encode >= 4 MB/s. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "text/tokenizer.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* shared/ : $HIDREAM_SHARED, else ../shared next to the source tree (like the CMake default) */
static void shared_dir(char *out, size_t n) {
    const char *env = getenv("HIDREAM_SHARED");
    if (env) {
        snprintf(out, n, "%s", env);
        return;
    }
    const char *src = __FILE__, *slash = strrchr(src, '/');
    int dir_len = slash ? (int)(slash - src) : 0; /* .../bench */
    snprintf(out, n, "%.*s/../../shared", dir_len, src);
}

int main(int argc, char **argv) {
    char shared[2048], tok_path[2300], text_path[2300], hf_script[2300];
    shared_dir(shared, sizeof shared);
    snprintf(tok_path, sizeof tok_path, "%s/data/qwen3-tokenizer/tokenizer.json", shared);
    snprintf(text_path, sizeof text_path, "%s/bench/tokenizer_bench_text.txt", shared);
    snprintf(hf_script, sizeof hf_script, "%s/bench/tokenizer_hf_bench.py", shared);
    if (argc > 1) snprintf(tok_path, sizeof tok_path, "%s", argv[1]);
    if (argc > 2) snprintf(text_path, sizeof text_path, "%s", argv[2]);
    int runs = argc > 3 ? atoi(argv[3]) : 7;
    if (runs < 5) runs = 5;
    if (runs > 50) runs = 50;

    size_t len;
    char *text = read_file(text_path, &len);
    if (!text) {
        fprintf(stderr, "bench_tokenizer: cannot read %s\n", text_path);
        return 2;
    }
    double load[50], enc[50];
    hd_tokenizer *tok = NULL;
    hd_error e;
    for (int r = 0; r < runs; r++) {
        double t0 = now_s();
        if (hd_tokenizer_load(&tok, tok_path, &e)) {
            fprintf(stderr, "bench_tokenizer: %s\n", e.msg);
            free(text);
            return 2;
        }
        load[r] = now_s() - t0;
        if (r + 1 < runs) hd_tokenizer_free(tok);
    }
    size_t n_tokens = 0;
    for (int r = 0; r < runs; r++) {
        int32_t *ids;
        double t0 = now_s();
        if (hd_tokenizer_encode(tok, text, len, 0, &ids, &n_tokens, &e)) {
            fprintf(stderr, "bench_tokenizer: %s\n", e.msg);
            hd_tokenizer_free(tok);
            free(text);
            return 2;
        }
        enc[r] = now_s() - t0;
        free(ids);
    }
    hd_tokenizer_free(tok);
    free(text);
    double load_med = median(load, runs), enc_med = median(enc, runs);
    double enc_min = enc[0], enc_max = enc[runs - 1]; /* sorted by median() */
    double mb = (double)len / 1e6;

    printf("tokenizer: %s\ntext:      %s (%zu bytes, %zu tokens)\nruns:      %d, one thread\n\n",
           tok_path, text_path, len, n_tokens, runs);
    printf("%-16s %10s %12s %12s %12s %12s %14s\n", "impl", "load ms", "enc med s", "enc min s",
           "enc max s", "MB/s (med)", "tokens/s (med)");
    printf("%-16s %10.1f %12.4f %12.4f %12.4f %12.2f %14.0f\n", "hidream.c", load_med * 1e3,
           enc_med, enc_min, enc_max, mb / enc_med, (double)n_tokens / enc_med);

    /* the Hugging Face library, when available (reports its best of N) */
    FILE *probe = fopen(hf_script, "r");
    int have_hf = probe && system("python3 -c 'import tokenizers' >/dev/null 2>&1") == 0;
    if (probe) fclose(probe);
    if (have_hf) {
        char cmd[8000];
        snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s' %d", hf_script, tok_path, text_path, runs);
        FILE *p = popen(cmd, "r");
        char line[4096] = "";
        json_t *j = NULL;
        if (p) {
            while (fgets(line, sizeof line, p))
                if (line[0] == '{') j = json_loads(line, 0, NULL);
            pclose(p);
        }
        if (j) {
            double hl = json_number_value(json_object_get(j, "load_s"));
            double hb = json_number_value(json_object_get(j, "best_s"));
            json_int_t ht = json_integer_value(json_object_get(j, "tokens"));
            printf("%-16s %10.1f %12s %12.4f %12s %12.2f %14.0f   (best of %d)\n",
                   "hf-tokenizers", hl * 1e3, "-", hb, "-", mb / hb, (double)ht / hb, runs);
            printf("\nbest-of-%d encode: hidream.c %.2f MB/s vs hf-tokenizers %.2f MB/s (x%.2f)\n",
                   runs, mb / enc_min, mb / hb, hb / enc_min);
            if ((size_t)ht != n_tokens)
                printf("WARNING: token counts differ (hidream.c %zu, hf %lld)\n", n_tokens,
                       (long long)ht);
            json_decref(j);
        } else {
            printf("%-16s (the Hugging Face benchmark script failed)\n", "hf-tokenizers");
        }
    } else {
        printf("%-16s (python3 with `tokenizers` not available)\n", "hf-tokenizers");
    }
    printf("\ngoals: load <= 150 ms (%s), encode >= 4 MB/s (%s)\n",
           load_med <= 0.150 ? "met" : "NOT met", mb / enc_med >= 4.0 ? "met" : "NOT met");
    return 0;
}
