/* `hidream refine`: rewrite a raw request into a detailed English prompt with the remote prompt
 * agent (src/agent/refine.h) and print it. When no usable answer comes back the raw prompt is
 * printed unchanged, with a warning on stderr (exit 0; --strict makes it exit 1). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/exit_codes.h"
#include "cli/refine_cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: hidream refine -p TEXT [options]\n"
               "  -p, --prompt TEXT        the raw request (any language)\n"
               "  --json                   print {prompt, raw_prompt, refined, reasoning, attempts,\n"
               "                           requests, model} instead of the bare prompt\n"
               "  --strict                 exit 1 instead of falling back to the raw prompt\n"
               "  -v, --verbose            a warning for every failed request\n"
               "  --no-stream              local: do not echo the generated text to stderr\n");
    refine_cli_usage(f, "");
}

static int print_json(const char *raw, const hd_refine_result *r, const hd_refine_opts *o,
                      const char *local_dir) {
    json_t *j = json_object();
    json_object_set_new(j, "prompt", json_string(r->prompt));
    json_object_set_new(j, "raw_prompt", json_string(raw));
    json_object_set_new(j, "refined", json_boolean(r->refined));
    json_object_set_new(j, "reasoning", r->reasoning ? json_string(r->reasoning) : json_null());
    json_object_set_new(j, "attempts", json_integer(r->attempts));
    json_object_set_new(j, "requests", json_integer(r->requests));
    json_object_set_new(j, "model", json_string(local_dir ? local_dir : o->model));
    if (!r->refined) json_object_set_new(j, "fallback_reason", json_string(r->why));
    char *s = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!s) {
        fprintf(stderr, "hidream refine: out of memory\n");
        return -1;
    }
    puts(s);
    free(s);
    return 0;
}

int cmd_refine(int argc, char **argv) {
    refine_cli c;
    refine_cli_init(&c, "hidream refine", "");
    const char *prompt = NULL;
    int as_json = 0, strict = 0, no_stream = 0, rc = HD_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = refine_cli_flag(&c, argc, argv, &i);
        if (k < 0) goto done;
        if (k > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = HD_EXIT_OK;
            goto done;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && i + 1 < argc) {
            prompt = argv[++i];
        } else if (!strcmp(a, "--json")) {
            as_json = 1;
        } else if (!strcmp(a, "--strict")) {
            strict = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c.verbose = 1;
        } else if (!strcmp(a, "--no-stream")) {
            no_stream = 1;
        } else {
            fprintf(stderr, "hidream refine: unknown option or missing value '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (!prompt) {
        fprintf(stderr, "hidream refine: -p/--prompt is required\n");
        goto done;
    }
    if (refine_cli_finish(&c) < 0) goto done;
    hd_refine_result r;
    hd_error e = {0};
    c.stream = !no_stream && isatty(2); /* the local agent's text as it comes */
    int rrc = refine_cli_run(&c, prompt, &r, &e);
    if (rrc < 0) {
        fprintf(stderr, "hidream refine: %s\n", e.msg);
        rc = hd_exit_code(rrc);
        goto done;
    }
    if (as_json ? print_json(prompt, &r, &c.o, c.lo.dir) == 0 : puts(r.prompt) >= 0)
        rc = (strict && !r.refined) ? HD_EXIT_CHECK : HD_EXIT_OK;
    else
        rc = HD_EXIT_OUTPUT; /* stdout could not be written */
    hd_refine_result_free(&r);
done:
    refine_cli_free(&c);
    return rc;
}
