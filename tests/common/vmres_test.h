/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Shared helpers for the cmocka tests: a counting/failing memory hook, seeds, a PRNG. */
#ifndef VMRES_TEST_H
#define VMRES_TEST_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <vmres/vmres.h>

/*
 * struct vmres_test_mem - a memory hook that counts and can fail on demand.
 * All counters are updated atomically: RCU callbacks free from liburcu's thread.
 * @fail_countdown: < 0 never fail; otherwise the allocation that finds it at 0
 *                  fails (and every one after, until reset), each earlier one
 *                  decrements it.
 */
struct vmres_test_mem {
	int64_t allocs;
	int64_t frees;
	int64_t live_bytes;
	int64_t live_blocks;
	int64_t failures;
	int64_t fail_countdown;
};

void vmres_test_mem_init(struct vmres_test_mem *m);
struct vmres_mem_ops vmres_test_mem_ops(struct vmres_test_mem *m);
/* Fail the allocation after @n more successful ones (n = 0: the next one); -1: never. */
void vmres_test_mem_fail_after(struct vmres_test_mem *m, int64_t n);
int64_t vmres_test_mem_live_blocks(struct vmres_test_mem *m);
/* Successful allocations so far. */
int64_t vmres_test_mem_allocs(struct vmres_test_mem *m);
int64_t vmres_test_mem_live_bytes(struct vmres_test_mem *m);
int64_t vmres_test_mem_failures(struct vmres_test_mem *m);

/*
 * vmres_test_seed() - the seed of a randomized test
 * @env: environment variable that replays a seed (e.g. "VMRES_TEST_SEED")
 * Prints "[seed] <test>: <env>=<seed>" so a failing run can be replayed.
 */
uint64_t vmres_test_seed(const char *env, const char *test_name);

/* splitmix64: small, fast, good enough for test workloads. */
static inline uint64_t vmres_test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, bound), bound > 0. */
static inline uint64_t vmres_test_rand_below(uint64_t *state, uint64_t bound)
{
	return vmres_test_rand(state) % bound;
}

/*
 * How long stress tests run: VMRES_STRESS_SECONDS, default @dflt. Stress tests
 * stop on a deadline, not on a sleep: a thread checks it between operations.
 */
double vmres_test_stress_seconds(double dflt);
double vmres_test_now(void);

/*
 * A start gate for the threads of a stress run. Each of @threads workers
 * calls vmres_test_gate_pass() before its timed loop; the call returns once
 * all of them have arrived, with that thread's own deadline: the instant it
 * left the gate plus @seconds. So the workers race from their first
 * operation instead of starting one by one as they are created, and each
 * gets its whole time however late it was created or scheduled. Call it
 * before vmres_thread_register(): a qsbr thread that waits there while
 * registered and online would hold up every grace period.
 */
struct vmres_test_gate {
	pthread_barrier_t barrier;
	double seconds;
};
void vmres_test_gate_init(struct vmres_test_gate *gate, unsigned int threads, double seconds);
double vmres_test_gate_pass(struct vmres_test_gate *gate);
void vmres_test_gate_destroy(struct vmres_test_gate *gate);

/*
 * pthread_join() with the calling (registered) thread offline meanwhile: with
 * the qsbr flavor an online thread blocked in a join holds up every grace
 * period, so reclamation stops for the whole wait, and a joined thread that
 * waits for one (a destroy, vmres_rcu_barrier(), a batch rolling back under
 * memory exhaustion) deadlocks with it. A no-op wrapper in the other flavors.
 */
int vmres_test_join(pthread_t thread);

/*
 * For a stress test's cmocka teardown, after a failed assertion: destroys
 * the system *@sys the test left and waits for its callbacks, unless its
 * threads may still use it (@joined false: a failed pthread_create or
 * join), in which case it is left as it is. Sets *@sys to NULL.
 */
void vmres_test_drop_system(struct vmres_system **sys, bool joined);

/* cmocka group setup/teardown that register the main thread with RCU. */
int vmres_test_group_setup(void **state);
int vmres_test_group_teardown(void **state);

#endif /* VMRES_TEST_H */
