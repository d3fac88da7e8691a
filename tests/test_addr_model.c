/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator against a brute-force reference model (addr_model.h: a
 * sorted array of allocations whose fits are found by scanning every gap
 * with 128-bit arithmetic, so the model shares none of the allocator's
 * overflow reasoning). Thousands of random operations per seed over several seeds and
 * spans (small, touching 0, touching UINT64_MAX, the whole 64-bit space);
 * every result, error and out-value is compared, and the invariant checker
 * runs after each operation. Replay with VMRES_TEST_SEED=<seed>.
 *
 * Allocation-failure injection: the same random workload, where every writer
 * operation is first run with the memory hook failing at its 1st, 2nd, ...
 * allocation until it succeeds; each failure must return VMRES_E_NOMEM and
 * leave the ranges, the stats and the live memory exactly as they were.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/addr_tree.h"

#include "addr_model.h"

/* --- the random workload -------------------------------------------------- */

struct workload {
	uint64_t rng;
	uint64_t first;
	uint64_t last;
	uint64_t width; /* last - first, or MAX64 */
	bool huge;	/* the whole 64-bit span: sizes and alignments up to 2^63 */
	bool edges;	/* a huge span: addresses clustered near its ends and 2^63 */
	unsigned long ok;
	unsigned long failed;
};

static uint64_t rnd(struct workload *w, uint64_t bound)
{
	return bound ? vmres_test_rand_below(&w->rng, bound) : vmres_test_rand(&w->rng);
}

/*
 * Huge spans with tiny ranges near both ends (and around 2^63, 2^32), sizes
 * from one byte to "everything up to an edge", alignments up to 2^63.
 */
static uint64_t pick_edge_size(struct workload *w)
{
	uint64_t r = rnd(w, 100);

	if (r < 45)
		return 1 + rnd(w, 16);
	if (r < 65)
		return 1 + rnd(w, 4096);
	if (r < 78)
		return (1ull << rnd(w, 64)) + rnd(w, 3) - 1; /* 2^k - 1 .. 2^k + 1 */
	if (r < 88)
		return MAX64 - rnd(w, 4096) - (rnd(w, 2) << 63);
	if (r < 98)
		return (rnd(w, 0) >> rnd(w, 64)) | 1;
	return 0; /* invalid */
}

static uint64_t pick_edge_align(struct workload *w)
{
	uint64_t r = rnd(w, 100);

	if (r < 30)
		return 1;
	if (r < 60)
		return 1ull << rnd(w, 13);
	if (r < 88)
		return 1ull << (50 + rnd(w, 14));
	if (r < 97)
		return 1ull << 63;
	return r == 97 ? 0 : (1ull << 63) + 1; /* invalid */
}

static uint64_t pick_edge_addr(struct workload *w, uint64_t align)
{
	static const uint64_t bases[] = { 0, MAX64, 1ull << 63, 1ull << 32 };
	uint64_t r = rnd(w, 10), base, addr;

	base = r < 3 ? w->first : r < 6 ? w->last : r < 9 ? bases[rnd(w, 4)] : rnd(w, 0);
	addr = base + rnd(w, 8192) - 4096; /* modulo 2^64: a few outside the span */
	if (align && rnd(w, 10) < 8)
		addr &= ~(align - 1);
	return addr;
}

static uint64_t pick_size(struct workload *w)
{
	uint64_t r = rnd(w, 100);

	if (w->edges)
		return pick_edge_size(w);
	if (w->huge && r < 20)
		return (rnd(w, 0) >> rnd(w, 64)) | 1;
	if (r < 50)
		return 1 + rnd(w, 4);
	if (r < 95)
		return 1 + rnd(w, w->width / 32 + 1);
	if (r < 98)
		return 0; /* invalid */
	return 1 + rnd(w, w->width < MAX64 ? w->width + 1 : 0);
}

static uint64_t pick_align(struct workload *w)
{
	uint64_t r = rnd(w, 100);

	if (w->edges)
		return pick_edge_align(w);
	if (r < 40)
		return 1;
	if (r < 97)
		return 1ull << rnd(w, w->huge ? 64 : 12);
	return r == 97 ? 0 : 3 + rnd(w, 5) * 2; /* invalid */
}

static uint64_t pick_addr(struct workload *w, uint64_t align)
{
	uint64_t addr;

	if (w->edges)
		return pick_edge_addr(w, align);
	/* a few outside, modulo 2^64 */
	addr = w->first - 4 + rnd(w, w->width < MAX64 ? w->width + 9 : 0);
	if (align && rnd(w, 10) < 8)
		addr &= ~(align - 1);
	return addr;
}

static struct vmres_addr_request pick_request(struct workload *w)
{
	struct vmres_addr_request q;

	q.size = pick_size(w);
	q.align = pick_align(w);
	q.policy = (enum vmres_policy)rnd(w, 3);
	if (rnd(w, 200) == 0)
		q.policy = (enum vmres_policy)7;
	q.addr = pick_addr(w, q.align);
	q.tag = rnd(w, 0);
	return q;
}

static struct vmres_range pick_free(struct workload *w, const struct model *m)
{
	uint64_t r = rnd(w, 100);
	struct vmres_range x;

	if (m->n && r < 70)
		return (struct vmres_range){ m->r[rnd(w, m->n)].start, m->r[rnd(w, m->n)].end };
	if (!m->n || r < 80) {
		x.start = pick_addr(w, 1);
		x.end = x.start + rnd(w, 8);
		return x;
	}
	x = (struct vmres_range){ m->r[rnd(w, m->n)].start, m->r[rnd(w, m->n)].end };
	if (r < 90)
		x.end += 1;
	else
		x.start -= 1;
	return x;
}

static void fix_free_pick(struct workload *w, const struct model *m, struct vmres_range *x)
{
	/* Most picks above mix two ranges' ends: make 2 in 3 exact. */
	if (m->n && rnd(w, 3)) {
		size_t i = rnd(w, m->n);

		*x = (struct vmres_range){ m->r[i].start, m->r[i].end };
	}
}

/*
 * Failure injection. Blocks allocated and freed by this thread are counted
 * apart (thread-local): a failed writer must free everything it allocated
 * before it returns, while nodes retired by earlier successful writers are
 * freed by liburcu's call_rcu thread at any time and must not disturb the
 * count. So no rcu_barrier() is needed between attempts.
 */
static _Thread_local int64_t blocks_here;
static struct vmres_mem_ops inner_ops;

static void *counting_alloc(void *ctx, size_t size)
{
	void *p = inner_ops.alloc(ctx, size);

	if (p)
		blocks_here++;
	return p;
}

static void counting_free(void *ctx, void *p, size_t size)
{
	blocks_here--;
	inner_ops.free(ctx, p, size);
}

struct injector {
	struct vmres_test_mem *tm;
	unsigned long failures;
};

static void state_same(struct vmres_addr_allocator *a, const struct model *m, struct injector *inj,
		       int64_t blocks_before)
{
	inj->failures++;
	assert_int_equal(blocks_here, blocks_before);
	assert_int_equal(vmres__addr_check(a), 0);
	compare_all(a, m);
}

/* Run the writer with the hook failing at each allocation in turn until it succeeds. */
static int do_alloc(struct vmres_addr_allocator *a, const struct model *m,
		    const struct vmres_addr_request *q, struct vmres_range *out,
		    struct injector *inj)
{
	int64_t before = blocks_here;
	int rc;

	if (!inj)
		return vmres_addr_alloc(a, q, out);
	for (int64_t k = 0;; k++) {
		assert_true(k < 10000); /* a writer that always fails would loop forever */
		vmres_test_mem_fail_after(inj->tm, k);
		rc = vmres_addr_alloc(a, q, out);
		vmres_test_mem_fail_after(inj->tm, -1);
		if (rc != VMRES_E_NOMEM)
			return rc;
		state_same(a, m, inj, before);
	}
}

static int do_free(struct vmres_addr_allocator *a, const struct model *m, struct vmres_range x,
		   struct injector *inj)
{
	int64_t before = blocks_here;
	int rc;

	if (!inj)
		return vmres_addr_free(a, x);
	for (int64_t k = 0;; k++) {
		assert_true(k < 10000); /* a writer that always fails would loop forever */
		vmres_test_mem_fail_after(inj->tm, k);
		rc = vmres_addr_free(a, x);
		vmres_test_mem_fail_after(inj->tm, -1);
		if (rc != VMRES_E_NOMEM)
			return rc;
		state_same(a, m, inj, before);
	}
}

/* Phases of growth (alloc-heavy) and shrinking (free-heavy) alternate. */
static void step(struct workload *w, struct vmres_addr_allocator *a, struct model *m,
		 struct injector *inj, bool growing)
{
	uint64_t op = rnd(w, 100);

	if (op < (growing ? 65u : 35u)) {
		struct vmres_addr_request q = pick_request(w);
		struct vmres_range got = { 1, 2 }, want = { 1, 2 };
		int rc_got = do_alloc(a, m, &q, &got, inj);
		int rc_want = q.policy > VMRES_EXACT_MATCH && q.size && q.align &&
					      !(q.align & (q.align - 1))
				      ? VMRES_E_INVALID_ARGUMENT
				      : model_alloc(m, &q, &want);

		assert_int_equal(rc_got, rc_want);
		*(rc_got ? &w->failed : &w->ok) += 1;
		assert_int_equal(got.start, want.start);
		assert_int_equal(got.end, want.end);
	} else if (op < 88) {
		struct vmres_range x = pick_free(w, m);

		int rc_got;

		fix_free_pick(w, m, &x);
		rc_got = do_free(a, m, x, inj); /* before the model changes */
		assert_int_equal(rc_got, model_free(m, x));
		*(rc_got ? &w->failed : &w->ok) += 1;
	} else {
		uint64_t addr = pick_addr(w, 1), tg = 1, tw = 1;
		struct vmres_range g = { 0, 0 }, r = { 0, 0 };

		assert_int_equal(vmres_addr_lookup(a, addr, &g, &tg),
				 model_lookup(m, addr, &r, &tw));
		assert_true(g.start == r.start && g.end == r.end && tg == tw);
	}
	assert_int_equal(vmres__addr_check(a), 0);
	if (rnd(w, 64) == 0)
		compare_all(a, m);
}

/* Huge spans for the edge workload: touching 0, 2^64 - 1, both, neither. */
static const uint64_t edge_spans[][2] = {
	{ 0, MAX64 },
	{ 1, MAX64 },
	{ 0, MAX64 - 1 },
	{ 4095, MAX64 - 4095 },
	{ (1ull << 63) - 5, MAX64 },
	{ 0, (1ull << 63) + 7 },
};

#define EDGE_SPANS (sizeof(edge_spans) / sizeof(edge_spans[0]))

static void span_for(struct workload *w, unsigned kind)
{
	uint64_t width = 64 + rnd(w, 4000);

	w->huge = false;
	w->edges = kind >= 4;
	if (w->edges) {
		w->first = edge_spans[(kind - 4) % EDGE_SPANS][0];
		w->last = edge_spans[(kind - 4) % EDGE_SPANS][1];
		w->width = w->last - w->first;
		w->huge = true;
		return;
	}
	switch (kind % 4) {
	case 0: /* somewhere, unaligned */
		w->first = rnd(w, 0) >> 2;
		break;
	case 1: /* touching 0 */
		w->first = 0;
		break;
	case 2: /* touching UINT64_MAX */
		w->first = MAX64 - width;
		break;
	default: /* the whole 64-bit space */
		w->first = 0;
		width = MAX64;
		w->huge = true;
		break;
	}
	w->last = w->first + width;
	w->width = width;
}

static void run_workload(uint64_t seed, unsigned kind, unsigned ops, bool inject,
			 unsigned long *failures)
{
	struct workload w = { .rng = seed };
	struct model m = { 0 };
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops_hook;
	struct vmres_addr_allocator *a = NULL;
	struct injector inj = { &tm, 0 };

	span_for(&w, kind);
	m.first = w.first;
	m.last = w.last;
	vmres_test_mem_init(&tm);
	inner_ops = vmres_test_mem_ops(&tm);
	ops_hook = (struct vmres_mem_ops){ counting_alloc, counting_free, &tm };
	assert_int_equal(vmres_addr_allocator_create_ex(w.first, w.last, &ops_hook, &a), 0);
	for (unsigned i = 0; i < ops; i++)
		step(&w, a, &m, inject ? &inj : NULL, (i / 1500) % 2 == 0);
	compare_all(a, &m);
	printf("[addr] seed %" PRIu64
	       " span %u: %zu ranges at the end, height %u, %lu ok / %lu failed writes\n",
	       seed, kind, m.n, vmres__addr_height(a), w.ok, w.failed);
	vmres_addr_allocator_destroy(a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0); /* no leak at destroy */
	assert_int_equal(vmres_test_mem_live_bytes(&tm), 0);
	free(m.r);
	*failures += inj.failures;
}

static void test_addr_differential_against_model(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_addr_differential_against_model");
	unsigned long unused = 0;

	for (unsigned s = 0; s < 8; s++)
		run_workload(seed + s, s, 12000, false, &unused);
}

/*
 * The same comparison on huge spans (touching 0, 2^64 - 1, both, neither)
 * with tiny ranges clustered near both ends and around 2^63 and 2^32, sizes
 * up to 2^64 - 1 and alignments up to 2^63.
 */
static void test_addr_differential_huge_spans_edges(void **state)
{
	(void)state;
	uint64_t seed =
		vmres_test_seed("VMRES_TEST_SEED", "test_addr_differential_huge_spans_edges");
	unsigned long failures = 0;

	for (unsigned s = 0; s < 2 * EDGE_SPANS; s++)
		run_workload(seed + s, 4 + s, 6000, false, &failures);
	for (unsigned s = 0; s < EDGE_SPANS; s++)
		run_workload(seed ^ 0xed9e, 4 + s, 800, true, &failures);
	assert_true(failures > 100);
}

static void test_addr_nomem_at_every_allocation_point(void **state)
{
	(void)state;
	uint64_t seed =
		vmres_test_seed("VMRES_TEST_SEED", "test_addr_nomem_at_every_allocation_point");
	unsigned long failures = 0;

	for (unsigned s = 0; s < 4; s++)
		run_workload(seed ^ 0x5eed, s, 1500, true, &failures);
	printf("[addr] %lu injected allocation failures, all clean\n", failures);
	assert_true(failures > 1000);
}

static void test_addr_create_nomem(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a = (void *)1;
	int64_t k;

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	for (k = 0;; k++) {
		assert_true(k < 10000);
		vmres_test_mem_fail_after(&tm, k);
		if (vmres_addr_allocator_create_ex(0, 99, &ops, &a) != VMRES_E_NOMEM)
			break;
		assert_ptr_equal(a, (void *)1);
		assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
	}
	vmres_test_mem_fail_after(&tm, -1);
	assert_int_equal(k, 2); /* the allocator and its first version */
	vmres_addr_allocator_destroy(a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_differential_against_model),
		cmocka_unit_test(test_addr_differential_huge_spans_edges),
		cmocka_unit_test(test_addr_nomem_at_every_allocation_point),
		cmocka_unit_test(test_addr_create_nomem),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
