/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * bench_floor: what one shared cache line costs, next to a mutex.
 *
 * Not a libvmres benchmark: it measures the machine. Issue 3 asks the ID
 * allocator for 2x the throughput of a mutex-protected set at 2 and 4
 * threads. Any allocator that hands out the smallest free ID, linearizably,
 * must have every alloc synchronise on the current minimum: at least one
 * read-modify-write on a line that every thread writes. This program runs,
 * for a fixed time on N threads:
 *
 *   cas K    each "pair" is K compare-and-swap increments of ONE shared word
 *            (K = 1: the least any such allocator can do per alloc+free)
 *   mutex    each "pair" is two empty critical sections of one pthread mutex
 *            (the baseline's alloc + free with the work taken out)
 *
 * and prints pairs per second, all threads together. If "cas 1" at 2
 * threads is not 2x "mutex" at 2 threads, no design that touches a shared
 * line once per pair can reach the target on this machine.
 *
 * Usage: bench_floor THREADS (cas K | mutex) [SECONDS]
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64

/* The shared word; alone on its line. */
static _Alignas(64) _Atomic uint64_t shared_word;
static _Alignas(64) pthread_mutex_t shared_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Alignas(64) uint64_t guarded; /* written only under shared_mutex */
/* Start and stop flags: seq_cst stores and loads, no other data to order. */
static _Atomic int go, stop;
static int use_mutex;
static int cas_per_pair;

struct worker {
	pthread_t thread;
	uint64_t pairs;
};

static void *run(void *arg)
{
	struct worker *w = arg;
	uint64_t n = 0;

	/* Start signal; pairs with main's store (orders nothing else). */
	while (!atomic_load(&go))
		;
	/* Relaxed: only a stop signal; the join orders the result. */
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		if (use_mutex) {
			for (int k = 0; k < 2; k++) {
				pthread_mutex_lock(&shared_mutex);
				guarded++;
				pthread_mutex_unlock(&shared_mutex);
			}
		} else {
			for (int k = 0; k < cas_per_pair; k++) {
				/* Relaxed load: the CAS below checks it. */
				uint64_t v =
					atomic_load_explicit(&shared_word, memory_order_relaxed);

				/* seq_cst CAS (a locked cmpxchg on x86), as the
				 * allocators use; orders nothing else here. */
				while (!atomic_compare_exchange_weak(&shared_word, &v, v + 1))
					;
			}
		}
		n++;
	}
	w->pairs = n;
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	int threads, argi = 3;
	double seconds = 0.5, t0, t1;
	uint64_t total = 0;

	if (argc < 3 || (threads = atoi(argv[1])) < 1 || threads > MAX_THREADS)
		goto usage;
	if (!strcmp(argv[2], "mutex")) {
		use_mutex = 1;
	} else if (!strcmp(argv[2], "cas") && argc >= 4 && atoi(argv[3]) >= 1) {
		cas_per_pair = atoi(argv[3]);
		argi = 4;
	} else {
		goto usage;
	}
	if (argc > argi)
		seconds = strtod(argv[argi], NULL);
	if (seconds <= 0)
		goto usage;
	for (int i = 0; i < threads; i++)
		if (pthread_create(&workers[i].thread, NULL, run, &workers[i])) {
			fprintf(stderr, "bench_floor: pthread_create failed\n");
			return 1;
		}
	t0 = now();
	atomic_store(&go, 1);
	while (now() - t0 < seconds) {
		struct timespec nap = { 0, 1000000 };

		nanosleep(&nap, NULL);
	}
	atomic_store(&stop, 1);
	t1 = now();
	for (int i = 0; i < threads; i++) {
		pthread_join(workers[i].thread, NULL);
		total += workers[i].pairs;
	}
	if (use_mutex)
		printf("mutex, 2 sections per pair, %d threads: %.2f M pairs/s\n", threads,
		       (double)total / (t1 - t0) / 1e6);
	else
		printf("shared-word CAS, %d per pair, %d threads: %.2f M pairs/s\n", cas_per_pair,
		       threads, (double)total / (t1 - t0) / 1e6);
	return 0;
usage:
	fprintf(stderr, "usage: bench_floor THREADS (cas K | mutex) [SECONDS]\n");
	return 2;
}
