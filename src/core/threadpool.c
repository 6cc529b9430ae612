/* Thread pool: workers wait for a new job generation, claim task indices from an atomic counter,
 * and report completion through a counter guarded by the mutex. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"

/* How many times a worker polls for a new job before parking. Short: on a busy 2-core box a
 * spinning worker steals the core from the thread that would give it work. */
#define HD_POOL_SPIN 2000

typedef struct hd_worker {
    hd_pool *pool;
    int index;
    pthread_t thread;
} hd_worker;

struct hd_pool {
    int n_threads;
    hd_worker *workers; /* n_threads - 1 of them */
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* a new job (or stop) was posted */
    pthread_cond_t done; /* the last worker finished the current job */

    /* The current job; written under mu before generation is bumped. */
    hd_pool_fn fn;
    void *ctx;
    int64_t n_tasks;
    atomic_int_fast64_t next; /* next unclaimed task */
    atomic_uint generation;   /* bumped once per job */
    int pending;              /* workers that have not finished the current job (under mu) */
    int stop;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(hd_pool *p, hd_pool_fn fn, void *ctx, int64_t n, int thread) {
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n) break;
        fn(ctx, t, thread);
    }
}

static void *worker_main(void *arg) {
    hd_worker *w = arg;
    hd_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        for (int i = 0; i < HD_POOL_SPIN; i++) {
            if (atomic_load_explicit(&p->generation, memory_order_acquire) != seen) break;
            cpu_relax();
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->generation, memory_order_relaxed) == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = atomic_load_explicit(&p->generation, memory_order_relaxed);
        hd_pool_fn fn = p->fn;
        void *ctx = p->ctx;
        int64_t n = p->n_tasks;
        pthread_mutex_unlock(&p->mu);

        run_tasks(p, fn, ctx, n, w->index);

        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

int hd_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

int hd_pool_create(hd_pool **out, int n_threads, hd_error *e) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return hd_fail(e, HD_EINVAL, "threadpool: n_threads %d out of range 1..1024", n_threads);
    hd_pool *p = calloc(1, sizeof *p);
    if (!p) return hd_fail(e, HD_ENOMEM, "threadpool: out of memory");
    p->n_threads = n_threads;
    atomic_init(&p->next, 0);
    atomic_init(&p->generation, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return hd_fail(e, HD_ENOMEM, "threadpool: pthread_mutex_init failed");
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return hd_fail(e, HD_ENOMEM, "threadpool: pthread_cond_init failed");
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return hd_fail(e, HD_ENOMEM, "threadpool: pthread_cond_init failed");
    }
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            hd_pool_destroy(p);
            return hd_fail(e, HD_ENOMEM, "threadpool: out of memory");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
                hd_pool_destroy(p);
                return hd_fail(e, HD_ENOMEM, "threadpool: cannot start worker thread %d of %d",
                               i + 1, n_threads - 1);
            }
            p->n_started++;
        }
    }
    *out = p;
    return 0;
}

int hd_pool_threads(const hd_pool *pool) { return pool ? pool->n_threads : 1; }

void hd_pool_run(hd_pool *p, int64_t n_tasks, hd_pool_fn fn, void *ctx) {
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    p->pending = p->n_started;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_tasks(p, fn, ctx, n_tasks, 0);

    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void hd_pool_destroy(hd_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
