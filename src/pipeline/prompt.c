#include "pipeline/prompt.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/utf8.h"

/* The chat template's structural tokens: one inside a prompt would change the sequence's shape
 * (an image-pad run without an image, a second boi), which the sequence builder can only report
 * in its own terms. */
static const char *const reserved[] = {
    "<|im_start|>",   "<|im_end|>",    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
    "<|video_pad|>",  "<|boi_token|>", "<|tms_token|>",    "<|endoftext|>",
};

int hd_prompt_check(const hd_tokenizer *tok, const char *text, const char *label,
                    int need_tokens, hd_error *e) {
    size_t len = strlen(text);
    if (len > HD_MAX_PROMPT_BYTES)
        return hd_fail(e, HD_EINVAL, "%s: %zu bytes, over the limit of %d bytes (%d tokens)",
                       label, len, HD_MAX_PROMPT_BYTES, HD_MAX_PROMPT_TOKENS);
    size_t bad = hd_utf8_find_invalid(text, len);
    if (bad != len)
        return hd_fail(e, HD_EFORMAT, "%s: invalid UTF-8 at byte offset %zu", label, bad);
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strstr(text, reserved[i]) && hd_tokenizer_token_id(tok, reserved[i]) >= 0)
            return hd_fail(e, HD_EINVAL,
                           "%s: contains the special token '%s', which the prompt template "
                           "reserves", label, reserved[i]);
    int32_t *ids = NULL;
    size_t n = 0;
    HD_TRY(hd_tokenizer_encode(tok, text, len, 0, &ids, &n, e));
    free(ids);
    if (n > HD_MAX_PROMPT_TOKENS)
        return hd_fail(e, HD_EINVAL, "%s: %zu tokens, over the limit of %d tokens", label, n,
                       HD_MAX_PROMPT_TOKENS);
    if (need_tokens && n == 0)
        return hd_fail(e, HD_EINVAL, "%s: %s", label,
                       len ? "the tokenizer encodes it to no tokens" : "empty");
    return 0;
}
