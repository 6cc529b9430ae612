/* Byte-level BPE model: vocabulary, merge ranks, and the merge loop.
 *
 * Tokens are stored as the raw bytes they stand for (the byte-level alphabet of tokenizer.json
 * is undone at load), so encoding never builds byte-level strings. A token whose text contains
 * characters outside that alphabet can never come out of the merge loop; it is kept for
 * decoding only ("not encodable"). Lookups go through open-addressing hash tables written
 * here: bytes -> id for the vocabulary, (left id, right id) -> (rank, merged id) for merges.
 *
 * Merging follows Hugging Face: start from one symbol per byte, repeatedly apply the pair with
 * the lowest rank (leftmost first among equal ranks) using a binary heap, until no adjacent
 * pair has a merge. Bytes without a vocabulary entry are dropped, or become unk_token when
 * the model has one (consecutive ones fused when fuse_unk). */
#ifndef HD_TEXT_BPE_H
#define HD_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"

#define HD_TOK_MAX_ID ((1 << 22) - 1) /* ids above this are refused (bounds the id tables) */

typedef struct hd_bpe_entry {
    uint32_t off, len; /* bytes in the arena */
    int32_t id;
    int encodable;     /* all characters were in the byte-level alphabet */
} hd_bpe_entry;

typedef struct hd_bpe_slot {
    uint32_t tag, off, len;
    int32_t id; /* -1: empty */
} hd_bpe_slot;

typedef struct hd_bpe_merge {
    uint64_t key; /* UINT64_MAX: empty slot */
    int32_t rank, merged;
} hd_bpe_merge;

typedef struct hd_bpe {
    /* vocabulary entries in file order */
    hd_bpe_entry *entries;
    size_t n_entries, cap_entries;
    char *arena;
    size_t arena_len, arena_cap;
    /* by id: index into entries, or -1 */
    int32_t *by_id;
    int32_t n_ids; /* max vocabulary id + 1 */
    /* bytes -> id, open addressing over encodable entries only. A slot holds what a probe needs
     * (hash tag, arena span, id) so a lookup touches one slot and the arena */
    struct hd_bpe_slot *vslots;
    size_t vmask;
    int32_t byte_id[256]; /* id of each single byte, or -1 */
    /* merges: open addressing on key = left << 32 | right */
    struct hd_bpe_merge *merges;
    size_t mmask, n_merges;
    /* options */
    int ignore_merges;
    int32_t unk_id; /* -1: none */
    int fuse_unk;
} hd_bpe;

void hd_bpe_init(hd_bpe *b);
void hd_bpe_free(hd_bpe *b);

/* Adds a vocabulary entry given its tokenizer.json text (UTF-8). Returns 0, HD_ENOMEM,
 * or HD_EFORMAT when the arena would pass 4 GiB. Duplicates are found by hd_bpe_index. */
int hd_bpe_add(hd_bpe *b, const char *text, size_t len, int32_t id);

/* Builds the id table and the lookup hash after the last hd_bpe_add. On a repeated id or token
 * returns HD_EFORMAT with *dup_entry set to the later entry's index and *dup_is_id telling
 * which of the two repeats. */
int hd_bpe_index(hd_bpe *b, size_t *dup_entry, int *dup_is_id);

/* Id of the encodable token with these raw bytes, or -1. */
int32_t hd_bpe_find(const hd_bpe *b, const void *bytes, size_t len);

/* The same in steps, for batched lookups: hash, prefetch the slot, then find. */
uint64_t hd_bpe_hash(const void *bytes, size_t len);
void hd_bpe_prefetch(const hd_bpe *b, uint64_t hash);
int32_t hd_bpe_find_hashed(const hd_bpe *b, const void *bytes, size_t len, uint64_t hash);
void hd_bpe_merge_prefetch(const hd_bpe *b, int32_t left, int32_t right);

/* 1 when id is an encodable vocabulary token with exactly these bytes (a cheap check of a
 * guessed id before a hash lookup). */
int hd_bpe_id_is(const hd_bpe *b, int32_t id, const void *bytes, size_t len);

/* Sizes the merge table for about n merges (a hint; it grows anyway). 0 or HD_ENOMEM. */
int hd_bpe_merges_reserve(hd_bpe *b, size_t n);

/* Converts tokenizer.json text to raw bytes (each char through the byte-level alphabet).
 * out must hold len bytes. Returns the byte count, or -1 if a char is outside the alphabet. */
long hd_bpe_text_to_bytes(const char *text, size_t len, unsigned char *out);

/* Records merge (left, right) -> merged with this rank; a repeated pair takes the later rank,
 * like Hugging Face's map. The table grows as needed. Returns 0 or HD_ENOMEM. */
int hd_bpe_merge_put(hd_bpe *b, int32_t left, int32_t right, int32_t rank, int32_t merged);

/* Per-call working memory: symbol arrays, heap, and a word -> ids cache sized for a text of
 * text_len bytes. Not shared between threads; one per encode call. */
typedef struct hd_bpe_scratch hd_bpe_scratch;
hd_bpe_scratch *hd_bpe_scratch_new(size_t text_len);
void hd_bpe_scratch_free(hd_bpe_scratch *s);

/* Growable id vector. */
typedef struct hd_ids {
    int32_t *v;
    size_t n, cap;
} hd_ids;
int hd_ids_push(hd_ids *ids, int32_t id);

/* Encodes one pre-token (raw bytes) and appends its ids. Returns 0 or HD_ENOMEM. */
int hd_bpe_encode_word(const hd_bpe *b, hd_bpe_scratch *s, const unsigned char *w, size_t n,
                       hd_ids *out);

#endif
