/* The HiDream-O1 prompt layout (spec 02-sequence.md §2): the Qwen3-VL chat template for one
 * user message with add_generation_prompt, followed by <|boi_token|> <|tms_token|>.
 *
 *   text-to-image:  "<|im_start|>user\n" P "<|im_end|>\n<|im_start|>assistant\n"
 *   K references:   "<|im_start|>user\n" K x ("<|vision_start|>" N_k x "<|image_pad|>"
 *                   "<|vision_end|>") P "<|im_end|>\n<|im_start|>assistant\n"
 *
 * then the ids of <|boi_token|> and <|tms_token|>. The prompt is inserted verbatim, so special
 * token strings inside it are parsed as those tokens (as upstream). The unconditional CFG
 * branch uses the prompt " ". */
#ifndef HD_TEXT_CHAT_TEMPLATE_H
#define HD_TEXT_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "text/tokenizer.h"

#define HD_CHAT_MAX_IMAGE_TOKENS (1 << 20) /* per image; far above any real grid */
#define HD_CHAT_MAX_IMAGES 1024

/* Renders the template text (without boi/tms) into a malloc'd NUL-terminated string.
 * 0 <= n_images <= HD_CHAT_MAX_IMAGES; image_tokens[k] >= 1 is the number of <|image_pad|>
 * of image k (image_tokens may be NULL when n_images == 0). */
int hd_chat_render(const char *prompt, int n_images, const int *image_tokens, char **out,
                   size_t *out_len, hd_error *e);

/* Renders and encodes the prompt, then appends the ids of <|boi_token|> and <|tms_token|>
 * (an error if the tokenizer lacks either). *ids is malloc'd, owned by the caller. The prompt
 * must be valid UTF-8 (the error names the byte offset in the prompt). */
int hd_chat_encode(const hd_tokenizer *tok, const char *prompt, int n_images,
                   const int *image_tokens, int32_t **ids, size_t *n, hd_error *e);

#endif
