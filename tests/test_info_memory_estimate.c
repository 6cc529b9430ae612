/* `hidream info`'s memory estimate for a plain generate at the model's default size is within a
 * factor 1.5 of the peak resident memory generate actually reaches (tiny golden model, 2048x2048,
 * one step). Sanitizer builds skip the comparison: their shadow memory is not the program's. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static void estimate_is_within_half_of_the_measured_peak(void) {
#if defined(HIDREAM_SANITIZE)
    printf("skip: sanitizer build (resident memory includes shadow memory)\n");
#else
    const char *bin = getenv("HIDREAM_BIN");
    char model[1024], cmd[3000], out[8192], dir[512], png[700];
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    snprintf(cmd, sizeof cmd, "'%s' info '%s'", bin, model);
    CHECK(hd_test_run(cmd, out, sizeof out) == 0);
    const char *line = strstr(out, "memory        text-to-image 2048x2048:");
    const char *eq = line ? strstr(line, "= ~") : NULL;
    CHECKF(eq != NULL, "no estimate in: %s", out);
    if (!eq) return;
    double est_gib = atof(eq + 3);
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(png, sizeof png, "%s/x.png", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "generate", "-m", model, "-p", "a red circle", "-o", png, "--steps", "1",
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    CHECK(wait4(pid, &status, 0, &ru) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "generate status 0x%x", (unsigned)status);
    double peak_gib = (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KiB */
    printf("estimate %.2f GiB, measured peak %.2f GiB\n", est_gib, peak_gib);
    CHECKF(peak_gib <= est_gib * 1.5 && peak_gib >= est_gib / 1.5,
           "estimate %.2f GiB, peak %.2f GiB", est_gib, peak_gib);
    unlink(png);
    rmdir(dir);
#endif
}

int main(void) {
    if (!getenv("HIDREAM_BIN")) return fprintf(stderr, "HIDREAM_BIN is not set\n"), 2;
    RUN_TEST(estimate_is_within_half_of_the_measured_peak);
    return hd_test_finish();
}
