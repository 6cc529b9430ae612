/* Training data behind one interface: the shapes world (spec 09, drawn on the fly) or a folder
 * of captioned images (data/folder.h), both grouped into buckets of fixed image sizes.
 *
 * A trainer picks a bucket (hd_dataset_bucket_weight gives how often), then asks for sample k of
 * that bucket with hd_dataset_draw. The result depends only on (dataset, k, bucket): the shapes
 * world treats k as a seed, a folder takes its (k mod count)-th image of the bucket, so a resumed
 * run that replays the same k gets bit-identical data. Drawing is thread-safe. */
#ifndef HD_DATA_DATASET_H
#define HD_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"
#include "data/shapes_prompt.h"
#include "image/resample.h"

enum { HD_DATASET_MAX_BUCKETS = 32 };

typedef enum hd_dataset_kind { HD_DATASET_SHAPES = 0, HD_DATASET_FOLDER } hd_dataset_kind;

typedef struct hd_dataset_desc {
    hd_dataset_kind kind;
    const char *folder;     /* HD_DATASET_FOLDER: the directory of images + .txt captions */
    int n_buckets;          /* 1..HD_DATASET_MAX_BUCKETS */
    int sizes[HD_DATASET_MAX_BUCKETS][2]; /* (width, height) of each bucket */
    hd_filter filter;       /* folder resize filter (0 = box; HD_FILTER_LANCZOS recommended) */
    /* shapes world: how often each prompt category is drawn (hd_shapes_category order); all
     * zero = uniform, as judging draws them */
    double category_weights[HD_N_CATEGORIES];
} hd_dataset_desc;

typedef struct hd_dataset hd_dataset;

/* Opens a dataset. A folder is scanned completely here (every image decoded once to learn its
 * size, every caption checked), so a bad file fails now, with one line naming it. */
int hd_dataset_open(hd_dataset **out, const hd_dataset_desc *desc, hd_error *e);
void hd_dataset_close(hd_dataset *ds);

int hd_dataset_n_buckets(const hd_dataset *ds);
void hd_dataset_bucket_size(const hd_dataset *ds, int bucket, int *w, int *h);
/* Images in the bucket (folder), or -1 for the unbounded shapes world. */
int64_t hd_dataset_bucket_count(const hd_dataset *ds, int bucket);
/* Relative frequency a trainer should draw the bucket with: its image count for a folder
 * (0 for an empty bucket), 1 for each shapes-world bucket. */
double hd_dataset_bucket_weight(const hd_dataset *ds, int bucket);
/* Total images (folder) or -1 (shapes world). */
int64_t hd_dataset_size(const hd_dataset *ds);

/* Sample k of a bucket: out receives a picture of exactly the bucket's size (free with
 * hd_image_free), caption[0..cap) the UTF-8 caption (NUL-terminated; too long fails). */
int hd_dataset_draw(const hd_dataset *ds, uint64_t k, int bucket, hd_image *out, char *caption,
                    size_t cap, hd_error *e);

#endif
