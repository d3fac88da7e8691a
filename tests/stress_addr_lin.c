/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Linearizability of the address allocator, checked on whole concurrent
 * histories (the method of stress_id_lin.c).
 *
 * include/vmres/addr.h promises that alloc and free are linearizable (the
 * CAS that publishes a new version) and that every reader (lookup, foreach,
 * stats) answers from the allocator's state at one instant. The sequential
 * spec, over a span [first, last]: the state is a set of disjoint allocated
 * ranges, each with the tag of the alloc that made it. alloc answers its
 * argument errors in the header's order (INVALID_SIZE, INVALID_ALIGNMENT,
 * INVALID_ARGUMENT for the policy, then for EXACT UNALIGNED_ADDRESS and
 * OUT_OF_RANGE), then EXACT takes exactly req.addr or answers IN_USE, FIRST
 * the lowest aligned start whose whole range is free, LAST the highest, both
 * EXHAUSTED when there is none; on error *out is untouched. free answers
 * INVALID_RANGE for start > end, takes the range if it is exactly one
 * allocated range, else NOT_FOUND. lookup answers OUT_OF_RANGE outside the
 * span, NOT_FOUND in free space, else the range holding the address and its
 * tag; foreach lists every (range, tag) in address order; stats gives the
 * number of ranges, their bytes and the largest free block. stress_addr.c
 * checks consequences of that (tags that match their ranges, a writer's own
 * ranges visible while it holds them); this test checks the promise itself.
 *
 * Many short rounds. Each makes a fresh allocator over 8-16 "units" (a unit
 * is 1 byte or 0x1000 bytes; the span starts at 0, ends at UINT64_MAX, or
 * lies elsewhere at a random unit multiple, so alignments are absolute and
 * not relative to first), sometimes brings it to a random state with
 * sequential calls whose answers are checked against the spec, then
 * LIN_MIN_THREADS..LIN_MAX_THREADS threads (more than the 2 CPUs of the CI
 * machines, on purpose) each make 3-5 random calls at once: allocs of 1-4
 * units aligned to 1, 2 or 4 units (rarely 8) with FIRST, LAST or EXACT (a
 * few with invalid arguments, EXACT ones unaligned or out of the span), frees
 * of ranges the thread got or that the state before the round held (so two
 * threads may free the same range), and bogus frees (a part of a range, a
 * range freed already, free space, a range across two, start > end), lookups
 * of random addresses (inside units and just outside the span), foreach
 * (whose callback often spins or yields, so that several updates can land
 * during one walk), stats. Every valid alloc has a size and an alignment that are multiples of
 * the unit, so every range lies on the unit grid and the spec's state is one
 * owner per unit: the alloc call that made the range, or free. Tags are
 * unique per alloc call (round index and owner), so a lookup's or foreach's
 * tag names the alloc whose range it saw.
 *
 * As in stress_id_lin.c, the threads wait for a round by spinning and leave
 * a common start line, every call is stamped from one global atomic counter
 * before it is made and after it returns, and once the threads are through
 * the state is read back sequentially (foreach; then stats and a lookup in
 * every unit, checked against it). A Wing-Gong search (memoized on the calls
 * placed and the owner per unit) looks for a total order of the calls that
 * respects real time, gives every call its recorded answer under the spec
 * (readers too: their answers must be the state at their place in the
 * order), and ends in the state read back. Then vmres__addr_check() checks
 * the tree's invariants, and at the end every allocator must have given all
 * its memory back.
 *
 * It fails when no such order exists: an alloc placed against a state no
 * instant inside it had (a fit that skipped a range freed before it began,
 * two allocs given overlapping ranges), two frees of one range that both
 * succeed, a lost update, a reader whose answers mix two instants (a lookup's
 * range and tag from different versions, stats whose three values no one
 * state has, a foreach list no state had), or a state read back that the
 * calls could not have made. A reader's torn read shows only if an update
 * lands inside its window: a foreach's is wide (the callback lingers), a
 * lookup's or stats' a few loads, hit when the thread is preempted there; a
 * mix that needs two updates inside such a window (a lookup's tag re-read
 * from a newer version at the same start) was caught once in about 95 s.
 * The failure message prints the seed, the span, the calls before the
 * threads and the state they left, every call with its thread, arguments,
 * answer and stamps, and the state read back;
 * VMRES_TEST_SEED replays the rounds' spans and the calls' kinds and random
 * arguments (not the thread timing, which is the race, nor therefore which
 * ranges a thread got to free).
 */
#include "vmres_rounds.h"
#include "vmres_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/addr_tree.h"

#define LIN_MIN_THREADS 3
#define LIN_MAX_THREADS 5
#define LIN_MAX_THREAD_OPS 5
#define LIN_MAX_OPS (LIN_MAX_THREADS * LIN_MAX_THREAD_OPS)
#define LIN_MIN_UNITS 8
#define LIN_MAX_UNITS 16
#define LIN_MAX_PRE 16
/* Owners: 0 free, 1..LIN_MAX_PRE the calls before the threads, then the threads'. */
#define LIN_OWNER_OF(t, i) (LIN_MAX_PRE + 1 + (t)*LIN_MAX_THREAD_OPS + (i))
#define LIN_MAX_OWNER LIN_OWNER_OF(LIN_MAX_THREADS - 1, LIN_MAX_THREAD_OPS - 1)
#define LIN_TAG_KEY 0x6a09e667f3bcc908ull
#define LIN_MAIN 0xff /* lin_op.thread of the main thread's calls */
/* Rounds whose allocators are freed after one RCU barrier (several ms). */
#define LIN_BATCH 256
/* At least this many rounds however short VMRES_STRESS_SECONDS is. */
#define LIN_MIN_ROUNDS 200
/* The search's memo: (calls placed, owner per unit) keys, open addressing. */
#define LIN_MEMO_BITS 18
#define LIN_MEMO_SIZE (1u << LIN_MEMO_BITS)

enum lin_kind { LIN_ALLOC, LIN_FREE, LIN_LOOKUP, LIN_FOREACH, LIN_STATS };

struct lin_entry {
	uint64_t start;
	uint64_t end;
	uint64_t tag;
};

/*
 * One call: @req (alloc; its tag names @owner), @arg (free: the range;
 * lookup: the address in arg.start), @rc its return code, @out what alloc or
 * lookup returned (alloc: preset to lin_sentinel, which an error must leave),
 * @tag lookup's tag, @st stats', @list foreach's ranges (@over: it offered
 * more than a span can hold; @cb_yield, @cb_spin: its callback lingers, so
 * that several updates can land during one walk), and the clock's values
 * before the call (@inv) and after it returned (@resp).
 */
struct lin_op {
	uint8_t kind;
	uint8_t thread;
	uint8_t owner;
	uint8_t nlist;
	bool over;
	bool cb_yield;	  /* foreach: yield after the first range */
	uint16_t cb_spin; /* foreach: spin this long after each range */
	int rc;
	struct vmres_addr_request req;
	struct vmres_range arg;
	struct vmres_range out;
	uint64_t tag;
	struct vmres_addr_stats st;
	struct lin_entry list[LIN_MAX_UNITS];
	uint64_t inv;
	uint64_t resp;
};

/* The spec's state: the owner of each unit (0: free); units past the span stay 0. */
struct lin_state {
	uint8_t own[LIN_MAX_UNITS];
};

struct lin_round {
	struct vmres_addr_allocator *a;
	uint64_t seed;
	uint64_t index;
	uint64_t first;
	uint64_t last;
	uint64_t unit; /* bytes: 1 or 0x1000 */
	uint32_t units;
	uint32_t nthreads;
	uint32_t nops[LIN_MAX_THREADS];
	/* How the threads spread out: see lin_run_thread(). */
	uint32_t yield_every;
	uint32_t delay_max;
	uint32_t op_yield;
	struct lin_op ops[LIN_MAX_THREADS][LIN_MAX_THREAD_OPS];
	/* The sequential calls before the threads ran, and the state they left. */
	uint32_t npre;
	struct lin_op pre[LIN_MAX_PRE];
	struct lin_state pre_state;
	uint32_t npre_ranges; /* its ranges: every thread may free them */
	struct lin_entry pre_ranges[LIN_MAX_UNITS];
	/* The state read back after the join: a foreach, decoded. */
	struct lin_op end_read;
	struct lin_state end_state;
	uint32_t arrived; /* atomic: the threads' start line */
};

static const struct vmres_range lin_sentinel = { 0x5e5e5e5e5e5e5e5eull, 0x1e1e1e1e1e1e1e1eull };

static struct vmres_rounds rounds; /* the workers (tests/common/vmres_rounds.h) */
static uint64_t lin_clock;	   /* atomic: the stamps */

/* The allocators of the batch not yet freed, and their hook (see lin_flush()). */
static struct vmres_addr_allocator *batch[LIN_BATCH];
static uint32_t nbatch;
static struct vmres_test_mem lin_mem;

/* ---- the spec --------------------------------------------------------------- */

static uint64_t lin_tag(const struct lin_round *r, uint32_t owner)
{
	return (r->index << 8 | owner) ^ LIN_TAG_KEY;
}

/* The owner a tag names, or 0 if it names none of this round's. */
static uint32_t lin_tag_owner(const struct lin_round *r, uint64_t tag)
{
	uint64_t x = tag ^ LIN_TAG_KEY;

	if (x >> 8 != r->index || (x & 0xff) == 0 || (x & 0xff) > LIN_MAX_OWNER)
		return 0;
	return (uint32_t)(x & 0xff);
}

static uint64_t lin_addr(const struct lin_round *r, uint32_t unit)
{
	return r->first + unit * r->unit;
}

/* The allocated ranges of @st in address order, as foreach lists them. */
static uint32_t lin_list(const struct lin_round *r, const struct lin_state *st,
			 struct lin_entry *out)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < r->units;) {
		uint32_t j = i;

		if (!st->own[i]) {
			i++;
			continue;
		}
		while (j + 1 < r->units && st->own[j + 1] == st->own[i])
			j++;
		out[n++] = (struct lin_entry){ lin_addr(r, i), lin_addr(r, j) + (r->unit - 1),
					       lin_tag(r, st->own[i]) };
		i = j + 1;
	}
	return n;
}

static bool lin_units_free(const struct lin_state *st, uint32_t i, uint32_t n)
{
	for (uint32_t k = i; k < i + n; k++) {
		if (st->own[k])
			return false;
	}
	return true;
}

/* The argument errors of vmres_addr_alloc(), in the header's order; 0 if none. */
static int lin_alloc_arg_error(const struct lin_round *r, const struct vmres_addr_request *q)
{
	if (q->size == 0)
		return VMRES_E_INVALID_SIZE;
	if (q->align == 0 || (q->align & (q->align - 1)))
		return VMRES_E_INVALID_ALIGNMENT;
	if (q->policy != VMRES_FIRST_MATCH && q->policy != VMRES_LAST_MATCH &&
	    q->policy != VMRES_EXACT_MATCH)
		return VMRES_E_INVALID_ARGUMENT;
	if (q->policy != VMRES_EXACT_MATCH)
		return 0;
	if (q->addr % q->align)
		return VMRES_E_UNALIGNED_ADDRESS;
	/* [addr, addr + size - 1] inside the span, not wrapping past UINT64_MAX */
	if (q->addr < r->first || q->addr > r->last || q->size - 1 > r->last - q->addr)
		return VMRES_E_OUT_OF_RANGE;
	return 0;
}

/*
 * The alloc's answer under the spec: the error, or 0 and the first unit of
 * its range in *@at. Valid requests have size and align multiples of the
 * unit (the test makes no others), so every aligned start is on the grid.
 */
static int lin_alloc_answer(const struct lin_round *r, const struct lin_state *st,
			    const struct vmres_addr_request *q, uint32_t *at)
{
	int rc = lin_alloc_arg_error(r, q);
	uint32_t n;

	if (rc)
		return rc;
	n = (uint32_t)(q->size / r->unit);
	if (q->policy == VMRES_EXACT_MATCH) {
		*at = (uint32_t)((q->addr - r->first) / r->unit);
		return lin_units_free(st, *at, n) ? 0 : VMRES_E_IN_USE;
	}
	for (uint32_t k = 0; k + n <= r->units; k++) {
		uint32_t i = q->policy == VMRES_FIRST_MATCH ? k : r->units - n - k;

		if (lin_addr(r, i) % q->align == 0 && lin_units_free(st, i, n)) {
			*at = i;
			return 0;
		}
	}
	return VMRES_E_EXHAUSTED;
}

/* The units [*@i, *@j] of the range exactly @g, if it lies on the grid in the span. */
static bool lin_grid(const struct lin_round *r, struct vmres_range g, uint32_t *i, uint32_t *j)
{
	if (g.start > g.end || g.start < r->first || g.end > r->last)
		return false;
	if ((g.start - r->first) % r->unit || (g.end - r->first) % r->unit != r->unit - 1)
		return false;
	*i = (uint32_t)((g.start - r->first) / r->unit);
	*j = (uint32_t)((g.end - r->first) / r->unit);
	return true;
}

static bool lin_stats_ok(const struct lin_round *r, const struct lin_state *st,
			 const struct vmres_addr_stats *got)
{
	uint64_t ranges = 0, units = 0, run = 0, best = 0;

	for (uint32_t i = 0; i < r->units; i++) {
		if (st->own[i]) {
			units++;
			ranges += i == 0 || st->own[i - 1] != st->own[i];
			run = 0;
		} else if (++run > best) {
			best = run;
		}
	}
	return got->ranges == ranges && got->allocated_bytes == units * r->unit &&
	       got->largest_free == best * r->unit;
}

/*
 * The sequential spec: applies @o to @st and says whether it gives @o's
 * recorded answer.
 */
static bool lin_apply(const struct lin_round *r, const struct lin_op *o, struct lin_state *st)
{
	struct lin_entry list[LIN_MAX_UNITS];
	uint32_t i = 0, j = 0, n;
	int rc;

	switch (o->kind) {
	case LIN_ALLOC:
		rc = lin_alloc_answer(r, st, &o->req, &i);
		if (rc)
			return o->rc == rc && o->out.start == lin_sentinel.start &&
			       o->out.end == lin_sentinel.end;
		n = (uint32_t)(o->req.size / r->unit);
		if (o->rc != VMRES_OK || o->out.start != lin_addr(r, i) ||
		    o->out.end != lin_addr(r, i) + (o->req.size - 1))
			return false;
		memset(&st->own[i], o->owner, n);
		return true;
	case LIN_FREE:
		if (o->arg.start > o->arg.end)
			return o->rc == VMRES_E_INVALID_RANGE;
		/* exactly one range: its units, one owner, none of it outside */
		if (!lin_grid(r, o->arg, &i, &j) || !st->own[i] ||
		    (i > 0 && st->own[i - 1] == st->own[i]) ||
		    (j + 1 < r->units && st->own[j + 1] == st->own[i]))
			return o->rc == VMRES_E_NOT_FOUND;
		for (uint32_t k = i; k <= j; k++) {
			if (st->own[k] != st->own[i])
				return o->rc == VMRES_E_NOT_FOUND;
		}
		if (o->rc != VMRES_OK)
			return false;
		memset(&st->own[i], 0, j - i + 1);
		return true;
	case LIN_LOOKUP:
		if (o->arg.start < r->first || o->arg.start > r->last)
			return o->rc == VMRES_E_OUT_OF_RANGE;
		i = (uint32_t)((o->arg.start - r->first) / r->unit);
		if (!st->own[i])
			return o->rc == VMRES_E_NOT_FOUND;
		for (j = i; j + 1 < r->units && st->own[j + 1] == st->own[i]; j++)
			;
		while (i > 0 && st->own[i - 1] == st->own[j])
			i--;
		return o->rc == VMRES_OK && o->out.start == lin_addr(r, i) &&
		       o->out.end == lin_addr(r, j) + (r->unit - 1) &&
		       o->tag == lin_tag(r, st->own[i]);
	case LIN_FOREACH:
		n = lin_list(r, st, list);
		return o->rc == 0 && !o->over && o->nlist == n &&
		       memcmp(o->list, list, n * sizeof(list[0])) == 0;
	default:
		return o->rc == VMRES_OK && lin_stats_ok(r, st, &o->st);
	}
}

static int lin_foreach_fn(void *ctx, struct vmres_range g, uint64_t tag)
{
	struct lin_op *o = ctx;

	if (o->nlist == LIN_MAX_UNITS) {
		o->over = true;
		return 1;
	}
	o->list[o->nlist++] = (struct lin_entry){ g.start, g.end, tag };
	if (o->cb_yield && o->nlist == 1)
		sched_yield();
	for (uint32_t k = 0; k < o->cb_spin; k++)
		vmres_rounds_relax();
	return 0;
}

/* Makes the call @o describes on @a and records its answer. */
static void lin_call(struct vmres_addr_allocator *a, struct lin_op *o)
{
	switch (o->kind) {
	case LIN_ALLOC:
		o->out = lin_sentinel;
		o->rc = vmres_addr_alloc(a, &o->req, &o->out);
		break;
	case LIN_FREE:
		o->rc = vmres_addr_free(a, o->arg);
		break;
	case LIN_LOOKUP:
		o->rc = vmres_addr_lookup(a, o->arg.start, &o->out, &o->tag);
		break;
	case LIN_FOREACH:
		o->nlist = 0;
		o->over = false;
		o->rc = vmres_addr_foreach(a, lin_foreach_fn, o);
		break;
	default:
		o->rc = vmres_addr_stats(a, &o->st);
		break;
	}
}

/* ---- the calls' arguments ---------------------------------------------------- */

/* An alloc request: mostly valid and on the unit grid, a few with argument errors. */
static void lin_pick_alloc(const struct lin_round *r, uint64_t *rng, struct lin_op *o)
{
	struct vmres_addr_request *q = &o->req;
	uint32_t p = (uint32_t)vmres_test_rand_below(rng, 100);

	o->kind = LIN_ALLOC;
	q->size = (1 + vmres_test_rand_below(rng, 4)) * r->unit;
	q->align = (vmres_test_rand_below(rng, 16) ? 1ull << vmres_test_rand_below(rng, 3) : 8) *
		   r->unit;
	q->policy = p < 38 ? VMRES_FIRST_MATCH : p < 62 ? VMRES_LAST_MATCH : VMRES_EXACT_MATCH;
	q->addr = 0;
	q->tag = lin_tag(r, o->owner);
	if (q->policy == VMRES_EXACT_MATCH) {
		/* an aligned start in the span (or just below it), rarely unaligned */
		q->addr = lin_addr(r, (uint32_t)vmres_test_rand_below(rng, r->units)) &
			  ~(q->align - 1);
		if (q->align > 1 && vmres_test_rand_below(rng, 12) == 0)
			q->addr += q->align / 2;
	}
	if (vmres_test_rand_below(rng, 100) < 6) {
		/* argument errors, possibly several: the header's order decides */
		uint32_t bad = 1 + (uint32_t)vmres_test_rand_below(rng, 7);

		if (bad & 1)
			q->size = 0;
		if (bad & 2)
			q->align = vmres_test_rand_below(rng, 2) ? 0 : 3 * r->unit;
		if (bad & 4)
			q->policy = (enum vmres_policy)3;
	}
}

/* A range one unit wider or narrower than @g at one end, else one byte off. */
static struct vmres_range lin_skew(const struct lin_round *r, struct vmres_range g, uint64_t *rng)
{
	uint64_t u = r->unit;
	bool units2 = g.end - g.start >= u; /* two units or more */

	switch (vmres_test_rand_below(rng, 4)) {
	case 0:
		if (units2)
			return (struct vmres_range){ g.start + u, g.end };
		break;
	case 1:
		if (units2)
			return (struct vmres_range){ g.start, g.end - u };
		break;
	case 2:
		if (g.end <= UINT64_MAX - u)
			return (struct vmres_range){ g.start, g.end + u };
		break;
	default:
		if (g.start >= u)
			return (struct vmres_range){ g.start - u, g.end };
		break;
	}
	if (g.end > g.start)
		return (struct vmres_range){ g.start, g.end - 1 };
	if (g.end < UINT64_MAX)
		return (struct vmres_range){ g.start, g.end + 1 };
	return (struct vmres_range){ g.start - 1, g.end };
}

/* A range of whole units somewhere in the span: free space, parts of ranges, several. */
static struct vmres_range lin_any_range(const struct lin_round *r, uint64_t *rng)
{
	uint32_t i = (uint32_t)vmres_test_rand_below(rng, r->units);
	uint32_t j = i + (uint32_t)vmres_test_rand_below(rng, r->units - i < 4 ? r->units - i : 4);

	return (struct vmres_range){ lin_addr(r, i), lin_addr(r, j) + (r->unit - 1) };
}

/*
 * A free: mostly of a range this thread got (@mine, which it then forgets,
 * remembering it in @freed) or of one the state before the round held, else
 * bogus (a range freed already, a skewed range, any range of units, start >
 * end, outside the span).
 */
static void lin_pick_free(const struct lin_round *r, uint64_t *rng, struct lin_op *o,
			  struct vmres_range *mine, uint32_t *nmine, struct vmres_range *freed,
			  uint32_t *nfreed)
{
	uint32_t p = (uint32_t)vmres_test_rand_below(rng, 100);

	o->kind = LIN_FREE;
	if (*nmine && p < 50) {
		uint32_t k = (uint32_t)vmres_test_rand_below(rng, *nmine);

		o->arg = mine[k];
		mine[k] = mine[--*nmine];
		freed[(*nfreed)++] = o->arg;
	} else if (r->npre_ranges && p < 66) {
		const struct lin_entry *e =
			&r->pre_ranges[vmres_test_rand_below(rng, r->npre_ranges)];

		o->arg = (struct vmres_range){ e->start, e->end };
	} else if (*nfreed && p < 72) {
		o->arg = freed[vmres_test_rand_below(rng, *nfreed)];
	} else if ((*nmine || r->npre_ranges) && p < 82) {
		uint32_t k = (uint32_t)vmres_test_rand_below(rng, *nmine + r->npre_ranges);

		o->arg = k < *nmine ? mine[k]
				    : (struct vmres_range){ r->pre_ranges[k - *nmine].start,
							    r->pre_ranges[k - *nmine].end };
		o->arg = lin_skew(r, o->arg, rng);
	} else if (p < 95) {
		o->arg = lin_any_range(r, rng);
	} else if (p < 97) {
		o->arg = (struct vmres_range){ lin_addr(r, 1), lin_addr(r, 0) };
	} else {
		o->arg = r->last < UINT64_MAX
				 ? (struct vmres_range){ r->last + 1, r->last + 1 }
				 : (struct vmres_range){ r->first - r->unit, r->first - 1 };
	}
}

/* An address: mostly inside a unit of the span, sometimes just outside it or far off. */
static void lin_pick_lookup(const struct lin_round *r, uint64_t *rng, struct lin_op *o)
{
	uint64_t out[3];
	uint32_t n = 0;

	o->kind = LIN_LOOKUP;
	if (vmres_test_rand_below(rng, 100) >= 6) {
		o->arg.start = lin_addr(r, (uint32_t)vmres_test_rand_below(rng, r->units)) +
			       vmres_test_rand_below(rng, r->unit);
		return;
	}
	if (r->first > 0)
		out[n++] = r->first - 1;
	if (r->last < UINT64_MAX)
		out[n++] = r->last + 1;
	out[n++] = r->first == 0 ? UINT64_MAX : 0;
	o->arg.start = out[vmres_test_rand_below(rng, n)];
}

/* A foreach whose callback often lingers (a spin, sometimes a yield). */
static void lin_pick_foreach(uint64_t *rng, struct lin_op *o)
{
	o->kind = LIN_FOREACH;
	o->cb_spin = (uint16_t)(vmres_test_rand_below(rng, 2)
					? 0
					: 1u << (4 + 2 * vmres_test_rand_below(rng, 4)));
	o->cb_yield = vmres_test_rand_below(rng, 4) == 0;
}

/* ---- the threads ------------------------------------------------------------ */

static void lin_run_thread(struct lin_round *r, uint32_t t)
{
	uint64_t rng = r->seed * 0x2545f4914f6cdd1dull + t + 1;
	struct vmres_range mine[LIN_MAX_THREAD_OPS], freed[LIN_MAX_THREAD_OPS];
	uint32_t nmine = 0, nfreed = 0;

	/* The start line: all threads of the round, then the first calls at once. */
	vmres_rounds_start_line(&r->arrived, r->nthreads, r->yield_every);
	for (uint32_t i = 0; i < r->nops[t]; i++) {
		struct lin_op *o = &r->ops[t][i];
		uint32_t p = (uint32_t)vmres_test_rand_below(&rng, 100);
		uint32_t delay = (uint32_t)vmres_test_rand_below(&rng, r->delay_max + 1);

		memset(o, 0, sizeof(*o));
		o->thread = (uint8_t)t;
		o->owner = (uint8_t)LIN_OWNER_OF(t, i);
		if (p < 34)
			lin_pick_alloc(r, &rng, o);
		else if (p < 62)
			lin_pick_free(r, &rng, o, mine, &nmine, freed, &nfreed);
		else if (p < 80)
			lin_pick_lookup(r, &rng, o);
		else if (p < 90)
			lin_pick_foreach(&rng, o);
		else
			o->kind = LIN_STATS;
		/* Vary the threads' offsets: a spin, never a sleep. */
		for (uint32_t k = 0; k < delay; k++)
			vmres_rounds_relax();
		if (r->op_yield && vmres_test_rand_below(&rng, r->op_yield) == 0)
			sched_yield();
		o->inv = __atomic_fetch_add(&lin_clock, 1, __ATOMIC_SEQ_CST);
		lin_call(r->a, o);
		o->resp = __atomic_fetch_add(&lin_clock, 1, __ATOMIC_SEQ_CST);
		if (o->kind == LIN_ALLOC && o->rc == VMRES_OK)
			mine[nmine++] = o->out;
	}
}

/* A worker's part of a round (tests/common/vmres_rounds.h). */
static void lin_worker_run(void *round, uint32_t t)
{
	struct lin_round *r = round;

	if (t < r->nthreads)
		lin_run_thread(r, t);
}

/*
 * Frees the batch's allocators: one RCU barrier for all of them (their
 * retired versions' callbacks use the hook), instead of one per destroy.
 * The workers wait offline for the next round meanwhile.
 */
static void lin_flush(void)
{
	vmres_rcu_barrier();
	for (uint32_t i = 0; i < nbatch; i++)
		vmres__addr_allocator_free(batch[i]);
	nbatch = 0;
}

/* ---- the search --------------------------------------------------------------- */

struct lin_search {
	const struct lin_round *r;
	const struct lin_op *op[LIN_MAX_OPS];
	uint32_t n;
	bool want_end;	 /* only orders that end in end_state count */
	uint64_t states; /* memo entries made */
	bool overflow;	 /* the memo filled up: no answer */
};

/* A memo key: the calls placed and the generation in @done_gen, the state in @own. */
struct lin_memo_key {
	uint64_t done_gen;
	uint64_t own[2];
};

static struct lin_memo_key memo[LIN_MEMO_SIZE];
static uint64_t memo_gen;

/* Adds the state to the memo; false if it was there (already searched, in vain). */
static bool lin_memo_add(struct lin_search *s, uint32_t done, const struct lin_state *st)
{
	struct lin_memo_key key = { (uint64_t)done | memo_gen << 32, { 0, 0 } };
	uint64_t hash;
	uint32_t h;

	memcpy(key.own, st->own, sizeof(key.own));
	hash = (key.done_gen * 0x9e3779b97f4a7c15ull) ^ (key.own[0] * 0xc2b2ae3d27d4eb4full) ^
	       ((key.own[1] + 0x165667b19e3779f9ull) * 0xff51afd7ed558ccdull);
	h = (uint32_t)((hash ^ hash >> 29) * 0x94d049bb133111ebull >> (64 - LIN_MEMO_BITS));
	for (;; h = (h + 1) & (LIN_MEMO_SIZE - 1)) {
		if (memcmp(&memo[h], &key, sizeof(key)) == 0)
			return false;
		if (memo[h].done_gen >> 32 != memo_gen)
			break;
	}
	if (++s->states > LIN_MEMO_SIZE / 4 * 3) {
		s->overflow = true;
		return false;
	}
	memo[h] = key;
	return true;
}

/*
 * Wing and Gong's search with memoization: @done the calls placed so far (a
 * prefix of a candidate order), @st the spec state after them. A call can
 * come next if no unplaced call returned before it was made.
 */
static bool lin_dfs(struct lin_search *s, uint32_t done, const struct lin_state *st)
{
	uint64_t min_resp = UINT64_MAX;

	if (done == (1u << s->n) - 1)
		return !s->want_end || memcmp(st, &s->r->end_state, sizeof(*st)) == 0;
	if (!lin_memo_add(s, done, st))
		return false;
	for (uint32_t i = 0; i < s->n; i++) {
		if (!(done & 1u << i) && s->op[i]->resp < min_resp)
			min_resp = s->op[i]->resp;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		struct lin_state next = *st;

		if ((done & 1u << i) || s->op[i]->inv > min_resp)
			continue;
		if (lin_apply(s->r, s->op[i], &next) && lin_dfs(s, done | 1u << i, &next))
			return true;
	}
	return false;
}

static bool lin_check(struct lin_search *s, bool want_end)
{
	if (++memo_gen == 1ull << 32) { /* the key's generation bits wrapped */
		memset(memo, 0, sizeof(memo));
		memo_gen = 1;
	}
	s->want_end = want_end;
	s->states = 0;
	s->overflow = false;
	return lin_dfs(s, 0, &s->r->pre_state);
}

/* ---- a round -------------------------------------------------------------- */

/* @addr as "0x...(uN)" relative to the span's units, "+0x.." when off the grid. */
static const char *lin_fmt(const struct lin_round *r, uint64_t addr, char *buf, size_t len)
{
	if (addr < r->first || addr > r->last)
		snprintf(buf, len, "%#" PRIx64 "(outside)", addr);
	else if ((addr - r->first) % r->unit)
		snprintf(buf, len, "%#" PRIx64 "(u%" PRIu64 "+%#" PRIx64 ")", addr,
			 (addr - r->first) / r->unit, (addr - r->first) % r->unit);
	else
		snprintf(buf, len, "%#" PRIx64 "(u%" PRIu64 ")", addr, (addr - r->first) / r->unit);
	return buf;
}

static const char *lin_owner_name(uint32_t owner, char *buf, size_t len)
{
	if (owner == 0)
		snprintf(buf, len, "nobody");
	else if (owner <= LIN_MAX_PRE)
		snprintf(buf, len, "main.%" PRIu32, owner - 1);
	else if (owner <= LIN_MAX_OWNER)
		snprintf(buf, len, "t%" PRIu32 ".%" PRIu32,
			 (owner - LIN_MAX_PRE - 1) / LIN_MAX_THREAD_OPS,
			 (owner - LIN_MAX_PRE - 1) % LIN_MAX_THREAD_OPS);
	else
		snprintf(buf, len, "?%" PRIu32, owner);
	return buf;
}

/* "[a, b] by owner" for a range and its tag. */
static void lin_print_range(const struct lin_round *r, uint64_t start, uint64_t end, uint64_t tag)
{
	char a[48], b[48], who[16];
	uint32_t owner = lin_tag_owner(r, tag);

	fprintf(stderr, " [%s, %s] by ", lin_fmt(r, start, a, sizeof(a)),
		lin_fmt(r, end, b, sizeof(b)));
	if (owner)
		fprintf(stderr, "%s", lin_owner_name(owner, who, sizeof(who)));
	else
		fprintf(stderr, "tag %#" PRIx64, tag);
}

static const char *lin_policy_name(enum vmres_policy p)
{
	return p == VMRES_FIRST_MATCH	? "FIRST"
	       : p == VMRES_LAST_MATCH	? "LAST"
	       : p == VMRES_EXACT_MATCH ? "EXACT"
					: "BAD-POLICY";
}

static void lin_print_op(const struct lin_round *r, const struct lin_op *o)
{
	char who[16], a[48], b[48];

	if (o->thread == LIN_MAIN)
		snprintf(who, sizeof(who), "main");
	else
		snprintf(who, sizeof(who), "t%u", (unsigned int)o->thread);
	fprintf(stderr, "  %s ", who);
	switch (o->kind) {
	case LIN_ALLOC:
		fprintf(stderr, "alloc(%s size %#" PRIx64 " align %#" PRIx64,
			lin_policy_name(o->req.policy), o->req.size, o->req.align);
		if (o->req.policy == VMRES_EXACT_MATCH)
			fprintf(stderr, " at %s", lin_fmt(r, o->req.addr, a, sizeof(a)));
		fprintf(stderr, ", tag of %s) -> ", lin_owner_name(o->owner, b, sizeof(b)));
		if (o->rc == VMRES_OK)
			fprintf(stderr, "0 [%s, %s]", lin_fmt(r, o->out.start, a, sizeof(a)),
				lin_fmt(r, o->out.end, b, sizeof(b)));
		else
			fprintf(stderr, "%s", vmres_error_name(o->rc));
		break;
	case LIN_FREE:
		fprintf(stderr, "free([%s, %s]) -> %s", lin_fmt(r, o->arg.start, a, sizeof(a)),
			lin_fmt(r, o->arg.end, b, sizeof(b)), vmres_error_name(o->rc));
		break;
	case LIN_LOOKUP:
		fprintf(stderr, "lookup(%s) -> ", lin_fmt(r, o->arg.start, a, sizeof(a)));
		if (o->rc == VMRES_OK) {
			fprintf(stderr, "0");
			lin_print_range(r, o->out.start, o->out.end, o->tag);
		} else {
			fprintf(stderr, "%s", vmres_error_name(o->rc));
		}
		break;
	case LIN_FOREACH:
		fprintf(stderr, "foreach -> %d, {", o->rc);
		for (uint32_t i = 0; i < o->nlist; i++)
			lin_print_range(r, o->list[i].start, o->list[i].end, o->list[i].tag);
		fprintf(stderr, "%s }", o->over ? " ... (more)" : "");
		break;
	default:
		fprintf(stderr,
			"stats -> %d, ranges %" PRIu64 ", allocated_bytes %#" PRIx64
			", largest_free %#" PRIx64,
			o->rc, o->st.ranges, o->st.allocated_bytes, o->st.largest_free);
		break;
	}
	if (o->inv || o->resp)
		fprintf(stderr, "   [%" PRIu64 ", %" PRIu64 "]", o->inv, o->resp);
	fprintf(stderr, "\n");
}

static void lin_print_state(const struct lin_round *r, const char *what, const struct lin_state *st)
{
	struct lin_entry list[LIN_MAX_UNITS];
	uint32_t n = lin_list(r, st, list);

	fprintf(stderr, "  %s: {", what);
	for (uint32_t i = 0; i < n; i++)
		lin_print_range(r, list[i].start, list[i].end, list[i].tag);
	fprintf(stderr, " }\n");
}

static int lin_by_inv(const void *a, const void *b)
{
	const struct lin_op *x = *(const struct lin_op *const *)a;
	const struct lin_op *y = *(const struct lin_op *const *)b;

	return x->inv < y->inv ? -1 : x->inv > y->inv;
}

/* The whole round, for a failure: replay with VMRES_TEST_SEED=@seed. */
static void lin_report(const struct lin_round *r, const struct lin_search *s, uint64_t seed,
		       const char *why)
{
	const struct lin_op *sorted[LIN_MAX_OPS];

	fprintf(stderr,
		"stress_addr_lin: %s\n  round %" PRIu64 " (round seed %" PRIu64 "), span [%#" PRIx64
		", %#" PRIx64 "]: %" PRIu32 " units of %#" PRIx64 " bytes, %" PRIu32 " threads\n",
		why, r->index, r->seed, r->first, r->last, r->units, r->unit, r->nthreads);
	fprintf(stderr,
		"  replay this round's calls (not their timing): VMRES_TEST_SEED=%" PRIu64
		" ./stress_addr_lin\n",
		seed);
	fprintf(stderr, "  %" PRIu32 " sequential calls before the threads:\n", r->npre);
	for (uint32_t i = 0; i < r->npre; i++)
		lin_print_op(r, &r->pre[i]);
	lin_print_state(r, "state before the threads", &r->pre_state);
	if (s) {
		fprintf(stderr, "  the calls by invocation stamp [invocation, response]:\n");
		memcpy(sorted, s->op, s->n * sizeof(sorted[0]));
		qsort(sorted, s->n, sizeof(sorted[0]), lin_by_inv);
		for (uint32_t i = 0; i < s->n; i++)
			lin_print_op(r, sorted[i]);
		fprintf(stderr, "  read back after the join:\n");
		lin_print_op(r, &r->end_read);
	}
}

/* The sequential calls that bring a fresh allocator to a random state. */
static bool lin_pre_state(struct lin_round *r, uint64_t *rng, uint64_t seed)
{
	struct vmres_range mine[LIN_MAX_PRE], freed[LIN_MAX_PRE];
	uint32_t nmine = 0, nfreed = 0;

	memset(&r->pre_state, 0, sizeof(r->pre_state));
	r->npre = 0;
	r->npre_ranges = 0;
	if (vmres_test_rand_below(rng, 3) == 0)
		return true;
	r->npre = 1 + (uint32_t)vmres_test_rand_below(rng, LIN_MAX_PRE);
	for (uint32_t i = 0; i < r->npre; i++) {
		struct lin_op *o = &r->pre[i];
		uint32_t p = (uint32_t)vmres_test_rand_below(rng, 100);

		memset(o, 0, sizeof(*o));
		o->thread = LIN_MAIN;
		o->owner = (uint8_t)(i + 1);
		if (p < 60)
			lin_pick_alloc(r, rng, o);
		else if (p < 82)
			lin_pick_free(r, rng, o, mine, &nmine, freed, &nfreed);
		else if (p < 90)
			lin_pick_lookup(r, rng, o);
		else
			o->kind = p < 95 ? LIN_FOREACH : LIN_STATS;
		lin_call(r->a, o);
		if (o->kind == LIN_ALLOC && o->rc == VMRES_OK)
			mine[nmine++] = o->out;
		if (!lin_apply(r, o, &r->pre_state)) {
			r->npre = i + 1;
			lin_report(r, NULL, seed,
				   "a sequential call before the threads ran "
				   "answered against the spec (the last one)");
			return false;
		}
	}
	r->npre_ranges = lin_list(r, &r->pre_state, r->pre_ranges);
	return true;
}

/*
 * Reads the state back, sequentially: a foreach, which must list ranges on
 * the grid with distinct tags of this round (else no state has it), then
 * stats and a lookup in every unit, which must agree with it.
 */
static bool lin_read_back(struct lin_round *r, const struct lin_search *s, uint64_t seed)
{
	struct lin_op *o = &r->end_read;
	struct lin_entry list[LIN_MAX_UNITS];
	bool ok;

	memset(o, 0, sizeof(*o));
	o->kind = LIN_FOREACH;
	o->thread = LIN_MAIN;
	lin_call(r->a, o);
	memset(&r->end_state, 0, sizeof(r->end_state));
	ok = o->rc == 0 && !o->over;
	for (uint32_t k = 0; ok && k < o->nlist; k++) {
		uint32_t owner = lin_tag_owner(r, o->list[k].tag), i = 0, j = 0;

		ok = owner &&
		     lin_grid(r, (struct vmres_range){ o->list[k].start, o->list[k].end }, &i, &j);
		for (uint32_t m = 0; ok && m < r->units; m++)
			ok = r->end_state.own[m] != owner;
		for (uint32_t m = i; ok && m <= j; m++)
			ok = r->end_state.own[m] == 0;
		if (ok)
			memset(&r->end_state.own[i], (int)owner, j - i + 1);
	}
	if (ok)
		ok = lin_list(r, &r->end_state, list) == o->nlist &&
		     memcmp(list, o->list, o->nlist * sizeof(list[0])) == 0;
	if (!ok) {
		lin_report(r, s, seed,
			   "the foreach after the join listed no possible state (a range off the "
			   "unit grid, outside the span, with an unknown or repeated tag, or "
			   "overlapping or out of order)");
		return false;
	}
	for (uint32_t i = 0; i <= r->units; i++) {
		struct lin_op q = { .kind = i < r->units ? LIN_LOOKUP : LIN_STATS };
		struct lin_state st = r->end_state;

		q.thread = LIN_MAIN;
		q.arg.start = i < r->units ? lin_addr(r, i) + (r->unit - 1) / 2 : 0;
		lin_call(r->a, &q);
		if (!lin_apply(r, &q, &st)) {
			lin_report(r, s, seed,
				   "after the join, a lookup or stats disagreed with the "
				   "foreach just before it (the last call below)");
			lin_print_op(r, &q);
			return false;
		}
	}
	return true;
}

struct lin_totals {
	uint64_t rounds;
	uint64_t ops;
	uint64_t pre_rounds;
	uint64_t overlap_rounds;	/* with two calls of different threads overlapping */
	uint64_t overlaps;		/* such pairs */
	uint64_t writer_overlap_rounds; /* with two writers' calls (alloc, free) overlapping */
	uint64_t reader_overlap_rounds; /* with a reader's call overlapping a writer's */
	uint64_t kinds[LIN_STATS + 1];
	uint64_t ok_allocs;
	uint64_t ok_frees;
	uint64_t states;
	uint64_t max_states;
};

static bool lin_run_round(uint64_t seed, uint64_t index, struct lin_totals *tot)
{
	static struct lin_round r;
	struct lin_search s = { .r = &r };
	struct vmres_mem_ops ops = vmres_test_mem_ops(&lin_mem);
	uint64_t rng;
	uint32_t where;

	memset(&r, 0, sizeof(r));
	r.index = index;
	r.seed = seed + index;
	rng = r.seed;
	r.unit = vmres_test_rand_below(&rng, 2) ? 1 : 0x1000;
	r.units = LIN_MIN_UNITS +
		  (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_UNITS - LIN_MIN_UNITS + 1);
	where = (uint32_t)vmres_test_rand_below(&rng, 3);
	if (where == 0)
		r.first = 0;
	else if (where == 1)
		r.first = 0 - r.units * r.unit; /* ends at UINT64_MAX */
	else
		r.first = (1 + vmres_test_rand_below(&rng, 1ull << 40)) * r.unit;
	r.last = r.first + (r.units * r.unit - 1);
	r.nthreads = LIN_MIN_THREADS +
		     (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_THREADS - LIN_MIN_THREADS + 1);
	r.yield_every = 1u << (2 * vmres_test_rand_below(&rng, 5)); /* 1 .. 256 */
	r.delay_max = (uint32_t)vmres_test_rand_below(&rng, 4) * 32;
	r.op_yield = vmres_test_rand_below(&rng, 2) ? 0 : 8;
	for (uint32_t t = 0; t < r.nthreads; t++)
		r.nops[t] = 3 + (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_THREAD_OPS - 2);
	assert_int_equal(vmres_addr_allocator_create_ex(r.first, r.last, &ops, &r.a), VMRES_OK);
	batch[nbatch++] = r.a;
	if (!lin_pre_state(&r, &rng, seed))
		return false;

	vmres_rounds_run(&rounds, &r);

	for (uint32_t t = 0; t < r.nthreads; t++) {
		for (uint32_t i = 0; i < r.nops[t]; i++)
			s.op[s.n++] = &r.ops[t][i];
	}
	if (!lin_read_back(&r, &s, seed))
		return false;
	if (!lin_check(&s, true)) {
		struct lin_search any = s;
		bool some = !s.overflow && lin_check(&any, false);

		lin_report(&r, &s, seed,
			   s.overflow ? "the search ran out of memo entries (no answer)"
			   : some     ? "NOT LINEARIZABLE: the calls have linearizations, but none "
					"ends in the state read back after the join"
				      : "NOT LINEARIZABLE: no order of the calls that respects "
					"real time gives every call its answer");
		return false;
	}
	if (vmres__addr_check(r.a) != 0) {
		lin_report(&r, &s, seed,
			   "the history is linearizable, but vmres__addr_check() failed after it");
		return false;
	}
	{
		uint64_t pairs = 0;
		bool writers = false, readers = false;

		for (uint32_t i = 0; i < s.n; i++) {
			for (uint32_t j = i + 1; j < s.n; j++) {
				if (s.op[i]->thread != s.op[j]->thread &&
				    s.op[i]->inv < s.op[j]->resp && s.op[j]->inv < s.op[i]->resp) {
					pairs++;
					writers |= s.op[i]->kind <= LIN_FREE &&
						   s.op[j]->kind <= LIN_FREE;
					readers |= (s.op[i]->kind <= LIN_FREE) !=
						   (s.op[j]->kind <= LIN_FREE);
				}
			}
			tot->kinds[s.op[i]->kind]++;
			tot->ok_allocs += s.op[i]->kind == LIN_ALLOC && s.op[i]->rc == VMRES_OK;
			tot->ok_frees += s.op[i]->kind == LIN_FREE && s.op[i]->rc == VMRES_OK;
		}
		tot->overlaps += pairs;
		tot->overlap_rounds += pairs > 0;
		tot->writer_overlap_rounds += writers;
		tot->reader_overlap_rounds += readers;
	}
	tot->rounds++;
	tot->pre_rounds += r.npre > 0;
	tot->ops += s.n;
	tot->states += s.states;
	if (s.states > tot->max_states)
		tot->max_states = s.states;
	if (nbatch == LIN_BATCH)
		lin_flush();
	return true;
}

static void test_addr_lin_histories(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_addr_lin_histories");
	double seconds = vmres_test_stress_seconds(2.5);
	double start = vmres_test_now(), end = start + seconds;
	struct lin_totals tot = { 0 };
	bool ok = true;

	vmres_test_mem_init(&lin_mem);
	vmres_rounds_start(&rounds, LIN_MAX_THREADS, lin_worker_run);
	for (uint64_t i = 0; ok && (i < LIN_MIN_ROUNDS || vmres_test_now() < end); i++)
		ok = lin_run_round(seed, i, &tot);
	vmres_rounds_stop(&rounds);
	lin_flush();
	printf("stress_addr_lin: %.2f s, %" PRIu64 " rounds (%" PRIu64 " from a random state), "
	       "%" PRIu64 " calls (%" PRIu64 " alloc, %" PRIu64 " of them 0; %" PRIu64
	       " free, %" PRIu64 " of them 0; %" PRIu64 " lookup, %" PRIu64 " foreach, %" PRIu64
	       " stats); %" PRIu64 " rounds had calls of two threads overlapping (%" PRIu64
	       " of two writers, %" PRIu64 " of a reader and a writer), %" PRIu64
	       " such pairs; search: %" PRIu64 " states, at most %" PRIu64 " in a round\n",
	       vmres_test_now() - start, tot.rounds, tot.pre_rounds, tot.ops, tot.kinds[LIN_ALLOC],
	       tot.ok_allocs, tot.kinds[LIN_FREE], tot.ok_frees, tot.kinds[LIN_LOOKUP],
	       tot.kinds[LIN_FOREACH], tot.kinds[LIN_STATS], tot.overlap_rounds,
	       tot.writer_overlap_rounds, tot.reader_overlap_rounds, tot.overlaps, tot.states,
	       tot.max_states);
	if (!ok)
		fail_msg("stress_addr_lin: a round broke the spec (above); seed %" PRIu64, seed);
	/* Every allocator gave all its memory back. */
	assert_int_equal(vmres_test_mem_live_blocks(&lin_mem), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_lin_histories),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
