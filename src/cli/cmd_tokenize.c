/* `hidream tokenize` (encode / decode / chat template) and `hidream check-tokenizer` (run a
 * JSONL case file: {"text","ids","decoded"} or {"rendered","ids"} per line). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

static void tokenize_usage(FILE *f) {
    fprintf(f,
            "usage: hidream tokenize --tokenizer DIR_OR_FILE [options] TEXT\n"
            "       hidream tokenize --tokenizer DIR_OR_FILE --decode ID [ID...]\n\n"
            "Prints the token ids of TEXT (space separated), or the text of the ids.\n\n"
            "  --tokenizer P      tokenizer.json, or a directory holding one\n"
            "  --file PATH        read the text from PATH ('-' for stdin) instead of TEXT\n"
            "  --chat             apply the HiDream text-to-image template (adds boi/tms ids)\n"
            "  --images N1,N2,..  with --chat: reference images with N_k image tokens each\n"
            "  --replace-invalid  map invalid UTF-8 to U+FFFD instead of failing\n"
            "  --decode           treat the arguments as ids and print their text\n");
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            char *p = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    *len = n;
    return buf;
}

/* Parses "64,64,16" into a malloc'd array; returns the count or -1. */
static int parse_counts(const char *s, int **out) {
    int n = 1;
    for (const char *p = s; *p; p++) n += *p == ',';
    int *v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (errno || end == p || x < 1 || x > HD_CHAT_MAX_IMAGE_TOKENS ||
            (*end != ',' && *end != 0)) {
            free(v);
            return -1;
        }
        v[i] = (int)x;
        p = end + 1;
    }
    *out = v;
    return n;
}

int cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *file = NULL, *images = NULL;
    int chat = 0, decode = 0, flags = 0, first_arg = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!strcmp(a, "--file") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(a, "--images") && i + 1 < argc) {
            images = argv[++i];
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--decode")) {
            decode = 1;
        } else if (!strcmp(a, "--replace-invalid")) {
            flags |= HD_TOK_REPLACE_INVALID_UTF8;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "hidream tokenize: unknown option '%s' (see --help)\n", a);
            return 2;
        } else {
            break;
        }
    }
    first_arg = i;
    int n_args = argc - first_arg;
    if (!tok_path) {
        fprintf(stderr, "hidream tokenize: --tokenizer is required (see --help)\n");
        return 2;
    }
    if (decode ? (n_args < 1 || chat || file) : (file ? n_args != 0 : n_args != 1)) {
        tokenize_usage(stderr);
        return 2;
    }
    if (images && !chat) {
        fprintf(stderr, "hidream tokenize: --images needs --chat\n");
        return 2;
    }
    hd_error e = {0};
    hd_tokenizer *tok;
    if (hd_tokenizer_load(&tok, tok_path, &e)) {
        fprintf(stderr, "hidream tokenize: %s\n", e.msg);
        return 2;
    }
    int status = 0;
    if (decode) {
        int32_t *ids = malloc((size_t)n_args * sizeof *ids);
        if (!ids) {
            hd_tokenizer_free(tok);
            fprintf(stderr, "hidream tokenize: out of memory\n");
            return 2;
        }
        for (int k = 0; k < n_args; k++) {
            char *end;
            errno = 0;
            long v = strtol(argv[first_arg + k], &end, 10);
            if (errno || *end || end == argv[first_arg + k] || v < INT32_MIN || v > INT32_MAX) {
                fprintf(stderr, "hidream tokenize: '%s' is not a token id\n", argv[first_arg + k]);
                free(ids);
                hd_tokenizer_free(tok);
                return 2;
            }
            ids[k] = (int32_t)v;
        }
        char *text;
        size_t len;
        if (hd_tokenizer_decode(tok, ids, (size_t)n_args, &text, &len, &e)) {
            fprintf(stderr, "hidream tokenize: %s\n", e.msg);
            status = 2;
        } else {
            fwrite(text, 1, len, stdout);
            fputc('\n', stdout);
            free(text);
        }
        free(ids);
        hd_tokenizer_free(tok);
        return status;
    }
    char *owned = NULL;
    const char *text;
    size_t len;
    if (file) {
        owned = read_all(file, &len);
        if (!owned) {
            fprintf(stderr, "hidream tokenize: %s: cannot read\n", file);
            hd_tokenizer_free(tok);
            return 2;
        }
        text = owned;
    } else {
        text = argv[first_arg];
        len = strlen(text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    int rc;
    if (chat) {
        int *counts = NULL, n_img = 0;
        if (images && (n_img = parse_counts(images, &counts)) < 0) {
            fprintf(stderr, "hidream tokenize: --images: expected positive counts like 64,16\n");
            free(owned);
            hd_tokenizer_free(tok);
            return 2;
        }
        /* the template takes a C string: a NUL in the text would end the prompt */
        if (memchr(text, 0, len)) {
            fprintf(stderr, "hidream tokenize: --chat: the prompt contains a NUL byte\n");
            free(counts);
            free(owned);
            hd_tokenizer_free(tok);
            return 2;
        }
        char *prompt = malloc(len + 1);
        rc = -1;
        if (prompt) {
            memcpy(prompt, text, len);
            prompt[len] = 0;
            rc = hd_chat_encode(tok, prompt, n_img, counts, &ids, &n, &e);
            free(prompt);
        } else {
            snprintf(e.msg, sizeof e.msg, "out of memory");
        }
        free(counts);
    } else {
        rc = hd_tokenizer_encode(tok, text, len, flags, &ids, &n, &e);
    }
    if (rc) {
        fprintf(stderr, "hidream tokenize: %s\n", e.msg);
        status = 2;
    } else {
        for (size_t k = 0; k < n; k++) printf(k ? " %d" : "%d", (int)ids[k]);
        putchar('\n');
    }
    free(ids);
    free(owned);
    hd_tokenizer_free(tok);
    return status;
}

/* ---- check-tokenizer --------------------------------------------------------------------- */

static void check_usage(FILE *f) {
    fprintf(f,
            "usage: hidream check-tokenizer --tokenizer DIR_OR_FILE CASES.jsonl [--verbose]\n\n"
            "Each line of CASES.jsonl is {\"text\", \"ids\", \"decoded\"?} (encode text,\n"
            "compare ids; decode ids, compare decoded) or {\"rendered\", \"ids\", ...} (encode\n"
            "rendered, compare ids). Prints FAIL <line>: ... per failure and 'N passed, M\n"
            "failed'; exit status 0 iff every case passed and there was at least one.\n");
}

/* Checks one case; returns 1 on pass, 0 on failure with why[] filled. */
static int check_case(const hd_tokenizer *tok, const char *line, size_t len, char *why,
                      size_t why_n) {
    json_error_t jerr;
    json_t *c = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (!c) {
        snprintf(why, why_n, "malformed JSON: %s (column %d)", jerr.text, jerr.column);
        return 0;
    }
    int ok = 0;
    json_t *text = json_object_get(c, "text"), *rendered = json_object_get(c, "rendered");
    json_t *input = json_is_string(text) ? text : rendered;
    json_t *want = json_object_get(c, "ids"), *decoded = json_object_get(c, "decoded");
    int32_t *ids = NULL, *exp = NULL;
    size_t n = 0, n_exp = 0;
    hd_error e = {0};
    if (!json_is_object(c)) {
        snprintf(why, why_n, "not a JSON object");
        goto done;
    }
    if (!json_is_string(input)) {
        snprintf(why, why_n, "no string \"text\" or \"rendered\" member");
        goto done;
    }
    if (!json_is_array(want)) {
        snprintf(why, why_n, "no \"ids\" array");
        goto done;
    }
    if (decoded && !json_is_string(decoded)) {
        snprintf(why, why_n, "\"decoded\" is not a string");
        goto done;
    }
    n_exp = json_array_size(want);
    exp = malloc((n_exp + 1) * sizeof *exp);
    if (!exp) {
        snprintf(why, why_n, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_exp; i++) {
        json_t *v = json_array_get(want, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            snprintf(why, why_n, "ids[%zu] is not a non-negative integer", i);
            goto done;
        }
        exp[i] = (int32_t)json_integer_value(v);
    }
    if (hd_tokenizer_encode(tok, json_string_value(input), json_string_length(input), 0, &ids,
                            &n, &e)) {
        snprintf(why, why_n, "encode failed: %s", e.msg);
        goto done;
    }
    size_t k = 0;
    while (k < n && k < n_exp && ids[k] == exp[k]) k++;
    if (k < n || k < n_exp) {
        char got[24] = "end", wanted[24] = "end";
        if (k < n) snprintf(got, sizeof got, "%d", (int)ids[k]);
        if (k < n_exp) snprintf(wanted, sizeof wanted, "%d", (int)exp[k]);
        snprintf(why, why_n, "ids differ at index %zu: got %s, expected %s (%zu ids, expected %zu)",
                 k, got, wanted, n, n_exp);
        goto done;
    }
    if (decoded) {
        char *out;
        size_t out_len;
        if (hd_tokenizer_decode(tok, exp, n_exp, &out, &out_len, &e)) {
            snprintf(why, why_n, "decode failed: %s", e.msg);
            goto done;
        }
        const char *d = json_string_value(decoded);
        size_t dl = json_string_length(decoded), b = 0;
        while (b < out_len && b < dl && out[b] == d[b]) b++;
        free(out);
        if (b < out_len || b < dl) {
            snprintf(why, why_n, "decoded text differs at byte %zu (%zu bytes, expected %zu)", b,
                     out_len, dl);
            goto done;
        }
    }
    ok = 1;
done:
    free(ids);
    free(exp);
    json_decref(c);
    return ok;
}

int cmd_check_tokenizer(int argc, char **argv) {
    const char *tok_path = NULL, *cases = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            check_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "hidream check-tokenizer: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (!cases) {
            cases = a;
        } else {
            check_usage(stderr);
            return 2;
        }
    }
    if (!tok_path || !cases) {
        check_usage(stderr);
        return 2;
    }
    FILE *f = fopen(cases, "rb");
    if (!f) {
        fprintf(stderr, "hidream check-tokenizer: %s: %s\n", cases, strerror(errno));
        return 2;
    }
    hd_error e = {0};
    hd_tokenizer *tok;
    if (hd_tokenizer_load(&tok, tok_path, &e)) {
        fprintf(stderr, "hidream check-tokenizer: %s\n", e.msg);
        fclose(f);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0, passed = 0, failed = 0;
    char why[1400];
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        size_t j = 0;
        while (j < len && (line[j] == ' ' || line[j] == '\t' || line[j] == '\r' || line[j] == '\n'))
            j++;
        if (j == len) continue; /* blank line */
        if (check_case(tok, line, len, why, sizeof why)) {
            passed++;
            if (verbose) printf("ok   %ld\n", lineno);
        } else {
            failed++;
            printf("FAIL %ld: %s\n", lineno, why);
        }
    }
    int read_err = ferror(f);
    free(line);
    fclose(f);
    hd_tokenizer_free(tok);
    if (read_err) {
        fprintf(stderr, "hidream check-tokenizer: %s: read error\n", cases);
        return 2;
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
