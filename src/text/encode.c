/* Encoding and decoding with a loaded tokenizer (see tokenizer.h for the pipeline). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "text/normalize.h"
#include "text/tokenizer_impl.h"
#include "text/utf8.h"

typedef struct encoder {
    const hd_tokenizer *tok;
    hd_bpe_scratch *scratch;
    hd_regex_matcher *split_m[HD_TOK_MAX_SPLITS];
    hd_regex_matcher *bl_m;
    hd_ids out;
    char *prefixed; /* piece with the ByteLevel prefix space */
    size_t prefixed_cap;
    hd_error *e;
} encoder;

/* A piece of text being split, passed to the split callbacks. */
typedef struct frame {
    encoder *enc;
    int stage;
    const char *text;
} frame;

static int nomem(encoder *enc) { return hd_fail(enc->e, HD_ENOMEM, "encode: out of memory"); }

static int word_piece(void *ctx, size_t off, size_t len) {
    frame *f = ctx;
    encoder *enc = f->enc;
    if (hd_bpe_encode_word(&enc->tok->bpe, enc->scratch, (const unsigned char *)f->text + off,
                           len, &enc->out))
        return nomem(enc);
    return 0;
}

/* The ByteLevel step: optional prefix space, optional GPT-2 split, then BPE per word. */
static int byte_level(encoder *enc, const char *s, size_t len) {
    const hd_tokenizer *tok = enc->tok;
    if (tok->bl_prefix_space && s[0] != ' ') {
        if (len + 1 > enc->prefixed_cap) {
            size_t cap = enc->prefixed_cap ? enc->prefixed_cap : 256;
            while (cap < len + 1) cap *= 2;
            char *p = realloc(enc->prefixed, cap);
            if (!p) return nomem(enc);
            enc->prefixed = p;
            enc->prefixed_cap = cap;
        }
        enc->prefixed[0] = ' ';
        memcpy(enc->prefixed + 1, s, len);
        s = enc->prefixed;
        len++;
    }
    frame f = {enc, -1, s};
    if (tok->bl_use_regex)
        return hd_regex_split(&tok->bl_regex, enc->bl_m, s, len, word_piece, &f, enc->e);
    return word_piece(&f, 0, len);
}

static int run_stage(encoder *enc, int stage, const char *s, size_t len);

static int split_piece(void *ctx, size_t off, size_t len) {
    frame *f = ctx;
    return run_stage(f->enc, f->stage + 1, f->text + off, len);
}

/* Pre-tokenizer step `stage` on a non-empty piece: Split steps in order, then ByteLevel. */
static int run_stage(encoder *enc, int stage, const char *s, size_t len) {
    const hd_tokenizer *tok = enc->tok;
    if (stage < tok->n_splits) {
        frame f = {enc, stage, s};
        return hd_regex_split(&tok->splits[stage], enc->split_m[stage], s, len, split_piece, &f,
                              enc->e);
    }
    return byte_level(enc, s, len);
}

static int normalized_piece(void *ctx, size_t off, size_t len, int32_t id) {
    frame *f = ctx;
    if (id >= 0) return hd_ids_push(&f->enc->out, id) ? nomem(f->enc) : 0;
    return run_stage(f->enc, 0, f->text + off, len);
}

/* A stretch of raw text between added tokens: normalize, split out normalized added tokens,
 * pre-tokenize. */
static int raw_piece(void *ctx, size_t off, size_t len, int32_t id) {
    frame *f = ctx;
    encoder *enc = f->enc;
    const hd_tokenizer *tok = enc->tok;
    if (id >= 0) return hd_ids_push(&enc->out, id) ? nomem(enc) : 0;
    const char *s = f->text + off;
    char *norm = NULL;
    if (tok->nfc && !hd_nfc_is_quick(s, len)) {
        if (hd_nfc(s, len, &norm, &len)) return nomem(enc);
        s = norm;
    }
    int rc;
    if (tok->norm_set.n) {
        frame nf = {enc, 0, s};
        rc = hd_added_split(tok->added, &tok->norm_set, s, len, normalized_piece, &nf);
    } else {
        rc = len ? run_stage(enc, 0, s, len) : 0;
    }
    free(norm);
    return rc;
}

int hd_tokenizer_encode(const hd_tokenizer *tok, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n, hd_error *e) {
    *ids = NULL;
    *n = 0;
    if (!tok || (!text && len)) return hd_fail(e, HD_EINVAL, "encode: no tokenizer or text");
    char *repaired = NULL;
    size_t bad = hd_utf8_find_invalid(text, len);
    if (bad != len) {
        if (!(flags & HD_TOK_REPLACE_INVALID_UTF8))
            return hd_fail(e, HD_EFORMAT, "encode: text: invalid UTF-8 at byte offset %zu", bad);
        if (hd_utf8_repair(text, len, &repaired, &len))
            return hd_fail(e, HD_ENOMEM, "encode: out of memory");
        text = repaired;
    }
    encoder enc = {0};
    enc.tok = tok;
    enc.e = e;
    int rc = 0;
    enc.scratch = hd_bpe_scratch_new(len);
    if (!enc.scratch) rc = nomem(&enc);
    for (int i = 0; !rc && i < tok->n_splits; i++)
        if (!(enc.split_m[i] = hd_regex_matcher_new(&tok->splits[i]))) rc = nomem(&enc);
    if (!rc && tok->bl_use_regex && !(enc.bl_m = hd_regex_matcher_new(&tok->bl_regex)))
        rc = nomem(&enc);
    if (!rc && !(enc.out.v = malloc(sizeof *enc.out.v * (len / 3 + 16)))) rc = nomem(&enc);
    if (!rc) {
        enc.out.cap = len / 3 + 16;
        frame f = {&enc, 0, text ? text : ""};
        rc = hd_added_split(tok->added, &tok->raw_set, f.text, len, raw_piece, &f);
    }
    hd_bpe_scratch_free(enc.scratch);
    for (int i = 0; i < tok->n_splits; i++) hd_regex_matcher_free(enc.split_m[i]);
    hd_regex_matcher_free(enc.bl_m);
    free(enc.prefixed);
    free(repaired);
    if (rc) {
        free(enc.out.v);
        return rc;
    }
    *ids = enc.out.v;
    *n = enc.out.n;
    return 0;
}

int hd_tokenizer_decode(const hd_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                        size_t *len, hd_error *e) {
    *text = NULL;
    *len = 0;
    if (!tok || (!ids && n)) return hd_fail(e, HD_EINVAL, "decode: no tokenizer or ids");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (total > SIZE_MAX / 2) return hd_fail(e, HD_ENOMEM, "decode: text too long");
        if (id < 0 || id >= tok->vocab_size)
            return hd_fail(e, HD_EINVAL, "decode: ids[%zu] = %d is outside the vocabulary (0..%d)",
                           i, (int)id, (int)tok->vocab_size - 1);
        if (tok->added_by_id[id] >= 0) {
            total += tok->added[tok->added_by_id[id]].decoded_len;
        } else if (id < tok->bpe.n_ids && tok->bpe.by_id[id] >= 0) {
            total += tok->bpe.entries[tok->bpe.by_id[id]].len;
        } else {
            return hd_fail(e, HD_EINVAL, "decode: ids[%zu] = %d names no token", i, (int)id);
        }
    }
    char *bytes = malloc(total + 1);
    if (!bytes) return hd_fail(e, HD_ENOMEM, "decode: out of memory");
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (tok->added_by_id[id] >= 0) {
            const hd_added_token *a = &tok->added[tok->added_by_id[id]];
            memcpy(bytes + w, a->decoded, a->decoded_len);
            w += a->decoded_len;
        } else {
            const hd_bpe_entry *en = &tok->bpe.entries[tok->bpe.by_id[id]];
            memcpy(bytes + w, tok->bpe.arena + en->off, en->len);
            w += en->len;
        }
    }
    bytes[w] = 0;
    if (hd_utf8_find_invalid(bytes, w) == w) {
        *text = bytes;
        *len = w;
        return 0;
    }
    int rc = hd_utf8_repair(bytes, w, text, len);
    free(bytes);
    if (rc) return hd_fail(e, HD_ENOMEM, "decode: out of memory");
    return 0;
}

int hd_tokenizer_token_id(const hd_tokenizer *tok, const char *content) {
    if (!tok || !content) return -1;
    size_t n = strlen(content);
    for (int i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == n && !memcmp(tok->added[i].content, content, n))
            return tok->added[i].id;
    unsigned char small[256], *buf = n <= sizeof small ? small : malloc(n);
    if (!buf) return -1;
    long nb = hd_bpe_text_to_bytes(content, n, buf);
    int32_t id = nb >= 0 ? hd_bpe_find(&tok->bpe, buf, (size_t)nb) : -1;
    if (buf != small) free(buf);
    return id;
}

int hd_tokenizer_vocab_size(const hd_tokenizer *tok) { return tok ? tok->vocab_size : 0; }
