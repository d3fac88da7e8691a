/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Rounds of concurrent calls for the linearizability tests
 * (tests/stress_*_lin.c): worker threads kept for the whole test, started
 * together for each round, so that the calls of a round do overlap.
 *
 * The workers wait for the next round by spinning (with sched_yield(), since
 * they outnumber the CPUs on purpose) on a generation counter rather than in
 * a pthread barrier: a barrier wakes them one by one, several microseconds
 * apart, longer than a whole round's calls take, so few rounds had calls of
 * two threads overlapping at all. They wait offline: with the qsbr flavor an
 * online thread spinning there would hold up the grace periods the test's
 * main thread waits for between rounds.
 */
#ifndef VMRES_ROUNDS_H
#define VMRES_ROUNDS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define VMRES_ROUNDS_MAX_WORKERS 8

struct vmres_rounds;

struct vmres_rounds_worker {
	struct vmres_rounds *rounds;
	uint32_t index;
};

/*
 * struct vmres_rounds - the workers of a test
 * @run:    a worker's part of a round: called by every worker with the
 *          round and the worker's index (a round that needs fewer threads
 *          returns at once in the others)
 * @round:  the current round, written before @gen is raised
 * @gen:    atomic: raised to start a round (or to stop)
 * @done:   atomic: workers through the current round
 * @stop:   atomic: the workers leave
 */
struct vmres_rounds {
	void (*run)(void *round, uint32_t index);
	void *round;
	uint64_t gen;
	uint32_t done;
	bool stop;
	uint32_t nworkers;
	pthread_t threads[VMRES_ROUNDS_MAX_WORKERS];
	struct vmres_rounds_worker workers[VMRES_ROUNDS_MAX_WORKERS];
};

/* A pause instruction where there is one: a spin that lets the sibling hyperthread run. */
void vmres_rounds_relax(void);

/* Starts @nworkers (registered) workers that call @run for each round. */
void vmres_rounds_start(struct vmres_rounds *p, uint32_t nworkers,
			void (*run)(void *round, uint32_t index));

/* Runs @round on every worker and returns once all are through it. */
void vmres_rounds_run(struct vmres_rounds *p, void *round);

/* Stops and joins the workers (offline while joining). */
void vmres_rounds_stop(struct vmres_rounds *p);

/*
 * The start line inside a round: counts the caller in @arrived, then spins
 * until @nthreads have arrived, yielding every @yield_every spins so that the
 * others, more than the CPUs, get to arrive.
 */
void vmres_rounds_start_line(uint32_t *arrived, uint32_t nthreads, uint32_t yield_every);

#endif /* VMRES_ROUNDS_H */
