/* A folder of captioned images (the kohya / ai-toolkit convention): every NAME.png, .jpg, .jpeg or
 * .webp has its caption in NAME.txt (UTF-8, surrounding white space ignored). Images are grouped
 * into aspect buckets: each goes to the bucket whose aspect ratio is nearest in log scale, and is
 * delivered resized to cover the bucket (Pillow-exact resampling) and centre-cropped to it. */
#ifndef HD_DATA_FOLDER_H
#define HD_DATA_FOLDER_H

#include <stdint.h>

#include "hidream.h"
#include "image/resample.h"

typedef struct hd_folder hd_folder;

/* Scans dir: sorts the image files by name, reads and checks every caption, decodes every image
 * once to learn its size, assigns buckets. Fails with one line naming the file at fault (an
 * unreadable image, a missing, empty or non-UTF-8 caption) or the folder (no images). */
int hd_folder_open(hd_folder **out, const char *dir, int n_buckets, const int (*sizes)[2],
                   hd_error *e);
void hd_folder_close(hd_folder *f);

int64_t hd_folder_size(const hd_folder *f);
int64_t hd_folder_count(const hd_folder *f, int bucket);
/* File name (without the folder) and caption of image i (0-based, name order) of a bucket. */
const char *hd_folder_name(const hd_folder *f, int bucket, int64_t i);
const char *hd_folder_caption(const hd_folder *f, int bucket, int64_t i);
/* Image i of a bucket at the bucket's size. */
int hd_folder_load(const hd_folder *f, int bucket, int64_t i, hd_filter filter, hd_image *out,
                   hd_error *e);

/* Index of the bucket whose aspect w/h is nearest to the image's in |log| (first on ties). */
int hd_bucket_nearest(int w, int h, int n_buckets, const int (*sizes)[2]);

/* dst = src scaled (keeping its aspect) to the smallest size covering w×h, then the centred w×h
 * window of it. */
int hd_image_cover_crop(const hd_image *src, int w, int h, hd_filter filter, hd_image *dst,
                        hd_error *e);

#endif
