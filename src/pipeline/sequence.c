#include "pipeline/sequence.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* The rotary index of spec 02 §5, literally: walk a virtual id list in which every patch block of
 * n patches is [vision_start, image_pad × (n−1)], emitting text chunks and grid chunks. Doing it
 * the general way (rather than the closed form) keeps every upstream quirk, e.g. the fix point. */
typedef struct pos_writer {
    int32_t *p[3];
    int64_t n, cap;
    int64_t last_max; /* 1 + max coordinate of the last chunk, or 0 */
} pos_writer;

static void emit(pos_writer *w, int64_t a, int64_t b, int64_t c) {
    if (w->n < w->cap) {
        w->p[0][w->n] = (int32_t)a;
        w->p[1][w->n] = (int32_t)b;
        w->p[2][w->n] = (int32_t)c;
    }
    w->n++;
}

int hd_sequence_build(hd_sequence *seq, const int32_t *text_ids, int64_t T, const hd_token_ids *tok,
                      const hd_grid *vlm, int n_vlm, hd_grid target, const hd_grid *refs,
                      int n_refs, hd_error *e) {
    memset(seq, 0, sizeof *seq);
    if (T < 2 || text_ids[T - 1] != tok->tms || (tok->boi >= 0 && text_ids[T - 2] != tok->boi))
        return hd_fail(e, HD_EINVAL, "sequence: the prompt must end with <|boi_token|><|tms_token|>");
    if (target.t != 1 || target.h <= 0 || target.w <= 0)
        return hd_fail(e, HD_EINVAL, "sequence: invalid target grid %dx%d", target.h, target.w);

    /* Count the image-pad runs in the text and check them against the VLM grids. */
    int runs = 0;
    int64_t pads = 0;
    for (int64_t s = 0; s < T; s++) {
        if (text_ids[s] != tok->image_pad) continue;
        int64_t r = s;
        while (r < T && text_ids[r] == tok->image_pad) r++;
        if (runs < n_vlm) {
            int64_t want = (int64_t)vlm[runs].t * vlm[runs].h * vlm[runs].w;
            if (r - s != want)
                return hd_fail(e, HD_EINVAL,
                               "sequence: image %d has %lld <|image_pad|> tokens, its grid needs %lld",
                               runs, (long long)(r - s), (long long)want);
            if (s == 0 || text_ids[s - 1] != tok->vision_start)
                return hd_fail(e, HD_EINVAL, "sequence: image %d pads not after <|vision_start|>",
                               runs);
        }
        runs++;
        pads += r - s;
        s = r - 1;
    }
    if (runs != n_vlm)
        return hd_fail(e, HD_EINVAL, "sequence: prompt has %d image-pad runs but %d VLM images",
                       runs, n_vlm);

    int64_t L = (int64_t)target.h * target.w, P = L;
    for (int r = 0; r < n_refs; r++) {
        if (refs[r].t != 1 || refs[r].h <= 0 || refs[r].w <= 0)
            return hd_fail(e, HD_EINVAL, "sequence: invalid reference grid %d", r);
        P += (int64_t)refs[r].h * refs[r].w;
    }
    int64_t S = T + P;
    seq->T = T;
    seq->S = S;
    seq->A = T - 1;
    seq->L = L;
    seq->P = P;
    seq->n_vlm_tokens = (int)pads;
    seq->ids = malloc((size_t)T * sizeof *seq->ids);
    seq->pos = malloc((size_t)S * 3 * sizeof *seq->pos);
    seq->type = malloc((size_t)S);
    if (!seq->ids || !seq->pos || !seq->type) {
        hd_sequence_free(seq);
        return hd_fail(e, HD_ENOMEM, "sequence: out of memory for %lld positions", (long long)S);
    }
    memcpy(seq->ids, text_ids, (size_t)T * sizeof *seq->ids);
    for (int64_t s = 0; s < S; s++) seq->type[s] = s >= seq->A;

    /* Virtual id list: the text, then one block per patch image (target, references). */
    int32_t *virt = malloc((size_t)S * sizeof *virt);
    int n_grids = n_vlm + 1 + n_refs;
    hd_grid *grids = malloc((size_t)n_grids * sizeof *grids);
    if (!virt || !grids) {
        free(virt);
        free(grids);
        hd_sequence_free(seq);
        return hd_fail(e, HD_ENOMEM, "sequence: out of memory");
    }
    memcpy(virt, text_ids, (size_t)T * sizeof *virt);
    int64_t at = T;
    for (int b = 0; b < 1 + n_refs; b++) {
        hd_grid g = b == 0 ? target : refs[b - 1];
        int64_t n = (int64_t)g.h * g.w;
        virt[at] = tok->vision_start;
        for (int64_t j = 1; j < n; j++) virt[at + j] = tok->image_pad;
        at += n;
    }
    for (int k = 0; k < n_vlm; k++) grids[k] = vlm[k];
    grids[n_vlm] = target;
    for (int r = 0; r < n_refs; r++) grids[n_vlm + 1 + r] = refs[r];

    pos_writer w = {{seq->pos, seq->pos + S, seq->pos + 2 * S}, 0, S, 0};
    int64_t st = 0, block_at = T;
    int fix = HD_ROPE_FIX_POINT;
    for (int n = 0; n < n_grids; n++) {
        int skip = n >= n_vlm;
        int64_t ed = st;
        if (skip) {
            /* A patch block starts at a known place: its grid starts one after the block's
             * first entry. (Scanning for the next <|image_pad|>, as for the text's images, would
             * run into the following block when this one is a single patch.) */
            ed = block_at + 1;
            block_at += (int64_t)grids[n].t * grids[n].h * grids[n].w;
        } else {
            while (ed < S && virt[ed] != tok->image_pad) ed++;
        }
        hd_grid g = grids[n];
        int64_t text_len = ed - st - skip;
        if (text_len < 0) text_len = 0;
        int64_t base = w.last_max;
        int64_t chunk_max = -1;
        /* The text must stay below the target's anchor: past it, text and image rotary positions
         * would coincide, which no model was trained on. */
        if (skip && fix > 0 && base + text_len > HD_ROPE_FIX_POINT) {
            free(virt);
            free(grids);
            hd_sequence_free(seq);
            return hd_fail(e, HD_EINVAL,
                           "sequence: the prompt's %lld text positions reach the image's rotary "
                           "anchor %d; shorten the prompt",
                           (long long)(base + text_len), HD_ROPE_FIX_POINT);
        }
        for (int64_t j = 0; j < text_len; j++) emit(&w, base + j, base + j, base + j);
        if (text_len > 0) chunk_max = base + text_len - 1;
        /* grid chunk */
        int64_t off;
        if (skip && fix > 0) {
            off = fix;
            fix = 0;
        } else if (skip) {
            off = base;
        } else {
            off = base + text_len;
        }
        for (int ti = 0; ti < g.t; ti++)
            for (int ri = 0; ri < g.h; ri++)
                for (int ci = 0; ci < g.w; ci++) emit(&w, off + ti, off + ri, off + ci);
        int64_t gm = off + (g.t - 1);
        if (off + g.h - 1 > gm) gm = off + g.h - 1;
        if (off + g.w - 1 > gm) gm = off + g.w - 1;
        chunk_max = gm; /* the grid chunk is the last chunk */
        w.last_max = chunk_max + 1;
        st = ed + (int64_t)g.t * g.h * g.w;
    }
    if (st < S) {
        int64_t base = w.last_max;
        for (int64_t j = 0; j < S - st; j++) emit(&w, base + j, base + j, base + j);
    }
    free(virt);
    free(grids);
    if (w.n != S) {
        hd_sequence_free(seq);
        return hd_fail(e, HD_EINVAL, "sequence: positions cover %lld of %lld entries",
                       (long long)w.n, (long long)S);
    }
    return 0;
}

void hd_sequence_free(hd_sequence *seq) {
    free(seq->ids);
    free(seq->pos);
    free(seq->type);
    memset(seq, 0, sizeof *seq);
}
