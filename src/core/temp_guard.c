#include "core/temp_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

#define N_SLOTS 16

static const int guarded_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_SIGNALS ((int)(sizeof guarded_signals / sizeof *guarded_signals))

/* The handler reads only these atomics and the saved dispositions (written before it is
 * installed), and calls only async-signal-safe functions (unlink, sigaction, raise). */
static _Atomic(const char *) slots[N_SLOTS];
static struct sigaction saved[N_SIGNALS];
static int installed[N_SIGNALS];
static int n_registered;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void on_fatal_signal(int sig) {
    for (int i = 0; i < N_SLOTS; i++) {
        const char *p = atomic_exchange(&slots[i], NULL);
        if (p) unlink(p);
    }
    for (int k = 0; k < N_SIGNALS; k++)
        if (guarded_signals[k] == sig) sigaction(sig, &saved[k], NULL);
    raise(sig); /* blocked until this handler returns, then the default action ends the process */
}

static void install(void) {
    for (int k = 0; k < N_SIGNALS; k++) {
        struct sigaction cur;
        installed[k] = 0;
        if (sigaction(guarded_signals[k], NULL, &cur) != 0 || cur.sa_handler != SIG_DFL ||
            (cur.sa_flags & SA_SIGINFO))
            continue; /* ignored or handled by the program: leave it alone */
        saved[k] = cur;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigfillset(&sa.sa_mask); /* no other guarded signal runs the handler twice at once */
        installed[k] = sigaction(guarded_signals[k], &sa, NULL) == 0;
    }
}

static void uninstall(void) {
    for (int k = 0; k < N_SIGNALS; k++)
        if (installed[k]) sigaction(guarded_signals[k], &saved[k], NULL);
}

void hd_temp_guard_block(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    for (int k = 0; k < N_SIGNALS; k++) sigaddset(&set, guarded_signals[k]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

void hd_temp_guard_unblock(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

int hd_temp_guard_add(const char *path) {
    pthread_mutex_lock(&lock);
    int slot = -1;
    for (int i = 0; i < N_SLOTS && slot < 0; i++) {
        const char *expect = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &expect, path)) slot = i;
    }
    if (slot >= 0 && n_registered++ == 0) install();
    pthread_mutex_unlock(&lock);
    return slot;
}

void hd_temp_guard_remove(int slot) {
    if (slot < 0 || slot >= N_SLOTS) return;
    pthread_mutex_lock(&lock);
    atomic_store(&slots[slot], NULL);
    if (--n_registered == 0) uninstall();
    pthread_mutex_unlock(&lock);
}

int hd_tmp_file_open(hd_tmp_file *t, const char *path, hd_error *e) {
    t->f = NULL;
    t->guard = -1;
    if ((size_t)snprintf(t->tmp, sizeof t->tmp, "%s.tmp", path) >= sizeof t->tmp)
        return hd_fail(e, HD_EINVAL, "%s: path too long", path);
    sigset_t mask;
    hd_temp_guard_block(&mask); /* no signal between creating and registering the file */
    t->f = fopen(t->tmp, "wb");
    int err = errno;
    if (t->f) t->guard = hd_temp_guard_add(t->tmp);
    hd_temp_guard_unblock(&mask);
    if (!t->f) return hd_fail(e, HD_EIO, "%s: cannot create: %s", t->tmp, strerror(err));
    return 0;
}

int hd_tmp_file_finish(hd_tmp_file *t, const char *path, int rc, hd_error *e) {
    if (fclose(t->f) != 0 && rc == 0)
        rc = hd_fail(e, HD_EIO, "%s: close failed: %s", t->tmp, strerror(errno));
    if (rc == 0 && rename(t->tmp, path) != 0)
        rc = hd_fail(e, HD_EIO, "%s: cannot rename to %s: %s", t->tmp, path, strerror(errno));
    if (rc < 0) remove(t->tmp);
    hd_temp_guard_remove(t->guard); /* after the unlink: no window without a guard */
    t->f = NULL;
    return rc;
}
