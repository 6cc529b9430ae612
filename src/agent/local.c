#include "agent/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/degenerate.h"
#include "agent/lm.h"
#include "agent/system_prompt.h"
#include "agent/think.h"
#include "core/error.h"
#include "text/tokenizer.h"

void hd_local_defaults(hd_local_opts *o) {
    memset(o, 0, sizeof *o);
    o->sampling = (hd_sampling){0.7f, 20, 0.8f, 1.0f, 0};
    o->max_new_tokens = 2048;
    o->attempts = 3;
}

/* The chat prompt as text (see local.h); malloc'd. */
static char *render(const char *sys, const char *user, int think_block) {
    const char *fmt = "<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n"
                      "<|im_start|>assistant\n%s";
    size_t n = strlen(fmt) + strlen(sys) + strlen(user) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, fmt, sys, user, think_block ? "<think>\n\n</think>\n\n" : "");
    return s;
}

/* One loaded model and what a generation needs. */
typedef struct local {
    const hd_local_opts *o;
    hd_tokenizer *tok;
    hd_backend *be;
    hd_lm *lm;
    int32_t *prompt, *out;
    size_t n_prompt;
    int n_out, stop1, stop2;
    float *logits;
} local;

static int open_model(local *L, const char *raw, hd_error *e) {
    const hd_local_opts *o = L->o;
    HD_TRY(hd_tokenizer_load(&L->tok, o->dir, e));
    hd_lm_config cfg;
    HD_TRY(hd_lm_config_load(o->dir, &cfg, e));
    L->stop1 = hd_tokenizer_token_id(L->tok, "<|im_end|>");
    L->stop2 = hd_tokenizer_token_id(L->tok, "<|endoftext|>");
    if (L->stop1 < 0)
        return hd_fail(e, HD_EUNSUPPORTED, "%s: tokenizer.json has no <|im_end|> token (not a "
                                           "Qwen chat model)", o->dir);
    /* a Qwen3 text model skips its thinking through the template; Qwen3-VL has no such block */
    int think_block = !o->thinking && !strcmp(cfg.prefix, "model.");
    char *text = render(o->system_prompt ? o->system_prompt : hd_refine_system_prompt(), raw, think_block);
    if (!text) return hd_fail(e, HD_ENOMEM, "out of memory");
    int rc = hd_tokenizer_encode(L->tok, text, strlen(text), 0, &L->prompt, &L->n_prompt, e);
    free(text);
    if (rc < 0) return hd_error_prefix(e, "prompt");
    long ctx = (long)L->n_prompt + o->max_new_tokens;
    if (ctx > cfg.max_pos)
        return hd_fail(e, HD_EINVAL, "%s: %zu prompt tokens + %d new ones exceed the model's %d "
                                     "positions", o->dir, L->n_prompt, o->max_new_tokens, cfg.max_pos);
    hd_backend_options bo = {0};
    bo.n_threads = o->n_threads;
    HD_TRY(hd_backend_create(&L->be, o->backend ? o->backend : "cpu", &bo, e));
    HD_TRY(hd_lm_load(&L->lm, o->dir, L->be, (int)ctx, e));
    if (hd_tokenizer_vocab_size(L->tok) > L->lm->cfg.vocab)
        return hd_fail(e, HD_EMISMATCH, "%s: tokenizer.json has %d ids, the model only %d", o->dir,
                       hd_tokenizer_vocab_size(L->tok), L->lm->cfg.vocab);
    L->out = malloc((size_t)o->max_new_tokens * sizeof *L->out);
    L->logits = malloc((size_t)L->lm->cfg.vocab * sizeof *L->logits);
    if (!L->out || !L->logits) return hd_fail(e, HD_ENOMEM, "out of memory");
    return 0;
}

static void close_model(local *L) {
    hd_lm_free(L->lm);
    hd_backend_destroy(L->be);
    hd_tokenizer_free(L->tok);
    free(L->prompt);
    free(L->out);
    free(L->logits);
}

/* Streams the text of the ids generated so far beyond what was already sent (*sent bytes);
 * a trailing incomplete character (U+FFFD at the end) waits for the next token. */
static int stream_new(local *L, size_t *sent, int final, hd_error *e) {
    char *text;
    size_t len;
    HD_TRY(hd_tokenizer_decode(L->tok, (const int32_t *)L->out, (size_t)L->n_out, &text, &len, e));
    size_t upto = len;
    if (!final && len >= 3 && !memcmp(text + len - 3, "\xEF\xBF\xBD", 3)) upto = len - 3;
    if (upto > *sent && L->o->stream) L->o->stream(L->o->stream_user, text + *sent, upto - *sent);
    if (upto > *sent) *sent = upto;
    free(text);
    return 0;
}

/* One generation from the prompt; L->out[0..n_out) receives the ids (stop token excluded). */
static int generate(local *L, hd_sampler *sp, hd_error *e) {
    hd_lm_reset(L->lm);
    L->n_out = 0;
    size_t sent = 0;
    HD_TRY(hd_lm_forward(L->lm, L->prompt, (int)L->n_prompt, L->logits, 0, e));
    hd_sampler_observe(sp, L->prompt, (int)L->n_prompt);
    while (L->n_out < L->o->max_new_tokens) {
        int32_t t = hd_sampler_next(sp, L->logits);
        if (t == L->stop1 || t == L->stop2) break;
        L->out[L->n_out++] = t;
        hd_sampler_observe(sp, &t, 1);
        HD_TRY(stream_new(L, &sent, 0, e));
        if (L->n_out < L->o->max_new_tokens) HD_TRY(hd_lm_forward(L->lm, &t, 1, L->logits, 0, e));
    }
    return stream_new(L, &sent, 1, e);
}

static void warn(const hd_local_opts *o, int final, const char *line) {
    if (o->warn) o->warn(o->warn_user, final, line);
}

/* The answer of the last generation, if usable: 1 (r->prompt set), 0 not usable, < 0 error. */
static int take_answer(local *L, int attempt, hd_refine_result *r, hd_error *e) {
    char *text, *answer, *reasoning;
    size_t len;
    HD_TRY(hd_tokenizer_decode(L->tok, L->out, (size_t)L->n_out, &text, &len, e));
    int rc = hd_split_thinking(text, len, &answer, &reasoning);
    free(text);
    if (rc < 0) return hd_fail(e, rc, "out of memory");
    int deg = hd_text_is_degenerate(answer, strlen(answer));
    if (deg == 0) {
        r->prompt = answer;
        r->reasoning = reasoning;
        return 1;
    }
    free(answer);
    free(reasoning);
    if (deg < 0) return hd_fail(e, deg, "out of memory");
    snprintf(r->why, sizeof r->why, "attempt %d: degenerate answer (%d tokens)", attempt, L->n_out);
    warn(L->o, 0, r->why);
    return 0;
}

int hd_refine_local(const char *raw, const hd_local_opts *o, hd_refine_result *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    if (!raw || !raw[0]) return hd_fail(e, HD_EINVAL, "refine: the prompt is empty");
    if (!o->dir) return hd_fail(e, HD_EINVAL, "refine: no model directory");
    if (o->max_new_tokens < 1 || o->max_new_tokens > (1 << 20) || o->attempts < 1)
        return hd_fail(e, HD_EINVAL, "refine: max new tokens and attempts must be >= 1");
    local L = {.o = o};
    hd_sampler sp = {0};
    int rc = open_model(&L, raw, e);
    int tries = o->sampling.temperature > 0 ? o->attempts : 1;
    for (int a = 1; rc == 0 && a <= tries; a++) {
        hd_sampling s = o->sampling;
        s.seed += (uint64_t)(a - 1); /* another draw per attempt, reproducible */
        rc = hd_sampler_init(&sp, &s, L.lm->cfg.vocab, e);
        if (rc == 0) rc = generate(&L, &sp, e);
        hd_sampler_free(&sp);
        r->attempts = r->requests = a;
        if (rc == 0) rc = take_answer(&L, a, r, e);
        if (rc == 1) break;
    }
    close_model(&L);
    if (rc < 0) {
        hd_refine_result_free(r);
        return rc;
    }
    r->refined = rc == 1;
    if (!r->refined) {
        if (!(r->prompt = strdup(raw))) return hd_fail(e, HD_ENOMEM, "out of memory");
        char line[700];
        snprintf(line, sizeof line, "could not refine the prompt (%s); using it unchanged", r->why);
        warn(o, 1, line);
    }
    return 0;
}
