/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "vmres_rounds.h"

#include <sched.h>
#include <stdlib.h>

#include "vmres_test.h"

void vmres_rounds_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Until *@p is no longer @v (relaxed spin, then yield: more threads than CPUs). */
static void rounds_wait_u64(const uint64_t *p, uint64_t v)
{
	for (uint32_t spins = 1; __atomic_load_n(p, __ATOMIC_ACQUIRE) == v; spins++) {
		if (spins % 16 == 0)
			sched_yield();
		else
			vmres_rounds_relax();
	}
}

static void *rounds_worker(void *arg)
{
	struct vmres_rounds_worker *w = arg;
	struct vmres_rounds *p = w->rounds;
	uint64_t gen = 0;

	vmres_thread_register();
	for (;;) {
		vmres_thread_offline();
		rounds_wait_u64(&p->gen, gen++); /* acquire: the round, or stop */
		vmres_thread_online();
		if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
			break;
		p->run(p->round, w->index);
		vmres_thread_quiescent();
		/* Release: the round's records, for vmres_rounds_run(). */
		__atomic_add_fetch(&p->done, 1, __ATOMIC_RELEASE);
	}
	vmres_thread_unregister();
	return NULL;
}

void vmres_rounds_start(struct vmres_rounds *p, uint32_t nworkers,
			void (*run)(void *round, uint32_t index))
{
	*p = (struct vmres_rounds){ .run = run, .nworkers = nworkers };
	if (nworkers > VMRES_ROUNDS_MAX_WORKERS)
		abort();
	for (uint32_t t = 0; t < nworkers; t++) {
		p->workers[t] = (struct vmres_rounds_worker){ p, t };
		if (pthread_create(&p->threads[t], NULL, rounds_worker, &p->workers[t]))
			abort();
	}
}

void vmres_rounds_run(struct vmres_rounds *p, void *round)
{
	p->round = round;
	__atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
	/* Release: publishes the round (and done = 0) to the workers. */
	__atomic_add_fetch(&p->gen, 1, __ATOMIC_RELEASE);
	for (uint32_t spins = 1; __atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < p->nworkers;
	     spins++) {
		if (spins % 16 == 0)
			sched_yield();
		else
			vmres_rounds_relax();
	}
}

void vmres_rounds_stop(struct vmres_rounds *p)
{
	__atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
	__atomic_add_fetch(&p->gen, 1, __ATOMIC_RELEASE);
	for (uint32_t t = 0; t < p->nworkers; t++)
		if (vmres_test_join(p->threads[t]))
			abort();
}

void vmres_rounds_start_line(uint32_t *arrived, uint32_t nthreads, uint32_t yield_every)
{
	/* No data passes through the start line: acq_rel and acquire only keep
	 * the round's calls after the last arrival is seen. */
	__atomic_add_fetch(arrived, 1, __ATOMIC_ACQ_REL);
	for (uint32_t spins = 1; __atomic_load_n(arrived, __ATOMIC_ACQUIRE) < nthreads; spins++) {
		if (spins % yield_every == 0)
			sched_yield(); /* more threads than CPUs: let the others arrive */
		else
			vmres_rounds_relax();
	}
}
