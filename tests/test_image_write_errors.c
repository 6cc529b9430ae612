/* A picture that cannot be written fails with a message that says why (for every format), and
 * leaves no file behind: neither the output nor the temporary file next to it. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "image/codec.h"
#include "image/codec_formats.h"
#include "image/image.h"
#include "testutil.h"

static char tmpdir[512];

static hd_image noise_image(int w, int h) {
    hd_image im;
    hd_error e;
    if (hd_image_alloc(&im, w, h, &e) < 0) {
        fprintf(stderr, "alloc: %s\n", e.msg);
        exit(2);
    }
    uint32_t s = 1;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        im.px[i] = (uint8_t)(s >> 24); /* incompressible: the file outgrows the size limit */
    }
    return im;
}

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n == 0;
}

/* The file size limit (RLIMIT_FSIZE) stands in for a full disk: every write past it fails with
 * EFBIG, as writes to a full disk fail with ENOSPC. */
static void save_past_size_limit_names_reason_and_leaves_nothing(void) {
    hd_image im = noise_image(256, 256);
    const char *names[] = {"x.png", "x.jpg", "x.webp"};
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    for (int k = 0; k < 3; k++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[k]);
        hd_text_kv kv[1] = {{"hidream:prompt", "a red circle"}};
        hd_save_opts so = {0, 0, kv, k == 0 ? 1 : 0};
        lim = old;
        lim.rlim_cur = 4096;
        setrlimit(RLIMIT_FSIZE, &lim);
        hd_error e = {0};
        int rc = hd_image_save(path, &im, &so, &e);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECKF(rc == HD_EIO, "%s: rc %d (%s)", names[k], rc, e.msg);
        CHECKF(strstr(e.msg, names[k]) != NULL, "message does not name the file: %s", e.msg);
        CHECKF(strstr(e.msg, "File too large") || strstr(e.msg, "disk space"),
               "message does not say why: %s", e.msg);
        CHECKF(dir_is_empty(tmpdir), "%s: a file was left behind", names[k]);
    }
    hd_image_free(&im);
}

/* The PNG encoder's own error (not an I/O one) reaches the message: libpng refuses a width
 * past its 1,000,000-pixel limit while writing the header. */
static void png_encoder_error_reaches_the_message(void) {
    hd_image im = noise_image(1000001, 1);
    FILE *f = fopen("/dev/null", "wb");
    hd_error e = {0};
    int rc = hd_png_encode(f, "wide.png", &im, NULL, 0, &e);
    fclose(f);
    CHECKF(rc == HD_EIO, "rc %d", rc);
    CHECKF(strncmp(e.msg, "wide.png: PNG: ", 15) == 0 && strlen(e.msg) > 15,
           "empty or unnamed reason: '%s'", e.msg);
    hd_image_free(&im);
}

/* Writing onto a device that is always full: the reason is the system's ("No space left"). */
static void png_write_to_full_device_says_no_space(void) {
    FILE *f = fopen("/dev/full", "wb");
    if (!f) {
        printf("skip: no /dev/full\n");
        return;
    }
    hd_image im = noise_image(128, 128);
    hd_text_kv kv[2] = {{"hidream:prompt", "p"}, {"Software", "hidream.c"}};
    hd_error e = {0};
    int rc = hd_png_encode(f, "full.png", &im, kv, 2, &e);
    fclose(f);
    CHECKF(rc == HD_EIO, "rc %d", rc);
    CHECKF(strstr(e.msg, "full.png: PNG: write failed: No space left") != NULL, "'%s'", e.msg);
    hd_image_free(&im);
}

int main(void) {
    hd_test_tmpdir(tmpdir, sizeof tmpdir);
    RUN_TEST(save_past_size_limit_names_reason_and_leaves_nothing);
    RUN_TEST(png_encoder_error_reaches_the_message);
    RUN_TEST(png_write_to_full_device_says_no_space);
    rmdir(tmpdir);
    return hd_test_finish();
}
