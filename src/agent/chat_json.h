/* The OpenAI-compatible chat-completions wire format, as far as the prompt agent uses it:
 * the request body (model, a system and a user message, max_tokens) and the reply's first
 * choice. */
#ifndef HD_AGENT_CHAT_JSON_H
#define HD_AGENT_CHAT_JSON_H

#include <stddef.h>

#include "hidream.h"

/* A malloc'd JSON request body; max_tokens <= 0 leaves the length to the server. 0 or HD_ENOMEM
 * (or HD_EFORMAT when a string is not UTF-8, named in e). */
int hd_chat_request_json(const char *model, const char *system, const char *user, int max_tokens,
                         char **out, hd_error *e);

typedef struct hd_chat_reply {
    char *content;   /* the answer, reasoning removed and stripped; NULL when the server sent null */
    char *reasoning; /* reasoning_content / reasoning fields and inline <think> blocks; or NULL */
} hd_chat_reply;

/* Parses a reply body: choices[0].message.content (a string or null), its reasoning fields, and
 * inline thinking (agent/think.h). A body that is not JSON, an "error" object, or a missing or
 * mistyped field gives HD_EFORMAT with one line naming the field ("reply: choices[0].message:
 * missing"). */
int hd_chat_reply_parse(const char *body, size_t len, hd_chat_reply *r, hd_error *e);
void hd_chat_reply_free(hd_chat_reply *r);

#endif
