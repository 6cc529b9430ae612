#include "agent/chat_json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/think.h"
#include "core/error.h"

static json_t *message(const char *role, const char *content) {
    json_t *m = json_object();
    if (m && (json_object_set_new(m, "role", json_string(role)) ||
              json_object_set_new(m, "content", json_string(content)))) {
        json_decref(m);
        return NULL;
    }
    return m;
}

int hd_chat_request_json(const char *model, const char *system, const char *user, int max_tokens,
                         char **out, hd_error *e) {
    *out = NULL;
    /* json_string refuses invalid UTF-8: say which string it was */
    const char *names[3] = {"model name", "system prompt", "prompt"}, *vals[3] = {model, system, user};
    for (int i = 0; i < 3; i++) {
        json_t *s = json_string(vals[i]);
        if (!s) return hd_fail(e, HD_EFORMAT, "%s: not valid UTF-8", names[i]);
        json_decref(s);
    }
    json_t *req = json_object(), *msgs = json_array();
    int bad = !req || !msgs;
    bad = bad || json_array_append_new(msgs, message("system", system));
    bad = bad || json_array_append_new(msgs, message("user", user));
    bad = bad || json_object_set_new(req, "model", json_string(model));
    bad = bad || json_object_set(req, "messages", msgs);
    if (!bad && max_tokens > 0) bad = json_object_set_new(req, "max_tokens", json_integer(max_tokens));
    if (!bad) *out = json_dumps(req, JSON_COMPACT);
    json_decref(msgs);
    json_decref(req);
    return *out ? 0 : hd_fail(e, HD_ENOMEM, "request: out of memory");
}

/* The reasoning fields servers use: vLLM's reasoning_content, and the newer "reasoning". */
static const char *reasoning_field(json_t *msg) {
    const char *keys[2] = {"reasoning_content", "reasoning"};
    for (int i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(msg, keys[i]));
        if (s && *s) return s;
    }
    return NULL;
}

/* reasoning = field, then inline blocks, separated by a blank line. */
static int merge_reasoning(const char *field, char *inl, char **out) {
    if (!field) {
        *out = inl;
        return 0;
    }
    size_t fl = strlen(field), il = inl ? strlen(inl) : 0;
    char *m = malloc(fl + il + 3);
    if (!m) {
        free(inl);
        return HD_ENOMEM;
    }
    memcpy(m, field, fl);
    if (inl) {
        memcpy(m + fl, "\n\n", 2);
        memcpy(m + fl + 2, inl, il + 1);
    } else {
        m[fl] = 0;
    }
    free(inl);
    *out = hd_strip_dup(m, strlen(m));
    free(m);
    return *out ? 0 : HD_ENOMEM;
}

int hd_chat_reply_parse(const char *body, size_t len, hd_chat_reply *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return hd_fail(e, HD_EFORMAT, "reply: not JSON (line %d: %s)", je.line, je.text);
    int rc = HD_EFORMAT;
    json_t *err = json_object_get(root, "error"), *choices = json_object_get(root, "choices");
    if (!json_is_object(root)) {
        hd_fail(e, rc, "reply: not a JSON object");
    } else if (err && !choices) {
        const char *m = json_string_value(json_object_get(err, "message"));
        if (!m) m = json_string_value(err);
        hd_fail(e, rc, "reply: error: %.300s", m ? m : "(no message)");
    } else if (!json_is_array(choices) || json_array_size(choices) == 0) {
        hd_fail(e, rc, "reply: choices: %s", choices ? "not a non-empty array" : "missing");
    } else {
        json_t *msg = json_object_get(json_array_get(choices, 0), "message");
        json_t *content = json_object_get(msg, "content");
        if (!json_is_object(msg)) {
            hd_fail(e, rc, "reply: choices[0].message: %s", msg ? "not an object" : "missing");
        } else if (content && !json_is_string(content) && !json_is_null(content)) {
            hd_fail(e, rc, "reply: choices[0].message.content: not a string");
        } else {
            char *inl = NULL;
            rc = 0;
            if (json_is_string(content))
                rc = hd_split_thinking(json_string_value(content), json_string_length(content),
                                       &r->content, &inl);
            if (rc == 0) rc = merge_reasoning(reasoning_field(msg), inl, &r->reasoning);
            if (rc < 0) hd_fail(e, rc, "reply: out of memory");
        }
    }
    json_decref(root);
    if (rc < 0) hd_chat_reply_free(r);
    return rc;
}

void hd_chat_reply_free(hd_chat_reply *r) {
    free(r->content);
    free(r->reasoning);
    r->content = r->reasoning = NULL;
}
