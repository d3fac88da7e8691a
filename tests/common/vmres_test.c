/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include "vmres_test.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *hook_alloc(void *ctx, size_t size)
{
	struct vmres_test_mem *m = ctx;
	int64_t left = __atomic_load_n(&m->fail_countdown, __ATOMIC_RELAXED);

	if (left >= 0) {
		if (left == 0) {
			__atomic_add_fetch(&m->failures, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		__atomic_sub_fetch(&m->fail_countdown, 1, __ATOMIC_RELAXED);
	}
	void *p = malloc(size);

	if (!p)
		return NULL;
	__atomic_add_fetch(&m->allocs, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->live_blocks, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&m->live_bytes, (int64_t)size, __ATOMIC_RELAXED);
	return p;
}

static void hook_free(void *ctx, void *p, size_t size)
{
	struct vmres_test_mem *m = ctx;

	__atomic_add_fetch(&m->frees, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&m->live_blocks, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&m->live_bytes, (int64_t)size, __ATOMIC_RELAXED);
	free(p);
}

void vmres_test_mem_init(struct vmres_test_mem *m)
{
	*m = (struct vmres_test_mem){ .fail_countdown = -1 };
}

struct vmres_mem_ops vmres_test_mem_ops(struct vmres_test_mem *m)
{
	return (struct vmres_mem_ops){ hook_alloc, hook_free, m };
}

void vmres_test_mem_fail_after(struct vmres_test_mem *m, int64_t n)
{
	__atomic_store_n(&m->fail_countdown, n, __ATOMIC_RELAXED);
}

int64_t vmres_test_mem_live_blocks(struct vmres_test_mem *m)
{
	return __atomic_load_n(&m->live_blocks, __ATOMIC_RELAXED);
}

int64_t vmres_test_mem_allocs(struct vmres_test_mem *m)
{
	return __atomic_load_n(&m->allocs, __ATOMIC_RELAXED);
}

int64_t vmres_test_mem_live_bytes(struct vmres_test_mem *m)
{
	return __atomic_load_n(&m->live_bytes, __ATOMIC_RELAXED);
}

int64_t vmres_test_mem_failures(struct vmres_test_mem *m)
{
	return __atomic_load_n(&m->failures, __ATOMIC_RELAXED);
}

uint64_t vmres_test_seed(const char *env, const char *test_name)
{
	const char *s = getenv(env);
	uint64_t seed;

	if (s && *s) {
		char *end = NULL;

		errno = 0;
		seed = strtoull(s, &end, 0);
		/* The whole value, no sign (strtoull would wrap "-1"), no overflow. */
		if (errno || end == s || *end != '\0' || strchr(s, '-') || strchr(s, '+'))
			fail_msg("%s: %s=\"%s\" is not an unsigned 64-bit integer "
				 "(decimal, 0x hex or 0 octal)",
				 test_name, env, s);
	} else {
		seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
	}
	printf("[seed] %s: %s=%" PRIu64 "\n", test_name, env, seed);
	fflush(stdout);
	return seed;
}

double vmres_test_stress_seconds(double dflt)
{
	const char *s = getenv("VMRES_STRESS_SECONDS");

	if (s && *s) {
		double v = strtod(s, NULL);

		if (v > 0)
			return v;
	}
	return dflt;
}

double vmres_test_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void vmres_test_gate_init(struct vmres_test_gate *gate, unsigned int threads, double seconds)
{
	/* Read by the workers after pthread_create(), which orders it. */
	gate->seconds = seconds;
	if (pthread_barrier_init(&gate->barrier, NULL, threads))
		abort();
}

double vmres_test_gate_pass(struct vmres_test_gate *gate)
{
	pthread_barrier_wait(&gate->barrier);
	return vmres_test_now() + gate->seconds;
}

void vmres_test_gate_destroy(struct vmres_test_gate *gate)
{
	/* Only after every worker has passed (joined): none is still inside. */
	pthread_barrier_destroy(&gate->barrier);
}

int vmres_test_join(pthread_t thread)
{
	int rc;

	vmres_thread_offline();
	rc = pthread_join(thread, NULL);
	vmres_thread_online();
	return rc;
}

void vmres_test_drop_system(struct vmres_system **sys, bool joined)
{
	if (*sys && joined) {
		vmres_system_destroy(*sys);
		vmres_rcu_barrier();
	}
	*sys = NULL;
}

int vmres_test_group_setup(void **state)
{
	(void)state;
	return vmres_thread_register();
}

int vmres_test_group_teardown(void **state)
{
	(void)state;
	vmres_rcu_barrier();
	vmres_thread_unregister();
	return 0;
}
