#include "text/chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/utf8.h"

static const char user_open[] = "<|im_start|>user\n";
static const char turn_close[] = "<|im_end|>\n<|im_start|>assistant\n";
static const char vision_start[] = "<|vision_start|>";
static const char image_pad[] = "<|image_pad|>";
static const char vision_end[] = "<|vision_end|>";

int hd_chat_render(const char *prompt, int n_images, const int *image_tokens, char **out,
                   size_t *out_len, hd_error *e) {
    *out = NULL;
    *out_len = 0;
    if (!prompt) return hd_fail(e, HD_EINVAL, "chat: no prompt");
    if (n_images < 0 || n_images > HD_CHAT_MAX_IMAGES || (n_images > 0 && !image_tokens))
        return hd_fail(e, HD_EINVAL, "chat: invalid image count %d", n_images);
    size_t plen = strlen(prompt);
    size_t bad = hd_utf8_find_invalid(prompt, plen);
    if (bad != plen)
        return hd_fail(e, HD_EFORMAT, "chat: prompt: invalid UTF-8 at byte offset %zu", bad);
    size_t total = sizeof user_open - 1 + plen + sizeof turn_close - 1;
    for (int k = 0; k < n_images; k++) {
        if (image_tokens[k] < 1 || image_tokens[k] > HD_CHAT_MAX_IMAGE_TOKENS)
            return hd_fail(e, HD_EINVAL, "chat: image %d: token count %d is outside 1..%d", k,
                           image_tokens[k], HD_CHAT_MAX_IMAGE_TOKENS);
        size_t add = sizeof vision_start - 1 + sizeof vision_end - 1 +
                     (size_t)image_tokens[k] * (sizeof image_pad - 1);
        if (total > SIZE_MAX / 2 - add) return hd_fail(e, HD_ENOMEM, "chat: prompt too long");
        total += add;
    }
    char *s = malloc(total + 1), *w = s;
    if (!s) return hd_fail(e, HD_ENOMEM, "chat: out of memory");
#define PUT(str, n)            \
    do {                       \
        memcpy(w, (str), (n)); \
        w += (n);              \
    } while (0)
    PUT(user_open, sizeof user_open - 1);
    for (int k = 0; k < n_images; k++) {
        PUT(vision_start, sizeof vision_start - 1);
        for (int i = 0; i < image_tokens[k]; i++) PUT(image_pad, sizeof image_pad - 1);
        PUT(vision_end, sizeof vision_end - 1);
    }
    PUT(prompt, plen);
    PUT(turn_close, sizeof turn_close - 1);
#undef PUT
    *w = 0;
    *out = s;
    *out_len = (size_t)(w - s);
    return 0;
}

int hd_chat_encode(const hd_tokenizer *tok, const char *prompt, int n_images,
                   const int *image_tokens, int32_t **ids, size_t *n, hd_error *e) {
    *ids = NULL;
    *n = 0;
    if (!tok) return hd_fail(e, HD_EINVAL, "chat: no tokenizer");
    int boi = hd_tokenizer_token_id(tok, "<|boi_token|>");
    int tms = hd_tokenizer_token_id(tok, "<|tms_token|>");
    if (boi < 0 || tms < 0)
        return hd_fail(e, HD_EUNSUPPORTED, "chat: the tokenizer has no '%s' token",
                       boi < 0 ? "<|boi_token|>" : "<|tms_token|>");
    char *text;
    size_t len;
    int rc = hd_chat_render(prompt, n_images, image_tokens, &text, &len, e);
    if (rc) return rc;
    int32_t *v;
    size_t k;
    rc = hd_tokenizer_encode(tok, text, len, 0, &v, &k, e);
    free(text);
    if (rc) return rc;
    int32_t *grown = realloc(v, (k + 2) * sizeof *v);
    if (!grown) {
        free(v);
        return hd_fail(e, HD_ENOMEM, "chat: out of memory");
    }
    grown[k] = boi;
    grown[k + 1] = tms;
    *ids = grown;
    *n = k + 2;
    return 0;
}
