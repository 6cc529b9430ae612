/* Thread pool: every task runs exactly once, per-thread indices are in range, the caller
 * participates, and pools of any size can be created and destroyed repeatedly. */
#include <stdatomic.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>

#include "core/threadpool.h"
#include "testutil.h"

typedef struct count_ctx {
    atomic_int *hits;
    int n_threads;
    atomic_int bad_thread;
} count_ctx;

static void count_task(void *ctx, int64_t t, int thread) {
    count_ctx *c = ctx;
    atomic_fetch_add(&c->hits[t], 1);
    if (thread < 0 || thread >= c->n_threads) atomic_store(&c->bad_thread, 1);
}

static int run_and_check(hd_pool *p, int n_threads, int64_t n_tasks) {
    atomic_int *hits = calloc((size_t)(n_tasks > 0 ? n_tasks : 1), sizeof *hits);
    count_ctx c = {.hits = hits, .n_threads = n_threads};
    atomic_init(&c.bad_thread, 0);
    hd_pool_run(p, n_tasks, count_task, &c);
    int ok = !atomic_load(&c.bad_thread);
    for (int64_t i = 0; i < n_tasks; i++) ok &= atomic_load(&hits[i]) == 1;
    free(hits);
    return ok;
}

static void test_every_task_runs_once_for_fewer_and_more_tasks_than_threads(void) {
    for (int nt = 1; nt <= 4; nt++) {
        hd_pool *p = NULL;
        hd_error e = {0};
        CHECK(hd_pool_create(&p, nt, &e) == 0);
        CHECK(hd_pool_threads(p) == nt);
        int64_t sizes[] = {0, 1, 2, nt - 1, nt, nt + 1, 3 * nt + 2, 1000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            CHECKF(run_and_check(p, nt, sizes[i]), "threads %d tasks %lld", nt,
                   (long long)sizes[i]);
        hd_pool_destroy(p);
    }
}

static void test_many_tiny_jobs_complete_in_order(void) {
    hd_pool *p = NULL;
    hd_error e = {0};
    CHECK(hd_pool_create(&p, 3, &e) == 0);
    int ok = 1;
    for (int it = 0; it < 20000 && ok; it++) ok = run_and_check(p, 3, 1 + it % 7);
    CHECK(ok);
    hd_pool_destroy(p);
}

typedef struct sum_ctx {
    const int *data;
    int64_t chunk;
    long long partial[64];
} sum_ctx;

static void sum_task(void *ctx, int64_t t, int thread) {
    sum_ctx *s = ctx;
    long long acc = 0;
    for (int64_t i = t * s->chunk; i < (t + 1) * s->chunk; i++) acc += s->data[i];
    s->partial[t] = acc;
}

static void test_results_of_all_tasks_are_visible_after_run(void) {
    enum { N = 64 * 1000 };
    int *data = malloc(N * sizeof *data);
    long long want = 0;
    for (int i = 0; i < N; i++) want += data[i] = (i * 7919) % 1000;
    hd_pool *p = NULL;
    hd_error e = {0};
    CHECK(hd_pool_create(&p, 2, &e) == 0);
    for (int rep = 0; rep < 200; rep++) {
        sum_ctx s = {.data = data, .chunk = N / 64};
        hd_pool_run(p, 64, sum_task, &s);
        long long got = 0;
        for (int t = 0; t < 64; t++) got += s.partial[t];
        if (got != want) {
            CHECKF(got == want, "rep %d: %lld != %lld", rep, got, want);
            break;
        }
    }
    hd_pool_destroy(p);
    free(data);
}

static void test_create_destroy_repeatedly_and_bad_sizes_rejected(void) {
    hd_error e = {0};
    for (int i = 0; i < 50; i++) {
        hd_pool *p = NULL;
        CHECK(hd_pool_create(&p, 1 + i % 5, &e) == 0);
        if (i % 2) CHECK(run_and_check(p, 1 + i % 5, 10));
        hd_pool_destroy(p);
    }
    hd_pool *p = (hd_pool *)&e;
    CHECK(hd_pool_create(&p, 0, &e) == HD_EINVAL);
    CHECK(p == NULL);
    CHECK(strstr(e.msg, "threadpool") != NULL);
    CHECK(hd_pool_create(&p, -3, &e) == HD_EINVAL);
    hd_pool_destroy(NULL);
    CHECK(hd_cpu_count() >= 1);
}

typedef struct meet_ctx {
    atomic_int first_thread; /* thread index of whoever took task 0, +1 */
    atomic_int met;
} meet_ctx;

/* Task 0 waits until the other task ran on a different thread: this only finishes if a worker
 * really runs concurrently with the caller (bounded wait so a broken pool fails, not hangs). */
static void meet_task(void *ctx, int64_t t, int thread) {
    meet_ctx *m = ctx;
    if (t == 0) {
        atomic_store(&m->first_thread, thread + 1);
        for (long i = 0; i < 20000000L && !atomic_load(&m->met); i++) sched_yield();
    } else {
        while (atomic_load(&m->first_thread) == 0) sched_yield();
        if (atomic_load(&m->first_thread) != thread + 1) atomic_store(&m->met, 1);
    }
}

static void test_worker_runs_concurrently_with_the_caller(void) {
    hd_pool *p = NULL;
    hd_error e = {0};
    CHECK(hd_pool_create(&p, 2, &e) == 0);
    for (int rep = 0; rep < 5; rep++) {
        meet_ctx m;
        atomic_init(&m.first_thread, 0);
        atomic_init(&m.met, 0);
        hd_pool_run(p, 2, meet_task, &m);
        CHECKF(atomic_load(&m.met), "rep %d", rep);
    }
    hd_pool_destroy(p);
}

int main(void) {
    RUN_TEST(test_every_task_runs_once_for_fewer_and_more_tasks_than_threads);
    RUN_TEST(test_many_tiny_jobs_complete_in_order);
    RUN_TEST(test_results_of_all_tasks_are_visible_after_run);
    RUN_TEST(test_create_destroy_repeatedly_and_bad_sizes_rejected);
    RUN_TEST(test_worker_runs_concurrently_with_the_caller);
    return hd_test_finish();
}
