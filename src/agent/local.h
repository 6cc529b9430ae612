/* The local prompt agent: the same job as the remote one (agent/refine.h), done by a Qwen3
 * causal LM run on hidream.c's own decoder (agent/lm.h) and tokenizer.
 *
 * The request is the model's chat template with the system prompt and the raw request
 *   <|im_start|>system\n S <|im_end|>\n<|im_start|>user\n U <|im_end|>\n<|im_start|>assistant\n
 * followed, for a Qwen3 text model with thinking off, by the empty block "<think>\n\n</think>\n\n"
 * (what Qwen3's template adds for enable_thinking=False). Generation stops at <|im_end|> or
 * <|endoftext|> or after max_new_tokens; the answer after any thinking block is the prompt,
 * checked like a remote reply (agent/degenerate.h). With sampling, a degenerate answer is
 * drawn again (up to `attempts`); greedy decoding would repeat it, so it falls back at once. */
#ifndef HD_AGENT_LOCAL_H
#define HD_AGENT_LOCAL_H

#include "agent/refine.h"
#include "agent/sampler.h"

/* Receives the generated text as it grows (UTF-8 pieces, complete characters only). */
typedef void (*hd_local_stream_fn)(void *user, const char *piece, size_t len);

typedef struct hd_local_opts {
    const char *dir;           /* config.json, *.safetensors, tokenizer.json */
    const char *backend;       /* "cpu" (NULL) or "cuda" */
    int n_threads;             /* 0: all CPUs */
    int thinking;              /* 1: let a Qwen3 model think first (the thinking is dropped) */
    hd_sampling sampling;
    int max_new_tokens;        /* >= 1 */
    int attempts;              /* >= 1, used only when sampling */
    const char *system_prompt; /* NULL: the built-in one */
    hd_local_stream_fn stream;
    void *stream_user;
    hd_refine_warn_fn warn;
    void *warn_user;
} hd_local_opts;

/* Qwen3's recommended settings: thinking off, temperature 0.7, top-p 0.8, top-k 20, no
 * repetition penalty, seed 0, 2048 new tokens, 3 attempts, the CPU backend. */
void hd_local_defaults(hd_local_opts *o);

/* Refines raw with the model in o->dir. An unusable model directory (missing, wrong
 * architecture, no tokenizer) is an error (one line in e); a degenerate answer is the fallback
 * (r->refined = 0, with a warning), as in hd_refine. r->requests counts generations. */
int hd_refine_local(const char *raw, const hd_local_opts *o, hd_refine_result *r, hd_error *e);

#endif
