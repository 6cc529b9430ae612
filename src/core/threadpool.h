/* A persistent thread pool for data-parallel kernels.
 *
 * hd_pool_run(pool, n, fn, ctx) calls fn(ctx, task, thread) once for every task in 0..n-1,
 * spread over the pool's threads, and returns when all of them have finished. The calling thread
 * is one of the pool's threads (thread index 0), so a pool of n_threads owns n_threads-1 workers.
 * Between jobs the workers park on a condition variable (after a brief bounded spin), so an idle
 * pool costs no CPU and a machine with fewer free cores than threads still makes progress.
 *
 * One job at a time: hd_pool_run must not be called concurrently from two threads, nor from
 * inside a task. The thread index lets a task use per-thread scratch memory. */
#ifndef HD_CORE_THREADPOOL_H
#define HD_CORE_THREADPOOL_H

#include <stdint.h>

#include "hidream.h"

typedef struct hd_pool hd_pool;

typedef void (*hd_pool_fn)(void *ctx, int64_t task, int thread);

/* Creates a pool of n_threads threads (>= 1; the caller counts as one). */
int hd_pool_create(hd_pool **out, int n_threads, hd_error *e);
/* Runs fn for tasks 0..n_tasks-1 and waits for all of them. n_tasks <= 0 does nothing. */
void hd_pool_run(hd_pool *pool, int64_t n_tasks, hd_pool_fn fn, void *ctx);
int hd_pool_threads(const hd_pool *pool);
/* Stops and joins the workers and frees the pool (NULL is fine). */
void hd_pool_destroy(hd_pool *pool);

/* Number of online CPUs (>= 1). */
int hd_cpu_count(void);

#endif
