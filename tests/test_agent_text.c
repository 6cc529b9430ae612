/* The prompt agent's text handling: the degenerate-output check, the separation of thinking from
 * the answer, and the parsing of chat-completions replies (fields named in errors). */
#include <stdlib.h>
#include <string.h>

#include "agent/chat_json.h"
#include "agent/degenerate.h"
#include "agent/think.h"
#include "testutil.h"

static int degenerate(const char *s) { return hd_text_is_degenerate(s, strlen(s)); }

/* n copies of unit, joined by a space, then tail. */
static char *repeat(const char *unit, int n, const char *tail) {
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc((ul + 1) * (size_t)n + tl + 1), *p = s;
    for (int i = 0; i < n; i++) {
        memcpy(p, unit, ul);
        p += ul;
        *p++ = ' ';
    }
    memcpy(p, tail, tl + 1);
    return s;
}

static void test_fewer_than_six_words_is_degenerate(void) {
    CHECK(degenerate("") == 1);
    CHECK(degenerate("   \n\t ") == 1);
    CHECK(degenerate("one two three four five") == 1);
    CHECK(degenerate("one two three four five six") == 0);
    CHECK(degenerate("  one\ttwo\nthree\r\nfour  five\vsix  ") == 0);
    /* no white space (e.g. Chinese) is one word: degenerate, as upstream */
    CHECK(degenerate("一只猫坐在阳光明媚的窗台上，背景是城市的天际线") == 1);
    /* Unicode white space splits words too (U+3000 ideographic space, U+00A0) */
    CHECK(degenerate("一\xe3\x80\x80二\xc2\xa0三 四 五 六") == 0);
}

static void test_a_five_word_phrase_repeated_more_than_eleven_times_is_degenerate(void) {
    /* 12 copies of a 5-word unit: 12 identical windows (> 11) */
    char *s = repeat("the cat sat on mats", 12, "");
    CHECK(degenerate(s) == 1);
    free(s);
    /* 11 copies: each window of the cycle occurs at most 11 times */
    s = repeat("the cat sat on mats", 11, "");
    CHECK(degenerate(s) == 0);
    free(s);
    /* upper/lower case does not hide a loop */
    s = repeat("The Cat sat on mats the cat SAT ON MATS", 6, "");
    CHECK(degenerate(s) == 1);
    free(s);
    /* a single word repeated 16 times: the window "w w w w w" occurs 12 times */
    s = repeat("very", 16, "good");
    CHECK(degenerate(s) == 1);
    free(s);
    s = repeat("very", 15, "good");
    CHECK(degenerate(s) == 0);
    free(s);
}

static void test_long_varied_text_is_usable(void) {
    char *s = malloc(200000), *p = s;
    for (int i = 0; i < 20000; i++) p += sprintf(p, "w%d ", i);
    CHECK(degenerate(s) == 0);
    free(s);
    static const char bad[] = "a b c d e \xff\xfe f"; /* invalid bytes are text */
    CHECK(hd_text_is_degenerate(bad, sizeof bad - 1) == 0);
}

static void split(const char *in, const char *want_answer, const char *want_reasoning) {
    char *a, *r;
    CHECK(hd_split_thinking(in, strlen(in), &a, &r) == 0);
    CHECKF(a && !strcmp(a, want_answer), "answer of '%s': '%s'", in, a);
    if (want_reasoning) CHECKF(r && !strcmp(r, want_reasoning), "reasoning of '%s': '%s'", in, r);
    else CHECKF(r == NULL, "reasoning of '%s': '%s'", in, r);
    free(a);
    free(r);
}

static void test_thinking_is_split_from_the_answer(void) {
    split("  plain answer \n", "plain answer", NULL);
    split("<think>\nplan it\n</think>\n\nthe answer", "the answer", "plan it");
    split("the template opened it</think>the answer", "the answer", "the template opened it");
    split("<think>a</think>one <think>b</think>two", "one two", "a\n\nb");
    split("<think>ran out of tokens while thinking", "", "ran out of tokens while thinking");
    split("<think></think>answer", "answer", NULL);
    split("x </think> y </think> z", "y </think> z", "x");
    split("", "", NULL);
}

static void parse_ok(const char *body, const char *content, const char *reasoning) {
    hd_chat_reply r;
    hd_error e = {0};
    CHECKF(hd_chat_reply_parse(body, strlen(body), &r, &e) == 0, "%s: %s", body, e.msg);
    if (content) CHECKF(r.content && !strcmp(r.content, content), "%s: content '%s'", body, r.content);
    else CHECKF(!r.content, "%s: content '%s'", body, r.content);
    if (reasoning) CHECKF(r.reasoning && !strcmp(r.reasoning, reasoning), "%s: '%s'", body, r.reasoning);
    else CHECKF(!r.reasoning, "%s: reasoning '%s'", body, r.reasoning);
    hd_chat_reply_free(&r);
}

static void parse_bad(const char *body, const char *msg) {
    hd_chat_reply r;
    hd_error e = {0};
    CHECKF(hd_chat_reply_parse(body, strlen(body), &r, &e) == HD_EFORMAT && strstr(e.msg, msg),
           "%s: '%s'", body, e.msg);
    CHECK(!r.content && !r.reasoning && !strchr(e.msg, '\n'));
}

static void test_replies_are_parsed_field_by_field(void) {
    parse_ok("{\"choices\":[{\"message\":{\"content\":\" hi \"}}]}", "hi", NULL);
    parse_ok("{\"choices\":[{\"message\":{\"content\":null}}]}", NULL, NULL);
    parse_ok("{\"choices\":[{\"message\":{}}]}", NULL, NULL);
    parse_ok("{\"choices\":[{\"message\":{\"reasoning\":\"r\",\"content\":\"c\"}}]}", "c", "r");
    parse_ok("{\"choices\":[{\"message\":{\"reasoning_content\":\"f\",\"content\":"
             "\"<think>i</think>c\"}}]}", "c", "f\n\ni");
    parse_bad("not json", "reply: not JSON");
    parse_bad("[1]", "reply: not a JSON object");
    parse_bad("{}", "reply: choices: missing");
    parse_bad("{\"choices\":[]}", "reply: choices: not a non-empty array");
    parse_bad("{\"choices\":[{}]}", "reply: choices[0].message: missing");
    parse_bad("{\"choices\":[{\"message\":3}]}", "reply: choices[0].message: not an object");
    parse_bad("{\"choices\":[{\"message\":{\"content\":[1]}}]}", "choices[0].message.content: not a string");
    parse_bad("{\"error\":{\"message\":\"model not found\"}}", "reply: error: model not found");
}

static void test_request_body_carries_model_messages_and_limit(void) {
    char *s = NULL;
    hd_error e = {0};
    CHECK(hd_chat_request_json("m", "sys \"q\"", "user\n", 100, &s, &e) == 0);
    CHECKF(s && !strcmp(s, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
                           "\"sys \\\"q\\\"\"},{\"role\":\"user\",\"content\":\"user\\n\"}],"
                           "\"max_tokens\":100}"), "%s", s);
    free(s);
    CHECK(hd_chat_request_json("m", "\xc3", "u", 0, &s, &e) == HD_EFORMAT &&
          strstr(e.msg, "system prompt: not valid UTF-8") && !s);
}

int main(void) {
    RUN_TEST(test_fewer_than_six_words_is_degenerate);
    RUN_TEST(test_a_five_word_phrase_repeated_more_than_eleven_times_is_degenerate);
    RUN_TEST(test_long_varied_text_is_usable);
    RUN_TEST(test_thinking_is_split_from_the_answer);
    RUN_TEST(test_replies_are_parsed_field_by_field);
    RUN_TEST(test_request_body_carries_model_messages_and_limit);
    return hd_test_finish();
}
