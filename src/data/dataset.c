#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/folder.h"
#include "data/shapes.h"

struct hd_dataset {
    hd_dataset_desc desc;
    hd_folder *folder; /* NULL for the shapes world */
    int uniform;       /* no category weights given */
};

int hd_dataset_open(hd_dataset **out, const hd_dataset_desc *desc, hd_error *e) {
    *out = NULL;
    if (desc->n_buckets < 1 || desc->n_buckets > HD_DATASET_MAX_BUCKETS)
        return hd_fail(e, HD_EINVAL, "dataset: %d buckets (1..%d)", desc->n_buckets,
                       HD_DATASET_MAX_BUCKETS);
    for (int b = 0; b < desc->n_buckets; b++) {
        int w = desc->sizes[b][0], h = desc->sizes[b][1];
        int lo = desc->kind == HD_DATASET_SHAPES ? HD_SHAPES_MIN_SIDE : 1;
        if (w < lo || h < lo || w > 16384 || h > 16384)
            return hd_fail(e, HD_EINVAL, "dataset: bucket %d: size %dx%d: sides must be in %d..16384",
                           b, w, h, lo);
    }
    if (desc->filter < 0 || desc->filter >= HD_FILTER_COUNT)
        return hd_fail(e, HD_EINVAL, "dataset: resize filter %d unknown", (int)desc->filter);
    if (desc->kind != HD_DATASET_SHAPES && desc->kind != HD_DATASET_FOLDER)
        return hd_fail(e, HD_EINVAL, "dataset: kind %d unknown", (int)desc->kind);
    double total = 0;
    for (int c = 0; c < HD_N_CATEGORIES; c++) {
        double wt = desc->category_weights[c];
        if (!(wt >= 0 && wt <= 1e6))
            return hd_fail(e, HD_EINVAL, "dataset: category weight %s = %g (0..1e6)",
                           hd_category_name((hd_shapes_category)c), wt);
        total += wt;
    }
    if (desc->kind == HD_DATASET_FOLDER && !desc->folder)
        return hd_fail(e, HD_EINVAL, "dataset: a folder dataset needs a folder");
    hd_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return hd_fail(e, HD_ENOMEM, "dataset: out of memory");
    ds->desc = *desc;
    ds->desc.folder = NULL; /* the caller's string is not kept */
    ds->uniform = total == 0;
    if (desc->kind == HD_DATASET_FOLDER) {
        int rc = hd_folder_open(&ds->folder, desc->folder, desc->n_buckets,
                                (const int (*)[2])desc->sizes, e);
        if (rc) {
            free(ds);
            return rc;
        }
    }
    *out = ds;
    return 0;
}

void hd_dataset_close(hd_dataset *ds) {
    if (!ds) return;
    hd_folder_close(ds->folder);
    free(ds);
}

int hd_dataset_n_buckets(const hd_dataset *ds) { return ds->desc.n_buckets; }

void hd_dataset_bucket_size(const hd_dataset *ds, int bucket, int *w, int *h) {
    int ok = bucket >= 0 && bucket < ds->desc.n_buckets;
    *w = ok ? ds->desc.sizes[bucket][0] : 0;
    *h = ok ? ds->desc.sizes[bucket][1] : 0;
}

int64_t hd_dataset_bucket_count(const hd_dataset *ds, int bucket) {
    return ds->folder ? hd_folder_count(ds->folder, bucket) : -1;
}

double hd_dataset_bucket_weight(const hd_dataset *ds, int bucket) {
    if (bucket < 0 || bucket >= ds->desc.n_buckets) return 0;
    return ds->folder ? (double)hd_folder_count(ds->folder, bucket) : 1.0;
}

int64_t hd_dataset_size(const hd_dataset *ds) {
    return ds->folder ? hd_folder_size(ds->folder) : -1;
}

static int put_caption(const char *text, char *caption, size_t cap, hd_error *e) {
    size_t len = strlen(text);
    if (len >= cap)
        return hd_fail(e, HD_EINVAL, "dataset: caption of %zu bytes does not fit in %zu", len,
                       cap);
    memcpy(caption, text, len + 1);
    return 0;
}

int hd_dataset_draw(const hd_dataset *ds, uint64_t k, int bucket, hd_image *out, char *caption,
                    size_t cap, hd_error *e) {
    out->w = out->h = 0;
    out->px = NULL;
    if (bucket < 0 || bucket >= ds->desc.n_buckets)
        return hd_fail(e, HD_EINVAL, "dataset: bucket %d out of range (0..%d)", bucket,
                       ds->desc.n_buckets - 1);
    int w = ds->desc.sizes[bucket][0], h = ds->desc.sizes[bucket][1];
    if (!ds->folder) {
        char prompt[HD_SHAPES_PROMPT_MAX];
        HD_TRY(hd_shapes_draw_weighted(k, ds->uniform ? NULL : ds->desc.category_weights, w, h,
                                       out, prompt, e));
        int rc = put_caption(prompt, caption, cap, e);
        if (rc) hd_image_free(out);
        return rc;
    }
    int64_t n = hd_folder_count(ds->folder, bucket);
    if (n == 0)
        return hd_fail(e, HD_EINVAL, "dataset: bucket %d (%dx%d) has no images", bucket, w, h);
    int64_t i = (int64_t)(k % (uint64_t)n);
    HD_TRY(put_caption(hd_folder_caption(ds->folder, bucket, i), caption, cap, e));
    return hd_folder_load(ds->folder, bucket, i, ds->desc.filter, out, e);
}
