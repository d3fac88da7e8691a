/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator under concurrency: 4 reader threads and 3 writer threads
 * for a bounded few seconds (VMRES_STRESS_SECONDS, default 2.5, counted by
 * each thread from a start gate they all pass together). The counts
 * are fixed; 7 threads exceed the 2 CPUs of the CI machines, so there threads
 * are also preempted mid-update (on a bigger machine they may each get a core).
 *
 * Every tag encodes its range, so a reader can tell a consistent hit from a
 * torn or stale one without knowing what the writers did:
 *   - lookup(addr) hits a range that holds addr and whose tag matches it;
 *   - every foreach snapshot is sorted, disjoint, inside the span, tags
 *     consistent, and holds no more ranges than the writers can own at once;
 *   - stats never report more ranges or bytes than possible.
 * Writers check that a range they own is visible to lookups from the moment
 * their alloc returns (linearizability of the publish) until they free it,
 * and that every refusal has a reason (writer_check_refusal()).
 * A second test races writers freeing the same ranges: each range is freed
 * exactly once, every other attempt sees VMRES_E_NOT_FOUND.
 * The memory hook fails one allocation in 61: NOMEM must change nothing
 * (a writer's range stays visible after a failed free). At the end every
 * range is freed, the invariants hold and, after destroy, no block is live.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal/addr_tree.h"

#define READERS 4
#define WRITERS 3
#define OWN_MAX 48
#define SIZE_MAX_REQ 4096 /* bytes, the most a writer asks for */
#define SPAN_FIRST 0x10000000ull
#define SPAN_LAST (SPAN_FIRST + (1ull << 20) - 1)

static int errors;
static struct vmres_test_gate gate; /* the readers and writers of one run */

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "stress_addr: " __VA_ARGS__);     \
			fputc('\n', stderr);                              \
			__atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED); \
		}                                                         \
	} while (0)

/*
 * Tags that encode their range: EXACT requests know the whole range in
 * advance; FIRST/LAST requests only its size, so their tag encodes that.
 * Both are 64-bit mixes: a torn or stale tag cannot match by accident.
 */
static uint64_t mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t tag_exact(struct vmres_range r)
{
	return mix(r.start ^ mix(r.end));
}

static uint64_t tag_sized(uint64_t size)
{
	return mix(size ^ 0x5a5a5a5aull);
}

static bool tag_matches(struct vmres_range r, uint64_t tag)
{
	return tag == tag_exact(r) || tag == tag_sized(r.end - r.start + 1);
}

/*
 * A memory hook that fails one allocation in 61, from any thread, so the
 * NOMEM path (abandon everything built, publish nothing) also runs while
 * other writers race and readers read. Counts live blocks for the leak check.
 */
static int64_t hook_calls, hook_live, hook_failed;
/* The hook's failures in this thread: a NOMEM answer needs one in its call. */
static _Thread_local uint64_t hook_failed_here;

static void *flaky_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (__atomic_fetch_add(&hook_calls, 1, __ATOMIC_RELAXED) % 61 == 60) {
		__atomic_add_fetch(&hook_failed, 1, __ATOMIC_RELAXED);
		hook_failed_here++;
		return NULL;
	}
	void *p = malloc(size);

	if (p)
		__atomic_add_fetch(&hook_live, 1, __ATOMIC_RELAXED);
	return p;
}

static void flaky_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	__atomic_sub_fetch(&hook_live, 1, __ATOMIC_RELAXED);
	free(p);
}

/*
 * What the first test asserts happened at least once: a lookup hit, a
 * writer operation, an injected failure. Past its deadline a thread goes on
 * while one is missing (a very short VMRES_STRESS_SECONDS), for
 * EVIDENCE_EXTRA_S at most: then the assertion fails.
 */
static bool seen_hit, seen_write; /* atomic */
#define EVIDENCE_EXTRA_S 10.0

static bool keep_going(double deadline)
{
	double now = vmres_test_now();

	return now < deadline || (now < deadline + EVIDENCE_EXTRA_S &&
				  !(__atomic_load_n(&seen_hit, __ATOMIC_RELAXED) &&
				    __atomic_load_n(&seen_write, __ATOMIC_RELAXED) &&
				    __atomic_load_n(&hook_failed, __ATOMIC_RELAXED)));
}

struct worker {
	pthread_t thread;
	struct vmres_addr_allocator *a;
	uint64_t seed;
	unsigned long ops;
	unsigned long hits;
};

struct snapshot_check {
	bool have_prev;
	uint64_t prev_end;
	uint64_t count;
};

static int snapshot_fn(void *ctx, struct vmres_range r, uint64_t tag)
{
	struct snapshot_check *c = ctx;

	CHECK(r.start <= r.end && r.start >= SPAN_FIRST && r.end <= SPAN_LAST,
	      "foreach: range [%#" PRIx64 ", %#" PRIx64 "] outside the span", r.start, r.end);
	CHECK(!c->have_prev || c->prev_end < r.start,
	      "foreach: [%#" PRIx64 ", ...] not after the previous end %#" PRIx64, r.start,
	      c->prev_end);
	CHECK(tag_matches(r, tag), "foreach: tag of [%#" PRIx64 ", %#" PRIx64 "] torn", r.start,
	      r.end);
	c->have_prev = true;
	c->prev_end = r.end;
	c->count++;
	return 0;
}

static void reader_snapshot(struct vmres_addr_allocator *a)
{
	struct snapshot_check c = { 0 };
	struct vmres_addr_stats s;

	CHECK(vmres_addr_foreach(a, snapshot_fn, &c) == 0, "foreach failed");
	CHECK(c.count <= WRITERS * OWN_MAX, "foreach: %" PRIu64 " ranges", c.count);
	CHECK(vmres_addr_stats(a, &s) == 0, "stats failed");
	CHECK(s.ranges <= WRITERS * OWN_MAX, "stats: %" PRIu64 " ranges", s.ranges);
	CHECK(s.allocated_bytes + s.largest_free <= SPAN_LAST - SPAN_FIRST + 1,
	      "stats: %" PRIu64 " bytes + %" PRIu64 " free", s.allocated_bytes, s.largest_free);
	CHECK((s.ranges == 0) == (s.allocated_bytes == 0), "stats: ranges and bytes disagree");
}

static void reader_lookup(struct worker *w, uint64_t addr)
{
	struct vmres_range r;
	uint64_t tag;
	int rc = vmres_addr_lookup(w->a, addr, &r, &tag);

	if (rc == VMRES_E_NOT_FOUND)
		return;
	CHECK(rc == 0, "lookup(%#" PRIx64 ") = %d", addr, rc);
	if (rc)
		return;
	if (!w->hits++)
		__atomic_store_n(&seen_hit, true, __ATOMIC_RELAXED);
	CHECK(r.start <= addr && addr <= r.end,
	      "lookup(%#" PRIx64 ") gave [%#" PRIx64 ", %#" PRIx64 "]", addr, r.start, r.end);
	CHECK(tag_matches(r, tag), "lookup(%#" PRIx64 "): tag torn", addr);
}

static void *reader_main(void *arg)
{
	struct worker *w = arg;
	double deadline = vmres_test_gate_pass(&gate);

	vmres_thread_register();
	while (keep_going(deadline)) {
		for (int i = 0; i < 256; i++)
			reader_lookup(w, SPAN_FIRST + vmres_test_rand_below(&w->seed, 1u << 20));
		CHECK(vmres_addr_lookup(w->a, SPAN_LAST + 1, NULL, NULL) == VMRES_E_OUT_OF_RANGE,
		      "lookup past the span");
		reader_snapshot(w->a);
		w->ops += 258;
		vmres_thread_quiescent();
	}
	vmres_thread_unregister();
	return NULL;
}

/* A range this writer owns: lookups must find it, with its tag. */
static void writer_verify_own(struct worker *w, struct vmres_range r, uint64_t want_tag)
{
	struct vmres_range got;
	uint64_t tag, probe = r.start + (r.end - r.start) / 2;

	CHECK(vmres_addr_lookup(w->a, probe, &got, &tag) == 0 && got.start == r.start &&
		      got.end == r.end && tag == want_tag,
	      "own range [%#" PRIx64 ", %#" PRIx64 "] not visible", r.start, r.end);
}

struct owned {
	struct vmres_range r;
	uint64_t tag;
};

/*
 * A refused alloc must have a reason the writer can tell: IN_USE only for an
 * EXACT request and OUT_OF_RANGE only for one sticking out of the span;
 * NOMEM only after the hook failed in this very call (allocations happen in
 * the calling thread); EXHAUSTED only for FIRST/LAST requests too big for
 * the largest gap there may be. At any instant at most WRITERS * OWN_MAX
 * ranges of at most SIZE_MAX_REQ bytes are allocated (a writer owns at most
 * OWN_MAX, counting the one its alloc is making), so some gap has at least
 * GAP_MIN bytes, and a request of size s aligned to a fits any gap of
 * s + a - 1 bytes.
 */
#define GAP_MIN                                                                      \
	((SPAN_LAST - SPAN_FIRST + 1 - (uint64_t)WRITERS * OWN_MAX * SIZE_MAX_REQ) / \
	 ((uint64_t)WRITERS * OWN_MAX + 1))

static void writer_check_refusal(const struct vmres_addr_request *q, int rc, uint64_t failed)
{
	const bool exact = q->policy == VMRES_EXACT_MATCH;

	switch (rc) {
	case VMRES_E_IN_USE:
		CHECK(exact, "alloc: IN_USE for policy %d", (int)q->policy);
		break;
	case VMRES_E_OUT_OF_RANGE:
		CHECK(exact && q->addr + q->size - 1 > SPAN_LAST,
		      "alloc: OUT_OF_RANGE for [%#" PRIx64 ", +%#" PRIx64 "], policy %d", q->addr,
		      q->size, (int)q->policy);
		break;
	case VMRES_E_EXHAUSTED:
		CHECK(!exact && q->size + q->align - 1 > GAP_MIN,
		      "alloc: EXHAUSTED for %#" PRIx64 " bytes aligned to %#" PRIx64
		      ", policy %d (some gap has %#llx)",
		      q->size, q->align, (int)q->policy, (unsigned long long)GAP_MIN);
		break;
	case VMRES_E_NOMEM:
		CHECK(failed > 0, "alloc: NOMEM with no failed hook call");
		break;
	default:
		CHECK(false, "alloc: %d", rc);
	}
}

static void writer_alloc(struct worker *w, struct owned *own, unsigned *n)
{
	struct vmres_addr_request q;
	struct vmres_range r;
	uint64_t failed_before;
	int rc;

	q.size = 1 + vmres_test_rand_below(&w->seed, SIZE_MAX_REQ);
	q.align = 1ull << vmres_test_rand_below(&w->seed, 9);
	q.policy = (enum vmres_policy)vmres_test_rand_below(&w->seed, 3);
	q.addr = (SPAN_FIRST + vmres_test_rand_below(&w->seed, 1u << 20)) & ~(q.align - 1);
	q.tag = q.policy == VMRES_EXACT_MATCH
			? tag_exact((struct vmres_range){ q.addr, q.addr + q.size - 1 })
			: tag_sized(q.size);
	failed_before = hook_failed_here;
	rc = vmres_addr_alloc(w->a, &q, &r);
	if (rc) {
		writer_check_refusal(&q, rc, hook_failed_here - failed_before);
		return;
	}
	CHECK(r.end - r.start + 1 == q.size && !(r.start & (q.align - 1)),
	      "alloc gave [%#" PRIx64 ", %#" PRIx64 "]", r.start, r.end);
	writer_verify_own(w, r, q.tag);
	own[(*n)++] = (struct owned){ r, q.tag };
}

/*
 * Frees own[i]. Returns the result: 0 (removed from @own), VMRES_E_NOMEM
 * (still owned and visible) or anything else, which is an error already
 * recorded: the range is then in an unknown state and the writer must stop,
 * or a drain that waits for it to go would never end.
 */
static int writer_free_at(struct worker *w, struct owned *own, unsigned *n, unsigned i)
{
	uint64_t failed_before;
	int rc;

	writer_verify_own(w, own[i].r, own[i].tag);
	failed_before = hook_failed_here;
	rc = vmres_addr_free(w->a, own[i].r);
	CHECK(rc == 0 || (rc == VMRES_E_NOMEM && hook_failed_here > failed_before),
	      "free of own [%#" PRIx64 ", %#" PRIx64 "]: %d", own[i].r.start, own[i].r.end, rc);
	if (rc == 0)
		own[i] = own[--*n];
	else if (rc == VMRES_E_NOMEM)
		writer_verify_own(w, own[i].r, own[i].tag); /* NOMEM: still there */
	return rc;
}

/*
 * Consecutive NOMEM answers before the drain gives up. The hook fails one
 * call in 61 and a free asks it for far fewer blocks than that, so a retry
 * soon succeeds even with other writers drawing on the same counter: this
 * many failures running mean a free that can never succeed.
 */
#define DRAIN_NOMEM_MAX 10000

static void *writer_main(void *arg)
{
	struct worker *w = arg;
	struct owned own[OWN_MAX];
	unsigned n = 0, nomem = 0;
	double deadline = vmres_test_gate_pass(&gate);
	int rc;

	vmres_thread_register();
	while (keep_going(deadline)) {
		if (n < OWN_MAX && (n == 0 || vmres_test_rand_below(&w->seed, 100) < 55)) {
			writer_alloc(w, own, &n);
		} else {
			rc = writer_free_at(w, own, &n,
					    (unsigned)vmres_test_rand_below(&w->seed, n));
			if (rc != 0 && rc != VMRES_E_NOMEM)
				goto out; /* recorded; the test fails after the join */
		}
		if (!w->ops++)
			__atomic_store_n(&seen_write, true, __ATOMIC_RELAXED);
		vmres_thread_quiescent();
	}
	/* Give back everything still owned: NOMEM is retried, a bounded number of times. */
	while (n) {
		rc = writer_free_at(w, own, &n, n - 1);
		if (rc == 0) {
			nomem = 0;
		} else if (rc != VMRES_E_NOMEM) {
			break; /* recorded by writer_free_at() */
		} else if (++nomem == DRAIN_NOMEM_MAX) {
			CHECK(false,
			      "free of own [%#" PRIx64 ", %#" PRIx64 "]: NOMEM %u times running",
			      own[n - 1].r.start, own[n - 1].r.end, nomem);
			break;
		}
		vmres_thread_quiescent();
	}
out:
	vmres_thread_unregister();
	return NULL;
}

static void test_addr_stress_readers_and_writers(void **state)
{
	(void)state;
	struct vmres_mem_ops ops = { flaky_alloc, flaky_free, NULL };
	struct vmres_addr_allocator *a = NULL;
	struct worker readers[READERS], writers[WRITERS];
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_addr_stress_readers_and_writers");
	unsigned long rops = 0, wops = 0, hits = 0;
	struct vmres_addr_stats s;
	int rc;

	/* The hook fails one call in 61, so a retry succeeds; bounded all the same. */
	for (int k = 0; (rc = vmres_addr_allocator_create_ex(SPAN_FIRST, SPAN_LAST, &ops, &a)) ==
			VMRES_E_NOMEM;
	     k++)
		assert_true(k < 100);
	assert_int_equal(rc, 0);
	vmres_test_gate_init(&gate, WRITERS + READERS, vmres_test_stress_seconds(2.5));
	for (int i = 0; i < WRITERS; i++) {
		writers[i] = (struct worker){ .a = a, .seed = seed + 100 + i };
		assert_int_equal(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]),
				 0);
	}
	for (int i = 0; i < READERS; i++) {
		readers[i] = (struct worker){ .a = a, .seed = seed + i };
		assert_int_equal(pthread_create(&readers[i].thread, NULL, reader_main, &readers[i]),
				 0);
	}
	for (int i = 0; i < READERS; i++) {
		assert_int_equal(vmres_test_join(readers[i].thread), 0);
		rops += readers[i].ops;
		hits += readers[i].hits;
	}
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(vmres_test_join(writers[i].thread), 0);
		wops += writers[i].ops;
	}
	vmres_test_gate_destroy(&gate);
	printf("[addr] stress: %lu reader ops (%lu hits), %lu writer ops, %" PRId64
	       " injected NOMEM\n",
	       rops, hits, wops, __atomic_load_n(&hook_failed, __ATOMIC_RELAXED));
	assert_int_equal(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
	assert_true(hits > 0 && wops > 0 && hook_failed > 0);
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 0 && s.allocated_bytes == 0);
	assert_int_equal(s.largest_free, SPAN_LAST - SPAN_FIRST + 1);
	vmres_addr_allocator_destroy(a);
	assert_int_equal(__atomic_load_n(&hook_live, __ATOMIC_RELAXED), 0); /* no leak */
}

/* --- racing frees of the same ranges ------------------------------------- */

#define SHARED 512
#define RACERS 6

struct racer {
	pthread_t thread;
	struct vmres_addr_allocator *a;
	unsigned offset;
	unsigned char freed[SHARED];
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	vmres_test_gate_pass(&gate); /* all racers start together: frees collide */
	vmres_thread_register();
	for (unsigned k = 0; k < SHARED; k++) {
		unsigned i = (k + r->offset) % SHARED;
		struct vmres_range x = { SPAN_FIRST + 16 * i, SPAN_FIRST + 16 * i + 15 };
		int rc = vmres_addr_free(r->a, x);

		CHECK(rc == 0 || rc == VMRES_E_NOT_FOUND, "racing free: %d", rc);
		r->freed[i] = rc == 0;
	}
	vmres_thread_unregister();
	return NULL;
}

static void test_addr_stress_racing_frees_free_once(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = NULL;
	struct racer racers[RACERS];
	struct vmres_range out;
	double until = vmres_test_now() + vmres_test_stress_seconds(2.5) / 4;
	unsigned rounds = 0;

	assert_int_equal(vmres_addr_allocator_create(SPAN_FIRST, SPAN_LAST, &a), 0);
	do {
		for (unsigned i = 0; i < SHARED; i++) {
			struct vmres_addr_request q = { 16, 16, VMRES_EXACT_MATCH,
							SPAN_FIRST + 16 * i, i };

			assert_int_equal(vmres_addr_alloc(a, &q, &out), 0);
		}
		vmres_test_gate_init(&gate, RACERS, 0);
		for (unsigned t = 0; t < RACERS; t++) {
			racers[t] = (struct racer){ .a = a, .offset = t * (SHARED / RACERS) / 2 };
			assert_int_equal(
				pthread_create(&racers[t].thread, NULL, racer_main, &racers[t]), 0);
		}
		for (unsigned t = 0; t < RACERS; t++)
			assert_int_equal(vmres_test_join(racers[t].thread), 0);
		vmres_test_gate_destroy(&gate);
		for (unsigned i = 0; i < SHARED; i++) {
			unsigned wins = 0;

			for (unsigned t = 0; t < RACERS; t++)
				wins += racers[t].freed[i];
			assert_int_equal(wins, 1);
		}
		assert_int_equal(vmres__addr_check(a), 0);
		rounds++;
	} while (vmres_test_now() < until);
	printf("[addr] racing frees: %u rounds of %d ranges, each freed exactly once\n", rounds,
	       SHARED);
	assert_int_equal(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
	vmres_addr_allocator_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_stress_readers_and_writers),
		cmocka_unit_test(test_addr_stress_racing_frees_free_once),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
