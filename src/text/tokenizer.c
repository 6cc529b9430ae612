/* Loading and validating tokenizer.json. The vocabulary and merges are read by the streaming
 * scanner (json_scan.h) straight into the BPE tables; the other members, all small, are
 * parsed with jansson and checked field by field. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "text/bytelevel.h"
#include "text/json_scan.h"
#include "text/normalize.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

#define MAX_FILE_BYTES (1u << 30)
#define MAX_ADDED_TOKENS (1 << 20)

/* The pattern ByteLevel uses when use_regex is true (GPT-2's). */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Printable, truncated rendering of s for messages: valid UTF-8 kept, other bytes, controls,
 * quote and backslash as \xNN. */
static const char *show(const char *s, size_t n, char *out, size_t cap) {
    const unsigned char *u = (const unsigned char *)s;
    size_t w = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t bad, k = hd_utf8_next(u + i, n - i, &cp, &bad);
        int escape = !k || cp < 0x20 || cp == 0x7F || cp == '\'' || cp == '\\';
        size_t need = escape ? 4 : k;
        if (w + need + 4 > cap) { /* room for "..." and the NUL */
            memcpy(out + w, "...", 3);
            w += 3;
            break;
        }
        if (escape) {
            w += (size_t)snprintf(out + w, cap - w, "\\x%02X", u[i]);
            i++;
        } else {
            memcpy(out + w, u + i, k);
            w += k;
            i += k;
        }
    }
    out[w] = 0;
    return out;
}

typedef struct loader {
    const char *what;
    hd_jscan js;
    hd_tokenizer *tok;
    json_t *top, *model; /* every member except model.vocab and model.merges */
    int have_model, have_vocab, have_merges;
    size_t merges_pos; /* where model.merges starts, when it came before model.vocab */
    unsigned char *tmp;
    size_t tmp_cap;
    hd_error *e;
} loader;

static int scan_fail(loader *L, const char *field) {
    return hd_fail(L->e, HD_EFORMAT, "%s: %s: malformed JSON at byte %zu: %s", L->what, field,
                   L->js.err_pos, L->js.err ? L->js.err : "syntax error");
}

static int tmp_reserve(loader *L, size_t n) {
    if (n <= L->tmp_cap) return 0;
    size_t cap = L->tmp_cap ? L->tmp_cap : 256;
    while (cap < n) cap *= 2;
    unsigned char *p = realloc(L->tmp, cap);
    if (!p) return HD_ENOMEM;
    L->tmp = p;
    L->tmp_cap = cap;
    return 0;
}

static int parse_vocab(loader *L) {
    hd_jscan *js = &L->js;
    hd_bpe *b = &L->tok->bpe;
    if (hd_js_peek(js) != '{')
        return hd_fail(L->e, HD_EFORMAT, "%s: model.vocab: expected an object of token: id",
                       L->what);
    js->pos++;
    if (hd_js_peek(js) == '}') {
        js->pos++;
    } else {
        for (;;) {
            int64_t id;
            if (hd_js_string(js) || hd_js_expect(js, ':')) return scan_fail(L, "model.vocab");
            if (hd_js_int(js, &id)) {
                char sh[64];
                return hd_fail(L->e, HD_EFORMAT,
                               "%s: model.vocab: token '%s': id is not an integer (byte %zu)",
                               L->what, show(js->str, js->str_len, sh, sizeof sh), js->err_pos);
            }
            if (id < 0 || id > HD_TOK_MAX_ID) {
                char sh[64];
                return hd_fail(L->e, HD_EFORMAT,
                               "%s: model.vocab: token '%s': id %lld is outside 0..%d", L->what,
                               show(js->str, js->str_len, sh, sizeof sh), (long long)id,
                               HD_TOK_MAX_ID);
            }
            int rc = hd_bpe_add(b, js->str, js->str_len, (int32_t)id);
            if (rc) return hd_fail(L->e, rc, "%s: model.vocab: too large", L->what);
            int r = hd_js_next(js, '}');
            if (r < 0) return scan_fail(L, "model.vocab");
            if (r == 0) break;
        }
    }
    size_t dup;
    int dup_is_id;
    int rc = hd_bpe_index(b, &dup, &dup_is_id);
    if (rc == HD_ENOMEM) return hd_fail(L->e, rc, "%s: model.vocab: out of memory", L->what);
    if (rc) {
        const hd_bpe_entry *en = &b->entries[dup];
        char sh[64];
        show(b->arena + en->off, en->len, sh, sizeof sh);
        if (dup_is_id)
            return hd_fail(L->e, HD_EFORMAT, "%s: model.vocab: id %d is given to two tokens "
                           "(the second is '%s')", L->what, (int)en->id, sh);
        return hd_fail(L->e, HD_EFORMAT, "%s: model.vocab: token '%s' appears twice", L->what, sh);
    }
    L->have_vocab = 1;
    return 0;
}

/* Merges are resolved in batches: the vocabulary and merge tables are larger than the cache,
 * so the slots a batch needs are prefetched before any of them is read. */
#define MERGE_BATCH 64

typedef struct pending_merge {
    size_t rank;
    size_t off;            /* left bytes at tmp[off], right bytes right after them */
    uint32_t llen, rlen;
    int usable;            /* both sides inside the byte-level alphabet */
    uint64_t hl, hr, hm;   /* hashes of left, right, left+right */
    int32_t left, right, merged;
} pending_merge;

static int merge_unknown(loader *L, size_t rank, const unsigned char *bytes, size_t len,
                         int merged) {
    char sh[64];
    show((const char *)bytes, len, sh, sizeof sh);
    if (merged)
        return hd_fail(L->e, HD_EFORMAT,
                       "%s: model.merges[%zu]: merged token '%s' is not in model.vocab", L->what,
                       rank, sh);
    return hd_fail(L->e, HD_EFORMAT, "%s: model.merges[%zu]: token '%s' is not in model.vocab",
                   L->what, rank, sh);
}

static int flush_merges(loader *L, pending_merge *pm, int n, int32_t *guess) {
    hd_bpe *b = &L->tok->bpe;
    for (int i = 0; i < n; i++) {
        pending_merge *p = &pm[i];
        if (!p->usable) continue;
        const unsigned char *lb = L->tmp + p->off, *rb = lb + p->llen;
        p->left = hd_bpe_find_hashed(b, lb, p->llen, p->hl);
        if (p->left < 0) return merge_unknown(L, p->rank, lb, p->llen, 0);
        p->right = hd_bpe_find_hashed(b, rb, p->rlen, p->hr);
        if (p->right < 0) return merge_unknown(L, p->rank, rb, p->rlen, 0);
        /* files usually list merges in the order of the ids they create: try the id after the
         * previous merge's before the hash table */
        size_t ml = (size_t)p->llen + p->rlen;
        p->merged = hd_bpe_id_is(b, *guess, lb, ml) ? *guess : hd_bpe_find_hashed(b, lb, ml, p->hm);
        if (p->merged < 0) return merge_unknown(L, p->rank, lb, ml, 1);
        *guess = p->merged + 1;
        hd_bpe_merge_prefetch(b, p->left, p->right);
    }
    for (int i = 0; i < n; i++)
        if (pm[i].usable && hd_bpe_merge_put(b, pm[i].left, pm[i].right, (int32_t)pm[i].rank,
                                             pm[i].merged))
            return hd_fail(L->e, HD_ENOMEM, "%s: model.merges: out of memory", L->what);
    return 0;
}

/* Converts one merge side (tokenizer.json text) to bytes at tmp[off]; returns the byte count,
 * -1 when outside the byte-level alphabet, -2 on allocation failure. */
static long side_bytes(loader *L, const char *text, size_t len, size_t off) {
    if (tmp_reserve(L, off + len + 1)) return -2;
    return hd_bpe_text_to_bytes(text, len, L->tmp + off);
}

static int parse_merges(loader *L) {
    hd_jscan *js = &L->js;
    hd_bpe *b = &L->tok->bpe;
    if (hd_js_peek(js) != '[')
        return hd_fail(L->e, HD_EFORMAT, "%s: model.merges: expected an array", L->what);
    js->pos++;
    if (hd_js_peek(js) == ']') {
        js->pos++;
        L->have_merges = 1;
        return 0;
    }
    /* a BPE vocabulary has about one merge per token */
    if (hd_bpe_merges_reserve(b, b->n_entries))
        return hd_fail(L->e, HD_ENOMEM, "%s: model.merges: out of memory", L->what);
    pending_merge pm[MERGE_BATCH];
    int np = 0;
    size_t used = 0; /* bytes of tmp used by the batch */
    int32_t guess = 0;
    for (size_t rank = 0;; rank++) {
        if (rank > INT32_MAX)
            return hd_fail(L->e, HD_EFORMAT, "%s: model.merges: too many merges", L->what);
        pending_merge *p = &pm[np];
        long nl = 0, nr = 0;
        p->rank = rank;
        p->off = used;
        int c = hd_js_peek(js);
        if (c == '"') { /* "left right" */
            if (hd_js_string(js)) return scan_fail(L, "model.merges");
            const char *s = js->str, *sp = memchr(s, ' ', js->str_len);
            if (!sp || memchr(sp + 1, ' ', js->str_len - (size_t)(sp + 1 - s))) {
                char sh[64];
                return hd_fail(L->e, HD_EFORMAT,
                               "%s: model.merges[%zu]: '%s' is not two tokens separated by one "
                               "space", L->what, rank, show(s, js->str_len, sh, sizeof sh));
            }
            size_t ll = (size_t)(sp - s);
            nl = side_bytes(L, s, ll, used);
            if (nl >= 0) nr = side_bytes(L, sp + 1, js->str_len - ll - 1, used + (size_t)nl);
        } else if (c == '[') { /* ["left", "right"] */
            js->pos++;
            if (hd_js_string(js)) return scan_fail(L, "model.merges");
            nl = side_bytes(L, js->str, js->str_len, used);
            if (hd_js_next(js, ']') != 1 || hd_js_string(js))
                return hd_fail(L->e, HD_EFORMAT,
                               "%s: model.merges[%zu]: expected a pair of strings", L->what, rank);
            if (nl >= 0) nr = side_bytes(L, js->str, js->str_len, used + (size_t)nl);
            if (hd_js_next(js, ']') != 0)
                return hd_fail(L->e, HD_EFORMAT,
                               "%s: model.merges[%zu]: expected a pair of strings", L->what, rank);
        } else {
            return hd_fail(L->e, HD_EFORMAT,
                           "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", L->what,
                           rank);
        }
        if (nl == -2 || nr == -2)
            return hd_fail(L->e, HD_ENOMEM, "%s: model.merges: out of memory", L->what);
        /* a side outside the byte-level alphabet can never be produced: the merge never applies */
        p->usable = nl >= 0 && nr >= 0;
        if (p->usable) {
            const unsigned char *lb = L->tmp + used;
            p->llen = (uint32_t)nl;
            p->rlen = (uint32_t)nr;
            p->hl = hd_bpe_hash(lb, (size_t)nl);
            p->hr = hd_bpe_hash(lb + nl, (size_t)nr);
            p->hm = hd_bpe_hash(lb, (size_t)(nl + nr));
            hd_bpe_prefetch(b, p->hl);
            hd_bpe_prefetch(b, p->hr);
            hd_bpe_prefetch(b, p->hm);
            used += (size_t)(nl + nr);
        }
        np++;
        int r = hd_js_next(js, ']');
        if (r < 0) return scan_fail(L, "model.merges");
        if (np == MERGE_BATCH || r == 0) {
            if (flush_merges(L, pm, np, &guess)) return L->e->code;
            np = 0;
            used = 0;
        }
        if (r == 0) break;
    }
    L->have_merges = 1;
    return 0;
}

/* Skips a member value and stores it, parsed by jansson, under key in obj. */
static int keep_member(loader *L, json_t *obj, const char *key, size_t key_len,
                       const char *field) {
    size_t b, end;
    if (hd_js_skip(&L->js, &b, &end)) return scan_fail(L, field);
    json_error_t jerr;
    json_t *v = json_loadb(L->js.buf + b, end - b, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v)
        return hd_fail(L->e, HD_EFORMAT, "%s: %s: %s (byte %zu)", L->what, field, jerr.text,
                       b + (size_t)(jerr.position > 0 ? jerr.position : 0));
    if (json_object_setn_new(obj, key, key_len, v))
        return hd_fail(L->e, HD_ENOMEM, "%s: %s: out of memory", L->what, field);
    return 0;
}

/* keep_member for the member whose key the scanner just read (js->str is overwritten by the
 * next scan, so the key is copied first); `prefix` names the enclosing object in messages. */
static int keep_current_member(loader *L, json_t *obj, const char *prefix) {
    hd_jscan *js = &L->js;
    size_t klen = js->str_len;
    char *key = malloc(klen + 1);
    if (!key) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
    memcpy(key, js->str, klen + 1);
    char field[96];
    snprintf(field, sizeof field, "%s%.60s", prefix, key);
    int rc = keep_member(L, obj, key, klen, field);
    free(key);
    return rc;
}

static int parse_model(loader *L) {
    hd_jscan *js = &L->js;
    if (hd_js_peek(js) != '{')
        return hd_fail(L->e, HD_EFORMAT, "%s: model: expected an object", L->what);
    js->pos++;
    if (hd_js_peek(js) == '}') {
        js->pos++;
        return 0;
    }
    for (;;) {
        if (hd_js_string(js) || hd_js_expect(js, ':')) return scan_fail(L, "model");
        if (!strcmp(js->str, "vocab") && js->str_len == 5) {
            if (L->have_vocab)
                return hd_fail(L->e, HD_EFORMAT, "%s: model.vocab: appears twice", L->what);
            if (parse_vocab(L)) return L->e->code;
            if (L->merges_pos) { /* merges came first: go back for them */
                size_t resume = js->pos;
                js->pos = L->merges_pos;
                if (parse_merges(L)) return L->e->code;
                js->pos = resume;
            }
        } else if (!strcmp(js->str, "merges") && js->str_len == 6) {
            if (L->have_merges || L->merges_pos)
                return hd_fail(L->e, HD_EFORMAT, "%s: model.merges: appears twice", L->what);
            if (L->have_vocab) {
                if (parse_merges(L)) return L->e->code;
            } else {
                size_t b, end;
                if (hd_js_skip(js, &b, &end)) return scan_fail(L, "model.merges");
                L->merges_pos = b; /* > 0: at least `{"model":{"merges":` precedes it */
            }
        } else {
            HD_TRY(keep_current_member(L, L->model, "model."));
        }
        int r = hd_js_next(js, '}');
        if (r < 0) return scan_fail(L, "model");
        if (r == 0) break;
    }
    return 0;
}

static int parse_document(loader *L) {
    hd_jscan *js = &L->js;
    if (hd_js_peek(js) != '{')
        return hd_fail(L->e, HD_EFORMAT, "%s: not a JSON object (tokenizer.json expected)",
                       L->what);
    js->pos++;
    if (hd_js_peek(js) == '}') {
        js->pos++;
    } else {
        for (;;) {
            if (hd_js_string(js) || hd_js_expect(js, ':')) return scan_fail(L, "top level");
            if (!strcmp(js->str, "model") && js->str_len == 5) {
                if (L->have_model)
                    return hd_fail(L->e, HD_EFORMAT, "%s: model: appears twice", L->what);
                L->have_model = 1;
                if (parse_model(L)) return L->e->code;
            } else {
                HD_TRY(keep_current_member(L, L->top, ""));
            }
            int r = hd_js_next(js, '}');
            if (r < 0) return scan_fail(L, "top level");
            if (r == 0) break;
        }
    }
    if (hd_js_peek(js) >= 0) {
        hd_js_fail(js, "data after the JSON object");
        return scan_fail(L, "top level");
    }
    return 0;
}

/* ---- field checks ------------------------------------------------------------------------ */

static int get_bool(loader *L, json_t *obj, const char *key, const char *field, int dflt,
                    int *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v))
        return hd_fail(L->e, HD_EFORMAT, "%s: %s.%s: expected true or false", L->what, field, key);
    *out = json_is_true(v);
    return 0;
}

static const char *type_of(json_t *obj) {
    json_t *t = json_is_object(obj) ? json_object_get(obj, "type") : NULL;
    return json_is_string(t) ? json_string_value(t) : NULL;
}

static int check_model(loader *L) {
    hd_tokenizer *tok = L->tok;
    json_t *m = L->model;
    if (!L->have_model) return hd_fail(L->e, HD_EFORMAT, "%s: model: missing", L->what);
    json_t *type = json_object_get(m, "type");
    if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "BPE")))
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: model.type: '%s' is not supported (only BPE)",
                       L->what, json_is_string(type) ? json_string_value(type) : "(not a string)");
    if (!L->have_vocab) return hd_fail(L->e, HD_EFORMAT, "%s: model.vocab: missing", L->what);
    json_t *drop = json_object_get(m, "dropout");
    if (drop && !json_is_null(drop) && !(json_is_number(drop) && json_number_value(drop) == 0.0))
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: model.dropout: BPE dropout is not supported",
                       L->what);
    int fb;
    if (get_bool(L, m, "byte_fallback", "model", 0, &fb)) return L->e->code;
    if (fb)
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: model.byte_fallback: true is not supported",
                       L->what);
    if (get_bool(L, m, "ignore_merges", "model", 0, &tok->bpe.ignore_merges) ||
        get_bool(L, m, "fuse_unk", "model", 0, &tok->bpe.fuse_unk))
        return L->e->code;
    static const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *a = json_object_get(m, affixes[i]);
        if (a && !json_is_null(a) && !(json_is_string(a) && json_string_length(a) == 0))
            return hd_fail(L->e, HD_EUNSUPPORTED, "%s: model.%s: must be empty or null",
                           L->what, affixes[i]);
    }
    /* unk_token: used for bytes without a vocabulary entry; Hugging Face only looks it up when
     * such a byte occurs, so one missing from the vocabulary is not an error here either */
    json_t *unk = json_object_get(m, "unk_token");
    if (unk && !json_is_null(unk)) {
        if (!json_is_string(unk))
            return hd_fail(L->e, HD_EFORMAT, "%s: model.unk_token: expected a string or null",
                           L->what);
        size_t n = json_string_length(unk);
        if (tmp_reserve(L, n + 1)) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
        long nb = hd_bpe_text_to_bytes(json_string_value(unk), n, L->tmp);
        tok->bpe.unk_id = nb >= 0 ? hd_bpe_find(&tok->bpe, L->tmp, (size_t)nb) : -1;
    }
    return 0;
}

static int check_normalizer(loader *L) {
    json_t *n = json_object_get(L->top, "normalizer");
    if (!n || json_is_null(n)) return 0;
    const char *t = type_of(n);
    if (t && !strcmp(t, "NFC")) {
        L->tok->nfc = 1;
        return 0;
    }
    if (t && !strcmp(t, "Sequence")) {
        json_t *list = json_object_get(n, "normalizers");
        if (!json_is_array(list))
            return hd_fail(L->e, HD_EFORMAT, "%s: normalizer.normalizers: expected an array",
                           L->what);
        for (size_t i = 0; i < json_array_size(list); i++) {
            const char *ti = type_of(json_array_get(list, i));
            if (!ti || strcmp(ti, "NFC"))
                return hd_fail(L->e, HD_EUNSUPPORTED,
                               "%s: normalizer.normalizers[%zu].type: '%s' is not supported "
                               "(only NFC)", L->what, i, ti ? ti : "(missing)");
            L->tok->nfc = 1;
        }
        return 0;
    }
    return hd_fail(L->e, HD_EUNSUPPORTED,
                   "%s: normalizer.type: '%s' is not supported (NFC, Sequence of NFC, or null)",
                   L->what, t ? t : "(missing)");
}

static int check_bytelevel(loader *L, json_t *bl, const char *field) {
    hd_tokenizer *tok = L->tok;
    if (get_bool(L, bl, "add_prefix_space", field, 1, &tok->bl_prefix_space) ||
        get_bool(L, bl, "use_regex", field, 1, &tok->bl_use_regex))
        return L->e->code;
    if (tok->bl_use_regex) {
        char what[512];
        snprintf(what, sizeof what, "%s: %s (GPT-2 pattern)", L->what, field);
        return hd_regex_compile(&tok->bl_regex, gpt2_pattern, strlen(gpt2_pattern), 0, what, L->e);
    }
    return 0;
}

static int check_split(loader *L, json_t *sp, const char *field) {
    hd_tokenizer *tok = L->tok;
    json_t *pat = json_object_get(sp, "pattern");
    json_t *rx = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
    json_t *lit = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
    json_t *str = rx ? rx : lit;
    if (!json_is_string(str) || json_object_size(pat) != 1)
        return hd_fail(L->e, HD_EFORMAT,
                       "%s: %s.pattern: expected {\"Regex\": \"...\"} or {\"String\": \"...\"}",
                       L->what, field);
    json_t *beh = json_object_get(sp, "behavior");
    if (!json_is_string(beh) || strcmp(json_string_value(beh), "Isolated"))
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: %s.behavior: '%s' is not supported (only "
                       "Isolated)", L->what, field,
                       json_is_string(beh) ? json_string_value(beh) : "(missing)");
    int invert;
    if (get_bool(L, sp, "invert", field, 0, &invert)) return L->e->code;
    if (invert)
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: %s.invert: true is not supported", L->what,
                       field);
    if (tok->n_splits >= HD_TOK_MAX_SPLITS)
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: %s: more than %d Split steps", L->what, field,
                       HD_TOK_MAX_SPLITS);
    char what[512];
    snprintf(what, sizeof what, "%s: %s.pattern.%s", L->what, field, rx ? "Regex" : "String");
    int rc = hd_regex_compile(&tok->splits[tok->n_splits], json_string_value(str),
                              json_string_length(str), !rx, what, L->e);
    if (rc) return rc;
    tok->n_splits++;
    return 0;
}

static int check_pre_tokenizer(loader *L) {
    json_t *p = json_object_get(L->top, "pre_tokenizer");
    if (!p || json_is_null(p))
        return hd_fail(L->e, HD_EUNSUPPORTED,
                       "%s: pre_tokenizer: missing (a ByteLevel pre-tokenizer is required)",
                       L->what);
    const char *t = type_of(p);
    if (t && !strcmp(t, "ByteLevel")) return check_bytelevel(L, p, "pre_tokenizer");
    if (!t || strcmp(t, "Sequence"))
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: pre_tokenizer.type: '%s' is not supported "
                       "(ByteLevel, or a Sequence of Split steps and ByteLevel)", L->what,
                       t ? t : "(missing)");
    json_t *list = json_object_get(p, "pretokenizers");
    if (!json_is_array(list))
        return hd_fail(L->e, HD_EFORMAT, "%s: pre_tokenizer.pretokenizers: expected an array",
                       L->what);
    size_t n = json_array_size(list);
    int have_bl = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *step = json_array_get(list, i);
        const char *ti = type_of(step);
        char field[64];
        snprintf(field, sizeof field, "pre_tokenizer.pretokenizers[%zu]", i);
        if (ti && !strcmp(ti, "Split")) {
            if (check_split(L, step, field)) return L->e->code;
        } else if (ti && !strcmp(ti, "ByteLevel")) {
            if (i + 1 != n)
                return hd_fail(L->e, HD_EUNSUPPORTED, "%s: %s: ByteLevel must be the last step",
                               L->what, field);
            if (check_bytelevel(L, step, field)) return L->e->code;
            have_bl = 1;
        } else {
            return hd_fail(L->e, HD_EUNSUPPORTED,
                           "%s: %s.type: '%s' is not supported (Split or ByteLevel)", L->what,
                           field, ti ? ti : "(missing)");
        }
    }
    if (!have_bl)
        return hd_fail(L->e, HD_EUNSUPPORTED,
                       "%s: pre_tokenizer.pretokenizers: no ByteLevel step (byte-level BPE only)",
                       L->what);
    return 0;
}

static int check_decoder(loader *L) {
    json_t *d = json_object_get(L->top, "decoder");
    const char *t = type_of(d);
    if (!t || strcmp(t, "ByteLevel"))
        return hd_fail(L->e, HD_EUNSUPPORTED, "%s: decoder.type: '%s' is not supported (only "
                       "ByteLevel)", L->what, t ? t : "(missing)");
    return 0;
}

/* The decoder's rule for one token: through the byte-level alphabet when every character is
 * in it, else the token's own UTF-8. */
static int decoded_form(const char *s, size_t n, char **out, size_t *out_len) {
    char *p = malloc(n + 1);
    if (!p) return HD_ENOMEM;
    long nb = hd_bpe_text_to_bytes(s, n, (unsigned char *)p);
    if (nb < 0) {
        memcpy(p, s, n);
        nb = (long)n;
    }
    p[nb] = 0;
    *out = p;
    *out_len = (size_t)nb;
    return 0;
}

static int check_added_tokens(loader *L) {
    hd_tokenizer *tok = L->tok;
    json_t *list = json_object_get(L->top, "added_tokens");
    if (!list || json_is_null(list)) return 0;
    if (!json_is_array(list))
        return hd_fail(L->e, HD_EFORMAT, "%s: added_tokens: expected an array", L->what);
    size_t n = json_array_size(list);
    if (n > MAX_ADDED_TOKENS)
        return hd_fail(L->e, HD_EFORMAT, "%s: added_tokens: more than %d entries", L->what,
                       MAX_ADDED_TOKENS);
    tok->added = calloc(n + 1, sizeof *tok->added);
    if (!tok->added) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(list, i);
        char field[48];
        snprintf(field, sizeof field, "added_tokens[%zu]", i);
        if (!json_is_object(t))
            return hd_fail(L->e, HD_EFORMAT, "%s: %s: expected an object", L->what, field);
        json_t *id = json_object_get(t, "id"), *content = json_object_get(t, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > HD_TOK_MAX_ID)
            return hd_fail(L->e, HD_EFORMAT, "%s: %s.id: expected an integer in 0..%d", L->what,
                           field, HD_TOK_MAX_ID);
        if (!json_is_string(content))
            return hd_fail(L->e, HD_EFORMAT, "%s: %s.content: expected a string", L->what, field);
        if (json_string_length(content) == 0) continue; /* Hugging Face ignores empty tokens */
        hd_added_token *a = &tok->added[tok->n_added];
        a->id = (int32_t)json_integer_value(id);
        if (get_bool(L, t, "special", field, 0, &a->special) ||
            get_bool(L, t, "lstrip", field, 0, &a->lstrip) ||
            get_bool(L, t, "rstrip", field, 0, &a->rstrip) ||
            get_bool(L, t, "single_word", field, 0, &a->single_word) ||
            get_bool(L, t, "normalized", field, !a->special, &a->normalized))
            return L->e->code;
        a->len = json_string_length(content);
        a->content = malloc(a->len + 1);
        if (!a->content) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
        memcpy(a->content, json_string_value(content), a->len + 1);
        tok->n_added++;
        int rc = 0;
        if (a->normalized && tok->nfc) {
            rc = hd_nfc(a->content, a->len, &a->match, &a->match_len);
        } else if ((a->match = malloc(a->len + 1))) {
            memcpy(a->match, a->content, a->len + 1);
            a->match_len = a->len;
        } else {
            rc = HD_ENOMEM;
        }
        if (!rc) rc = decoded_form(a->content, a->len, &a->decoded, &a->decoded_len);
        if (rc) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
        for (int j = 0; j < tok->n_added - 1; j++) {
            const hd_added_token *o = &tok->added[j];
            char sh[64];
            if (o->id == a->id)
                return hd_fail(L->e, HD_EFORMAT, "%s: %s.id: %d is already used by '%s'",
                               L->what, field, (int)a->id, show(o->content, o->len, sh, sizeof sh));
            if (o->len == a->len && !memcmp(o->content, a->content, a->len))
                return hd_fail(L->e, HD_EFORMAT, "%s: %s.content: '%s' appears twice", L->what,
                               field, show(a->content, a->len, sh, sizeof sh));
        }
    }
    return 0;
}

static int finish(loader *L) {
    hd_tokenizer *tok = L->tok;
    int32_t size = tok->bpe.n_ids;
    for (int i = 0; i < tok->n_added; i++)
        if (tok->added[i].id + 1 > size) size = tok->added[i].id + 1;
    tok->vocab_size = size;
    tok->added_by_id = malloc(((size_t)size + 1) * sizeof *tok->added_by_id);
    if (!tok->added_by_id) return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
    for (int32_t i = 0; i < size; i++) tok->added_by_id[i] = -1;
    for (int i = 0; i < tok->n_added; i++) tok->added_by_id[tok->added[i].id] = i;
    if (hd_added_set_build(&tok->raw_set, tok->added, tok->n_added, 0) ||
        hd_added_set_build(&tok->norm_set, tok->added, tok->n_added, 1))
        return hd_fail(L->e, HD_ENOMEM, "%s: out of memory", L->what);
    return 0;
}

void hd_tokenizer_free(hd_tokenizer *tok) {
    if (!tok) return;
    hd_bpe_free(&tok->bpe);
    for (int i = 0; i < tok->n_added; i++) {
        free(tok->added[i].content);
        free(tok->added[i].match);
        free(tok->added[i].decoded);
    }
    free(tok->added);
    hd_added_set_free(&tok->raw_set);
    hd_added_set_free(&tok->norm_set);
    free(tok->added_by_id);
    for (int i = 0; i < tok->n_splits; i++) hd_regex_free(&tok->splits[i]);
    hd_regex_free(&tok->bl_regex);
    free(tok);
}

int hd_tokenizer_load_buffer(hd_tokenizer **out, const void *json, size_t len, const char *what,
                             hd_error *e) {
    *out = NULL;
    if (!what) what = "tokenizer.json";
    hd_error local;
    loader L = {0};
    L.what = what;
    L.e = e ? e : &local; /* the checks below read back the code they stored */
    L.tok = calloc(1, sizeof *L.tok);
    L.top = json_object();
    L.model = json_object();
    int rc;
    if (!L.tok || !L.top || !L.model) {
        rc = hd_fail(e, HD_ENOMEM, "%s: out of memory", what);
    } else {
        hd_bpe_init(&L.tok->bpe);
        hd_js_init(&L.js, json, len);
        rc = parse_document(&L);
        if (!rc) rc = check_model(&L);
        if (!rc) rc = check_normalizer(&L);
        if (!rc) rc = check_pre_tokenizer(&L);
        if (!rc) rc = check_decoder(&L);
        if (!rc) rc = check_added_tokens(&L);
        if (!rc) rc = finish(&L);
        hd_js_free(&L.js);
    }
    json_decref(L.top);
    json_decref(L.model);
    free(L.tmp);
    if (rc) {
        hd_tokenizer_free(L.tok);
        return rc;
    }
    *out = L.tok;
    return 0;
}

int hd_tokenizer_load(hd_tokenizer **out, const char *dir_or_file, hd_error *e) {
    *out = NULL;
    char path[4096];
    struct stat st;
    if (stat(dir_or_file, &st))
        return hd_fail(e, HD_EIO, "%s: %s", dir_or_file, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir_or_file) >= sizeof path)
            return hd_fail(e, HD_EINVAL, "%s: path too long", dir_or_file);
    } else {
        if ((size_t)snprintf(path, sizeof path, "%s", dir_or_file) >= sizeof path)
            return hd_fail(e, HD_EINVAL, "%s: path too long", dir_or_file);
    }
    char *buf;
    size_t n;
    HD_TRY(hd_read_file(path, MAX_FILE_BYTES, &buf, &n, e));
    int rc = hd_tokenizer_load_buffer(out, buf, n, path, e);
    free(buf);
    return rc;
}
