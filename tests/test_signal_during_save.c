/* A SIGINT or SIGTERM that arrives while an output file is being written (picture or
 * safetensors) kills the process as before but leaves no temporary file behind; a program that
 * handles the signal itself keeps its handler and its save completes. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "image/codec.h"
#include "image/image.h"
#include "io/safetensors.h"
#include "testutil.h"

static char tmpdir[512];

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Number of entries in tmpdir; *tmp_seen set when one of them is a temporary file. */
static int scan_dir(int *tmp_seen) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *de;
    *tmp_seen = 0;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        n++;
        if (strstr(de->d_name, ".tmp")) *tmp_seen = 1;
    }
    if (d) closedir(d);
    return n;
}

static void clear_dir(void) {
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    char p[1024];
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
            unlink(p);
        }
    if (d) closedir(d);
}

static void write_big_png(void) {
    hd_image im;
    hd_error e;
    if (hd_image_alloc(&im, 4096, 4096, &e) < 0) _exit(3);
    uint32_t s = 7;
    for (size_t i = 0; i < (size_t)im.w * im.h * 3; i++) {
        s = s * 1664525u + 1013904223u;
        im.px[i] = (uint8_t)(s >> 24);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/out.png", tmpdir);
    _exit(hd_image_save(path, &im, NULL, &e) == 0 ? 0 : 4);
}

static int slow_fill(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                     hd_error *e) {
    (void)e;
    (void)ctx, (void)it, (void)off;
    memset(buf, 0, n);
    sleep_ms(40);
    return 0;
}

static void write_slow_safetensors(void) {
    hd_st_write_item item = {"w", HD_F32, 1, {64 << 20}, NULL, slow_fill, NULL};
    char path[700];
    snprintf(path, sizeof path, "%s/out.safetensors", tmpdir);
    hd_error e;
    _exit(hd_st_write(path, &item, 1, &e) == 0 ? 0 : 4);
}

static volatile sig_atomic_t got_signal;
static void note_signal(int sig) { got_signal = sig; }

/* Forks a writer; sends sig as soon as its temporary file exists; returns the wait status. */
static int signal_during_write(void (*writer)(void), int sig, int own_handler) {
    clear_dir();
    pid_t pid = fork();
    if (pid == 0) {
        if (own_handler) signal(sig, note_signal);
        writer();
    }
    int tmp_seen = 0, status = 0;
    for (int i = 0; i < 60000 && !tmp_seen; i++) {
        scan_dir(&tmp_seen);
        if (!tmp_seen) {
            if (waitpid(pid, &status, WNOHANG) == pid) return -1; /* finished before we saw it */
            sleep_ms(1);
        }
    }
    if (!tmp_seen) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    kill(pid, sig);
    waitpid(pid, &status, 0);
    return status;
}

static void check_killed_and_clean(void (*writer)(void), const char *name, int sig) {
    int status = signal_during_write(writer, sig, 0);
    CHECKF(status != -1, "%s: the temporary file was never seen", name);
    CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == sig, "%s: signal %d: status 0x%x", name,
           sig, (unsigned)status);
    int tmp_seen;
    int n = scan_dir(&tmp_seen);
    CHECKF(n == 0, "%s: signal %d left %d file(s) (temporary: %d)", name, sig, n, tmp_seen);
}

static void sigint_during_picture_save_leaves_no_file(void) {
    check_killed_and_clean(write_big_png, "png", SIGINT);
}

static void sigterm_during_picture_save_leaves_no_file(void) {
    check_killed_and_clean(write_big_png, "png", SIGTERM);
}

static void sigterm_during_safetensors_write_leaves_no_file(void) {
    check_killed_and_clean(write_slow_safetensors, "safetensors", SIGTERM);
}

static void own_signal_handler_is_kept_and_save_completes(void) {
    int status = signal_during_write(write_slow_safetensors, SIGTERM, 1);
    CHECKF(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x",
           (unsigned)status);
    int tmp_seen;
    int n = scan_dir(&tmp_seen);
    CHECKF(n == 1 && !tmp_seen, "%d file(s), temporary: %d", n, tmp_seen);
}

int main(void) {
    hd_test_tmpdir(tmpdir, sizeof tmpdir);
    RUN_TEST(sigint_during_picture_save_leaves_no_file);
    RUN_TEST(sigterm_during_picture_save_leaves_no_file);
    RUN_TEST(sigterm_during_safetensors_write_leaves_no_file);
    RUN_TEST(own_signal_handler_is_kept_and_save_completes);
    clear_dir();
    rmdir(tmpdir);
    return hd_test_finish();
}
