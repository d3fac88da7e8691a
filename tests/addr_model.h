/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The address allocator's brute-force reference model, shared by the
 * differential (test_addr_model.c) and exhaustive (test_addr_exhaustive.c)
 * tests: a sorted array of allocations whose fits are found by scanning every
 * gap with 128-bit arithmetic, so it shares none of the allocator's overflow
 * reasoning; and compare_all(), which checks foreach and stats against it.
 */
#ifndef VMRES_TEST_ADDR_MODEL_H
#define VMRES_TEST_ADDR_MODEL_H

#include "vmres_test.h"

#include <stdlib.h>
#include <string.h>

#define MAX64 UINT64_MAX

typedef unsigned __int128 u128;

struct mrange {
	uint64_t start;
	uint64_t end;
	uint64_t tag;
};

struct model {
	uint64_t first;
	uint64_t last;
	struct mrange *r;
	size_t n;
	size_t cap;
};

/* --- the reference model ------------------------------------------------- */

static inline void model_insert(struct model *m, struct mrange x)
{
	size_t i = 0;

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->r = realloc(m->r, m->cap * sizeof(*m->r));
		assert_non_null(m->r);
	}
	while (i < m->n && m->r[i].start < x.start)
		i++;
	memmove(&m->r[i + 1], &m->r[i], (m->n - i) * sizeof(*m->r));
	m->r[i] = x;
	m->n++;
}

static inline bool model_overlaps(const struct model *m, u128 s, u128 e)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->r[i].start <= e && s <= m->r[i].end)
			return true;
	return false;
}

/* Lowest (FIRST) or highest (LAST) aligned fit in the gap [gs, ge]. */
static inline bool gap_fit(enum vmres_policy p, u128 gs, u128 ge, u128 size, u128 align, u128 *at)
{
	u128 lo = (gs + align - 1) / align * align;

	if (ge - gs + 1 < size)
		return false;
	if (p == VMRES_FIRST_MATCH) {
		*at = lo;
		return lo + size - 1 <= ge;
	}
	*at = (ge + 1 - size) / align * align;
	return *at >= gs;
}

/* Scan every free gap in address order; keep the first or the last fit. */
static inline bool model_fit(const struct model *m, enum vmres_policy p, u128 size, u128 align,
			     uint64_t *found)
{
	u128 gs = m->first, at, best = 0;
	bool any = false;

	for (size_t i = 0; i <= m->n; i++) {
		u128 next = i < m->n ? (u128)m->r[i].start : (u128)m->last + 1;

		if (next > gs && gap_fit(p, gs, next - 1, size, align, &at)) {
			best = at;
			any = true;
			if (p == VMRES_FIRST_MATCH)
				break;
		}
		if (i < m->n)
			gs = (u128)m->r[i].end + 1;
	}
	if (any)
		*found = (uint64_t)best;
	return any;
}

static inline int model_alloc(struct model *m, const struct vmres_addr_request *q,
			      struct vmres_range *out)
{
	uint64_t start;

	if (q->size == 0)
		return VMRES_E_INVALID_SIZE;
	if (q->align == 0 || (q->align & (q->align - 1)))
		return VMRES_E_INVALID_ALIGNMENT;
	if (q->policy == VMRES_EXACT_MATCH) {
		u128 e = (u128)q->addr + q->size - 1;

		if (q->addr % q->align)
			return VMRES_E_UNALIGNED_ADDRESS;
		if (q->addr < m->first || e > m->last)
			return VMRES_E_OUT_OF_RANGE;
		if (model_overlaps(m, q->addr, e))
			return VMRES_E_IN_USE;
		start = q->addr;
	} else if (!model_fit(m, q->policy, q->size, q->align, &start)) {
		return VMRES_E_EXHAUSTED;
	}
	*out = (struct vmres_range){ start, start + (q->size - 1) };
	model_insert(m, (struct mrange){ out->start, out->end, q->tag });
	return 0;
}

static inline int model_free(struct model *m, struct vmres_range r)
{
	if (r.start > r.end)
		return VMRES_E_INVALID_RANGE;
	for (size_t i = 0; i < m->n; i++) {
		if (m->r[i].start == r.start && m->r[i].end == r.end) {
			memmove(&m->r[i], &m->r[i + 1], (m->n - i - 1) * sizeof(*m->r));
			m->n--;
			return 0;
		}
	}
	return VMRES_E_NOT_FOUND;
}

static inline int model_lookup(const struct model *m, uint64_t addr, struct vmres_range *out,
			       uint64_t *tag)
{
	if (addr < m->first || addr > m->last)
		return VMRES_E_OUT_OF_RANGE;
	for (size_t i = 0; i < m->n; i++) {
		if (m->r[i].start <= addr && addr <= m->r[i].end) {
			*out = (struct vmres_range){ m->r[i].start, m->r[i].end };
			*tag = m->r[i].tag;
			return 0;
		}
	}
	return VMRES_E_NOT_FOUND;
}

static inline uint64_t sat(u128 x)
{
	return x > MAX64 ? MAX64 : (uint64_t)x;
}

static inline struct vmres_addr_stats model_stats(const struct model *m)
{
	u128 bytes = 0, largest = 0, gs = m->first;

	for (size_t i = 0; i < m->n; i++) {
		bytes += (u128)m->r[i].end - m->r[i].start + 1;
		if (m->r[i].start > gs && m->r[i].start - gs > largest)
			largest = m->r[i].start - gs;
		gs = (u128)m->r[i].end + 1;
	}
	if ((u128)m->last + 1 - gs > largest && (u128)m->last + 1 > gs)
		largest = (u128)m->last + 1 - gs;
	return (struct vmres_addr_stats){ m->n, sat(bytes), sat(largest) };
}

/* --- comparing the allocator with the model ------------------------------ */

struct snap {
	struct mrange *r;
	size_t n;
	size_t cap;
	size_t stop_after;
};

static inline int snap_fn(void *ctx, struct vmres_range r, uint64_t tag)
{
	struct snap *s = ctx;

	if (s->n == s->stop_after)
		return 7;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->r = realloc(s->r, s->cap * sizeof(*s->r));
		assert_non_null(s->r);
	}
	s->r[s->n++] = (struct mrange){ r.start, r.end, tag };
	return 0;
}

static inline void compare_all(struct vmres_addr_allocator *a, const struct model *m)
{
	struct snap s = { .stop_after = SIZE_MAX };
	struct vmres_addr_stats got, want = model_stats(m);

	assert_int_equal(vmres_addr_foreach(a, snap_fn, &s), 0);
	assert_int_equal(s.n, m->n);
	assert_memory_equal(s.r, m->r, m->n * sizeof(*m->r));
	if (m->n > 2) {
		s.n = 0;
		s.stop_after = m->n / 2;
		assert_int_equal(vmres_addr_foreach(a, snap_fn, &s), 7);
		assert_int_equal(s.n, m->n / 2);
	}
	free(s.r);
	assert_int_equal(vmres_addr_stats(a, &got), 0);
	assert_int_equal(got.ranges, want.ranges);
	assert_int_equal(got.allocated_bytes, want.allocated_bytes);
	assert_int_equal(got.largest_free, want.largest_free);
}

#endif /* VMRES_TEST_ADDR_MODEL_H */
