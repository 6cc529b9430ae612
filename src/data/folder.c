#include "data/folder.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "image/codec.h"
#include "image/image.h"
#include "text/utf8.h"

#define CAPTION_MAX_BYTES (1 << 20)

typedef struct folder_item {
    char *name;    /* image file name */
    char *caption; /* trimmed UTF-8 */
    int bucket;
} folder_item;

struct hd_folder {
    char *dir;
    folder_item *items;
    int64_t n_items;
    int n_buckets;
    int sizes[64][2];
    int64_t *members[64]; /* item indices of each bucket, in name order */
    int64_t counts[64];
};

int hd_bucket_nearest(int w, int h, int n_buckets, const int (*sizes)[2]) {
    double a = log((double)w / h), best = INFINITY;
    int k = 0;
    for (int i = 0; i < n_buckets; i++) {
        double d = fabs(a - log((double)sizes[i][0] / sizes[i][1]));
        if (d < best) best = d, k = i;
    }
    return k;
}

int hd_image_cover_crop(const hd_image *src, int w, int h, hd_filter filter, hd_image *dst,
                        hd_error *e) {
    double scale = fmax((double)w / src->w, (double)h / src->h);
    long rw = lround(src->w * scale), rh = lround(src->h * scale);
    if (rw < w) rw = w;
    if (rh < h) rh = h;
    hd_image scaled = {0};
    HD_TRY(hd_image_resize(src, (int)rw, (int)rh, filter, &scaled, e));
    int left = (int)(rw - w) / 2, top = (int)(rh - h) / 2;
    int rc = hd_image_crop(dst, &scaled, left, top, left + w, top + h, e);
    hd_image_free(&scaled);
    return rc;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const folder_item *)a)->name, ((const folder_item *)b)->name);
}

/* the image files of dir, sorted by name */
static int list_images(hd_folder *f, hd_error *e) {
    DIR *d = opendir(f->dir);
    if (!d) return hd_fail(e, HD_EIO, "%s: cannot open the folder", f->dir);
    int64_t cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || hd_image_format_from_name(de->d_name) == HD_FMT_UNKNOWN)
            continue;
        if (f->n_items == cap) {
            cap = cap ? 2 * cap : 64;
            folder_item *grown = realloc(f->items, (size_t)cap * sizeof *grown);
            if (!grown) {
                rc = hd_fail(e, HD_ENOMEM, "%s: out of memory listing the folder", f->dir);
                break;
            }
            f->items = grown;
        }
        folder_item *it = &f->items[f->n_items];
        memset(it, 0, sizeof *it);
        if (!(it->name = strdup(de->d_name))) {
            rc = hd_fail(e, HD_ENOMEM, "%s: out of memory listing the folder", f->dir);
            break;
        }
        f->n_items++;
    }
    closedir(d);
    if (rc) return rc;
    if (f->n_items == 0)
        return hd_fail(e, HD_EINVAL, "%s: no images (.png, .jpg, .jpeg, .webp) in the folder",
                       f->dir);
    qsort(f->items, (size_t)f->n_items, sizeof *f->items, by_name);
    return 0;
}

static int read_caption(const hd_folder *f, folder_item *it, hd_error *e) {
    char path[4096];
    const char *dot = strrchr(it->name, '.');
    snprintf(path, sizeof path, "%s/%.*s.txt", f->dir, (int)(dot - it->name), it->name);
    char *buf;
    size_t len;
    if (hd_read_file(path, CAPTION_MAX_BYTES, &buf, &len, e) < 0)
        return hd_fail(e, HD_EIO, "%s: missing or unreadable caption of %s", path, it->name);
    size_t bad = hd_utf8_find_invalid(buf, len);
    if (bad != len) {
        free(buf);
        return hd_fail(e, HD_EFORMAT, "%s: caption: invalid UTF-8 at byte %zu", path, bad);
    }
    if (memchr(buf, 0, len)) {
        free(buf);
        return hd_fail(e, HD_EFORMAT, "%s: caption: contains a NUL byte", path);
    }
    size_t a = 0, b = len;
    while (a < b && strchr(" \t\r\n\v\f", buf[a])) a++;
    while (b > a && strchr(" \t\r\n\v\f", buf[b - 1])) b--;
    if (a == b) {
        free(buf);
        return hd_fail(e, HD_EFORMAT, "%s: caption: empty", path);
    }
    memmove(buf, buf + a, b - a);
    buf[b - a] = 0;
    it->caption = buf;
    return 0;
}

static int assign_buckets(hd_folder *f, hd_error *e) {
    for (int64_t i = 0; i < f->n_items; i++) {
        folder_item *it = &f->items[i];
        HD_TRY(read_caption(f, it, e));
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", f->dir, it->name);
        hd_image im = {0};
        HD_TRY(hd_image_load(path, &im, e));
        it->bucket = hd_bucket_nearest(im.w, im.h, f->n_buckets, (const int (*)[2])f->sizes);
        hd_image_free(&im);
        f->counts[it->bucket]++;
    }
    for (int b = 0; b < f->n_buckets; b++) {
        f->members[b] = malloc((size_t)(f->counts[b] ? f->counts[b] : 1) * sizeof(int64_t));
        if (!f->members[b]) return hd_fail(e, HD_ENOMEM, "%s: out of memory", f->dir);
        f->counts[b] = 0;
    }
    for (int64_t i = 0; i < f->n_items; i++) {
        int b = f->items[i].bucket;
        f->members[b][f->counts[b]++] = i;
    }
    return 0;
}

int hd_folder_open(hd_folder **out, const char *dir, int n_buckets, const int (*sizes)[2],
                   hd_error *e) {
    *out = NULL;
    if (n_buckets < 1 || n_buckets > 64)
        return hd_fail(e, HD_EINVAL, "%s: %d buckets (1..64)", dir, n_buckets);
    for (int b = 0; b < n_buckets; b++)
        if (sizes[b][0] < 1 || sizes[b][1] < 1)
            return hd_fail(e, HD_EINVAL, "%s: bucket %d: size %dx%d", dir, b, sizes[b][0],
                           sizes[b][1]);
    hd_folder *f = calloc(1, sizeof *f);
    if (!f || !(f->dir = strdup(dir))) {
        free(f);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory", dir);
    }
    f->n_buckets = n_buckets;
    memcpy(f->sizes, sizes, (size_t)n_buckets * sizeof *sizes);
    int rc = list_images(f, e);
    if (!rc) rc = assign_buckets(f, e);
    if (rc) {
        hd_folder_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

void hd_folder_close(hd_folder *f) {
    if (!f) return;
    for (int64_t i = 0; i < f->n_items; i++) {
        free(f->items[i].name);
        free(f->items[i].caption);
    }
    for (int b = 0; b < f->n_buckets; b++) free(f->members[b]);
    free(f->items);
    free(f->dir);
    free(f);
}

int64_t hd_folder_size(const hd_folder *f) { return f->n_items; }

int64_t hd_folder_count(const hd_folder *f, int bucket) {
    return bucket >= 0 && bucket < f->n_buckets ? f->counts[bucket] : 0;
}

static const folder_item *item(const hd_folder *f, int bucket, int64_t i) {
    if (bucket < 0 || bucket >= f->n_buckets || i < 0 || i >= f->counts[bucket]) return NULL;
    return &f->items[f->members[bucket][i]];
}

const char *hd_folder_name(const hd_folder *f, int bucket, int64_t i) {
    const folder_item *it = item(f, bucket, i);
    return it ? it->name : NULL;
}

const char *hd_folder_caption(const hd_folder *f, int bucket, int64_t i) {
    const folder_item *it = item(f, bucket, i);
    return it ? it->caption : NULL;
}

int hd_folder_load(const hd_folder *f, int bucket, int64_t i, hd_filter filter, hd_image *out,
                   hd_error *e) {
    out->w = out->h = 0;
    out->px = NULL;
    const folder_item *it = item(f, bucket, i);
    if (!it)
        return hd_fail(e, HD_EINVAL, "%s: bucket %d has no image %lld", f->dir, bucket,
                       (long long)i);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", f->dir, it->name);
    hd_image im = {0};
    HD_TRY(hd_image_load(path, &im, e));
    int rc = hd_image_cover_crop(&im, f->sizes[bucket][0], f->sizes[bucket][1], filter, out, e);
    hd_image_free(&im);
    if (rc) hd_error_prefix(e, "%s", path);
    return rc;
}
