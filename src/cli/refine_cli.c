#include "cli/refine_cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

static void on_warn(void *user, int final, const char *line) {
    refine_cli *c = user;
    if (final || c->verbose) fprintf(stderr, "%s: warning: %s\n", c->cmd, line);
}

static void on_piece(void *user, const char *piece, size_t len) {
    (void)user;
    fwrite(piece, 1, len, stderr);
    fflush(stderr);
}

void refine_cli_init(refine_cli *c, const char *cmd, const char *prefix) {
    memset(c, 0, sizeof *c);
    hd_refine_defaults(&c->o);
    hd_local_defaults(&c->lo);
    c->lo.warn = on_warn;
    c->lo.warn_user = c;
    c->cmd = cmd;
    c->prefix = prefix;
    c->o.warn = on_warn;
    c->o.warn_user = c;
}

void refine_cli_usage(FILE *f, const char *p) {
    fprintf(f,
            "  --%sapi-base URL          OpenAI-compatible endpoint (default $HIDREAM_REFINE_BASE_URL,\n"
            "                           else " HD_REFINE_DEFAULT_BASE_URL ")\n"
            "  --%smodel NAME            served model (default $HIDREAM_REFINE_MODEL, else\n"
            "                           " HD_REFINE_DEFAULT_MODEL ")\n"
            "  --%sapi-key KEY           bearer token (default $HIDREAM_REFINE_API_KEY, else none)\n"
            "  --%ssystem-prompt FILE    use this system prompt instead of the built-in one\n"
            "  --%smax-tokens N          reply length limit (default 2048; 0: the server's)\n"
            "  --%sattempts N            attempts until a usable answer (default 3)\n"
            "  --%sretries N             requests per attempt on network/server errors (default 3)\n"
            "  --%sretry-delay S         first pause between requests, doubled each time (default 1)\n"
            "  --%stimeout S             per request (default 120)\n"
            "  --%sdeadline S            for the whole refinement (default 300)\n"
            "  --%slocal DIR             run a Qwen3 causal LM (Hugging Face directory) here instead\n"
            "  --%sthink                 local: let a Qwen3 model think first (the thinking is dropped)\n"
            "  --%stemperature T --%stop-p P --%stop-k K --%srepetition-penalty R --%sseed N\n"
            "                           local sampling (default 0.7, 0.8, 20, 1, 0; T = 0: greedy)\n"
            "  --%sbackend cpu|cuda --%sthreads N   local: where the model runs\n",
            p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p);
}

static int num(refine_cli *c, const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is not a number in [%g, %g]\n", c->cmd, flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

enum flag {
    F_API_BASE, F_MODEL, F_API_KEY, F_SYSTEM, F_LOCAL, F_BACKEND, /* strings */
    F_THINK,                                                      /* no value */
    F_SEED,                                                       /* unsigned 64-bit */
    F_MAX_TOKENS, F_ATTEMPTS, F_RETRIES, F_RETRY_DELAY, F_TIMEOUT, F_DEADLINE, F_TEMPERATURE,
    F_TOP_P, F_TOP_K, F_REP_PENALTY, F_THREADS                    /* numbers in [lo, hi] */
};

static const struct {
    const char *name;
    enum flag f;
    double lo, hi;
} flags[] = {
    {"api-base", F_API_BASE, 0, 0},       {"model", F_MODEL, 0, 0},
    {"api-key", F_API_KEY, 0, 0},         {"system-prompt", F_SYSTEM, 0, 0},
    {"local", F_LOCAL, 0, 0},             {"backend", F_BACKEND, 0, 0},
    {"think", F_THINK, 0, 0},             {"seed", F_SEED, 0, 0},
    {"max-tokens", F_MAX_TOKENS, 0, 1 << 20}, {"attempts", F_ATTEMPTS, 1, 100},
    {"retries", F_RETRIES, 1, 100},       {"retry-delay", F_RETRY_DELAY, 0, 3600},
    {"timeout", F_TIMEOUT, 0.001, 1e6},   {"deadline", F_DEADLINE, 0.001, 1e6},
    {"temperature", F_TEMPERATURE, 0, 100}, {"top-p", F_TOP_P, 1e-9, 1},
    {"top-k", F_TOP_K, 0, 1 << 24},       {"repetition-penalty", F_REP_PENALTY, 1e-9, 100},
    {"threads", F_THREADS, 0, 1024},
};

/* Stores a string or switch flag; 1 when f was one. */
static int set_string(refine_cli *c, enum flag f, const char *v) {
    switch (f) {
    case F_API_BASE: c->o.base_url = v; return 1;
    case F_MODEL: c->o.model = v; return 1;
    case F_API_KEY: c->o.api_key = v; return 1;
    case F_SYSTEM: c->system_file = v; return 1;
    case F_LOCAL: c->lo.dir = v; return 1;
    case F_BACKEND: c->lo.backend = v; return 1;
    default: return 0;
    }
}

static void set_number(refine_cli *c, enum flag f, double d) {
    switch (f) {
    case F_MAX_TOKENS:
        c->o.max_tokens = c->lo.max_new_tokens = (int)d;
        c->set_max_tokens = 1;
        break;
    case F_ATTEMPTS: c->o.attempts = c->lo.attempts = (int)d; break;
    case F_RETRIES: c->o.api_tries = (int)d; break;
    case F_RETRY_DELAY: c->o.retry_delay_s = d; break;
    case F_TIMEOUT: c->o.timeout_s = d; break;
    case F_DEADLINE: c->o.deadline_s = d; break;
    case F_TEMPERATURE: c->lo.sampling.temperature = (float)d; break;
    case F_TOP_P: c->lo.sampling.top_p = (float)d; break;
    case F_TOP_K: c->lo.sampling.top_k = (int)d; break;
    case F_REP_PENALTY: c->lo.sampling.repetition_penalty = (float)d; break;
    default: c->lo.n_threads = (int)d; break;
    }
}

int refine_cli_flag(refine_cli *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    size_t pl = strlen(c->prefix);
    if (strncmp(a, "--", 2) || strncmp(a + 2, c->prefix, pl)) return 0;
    int k = -1;
    for (int j = 0; j < (int)(sizeof flags / sizeof *flags); j++)
        if (!strcmp(a + 2 + pl, flags[j].name)) k = j;
    if (k < 0) return 0;
    enum flag f = flags[k].f;
    if (f == F_THINK) {
        c->lo.thinking = 1;
        return 1;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", c->cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    if (set_string(c, f, v)) return 1;
    if (f == F_SEED) {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (errno || *end || end == v || *v == '-') {
            fprintf(stderr, "%s: %s: '%s' is not an unsigned integer\n", c->cmd, a, v);
            return -1;
        }
        c->lo.sampling.seed = u;
        return 1;
    }
    double d;
    if (num(c, a, v, flags[k].lo, flags[k].hi, &d)) return -1;
    set_number(c, f, d);
    return 1;
}

int refine_cli_finish(refine_cli *c) {
    if (!c->system_file) return 0;
    hd_error e = {0};
    size_t len;
    if (hd_read_file(c->system_file, 1u << 20, &c->system_text, &len, &e) < 0) {
        fprintf(stderr, "%s: --%ssystem-prompt: %s\n", c->cmd, c->prefix, e.msg);
        return -1;
    }
    if (strlen(c->system_text) != len || len == 0) {
        fprintf(stderr, "%s: --%ssystem-prompt: %s: %s\n", c->cmd, c->prefix, c->system_file,
                len ? "holds a NUL byte" : "is empty");
        return -1;
    }
    c->o.system_prompt = c->lo.system_prompt = c->system_text;
    return 0;
}

int refine_cli_run(refine_cli *c, const char *raw, hd_refine_result *r, hd_error *e) {
    if (!c->lo.dir) return hd_refine(raw, &c->o, r, e);
    if (c->set_max_tokens && c->lo.max_new_tokens == 0)
        c->lo.max_new_tokens = 2048; /* 0 means "the server's default" remotely */
    if (c->stream) {
        c->lo.stream = on_piece;
        c->lo.stream_user = c;
    }
    int rc = hd_refine_local(raw, &c->lo, r, e);
    if (c->stream) fputc('\n', stderr);
    return rc;
}

void refine_cli_free(refine_cli *c) {
    free(c->system_text);
    c->system_text = NULL;
}
