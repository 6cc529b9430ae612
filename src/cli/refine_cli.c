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

void refine_cli_init(refine_cli *c, const char *cmd, const char *prefix) {
    memset(c, 0, sizeof *c);
    hd_refine_defaults(&c->o);
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
            "  --%sdeadline S            for the whole refinement (default 300)\n",
            p, p, p, p, p, p, p, p, p, p);
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

int refine_cli_flag(refine_cli *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    size_t pl = strlen(c->prefix);
    if (strncmp(a, "--", 2) || strncmp(a + 2, c->prefix, pl)) return 0;
    const char *name = a + 2 + pl;
    static const char *const known[] = {"api-base", "model", "api-key", "system-prompt",
                                        "max-tokens", "attempts", "retries", "retry-delay",
                                        "timeout", "deadline"};
    int k = -1;
    for (int j = 0; j < (int)(sizeof known / sizeof *known); j++)
        if (!strcmp(name, known[j])) k = j;
    if (k < 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", c->cmd, a);
        return -1;
    }
    const char *v = argv[++*i];
    double d = 0;
    switch (k) {
    case 0: c->o.base_url = v; return 1;
    case 1: c->o.model = v; return 1;
    case 2: c->o.api_key = v; return 1;
    case 3: c->system_file = v; return 1;
    case 4: if (num(c, a, v, 0, 1 << 20, &d)) return -1; c->o.max_tokens = (int)d; return 1;
    case 5: if (num(c, a, v, 1, 100, &d)) return -1; c->o.attempts = (int)d; return 1;
    case 6: if (num(c, a, v, 1, 100, &d)) return -1; c->o.api_tries = (int)d; return 1;
    case 7: if (num(c, a, v, 0, 3600, &d)) return -1; c->o.retry_delay_s = d; return 1;
    case 8: if (num(c, a, v, 0.001, 1e6, &d)) return -1; c->o.timeout_s = d; return 1;
    default: if (num(c, a, v, 0.001, 1e6, &d)) return -1; c->o.deadline_s = d; return 1;
    }
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
    c->o.system_prompt = c->system_text;
    return 0;
}

void refine_cli_free(refine_cli *c) {
    free(c->system_text);
    c->system_text = NULL;
}
