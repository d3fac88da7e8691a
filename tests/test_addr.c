/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator: error cases and their order, FIRST/LAST/EXACT placement
 * with alignments up to 2^40, spans touching 0 and UINT64_MAX, one-byte
 * ranges and gaps, merging on free, stats saturation, memory accounting.
 * The randomized differential test and failure injection are in
 * test_addr_model.c.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"
#include "internal/rcu.h"

#define MAX64 UINT64_MAX

static struct vmres_addr_allocator *mk(uint64_t first, uint64_t last)
{
	struct vmres_addr_allocator *a = NULL;

	assert_int_equal(vmres_addr_allocator_create(first, last, &a), 0);
	assert_non_null(a);
	return a;
}

/* The owner tag alloc_req() gives a request. */
static uint64_t req_tag(uint64_t addr, uint64_t size)
{
	return addr ^ size ^ 0x7a67;
}

static int alloc_req(struct vmres_addr_allocator *a, enum vmres_policy p, uint64_t size,
		     uint64_t align, uint64_t addr, struct vmres_range *out)
{
	struct vmres_addr_request req = { size, align, p, addr, req_tag(addr, size) };

	return vmres_addr_alloc(a, &req, out);
}

/* Allocate and return the start, asserting success and the invariants. */
static uint64_t alloc_ok(struct vmres_addr_allocator *a, enum vmres_policy p, uint64_t size,
			 uint64_t align, uint64_t addr)
{
	struct vmres_range r = { 1, 0 };

	assert_int_equal(alloc_req(a, p, size, align, addr, &r), 0);
	assert_int_equal(r.end - r.start, size - 1);
	assert_int_equal(r.start & (align - 1), 0);
	assert_int_equal(vmres__addr_check(a), 0);
	return r.start;
}

static void exact(struct vmres_addr_allocator *a, uint64_t start, uint64_t end)
{
	assert_int_equal(alloc_ok(a, VMRES_EXACT_MATCH, end - start + 1, 1, start), start);
}

static uint64_t largest_free(struct vmres_addr_allocator *a)
{
	struct vmres_addr_stats s;

	assert_int_equal(vmres_addr_stats(a, &s), 0);
	return s.largest_free;
}

static void test_addr_create_errors(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = (void *)1;
	struct vmres_mem_ops bad = { NULL, NULL, NULL };

	assert_int_equal(vmres_addr_allocator_create(0, 10, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_allocator_create(11, 10, &a), VMRES_E_INVALID_RANGE);
	assert_ptr_equal(a, (void *)1);
	assert_int_equal(vmres_addr_allocator_create(MAX64, 0, &a), VMRES_E_INVALID_RANGE);
	assert_int_equal(vmres_addr_allocator_create_ex(0, 10, &bad, &a), VMRES_E_INVALID_ARGUMENT);
	assert_ptr_equal(a, (void *)1);
	a = mk(7, 7); /* a one-byte span */
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, 1, 1, 0), 7);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 1, 1, 0, &(struct vmres_range){ 0 }),
			 VMRES_E_EXHAUSTED);
	vmres_addr_allocator_destroy(a);
	vmres_addr_allocator_destroy(NULL);
}

/* Each case breaks the rule it tests and every rule after it. */
static void test_addr_alloc_error_order(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0x1000, 0x1fff);
	struct vmres_range out = { 123, 456 };
	struct vmres_addr_request req;

	exact(a, 0x1000, 0x10ff);
	req = (struct vmres_addr_request){ 0, 3, 99, 0x1001, 0 };
	assert_int_equal(vmres_addr_alloc(NULL, &req, &out), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_alloc(a, NULL, &out), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_alloc(a, &req, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_SIZE);
	req.size = 0x2000; /* also out of range and in use */
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_ALIGNMENT);
	req.align = 0;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_ALIGNMENT);
	req.align = 1ull << 63 | 1;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_ALIGNMENT);
	req.align = 2;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_ARGUMENT); /* policy */
	req.policy = (enum vmres_policy) - 1;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_INVALID_ARGUMENT);
	req.policy = VMRES_EXACT_MATCH;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_UNALIGNED_ADDRESS);
	req.addr = 0x1000;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_OUT_OF_RANGE);
	req.size = 0x1000; /* [0x1000, 0x1fff]: inside, overlaps */
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_IN_USE);
	req.addr = 0x10fe; /* overlaps the range's last byte only */
	req.size = 2;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_IN_USE);
	req.addr = 0x1100; /* just after: free */
	req.size = 0xf00;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), 0);
	assert_int_equal(out.start, 0x1100);
	assert_int_equal(out.end, 0x1fff);
	out = (struct vmres_range){ 123, 456 };
	req = (struct vmres_addr_request){ 1, 1, VMRES_FIRST_MATCH, 0, 0 };
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_EXHAUSTED);
	req.policy = VMRES_LAST_MATCH;
	assert_int_equal(vmres_addr_alloc(a, &req, &out), VMRES_E_EXHAUSTED);
	assert_int_equal(out.start, 123); /* untouched on error */
	assert_int_equal(out.end, 456);
	vmres_addr_allocator_destroy(a);
}

static void test_addr_exact_out_of_range(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(100, 199);
	struct vmres_addr_allocator *top = mk(MAX64 - 15, MAX64);
	struct vmres_range out;

	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 1, 1, 99, &out), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 1, 1, 200, &out), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 2, 1, 199, &out), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 101, 1, 100, &out), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, MAX64, 1, 100, &out),
			 VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 100, 1, 100, &out), 0);
	/* wrapping past 2^64 - 1 */
	assert_int_equal(alloc_req(top, VMRES_EXACT_MATCH, 2, 1, MAX64, &out),
			 VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(top, VMRES_EXACT_MATCH, MAX64, 1, MAX64 - 3, &out),
			 VMRES_E_OUT_OF_RANGE);
	assert_int_equal(alloc_req(top, VMRES_EXACT_MATCH, 1, 1, MAX64, &out), 0);
	assert_true(out.start == MAX64 && out.end == MAX64);
	assert_int_equal(alloc_req(top, VMRES_EXACT_MATCH, 15, 1, MAX64 - 15, &out), 0);
	assert_int_equal(alloc_req(top, VMRES_FIRST_MATCH, 1, 1, 0, &out), VMRES_E_EXHAUSTED);
	vmres_addr_allocator_destroy(a);
	vmres_addr_allocator_destroy(top);
}

static void test_addr_free_errors(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0, 999);
	struct vmres_addr_stats s;

	exact(a, 100, 199);
	exact(a, 200, 299);
	assert_int_equal(vmres_addr_free(NULL, (struct vmres_range){ 100, 199 }),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 199, 100 }),
			 VMRES_E_INVALID_RANGE);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 100, 150 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 150, 199 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 100, 299 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 150, 250 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 500, 600 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 0, 99 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 2000, 3000 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_int_equal(s.ranges, 2);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 100, 199 }), 0);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 100, 199 }), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_int_equal(s.ranges, 1);
	assert_int_equal(s.allocated_bytes, 100);
	assert_int_equal(vmres__addr_check(a), 0);
	vmres_addr_allocator_destroy(a);
}

static void test_addr_lookup(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0x10, 0x1f);
	struct vmres_range r = { 0, 0 };
	uint64_t tag = 0;
	struct vmres_addr_request req = { 4, 1, VMRES_EXACT_MATCH, 0x14, 0xfeed };

	assert_int_equal(vmres_addr_alloc(a, &req, &r), 0);
	assert_int_equal(vmres_addr_lookup(NULL, 0x14, &r, &tag), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_lookup(a, 0x0f, &r, &tag), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_addr_lookup(a, 0x20, &r, &tag), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_addr_lookup(a, MAX64, &r, &tag), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_addr_lookup(a, 0x13, &r, &tag), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_lookup(a, 0x18, &r, &tag), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_addr_lookup(a, 0x10, NULL, NULL), VMRES_E_NOT_FOUND);
	for (uint64_t x = 0x14; x <= 0x17; x++) {
		r = (struct vmres_range){ 0, 0 };
		assert_int_equal(vmres_addr_lookup(a, x, &r, &tag), 0);
		assert_true(r.start == 0x14 && r.end == 0x17 && tag == 0xfeed);
		assert_int_equal(vmres_addr_lookup(a, x, NULL, NULL), 0);
		assert_int_equal(vmres__addr_lookup_unsynchronized(a, x, &r, &tag), 0);
		assert_true(r.start == 0x14 && r.end == 0x17 && tag == 0xfeed);
	}
	assert_int_equal(vmres__addr_lookup_unsynchronized(a, 0x20, NULL, NULL),
			 VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres__addr_lookup_unsynchronized(a, 0x18, NULL, NULL), VMRES_E_NOT_FOUND);
	vmres_addr_allocator_destroy(a);
}

struct collect {
	struct vmres_range r[64];
	uint64_t tag[64];
	int n;
	int stop_at;
};

static int collect_fn(void *ctx, struct vmres_range r, uint64_t tag)
{
	struct collect *c = ctx;

	if (c->n == c->stop_at)
		return 42;
	c->r[c->n] = r;
	c->tag[c->n++] = tag;
	return 0;
}

static void test_addr_foreach_order_and_stop(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0, 1023);
	struct collect c = { .stop_at = -1 };
	static const uint64_t starts[] = { 500, 3, 900, 100, 7, 64, 1000, 200 };

	assert_int_equal(vmres_addr_foreach(NULL, collect_fn, &c), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_foreach(a, NULL, &c), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_stats(NULL, &(struct vmres_addr_stats){ 0 }),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_addr_stats(a, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(largest_free(a), 1024);
	assert_int_equal(vmres_addr_foreach(a, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);
	for (size_t i = 0; i < 8; i++)
		exact(a, starts[i], starts[i] + 2);
	assert_int_equal(vmres_addr_foreach(a, collect_fn, &c), 0);
	assert_int_equal(c.n, 8);
	for (int i = 1; i < c.n; i++)
		assert_true(c.r[i - 1].end < c.r[i].start);
	assert_int_equal(c.r[0].start, 3);
	assert_int_equal(c.r[7].start, 1000);
	assert_int_equal(c.tag[0], 3 ^ 3 ^ 0x7a67);
	c = (struct collect){ .stop_at = 5 };
	assert_int_equal(vmres_addr_foreach(a, collect_fn, &c), 42);
	assert_int_equal(c.n, 5);
	vmres_addr_allocator_destroy(a);
}

struct reenter {
	struct vmres_addr_allocator *a;
	struct vmres_range seen[16];
	struct vmres_range made[16];
	int n;
};

/* A callback that reads and writes the allocator whose snapshot it walks. */
static int reenter_fn(void *ctx, struct vmres_range r, uint64_t tag)
{
	struct reenter *c = ctx;
	struct vmres_range got = { 0, 0 };
	struct vmres_addr_stats s;
	uint64_t t = 0;

	assert_true(c->n < 16);
	assert_int_equal(vmres_addr_lookup(c->a, r.start, &got, &t), 0);
	assert_true(got.start == r.start && got.end == r.end && t == tag);
	assert_int_equal(vmres_addr_free(c->a, r), 0);
	assert_int_equal(vmres_addr_lookup(c->a, r.start, NULL, NULL), VMRES_E_NOT_FOUND);
	assert_int_equal(alloc_req(c->a, VMRES_LAST_MATCH, 1, 1, 0, &c->made[c->n]), 0);
	assert_int_equal(vmres_addr_stats(c->a, &s), 0);
	assert_int_equal(s.ranges, 8);
	assert_int_equal(vmres__addr_check(c->a), 0);
	c->seen[c->n++] = r;
	return 0;
}

/* foreach's callback may call lookup, alloc, free, stats: the walk stays on its snapshot. */
static void test_addr_foreach_callback_reenters(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct reenter c = { 0 };
	struct collect after = { .stop_at = -1 };

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	assert_int_equal(vmres_addr_allocator_create_ex(0, 0xffff, &ops, &c.a), 0);
	for (uint64_t i = 0; i < 8; i++)
		exact(c.a, 0x100 * i, 0x100 * i + 0x1f);
	assert_int_equal(vmres_addr_foreach(c.a, reenter_fn, &c), 0);
	assert_int_equal(c.n, 8); /* the old snapshot, none of the callback's ranges */
	for (int i = 0; i < 8; i++)
		assert_true(c.seen[i].start == 0x100u * (unsigned)i &&
			    c.seen[i].end == 0x100u * (unsigned)i + 0x1f);
	assert_int_equal(vmres_addr_foreach(c.a, collect_fn, &after), 0);
	assert_int_equal(after.n, 8);
	for (int i = 0; i < 8; i++)
		assert_true(after.r[i].start == 0xffff - 7 + (uint64_t)i &&
			    after.r[i].start == c.made[7 - i].start);
	vmres_addr_allocator_destroy(c.a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
}

/* FIRST/LAST/EXACT with every alignment 2^0 .. 2^40, around an obstacle. */
static void test_addr_alignment_placement(void **state)
{
	(void)state;
	const uint64_t base = 0x30000000000ull + 12345; /* unaligned span start */
	const uint64_t last = base + (1ull << 46);

	for (unsigned k = 0; k <= 40; k++) {
		uint64_t al = 1ull << k, size = 3 * al / 2 + 1;
		struct vmres_addr_allocator *a = mk(base, last);
		uint64_t lo = (base + al - 1) & ~(al - 1);
		uint64_t hi = (last - size + 1) & ~(al - 1);
		struct vmres_range out;

		assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, size, al, 0), lo);
		assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, size, al, 0), hi);
		/* The next ones go right after / before, rounded to the alignment. */
		assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, size, al, 0),
				 (lo + size + al - 1) & ~(al - 1));
		assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, size, al, 0),
				 (hi - size) & ~(al - 1));
		assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, size, al, lo, &out),
				 VMRES_E_IN_USE);
		if (al > 1)
			assert_int_equal(alloc_req(a, VMRES_EXACT_MATCH, 1, al, lo + 1, &out),
					 VMRES_E_UNALIGNED_ADDRESS);
		assert_int_equal(alloc_ok(a, VMRES_EXACT_MATCH, al, al, lo + 4 * al), lo + 4 * al);
		assert_int_equal(vmres_addr_free(a, (struct vmres_range){ lo, lo + size - 1 }), 0);
		assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, size, al, 0), lo);
		vmres_addr_allocator_destroy(a);
	}
}

/*
 * Exactness: gaps long enough for the size but without an aligned fit come
 * first; the search must go on past them (continuation) and find the fit.
 */
static void test_addr_alignment_continuation(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0, (1ull << 20) - 1);
	const uint64_t al = 0x100, size = 0x80;
	uint64_t cur = 0;

	/* 64 gaps of 0xc0 bytes starting at xx40 or later: no aligned 0x80 fit. */
	for (int i = 0; i < 64; i++) {
		uint64_t g = cur + 0x41; /* gap [g, g + 0xbf] */

		exact(a, cur, g - 1);
		cur = g + 0xc0;
	}
	/* one exact-size aligned gap, then a blocker, then the rest of the span */
	exact(a, cur, ((cur + al) & ~(al - 1)) - 1); /* closes the 64th gap */
	cur = (cur + al) & ~(al - 1);
	exact(a, cur + size, cur + 0x1000 - 1);
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, size, al, 0), cur);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ cur, cur + size - 1 }), 0);
	/* LAST: fill the top so the only aligned fits are low */
	exact(a, cur + 0x1000, (1ull << 20) - 1);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, size, al, 0), cur);
	/* Now nothing aligned fits anywhere though many gaps are long enough. */
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, size, al, 0, &(struct vmres_range){ 0 }),
			 VMRES_E_EXHAUSTED);
	assert_int_equal(alloc_req(a, VMRES_LAST_MATCH, size, al, 0, &(struct vmres_range){ 0 }),
			 VMRES_E_EXHAUSTED);
	/* ... but unaligned it still fits in the first one */
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, size, 1, 0), 0x41);
	vmres_addr_allocator_destroy(a);
}

static void test_addr_whole_64bit_span(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0, MAX64);
	struct vmres_addr_stats s;
	struct vmres_range out;

	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 0 && s.allocated_bytes == 0 && s.largest_free == MAX64);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, MAX64, 1, 0), 1);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 1, MAX64 }), 0);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, MAX64, 2, 0), 0);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 1 && s.allocated_bytes == MAX64 && s.largest_free == 1);
	assert_int_equal(vmres_addr_lookup(a, MAX64, NULL, NULL), VMRES_E_NOT_FOUND);
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, 1, 1, 0), MAX64);
	/* Two ranges totalling 2^64 bytes: allocated_bytes saturates. */
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 2 && s.allocated_bytes == MAX64 && s.largest_free == 0);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 1, 1, 0, &out), VMRES_E_EXHAUSTED);
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 0, MAX64 - 1 }), 0);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 1 && s.allocated_bytes == 1 && s.largest_free == MAX64);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ MAX64, MAX64 }), 0);
	/* Halves at 2^63, the largest alignment. */
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, 1, 1ull << 63, 0), 1ull << 63);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, 1, 1ull << 63, 0), 0);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 1, 1ull << 63, 0, &out),
			 VMRES_E_EXHAUSTED);
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, (1ull << 63) - 1, 1, 0), 1);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, (1ull << 63) - 1, 1, 0), (1ull << 63) + 1);
	assert_int_equal(vmres_addr_stats(a, &s), 0);
	assert_true(s.ranges == 4 && s.allocated_bytes == MAX64 && s.largest_free == 0);
	vmres_addr_allocator_destroy(a);
}

static void test_addr_spans_touching_edges(void **state)
{
	(void)state;
	struct vmres_addr_allocator *lo = mk(0, 0xffff);
	struct vmres_addr_allocator *hi = mk(MAX64 - 0xffff, MAX64);

	assert_int_equal(alloc_ok(lo, VMRES_FIRST_MATCH, 0x10, 0x10, 0), 0);
	assert_int_equal(alloc_ok(lo, VMRES_LAST_MATCH, 0x10, 0x10, 0), 0xfff0);
	assert_int_equal(alloc_ok(lo, VMRES_EXACT_MATCH, 1, 1, 0x10), 0x10);
	assert_int_equal(alloc_ok(lo, VMRES_FIRST_MATCH, 0x10, 0x10, 0), 0x20);
	assert_int_equal(alloc_ok(hi, VMRES_LAST_MATCH, 1, 1, 0), MAX64);
	assert_int_equal(alloc_ok(hi, VMRES_LAST_MATCH, 0x10, 0x1000, 0), MAX64 - 0xfff);
	assert_int_equal(alloc_ok(hi, VMRES_FIRST_MATCH, 0x10000 - 0x1001, 1, 0), MAX64 - 0xffff);
	assert_int_equal(largest_free(hi), 0xfff - 0x10);
	assert_int_equal(alloc_ok(hi, VMRES_LAST_MATCH, 0xfff - 0x10, 1, 0), MAX64 - 0xfff + 0x10);
	assert_int_equal(largest_free(hi), 1); /* the byte at MAX64 - 0x1000 */
	assert_int_equal(alloc_ok(hi, VMRES_LAST_MATCH, 1, 1, 0), MAX64 - 0x1000);
	assert_int_equal(largest_free(hi), 0);
	assert_int_equal(vmres_addr_lookup(hi, MAX64, NULL, NULL), 0);
	vmres_addr_allocator_destroy(lo);
	vmres_addr_allocator_destroy(hi);
}

static void test_addr_one_byte_ranges_and_gaps(void **state)
{
	(void)state;
	struct vmres_addr_allocator *a = mk(0, 99);
	struct vmres_range out;
	/* The test's own record: which bytes it allocated, with which tag. */
	bool held[100] = { false };
	uint64_t owner[100] = { 0 };
	uint64_t tag;

	for (uint64_t x = 0; x < 100; x += 2) {
		exact(a, x, x);
		held[x] = true;
		owner[x] = req_tag(x, 1);
	}
	assert_int_equal(largest_free(a), 1);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 2, 1, 0, &out), VMRES_E_EXHAUSTED);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 1, 2, 0, &out), VMRES_E_EXHAUSTED);
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, 1, 1, 0), 1);
	held[1] = true;
	owner[1] = req_tag(0, 1);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, 1, 1, 0), 99);
	held[99] = true;
	owner[99] = req_tag(0, 1);
	assert_int_equal(alloc_req(a, VMRES_FIRST_MATCH, 1, 4, 0, &out), VMRES_E_EXHAUSTED);
	assert_int_equal(alloc_ok(a, VMRES_LAST_MATCH, 1, 1, 0), 97);
	held[97] = true;
	owner[97] = req_tag(0, 1);
	/* Every byte: found as its own one-byte range with its tag, or free. */
	for (uint64_t x = 0; x < 100; x++) {
		out = (struct vmres_range){ 1, 0 };
		tag = ~0ull;
		if (held[x]) {
			assert_int_equal(vmres_addr_lookup(a, x, &out, &tag), 0);
			assert_int_equal(out.start, x);
			assert_int_equal(out.end, x);
			assert_int_equal(tag, owner[x]);
		} else {
			assert_int_equal(vmres_addr_lookup(a, x, &out, &tag), VMRES_E_NOT_FOUND);
		}
	}
	assert_int_equal(vmres_addr_lookup(a, 100, &out, &tag), VMRES_E_OUT_OF_RANGE);
	vmres_addr_allocator_destroy(a);
}

/* Ranges [10,19] [20,29] [30,39] in [0,99]; free the middle in every case. */
static void merge_case(bool left_free, bool right_free, bool at_low_edge, bool at_high_edge)
{
	uint64_t first = at_low_edge ? 20 : 0, last = at_high_edge ? 29 : 99;
	struct vmres_addr_allocator *a = mk(first, last);
	uint64_t lo = 20, hi = 29;

	if (!at_low_edge)
		exact(a, 10, 19);
	exact(a, 20, 29);
	if (!at_high_edge)
		exact(a, 30, 39);
	if (!at_low_edge && left_free) {
		assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 10, 19 }), 0);
		lo = 0;
	}
	if (!at_low_edge && !left_free)
		exact(a, 0, 9); /* no space on the left at all */
	if (!at_high_edge && right_free) {
		assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 30, 39 }), 0);
		hi = 99;
	}
	if (!at_high_edge && !right_free)
		exact(a, 40, 99);
	assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 20, 29 }), 0);
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(largest_free(a), hi - lo + 1);
	/* The merged block is one block: a FIRST of its full size lands on it. */
	assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, hi - lo + 1, 1, 0), lo);
	assert_int_equal(largest_free(a), 0);
	vmres_addr_allocator_destroy(a);
}

static void test_addr_free_merges_every_neighbour_combination(void **state)
{
	(void)state;
	for (int m = 0; m < 4; m++) {
		merge_case(m & 1, m & 2, false, false);
		merge_case(false, m & 2, true, false);
		merge_case(m & 1, false, false, true);
	}
	merge_case(false, false, true, true);
}

/* @pairs x (free the range at @slot, allocate it again FIRST-fit): 4 KiB ranges. */
static void churn_slots(struct vmres_addr_allocator *a, unsigned slots, unsigned pairs)
{
	for (unsigned i = 0; i < pairs; i++) {
		uint64_t k = (i * 7u) % slots;

		assert_int_equal(
			vmres_addr_free(a, (struct vmres_range){ k * 0x1000, k * 0x1000 + 0xfff }),
			0);
		assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, 0x1000, 0x1000, 0), k * 0x1000);
	}
}

/*
 * Retired versions come back, after their grace period, as spares that later
 * writers take their nodes and version from: churn after a barrier asks the
 * memory hook for almost nothing, what the pool keeps stays under its cap,
 * and drain + destroy give every block back. With the pool off, the same
 * churn asks the hook for every node and version (the control). The
 * measured churn waits for the callbacks (a barrier) every 25 pairs, so
 * what comes back to the pool does not depend on when liburcu's thread runs:
 * 25 pairs take far fewer units than the filled pool holds.
 */
static void pool_churn(bool pool, int64_t *hook_allocs, int64_t *pooled_bytes)
{
	const unsigned slots = 256, pairs = 300;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a = NULL;
	int64_t before, live;

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	assert_int_equal(vmres_addr_allocator_create_ex(0, MAX64, &ops, &a), 0);
	if (!pool)
		vmres__addr_pool_disable(a);
	for (unsigned k = 0; k < slots; k++)
		assert_int_equal(alloc_ok(a, VMRES_FIRST_MATCH, 0x1000, 0x1000, 0), k * 0x1000);
	churn_slots(a, slots, 4 * pairs); /* retires versions that fill the pool */
	vmres_rcu_barrier();
	before = vmres_test_mem_allocs(&tm);
	for (unsigned done = 0; done < pairs; done += 25) {
		churn_slots(a, slots, 25);
		vmres_rcu_barrier();
	}
	*hook_allocs = vmres_test_mem_allocs(&tm) - before;
	vmres_rcu_barrier();
	live = vmres_test_mem_live_bytes(&tm);
	assert_int_equal(vmres__addr_pool_drain(a) > 0, pool);
	*pooled_bytes = live - vmres_test_mem_live_bytes(&tm);
	assert_int_equal(vmres__addr_check(a), 0);
	vmres_addr_allocator_destroy(a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
}

/*
 * A spare that a failed update popped goes back to the pool only through a
 * grace period (call_rcu), never straight away: a popper that read it as the
 * top may still be in its read-side section (src/addr.c invariant 8). The
 * pool is emptied after the first allocation; the second retires a version
 * with the one node it replaced, which the barrier makes the pool's only
 * spare. The third, with the hook failing, pops it, needs more nodes than it
 * has, and fails with NOMEM. The test holds
 * a read-side section around that call and the check, so no grace period
 * can end in between: the check does not depend on when liburcu's thread runs.
 */
static void test_addr_failed_update_returns_spare_after_grace_period(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a = NULL;
	struct vmres_addr_request q = { 0x1000, 0x1000, VMRES_FIRST_MATCH, 0, 7 };
	struct vmres_range r;
	uint64_t pooled, back_at_once;
	int rc;

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	assert_int_equal(vmres_addr_allocator_create_ex(0, MAX64, &ops, &a), 0);
	alloc_ok(a, VMRES_FIRST_MATCH, 0x1000, 0x1000, 0);
	vmres_rcu_barrier();
	vmres__addr_pool_drain(a); /* quiet: no other call runs */
	alloc_ok(a, VMRES_FIRST_MATCH, 0x1000, 0x1000, 0);
	vmres_rcu_barrier();
	pooled = __atomic_load_n(&a->pool.count, __ATOMIC_RELAXED);
	assert_true(pooled > 1); /* one spare: its node and its own block */

	vmres_test_mem_fail_after(&tm, 0);
	vmres__rcu_read_lock();
	rc = vmres_addr_alloc(a, &q, &r); /* its own section nests in ours */
	/* Popped and given to call_rcu: not back while our section lasts. */
	back_at_once = __atomic_load_n(&a->pool.count, __ATOMIC_RELAXED);
	vmres__rcu_read_unlock();
	assert_int_equal(rc, VMRES_E_NOMEM);
	assert_true(vmres_test_mem_failures(&tm) > 0);
	assert_int_equal(back_at_once, 0);
	vmres_test_mem_fail_after(&tm, -1);
	vmres_rcu_barrier();
	assert_true(__atomic_load_n(&a->pool.count, __ATOMIC_RELAXED) <= pooled);
	assert_int_equal(vmres__addr_check(a), 0);
	assert_int_equal(vmres_addr_alloc(a, &q, &r), 0); /* state as before: works */
	vmres_addr_allocator_destroy(a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
}

static void test_addr_pool_recycles_bounded(void **state)
{
	(void)state;
	int64_t with_allocs, with_bytes, without_allocs, without_bytes;

	pool_churn(true, &with_allocs, &with_bytes);
	pool_churn(false, &without_allocs, &without_bytes);
	printf("[addr] 300 pairs, a barrier every 25: %" PRId64 " hook allocations with the pool, "
	       "%" PRId64 " without; pool held %" PRId64 " bytes\n",
	       with_allocs, without_allocs, with_bytes);
	assert_true(without_allocs >= 300 * 4); /* two versions and paths per pair */
	assert_true(with_allocs * 10 < without_allocs);
	assert_int_equal(without_bytes, 0);
	assert_true(with_bytes > 0);
	/* cap in nodes; a spare's own block is counted rounded up to nodes */
	assert_true(with_bytes <= (int64_t)(VMRES__ADDR_POOL_CAP * vmres__addr_node_size()));
}

/*
 * destroy from a thread that went offline, as thread.h asks of a qsbr thread
 * around a blocking call (destroy blocks for a grace period), with spares in
 * the pool: the drain must not need a read-side section, which an offline
 * qsbr thread cannot be in (a Debug build's assert in the pool's pop fired
 * here). With the other flavors offline changes nothing.
 */
static void test_addr_destroy_while_offline(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a = NULL;

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	assert_int_equal(vmres_addr_allocator_create_ex(0, 0xffff, &ops, &a), 0);
	for (int i = 0; i < 10; i++) {
		alloc_ok(a, VMRES_FIRST_MATCH, 0x10, 0x10, 0);
		assert_int_equal(vmres_addr_free(a, (struct vmres_range){ 0, 0xf }), 0);
	}
	vmres_rcu_barrier();
	assert_true(__atomic_load_n(&a->pool.count, __ATOMIC_RELAXED) > 0);
	vmres_thread_offline();
	vmres_addr_allocator_destroy(a);
	vmres_thread_online();
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
}

static void test_addr_memory_accounting(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem tm;
	struct vmres_mem_ops ops;
	struct vmres_addr_allocator *a = NULL;
	int64_t empty_bytes;
	const uint64_t n = 4096;

	vmres_test_mem_init(&tm);
	ops = vmres_test_mem_ops(&tm);
	assert_int_equal(vmres_addr_allocator_create_ex(0, MAX64, &ops, &a), 0);
	vmres_rcu_barrier();
	empty_bytes = vmres_test_mem_live_bytes(&tm);
	for (uint64_t i = 0; i < n; i++)
		alloc_ok(a, VMRES_FIRST_MATCH, 0x1000, 0x1000, 0);
	vmres_rcu_barrier(); /* retired nodes and versions are pooled or gone */
	vmres__addr_pool_drain(a);
	assert_int_equal(vmres__addr_check(a), 0);
	/* n nodes plus one version whose retire room grows with the height */
	printf("[addr] %" PRIu64 " ranges: %" PRId64 " bytes live (%.1f per range, node %zu), "
	       "height %u\n",
	       n, vmres_test_mem_live_bytes(&tm),
	       (double)(vmres_test_mem_live_bytes(&tm) - empty_bytes) / (double)n,
	       vmres__addr_node_size(), vmres__addr_height(a));
	assert_int_equal(vmres_test_mem_live_blocks(&tm), (int64_t)n + 2);
	assert_true(vmres_test_mem_live_bytes(&tm) - empty_bytes <
		    (int64_t)(n * vmres__addr_node_size() + 64 * 8 * 3));
	for (uint64_t i = 0; i < n; i += 2)
		assert_int_equal(
			vmres_addr_free(a, (struct vmres_range){ i * 0x1000, i * 0x1000 + 0xfff }),
			0);
	vmres_addr_allocator_destroy(a);
	assert_int_equal(vmres_test_mem_live_blocks(&tm), 0);
	assert_int_equal(vmres_test_mem_live_bytes(&tm), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_create_errors),
		cmocka_unit_test(test_addr_alloc_error_order),
		cmocka_unit_test(test_addr_exact_out_of_range),
		cmocka_unit_test(test_addr_free_errors),
		cmocka_unit_test(test_addr_lookup),
		cmocka_unit_test(test_addr_foreach_order_and_stop),
		cmocka_unit_test(test_addr_foreach_callback_reenters),
		cmocka_unit_test(test_addr_alignment_placement),
		cmocka_unit_test(test_addr_alignment_continuation),
		cmocka_unit_test(test_addr_whole_64bit_span),
		cmocka_unit_test(test_addr_spans_touching_edges),
		cmocka_unit_test(test_addr_one_byte_ranges_and_gaps),
		cmocka_unit_test(test_addr_free_merges_every_neighbour_combination),
		cmocka_unit_test(test_addr_memory_accounting),
		cmocka_unit_test(test_addr_pool_recycles_bounded),
		cmocka_unit_test(test_addr_failed_update_returns_spare_after_grace_period),
		cmocka_unit_test(test_addr_destroy_while_offline),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
