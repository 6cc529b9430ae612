/* `hidream train RECIPE.json`: runs the training loop (src/train/trainer.h) and prints its
 * progress. Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits 130;
 * `--resume` continues bit-identically. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hidream.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream train RECIPE.json [--resume | --restart] [--until N] [--threads N]\n"
            "                     [--out DIR] [-q]\n"
            "  RECIPE.json   what to train and how (fields: docs/TRAINING.md)\n"
            "  --resume      continue the run in its out directory from checkpoint.safetensors\n"
            "  --restart     start over even if the out directory holds a checkpoint\n"
            "  --until N     stop after N steps in all (with a checkpoint); --resume goes on\n"
            "  --threads N   CPU threads (default: the recipe's, else all)\n"
            "  --out DIR     run directory instead of the recipe's \"out\"\n"
            "  -q            no progress lines (events only)\n"
            "Writes OUT/loss.csv, loss.png, checkpoint.safetensors, model/ (the exported model:\n"
            "hidream generate -m OUT/model), samples/ and eval.csv. Ctrl-C checkpoints and "
            "stops.\n");
}

static void fmt_time(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

typedef struct cli_state {
    int quiet;
} cli_state;

static void report(void *user, const hd_train_report *r) {
    const cli_state *st = user;
    char eta[32], el[32];
    switch (r->event) {
    case HD_TRAIN_EV_START:
        printf("train: %.2f M parameters, step %lld of %lld\n", (double)r->params / 1e6,
               (long long)r->step, (long long)r->total);
        break;
    case HD_TRAIN_EV_LOG:
        if (st->quiet) break;
        fmt_time(r->eta_s, eta, sizeof eta);
        fmt_time(r->elapsed_s, el, sizeof el);
        printf("step %lld/%lld  loss %.4f (img %.4f, lm %.3f)  lr %.2e  |g| %.3f  %.1f samples/s"
               "  %s elapsed, ETA %s\n",
               (long long)r->step, (long long)r->total, r->loss, r->loss_img, r->loss_lm, r->lr,
               r->grad_norm, r->samples_s, el, eta);
        break;
    case HD_TRAIN_EV_CHECKPOINT:
        if (!st->quiet) printf("step %lld: checkpoint %s\n", (long long)r->step, r->path);
        break;
    case HD_TRAIN_EV_SAMPLES:
        printf("step %lld: samples %s\n", (long long)r->step, r->path);
        break;
    case HD_TRAIN_EV_EVAL:
        printf("step %lld: shapes score %.3f (single %.2f, position %.2f, counting %.2f, "
               "relation %.2f, two %.2f)\n",
               (long long)r->step, hd_shapes_tally_fraction(r->tally, HD_N_CATEGORIES),
               hd_shapes_tally_fraction(r->tally, 0), hd_shapes_tally_fraction(r->tally, 1),
               hd_shapes_tally_fraction(r->tally, 2), hd_shapes_tally_fraction(r->tally, 3),
               hd_shapes_tally_fraction(r->tally, 4));
        break;
    case HD_TRAIN_EV_DONE:
        fmt_time(r->elapsed_s, el, sizeof el);
        printf("done: %lld steps in %s; model in %s\n", (long long)r->step, el, r->path);
        break;
    }
    fflush(stdout);
}

static int parse_count(const char *flag, const char *s, long long lo, long long hi,
                       long long *out) {
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi || s[0] == ' ') {
        fprintf(stderr, "hidream train: %s: '%s' is not an integer in [%lld, %lld]\n", flag,
                s ? s : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_train(int argc, char **argv) {
    const char *recipe = NULL, *out = NULL;
    hd_train_options opt = {0};
    cli_state st = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--resume")) {
            opt.resume = 1;
        } else if (!strcmp(a, "--restart")) {
            opt.restart = 1;
        } else if (!strcmp(a, "-q")) {
            st.quiet = 1;
        } else if (!strcmp(a, "--until") || !strcmp(a, "--threads")) {
            int until = !strcmp(a, "--until");
            if (parse_count(a, v, 1, until ? 1000000000LL : 1024, &x) < 0) return 2;
            if (until)
                opt.until = x;
            else
                opt.threads = (int)x;
            i++;
        } else if (!strcmp(a, "--out")) {
            if (!v || !v[0]) {
                fprintf(stderr, "hidream train: --out needs a directory\n");
                return 2;
            }
            out = v;
            i++;
        } else if (a[0] == '-' || recipe) {
            fprintf(stderr, "hidream train: unexpected argument '%s' (see --help)\n", a);
            return 2;
        } else {
            recipe = a;
        }
    }
    if (!recipe) {
        usage(stderr);
        return 2;
    }
    if (opt.resume && opt.restart) {
        fprintf(stderr, "hidream train: --resume and --restart exclude each other\n");
        return 2;
    }
    hd_error e = {0};
    static hd_train_config c; /* large (paths); not on the stack */
    if (hd_train_config_load(&c, recipe, &e) < 0) {
        fprintf(stderr, "hidream train: %s\n", e.msg);
        return 2;
    }
    if (out) snprintf(c.out, sizeof c.out, "%s", out);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    opt.report = report;
    opt.user = &st;
    opt.stop = &stop_flag;
    int rc = hd_train_run(&c, &opt, &e);
    if (rc == HD_ECANCELLED) {
        fprintf(stderr, "hidream train: %s\n", e.msg);
        return 130;
    }
    if (rc < 0) {
        fprintf(stderr, "hidream train: %s\n", e.msg);
        return 2;
    }
    return 0;
}
