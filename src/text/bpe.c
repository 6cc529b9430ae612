#include "text/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "text/bytelevel.h"
#include "text/utf8.h"

#define EMPTY_KEY UINT64_MAX /* ids are < 2^22, so no real pair has this key */

static uint64_t hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n) memcpy(&w, p, n);
    h = (h ^ w) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_pair(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ull;
    return key ^ (key >> 32);
}

static size_t pow2_at_least(size_t n) {
    size_t p = 16;
    while (p < n) p <<= 1;
    return p;
}

void hd_bpe_init(hd_bpe *b) {
    memset(b, 0, sizeof *b);
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_id[i] = -1;
}

void hd_bpe_free(hd_bpe *b) {
    free(b->entries);
    free(b->arena);
    free(b->by_id);
    free(b->vslots);
    free(b->merges);
    hd_bpe_init(b);
}

long hd_bpe_text_to_bytes(const char *text, size_t len, unsigned char *out) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, w = 0;
    while (i < len) {
        uint32_t cp;
        size_t bad, k = hd_utf8_next(s + i, len - i, &cp, &bad);
        if (!k) return -1;
        int byte = hd_bytelevel_byte(cp);
        if (byte < 0) return -1;
        out[w++] = (unsigned char)byte;
        i += k;
    }
    return (long)w;
}

int hd_bpe_add(hd_bpe *b, const char *text, size_t len, int32_t id) {
    if (b->n_entries == b->cap_entries) {
        size_t cap = b->cap_entries ? b->cap_entries * 2 : 1024;
        hd_bpe_entry *p = realloc(b->entries, cap * sizeof *p);
        if (!p) return HD_ENOMEM;
        b->entries = p;
        b->cap_entries = cap;
    }
    if (len > UINT32_MAX || b->arena_len + len > UINT32_MAX) return HD_EFORMAT;
    if (b->arena_len + len > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap : 1 << 16;
        while (cap < b->arena_len + len) cap *= 2;
        char *p = realloc(b->arena, cap);
        if (!p) return HD_ENOMEM;
        b->arena = p;
        b->arena_cap = cap;
    }
    hd_bpe_entry *en = &b->entries[b->n_entries];
    unsigned char *dst = (unsigned char *)b->arena + b->arena_len;
    long nb = hd_bpe_text_to_bytes(text, len, dst);
    en->encodable = nb >= 0;
    if (nb < 0) { /* kept verbatim: decoding writes the token's own UTF-8 */
        memcpy(dst, text, len);
        nb = (long)len;
    }
    en->off = (uint32_t)b->arena_len;
    en->len = (uint32_t)nb;
    en->id = id;
    b->arena_len += (size_t)nb;
    b->n_entries++;
    return 0;
}

uint64_t hd_bpe_hash(const void *bytes, size_t len) { return hash_bytes(bytes, len); }

void hd_bpe_prefetch(const hd_bpe *b, uint64_t h) {
    if (b->vslots) __builtin_prefetch(&b->vslots[h & b->vmask]);
}

int32_t hd_bpe_find_hashed(const hd_bpe *b, const void *bytes, size_t len, uint64_t h) {
    if (!b->vslots) return -1;
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = h & b->vmask;; i = (i + 1) & b->vmask) {
        const hd_bpe_slot *sl = &b->vslots[i];
        if (sl->id < 0) return -1;
        if (sl->tag == tag && sl->len == len && !memcmp(b->arena + sl->off, bytes, len))
            return sl->id;
    }
}

int32_t hd_bpe_find(const hd_bpe *b, const void *bytes, size_t len) {
    return hd_bpe_find_hashed(b, bytes, len, hash_bytes(bytes, len));
}

int hd_bpe_id_is(const hd_bpe *b, int32_t id, const void *bytes, size_t len) {
    if (id < 0 || id >= b->n_ids || b->by_id[id] < 0) return 0;
    const hd_bpe_entry *en = &b->entries[b->by_id[id]];
    return en->encodable && en->len == len && !memcmp(b->arena + en->off, bytes, len);
}

int hd_bpe_index(hd_bpe *b, size_t *dup_entry, int *dup_is_id) {
    int32_t max_id = -1;
    for (size_t i = 0; i < b->n_entries; i++)
        if (b->entries[i].id > max_id) max_id = b->entries[i].id;
    b->n_ids = max_id + 1;
    free(b->by_id);
    b->by_id = malloc(((size_t)b->n_ids + 1) * sizeof *b->by_id);
    size_t nslots = pow2_at_least(b->n_entries + b->n_entries / 4 + 2);
    free(b->vslots);
    b->vslots = malloc(nslots * sizeof *b->vslots);
    if (!b->by_id || !b->vslots) return HD_ENOMEM;
    b->vmask = nslots - 1;
    for (int32_t i = 0; i < b->n_ids; i++) b->by_id[i] = -1;
    for (size_t i = 0; i < nslots; i++) b->vslots[i].id = -1;
    /* hashes of the next entries are computed ahead and their slots prefetched: the table is
     * larger than the cache and every insert is a random access */
    enum { AHEAD = 16 };
    uint64_t ring[AHEAD];
    for (size_t e = 0; e < b->n_entries && e < AHEAD; e++) {
        const hd_bpe_entry *en = &b->entries[e];
        ring[e] = hash_bytes(b->arena + en->off, en->len);
        hd_bpe_prefetch(b, ring[e]);
    }
    for (size_t e = 0; e < b->n_entries; e++) {
        const hd_bpe_entry *en = &b->entries[e];
        uint64_t h = ring[e % AHEAD];
        if (e + AHEAD < b->n_entries) {
            const hd_bpe_entry *ahead = &b->entries[e + AHEAD];
            ring[e % AHEAD] = hash_bytes(b->arena + ahead->off, ahead->len);
            hd_bpe_prefetch(b, ring[e % AHEAD]);
        }
        if (b->by_id[en->id] >= 0) {
            *dup_entry = e;
            *dup_is_id = 1;
            return HD_EFORMAT;
        }
        b->by_id[en->id] = (int32_t)e;
        if (!en->encodable) continue;
        const unsigned char *key = (const unsigned char *)b->arena + en->off;
        uint32_t tag = (uint32_t)(h >> 32);
        size_t i = h & b->vmask;
        for (; b->vslots[i].id >= 0; i = (i + 1) & b->vmask) {
            const hd_bpe_slot *sl = &b->vslots[i];
            if (sl->tag == tag && sl->len == en->len && !memcmp(b->arena + sl->off, key, en->len)) {
                *dup_entry = e;
                *dup_is_id = 0;
                return HD_EFORMAT;
            }
        }
        b->vslots[i] = (hd_bpe_slot){tag, en->off, en->len, en->id};
        if (en->len == 1) b->byte_id[key[0]] = en->id;
    }
    return 0;
}

static void merge_insert(hd_bpe *b, uint64_t key, int32_t rank, int32_t merged) {
    size_t i = hash_pair(key) & b->mmask;
    while (b->merges[i].key != EMPTY_KEY && b->merges[i].key != key) i = (i + 1) & b->mmask;
    if (b->merges[i].key == EMPTY_KEY) b->n_merges++;
    b->merges[i].key = key;
    b->merges[i].rank = rank;
    b->merges[i].merged = merged;
}

/* Rehashes into a table of `slots` entries (a power of two). */
static int merge_resize(hd_bpe *b, size_t slots) {
    hd_bpe_merge *old = b->merges;
    size_t oslots = old ? b->mmask + 1 : 0;
    hd_bpe_merge *m = malloc(slots * sizeof *m);
    if (!m) return HD_ENOMEM;
    for (size_t i = 0; i < slots; i++) m[i].key = EMPTY_KEY;
    b->merges = m;
    b->mmask = slots - 1;
    b->n_merges = 0;
    for (size_t i = 0; i < oslots; i++)
        if (old[i].key != EMPTY_KEY) merge_insert(b, old[i].key, old[i].rank, old[i].merged);
    free(old);
    return 0;
}

void hd_bpe_merge_prefetch(const hd_bpe *b, int32_t left, int32_t right) {
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    if (b->merges) __builtin_prefetch(&b->merges[hash_pair(key) & b->mmask], 1);
}

int hd_bpe_merges_reserve(hd_bpe *b, size_t n) {
    size_t slots = pow2_at_least(n + n / 4 + 2);
    if (b->merges && slots <= b->mmask + 1) return 0;
    return merge_resize(b, slots);
}

int hd_bpe_merge_put(hd_bpe *b, int32_t left, int32_t right, int32_t rank, int32_t merged) {
    size_t slots = b->merges ? b->mmask + 1 : 0;
    if ((b->n_merges + 1) * 5 > slots * 4) { /* keep the load factor under 0.8 */
        int rc = merge_resize(b, slots ? slots * 2 : 1024);
        if (rc) return rc;
    }
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    merge_insert(b, key, rank, merged);
    return 0;
}

/* The merge for (left, right), or NULL. */
static inline const hd_bpe_merge *merge_find(const hd_bpe *b, int32_t left, int32_t right) {
    if (!b->merges) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    size_t i = hash_pair(key) & b->mmask;
    for (;;) {
        const hd_bpe_merge *m = &b->merges[i];
        if (m->key == key) return m;
        if (m->key == EMPTY_KEY) return NULL;
        i = (i + 1) & b->mmask;
    }
}

/* ---- per-call scratch -------------------------------------------------------------------- */

typedef struct cand {
    int32_t rank, pos, merged;
} cand;

typedef struct cache_entry {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_n;
} cache_entry;

#define CACHE_MAX_ENTRIES (1u << 16)
#define CACHE_MIN_ENTRIES (1u << 8)
#define CACHE_MAX_WORD 256

struct hd_bpe_scratch {
    int32_t *sym, *prev, *next;
    size_t cap;
    cand *heap;
    size_t heap_n, heap_cap;
    /* word cache: at most `cache_cap` words (scaled to the text: short prompts stay cheap) */
    size_t cache_cap;
    uint32_t *slots; /* entry index + 1; 0 = empty; 2 * cache_cap of them */
    cache_entry *ents;
    size_t n_ents;
    unsigned char *keys;
    size_t keys_len, keys_cap;
    int32_t *ids;
    size_t ids_len, ids_cap;
};

hd_bpe_scratch *hd_bpe_scratch_new(size_t text_len) {
    hd_bpe_scratch *s = calloc(1, sizeof(hd_bpe_scratch));
    if (!s) return NULL;
    size_t cap = CACHE_MIN_ENTRIES;
    while (cap < CACHE_MAX_ENTRIES && cap < text_len / 8) cap *= 2; /* ~1 word per 8 bytes */
    s->cache_cap = cap;
    return s;
}

void hd_bpe_scratch_free(hd_bpe_scratch *s) {
    if (!s) return;
    free(s->sym);
    free(s->prev);
    free(s->next);
    free(s->heap);
    free(s->slots);
    free(s->ents);
    free(s->keys);
    free(s->ids);
    free(s);
}

int hd_ids_push(hd_ids *ids, int32_t id) {
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *p = realloc(ids->v, cap * sizeof *p);
        if (!p) return HD_ENOMEM;
        ids->v = p;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return HD_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static inline int cand_less(const cand *a, const cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(hd_bpe_scratch *s, cand c) {
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!cand_less(&c, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = c;
}

static cand heap_pop(hd_bpe_scratch *s) {
    cand top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const cand *bc = &last;
        if (l < n && cand_less(&s->heap[l], bc)) {
            best = l;
            bc = &s->heap[l];
        }
        if (l + 1 < n && cand_less(&s->heap[l + 1], bc)) best = l + 1;
        if (best == i) break;
        s->heap[i] = s->heap[best];
        i = best;
    }
    if (n) s->heap[i] = last;
    return top;
}

static void push_pair(const hd_bpe *b, hd_bpe_scratch *s, int32_t pos) {
    int32_t nx = s->next[pos];
    if (nx < 0) return;
    const hd_bpe_merge *m = merge_find(b, s->sym[pos], s->sym[nx]);
    if (!m) return;
    cand c = {m->rank, pos, m->merged};
    heap_push(s, c);
}

/* The merge loop proper: appends the ids of word w to out. */
static int merge_word(const hd_bpe *b, hd_bpe_scratch *s, const unsigned char *w, size_t n,
                      hd_ids *out) {
    if (n > s->cap) { /* the three symbol arrays share one capacity */
        size_t cap = s->cap ? s->cap : 64;
        while (cap < n) cap *= 2;
        int32_t *a = realloc(s->sym, cap * sizeof *a);
        if (!a) return HD_ENOMEM;
        s->sym = a;
        a = realloc(s->prev, cap * sizeof *a);
        if (!a) return HD_ENOMEM;
        s->prev = a;
        a = realloc(s->next, cap * sizeof *a);
        if (!a) return HD_ENOMEM;
        s->next = a;
        s->cap = cap;
    }

    /* one symbol per byte; unknown bytes dropped or turned into unk */
    size_t m = 0;
    int pending_unk = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = b->byte_id[w[i]];
        if (id >= 0) {
            if (pending_unk) s->sym[m++] = b->unk_id;
            pending_unk = 0;
            s->sym[m++] = id;
        } else if (b->unk_id >= 0) {
            if (pending_unk && !b->fuse_unk) s->sym[m++] = b->unk_id;
            pending_unk = 1;
        }
    }
    if (pending_unk) s->sym[m++] = b->unk_id;
    if (m == 0) return 0;
    for (size_t i = 0; i < m; i++) {
        s->prev[i] = (int32_t)i - 1;
        s->next[i] = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    if (m > 1) {
        /* each merge adds at most two candidates */
        if (grow((void **)&s->heap, &s->heap_cap, 3 * m, sizeof *s->heap)) return HD_ENOMEM;
        s->heap_n = 0;
        for (size_t i = 0; i + 1 < m; i++) push_pair(b, s, (int32_t)i);
        while (s->heap_n) {
            cand c = heap_pop(s);
            int32_t pos = c.pos;
            if (s->sym[pos] < 0) continue; /* absorbed by an earlier merge */
            int32_t nx = s->next[pos];
            if (nx < 0) continue;
            const hd_bpe_merge *mm = merge_find(b, s->sym[pos], s->sym[nx]);
            if (!mm || mm->merged != c.merged) continue; /* pair changed since queued */
            s->sym[pos] = c.merged;
            s->sym[nx] = -1;
            int32_t nn = s->next[nx];
            s->next[pos] = nn;
            if (nn >= 0) s->prev[nn] = pos;
            if (s->prev[pos] >= 0) push_pair(b, s, s->prev[pos]);
            push_pair(b, s, pos);
        }
    }
    for (int32_t i = 0; i >= 0; i = s->next[i])
        if (hd_ids_push(out, s->sym[i])) return HD_ENOMEM;
    return 0;
}

int hd_bpe_encode_word(const hd_bpe *b, hd_bpe_scratch *s, const unsigned char *w, size_t n,
                       hd_ids *out) {
    if (n == 0) return 0;
    if (b->ignore_merges) {
        int32_t id = hd_bpe_find(b, w, n);
        if (id >= 0) return hd_ids_push(out, id);
    }
    if (n > CACHE_MAX_WORD) return merge_word(b, s, w, n, out);
    if (!s->slots) {
        s->slots = calloc(s->cache_cap * 2, sizeof *s->slots);
        s->ents = malloc(s->cache_cap * sizeof *s->ents);
        if (!s->slots || !s->ents) return HD_ENOMEM;
    }
    uint64_t h = hash_bytes(w, n);
    size_t mask = s->cache_cap * 2 - 1, i = h & mask;
    for (;;) {
        uint32_t e = s->slots[i];
        if (!e) break;
        const cache_entry *ce = &s->ents[e - 1];
        if (ce->hash == h && ce->key_len == n && !memcmp(s->keys + ce->key_off, w, n)) {
            if (out->n + ce->ids_n > out->cap &&
                grow((void **)&out->v, &out->cap, out->n + ce->ids_n, sizeof *out->v))
                return HD_ENOMEM;
            if (ce->ids_n)
                memcpy(out->v + out->n, s->ids + ce->ids_off, ce->ids_n * sizeof *out->v);
            out->n += ce->ids_n;
            return 0;
        }
        i = (i + 1) & mask;
    }
    size_t before = out->n;
    int rc = merge_word(b, s, w, n, out);
    if (rc || s->n_ents >= s->cache_cap) return rc; /* full: stop caching new words */
    size_t k = out->n - before;
    if (grow((void **)&s->keys, &s->keys_cap, s->keys_len + n, 1) ||
        grow((void **)&s->ids, &s->ids_cap, s->ids_len + k, sizeof *s->ids))
        return HD_ENOMEM;
    cache_entry *ce = &s->ents[s->n_ents];
    ce->hash = h;
    ce->key_off = (uint32_t)s->keys_len;
    ce->key_len = (uint32_t)n;
    ce->ids_off = (uint32_t)s->ids_len;
    ce->ids_n = (uint32_t)k;
    memcpy(s->keys + s->keys_len, w, n);
    s->keys_len += n;
    /* k is 0 when no piece of the word is in the vocabulary (an empty vocab): then both
     * buffers may still be NULL, which memcpy must not be given even for 0 bytes */
    if (k) memcpy(s->ids + s->ids_len, out->v + before, k * sizeof *s->ids);
    s->ids_len += k;
    s->slots[i] = (uint32_t)++s->n_ents;
    return 0;
}
