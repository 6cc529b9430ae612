/* libFuzzer target: the chat-completions reply parser (JSON, reasoning fields, <think> blocks)
 * and the degenerate-output check on whatever answer comes out. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/chat_json.h"
#include "agent/degenerate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hd_chat_reply r;
    hd_error e;
    if (hd_chat_reply_parse((const char *)data, size, &r, &e) == 0) {
        if (r.content) hd_text_is_degenerate(r.content, strlen(r.content));
        hd_chat_reply_free(&r);
    }
    hd_text_is_degenerate((const char *)data, size);
    return 0;
}
