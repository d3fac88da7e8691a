/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Linearizability of the ID allocator, checked on whole concurrent histories.
 *
 * include/vmres/id.h promises that alloc, alloc_at, free and is_allocated are
 * linearizable against this sequential spec over [first, last]: alloc takes
 * the smallest free ID (or EXHAUSTED); alloc_at(id) answers OUT_OF_RANGE,
 * IN_USE, or takes it; free(id) answers OUT_OF_RANGE, NEVER_ALLOCATED (never
 * handed out since creation), ALREADY_FREED (handed out, free again), or
 * frees it; is_allocated(id) is true iff id is held. stress_id.c checks
 * consequences of that (no ID held twice, a completed free is seen by later
 * allocs, exact answers on IDs one thread owns); this test checks the promise
 * itself.
 *
 * Many short rounds. Each makes a fresh allocator of 4-8 IDs (from 0, ending
 * at UINT32_MAX, or elsewhere), sometimes brings it to a random state with a
 * few sequential calls whose answers are checked against the spec, then
 * LIN_MIN_THREADS..LIN_MAX_THREADS threads (more than the 2 CPUs of the CI
 * machines, on purpose) each make 3-5 random calls at once, on IDs of each
 * other's and on IDs just outside the range. The threads wait for a round by
 * spinning and leave a common start line, so that their calls do overlap.
 * Every call is stamped from one global atomic counter before it is made and
 * after it returns, so "A returned before B was called" is read off the
 * stamps. Once the threads are through, the allocator's state is read back
 * sequentially (is_allocated on each ID, and free on each free ID, which only
 * answers NEVER_ALLOCATED or ALREADY_FREED), and a Wing-Gong search (with
 * the memoization of Lowe's WGL variant, on the set of calls placed and the
 * spec state) looks for a total order of the calls that respects real time,
 * gives every call its recorded answer under the spec, and ends in the state
 * read back. Then vmres__id_check() checks the list's invariants, and at the
 * end every allocator must have given all its memory back.
 *
 * It fails when no such order exists: a call answered from a state that no
 * instant inside it had (an alloc that passed over an ID freed before it
 * began, two frees of one ID that both succeed, an ID that is lost or handed
 * out twice, a NEVER_ALLOCATED/ALREADY_FREED mix-up), or the state left
 * behind is none the calls could have made (a free that returned 0 but
 * whose ID stays out of reach counts, as do the sequential calls that set up
 * a round answering against the spec). The failure message prints the
 * seed, the range, the state before the round, every call with its thread,
 * answer and stamps, and the state read back; VMRES_TEST_SEED replays the
 * rounds' calls and arguments (not the thread timing, which is the race).
 */
#include "vmres_rounds.h"
#include "vmres_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/id.h"

#define LIN_MIN_THREADS 3
#define LIN_MAX_THREADS 5
#define LIN_MAX_THREAD_OPS 5
#define LIN_MAX_OPS (LIN_MAX_THREADS * LIN_MAX_THREAD_OPS)
#define LIN_MIN_SIZE 4
#define LIN_MAX_SIZE 8
#define LIN_MAX_PRE (2 * LIN_MAX_SIZE)
/* Rounds whose allocators are freed after one RCU barrier (several ms). */
#define LIN_BATCH 256
/* At least this many rounds however short VMRES_STRESS_SECONDS is. */
#define LIN_MIN_ROUNDS 200
/* The search's memo: (calls placed, held, ever) keys, open addressing. */
#define LIN_MEMO_BITS 18
#define LIN_MEMO_SIZE (1u << LIN_MEMO_BITS)

enum lin_kind { LIN_ALLOC, LIN_ALLOC_AT, LIN_FREE, LIN_IS_ALLOCATED };

/*
 * One call: @arg the ID asked about (not for alloc), @rc its return code
 * (for is_allocated: 1 true, 0 false), @id what alloc returned (rc 0), and
 * the clock's values before the call (@inv) and after it returned (@resp).
 */
struct lin_op {
	uint8_t kind;
	uint8_t thread;
	uint32_t arg;
	int rc;
	uint32_t id;
	uint64_t inv;
	uint64_t resp;
};

struct lin_round {
	struct vmres_id_allocator *ids;
	uint64_t seed;
	uint64_t index;
	uint32_t first;
	uint32_t size;
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
	uint32_t pre_held;
	uint32_t pre_ever;
	/* The state read back after the join. */
	uint32_t end_held;
	uint32_t end_ever;
	uint32_t arrived; /* atomic: the threads' start line */
};

static struct vmres_rounds rounds; /* the workers (tests/common/vmres_rounds.h) */
static uint64_t lin_clock;	   /* atomic: the stamps */

/* The allocators of the batch not yet freed, and their hook (see lin_flush()). */
static struct vmres_id_allocator *batch[LIN_BATCH];
static uint32_t nbatch;
static struct vmres_test_mem lin_mem;

static uint32_t lin_last(const struct lin_round *r)
{
	return r->first + (r->size - 1);
}

/* An ID for a call: mostly inside the range, sometimes just outside it or far off. */
static uint32_t lin_pick_id(const struct lin_round *r, uint64_t *rng)
{
	uint32_t out[3], n = 0;

	if (vmres_test_rand_below(rng, 100) >= 6)
		return r->first + (uint32_t)vmres_test_rand_below(rng, r->size);
	if (r->first > 0)
		out[n++] = r->first - 1;
	if (lin_last(r) < UINT32_MAX)
		out[n++] = lin_last(r) + 1;
	out[n++] = r->first == 0 ? UINT32_MAX : 0;
	return out[vmres_test_rand_below(rng, n)];
}

/*
 * The sequential spec: applies @o to the state (@held, @ever: bit i is ID
 * first + i) and says whether it gives @o's recorded answer.
 */
static bool lin_apply(const struct lin_round *r, const struct lin_op *o, uint32_t *held,
		      uint32_t *ever)
{
	uint32_t all = (1u << r->size) - 1;
	uint32_t off = o->arg - r->first;
	bool in = off < r->size;
	uint32_t bit = in ? 1u << off : 0;

	switch (o->kind) {
	case LIN_ALLOC:
		if (!(all & ~*held))
			return o->rc == VMRES_E_EXHAUSTED;
		off = (uint32_t)__builtin_ctz(all & ~*held);
		if (o->rc != VMRES_OK || o->id != r->first + off)
			return false;
		*held |= 1u << off;
		*ever |= 1u << off;
		return true;
	case LIN_ALLOC_AT:
		if (!in)
			return o->rc == VMRES_E_OUT_OF_RANGE;
		if (*held & bit)
			return o->rc == VMRES_E_IN_USE;
		if (o->rc != VMRES_OK)
			return false;
		*held |= bit;
		*ever |= bit;
		return true;
	case LIN_FREE:
		if (!in)
			return o->rc == VMRES_E_OUT_OF_RANGE;
		if (!(*ever & bit))
			return o->rc == VMRES_E_NEVER_ALLOCATED;
		if (!(*held & bit))
			return o->rc == VMRES_E_ALREADY_FREED;
		if (o->rc != VMRES_OK)
			return false;
		*held &= ~bit;
		return true;
	default:
		return o->rc == (in && (*held & bit));
	}
}

/* Makes the call @o describes (kind, arg) on @ids and records its answer. */
static void lin_call(struct vmres_id_allocator *ids, struct lin_op *o)
{
	switch (o->kind) {
	case LIN_ALLOC:
		o->rc = vmres_id_alloc(ids, &o->id);
		break;
	case LIN_ALLOC_AT:
		o->rc = vmres_id_alloc_at(ids, o->arg);
		break;
	case LIN_FREE:
		o->rc = vmres_id_free(ids, o->arg);
		break;
	default:
		o->rc = vmres_id_is_allocated(ids, o->arg);
		break;
	}
}

/* ---- the threads ------------------------------------------------------------ */

static void lin_run_thread(struct lin_round *r, uint32_t t)
{
	uint64_t rng = r->seed * 0x2545f4914f6cdd1dull + t + 1;
	uint32_t mine[LIN_MAX_THREAD_OPS], nmine = 0;

	/* The start line: all threads of the round, then the first calls at once. */
	vmres_rounds_start_line(&r->arrived, r->nthreads, r->yield_every);
	for (uint32_t i = 0; i < r->nops[t]; i++) {
		struct lin_op *o = &r->ops[t][i];
		uint32_t p = (uint32_t)vmres_test_rand_below(&rng, 100);
		uint32_t delay = (uint32_t)vmres_test_rand_below(&rng, r->delay_max + 1);

		o->thread = (uint8_t)t;
		o->arg = 0;
		o->id = 0;
		if (p < 30) {
			o->kind = LIN_ALLOC;
		} else if (p < 48) {
			o->kind = LIN_ALLOC_AT;
			o->arg = lin_pick_id(r, &rng);
		} else if (p < 82) {
			o->kind = LIN_FREE;
			if (nmine && vmres_test_rand_below(&rng, 3)) {
				uint32_t k = (uint32_t)vmres_test_rand_below(&rng, nmine);

				o->arg = mine[k];
				mine[k] = mine[--nmine];
			} else {
				o->arg = lin_pick_id(r, &rng);
			}
		} else {
			o->kind = LIN_IS_ALLOCATED;
			o->arg = lin_pick_id(r, &rng);
		}
		/* Vary the threads' offsets: a spin, never a sleep. */
		for (uint32_t k = 0; k < delay; k++)
			vmres_rounds_relax();
		if (r->op_yield && vmres_test_rand_below(&rng, r->op_yield) == 0)
			sched_yield();
		o->inv = __atomic_fetch_add(&lin_clock, 1, __ATOMIC_SEQ_CST);
		lin_call(r->ids, o);
		o->resp = __atomic_fetch_add(&lin_clock, 1, __ATOMIC_SEQ_CST);
		if (o->rc == VMRES_OK && o->kind == LIN_ALLOC && nmine < LIN_MAX_THREAD_OPS)
			mine[nmine++] = o->id;
		else if (o->rc == VMRES_OK && o->kind == LIN_ALLOC_AT && nmine < LIN_MAX_THREAD_OPS)
			mine[nmine++] = o->arg;
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
 * retired nodes' callbacks use the hook), instead of one per destroy. The
 * workers wait offline for the next round meanwhile.
 */
static void lin_flush(void)
{
	vmres_rcu_barrier();
	for (uint32_t i = 0; i < nbatch; i++)
		vmres__id_allocator_free(batch[i]);
	nbatch = 0;
}

/* ---- the search --------------------------------------------------------------- */

struct lin_search {
	const struct lin_round *r;
	const struct lin_op *op[LIN_MAX_OPS];
	uint32_t n;
	bool want_end;	 /* only orders that end in (end_held, end_ever) count */
	uint64_t states; /* memo entries made */
	bool overflow;	 /* the memo filled up: no answer */
};

static uint64_t memo[LIN_MEMO_SIZE];
static uint64_t memo_gen;

/* Adds the state to the memo; false if it was there (already searched, in vain). */
static bool lin_memo_add(struct lin_search *s, uint32_t done, uint32_t held, uint32_t ever)
{
	uint64_t key =
		(uint64_t)done | (uint64_t)held << 25 | (uint64_t)ever << 33 | memo_gen << 41;
	uint32_t h = (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - LIN_MEMO_BITS));

	for (;; h = (h + 1) & (LIN_MEMO_SIZE - 1)) {
		if (memo[h] == key)
			return false;
		if (memo[h] >> 41 != memo_gen)
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
 * prefix of a candidate order), (@held, @ever) the spec state after them.
 * A call can come next if no unplaced call returned before it was made.
 */
static bool lin_dfs(struct lin_search *s, uint32_t done, uint32_t held, uint32_t ever)
{
	uint64_t min_resp = UINT64_MAX;

	if (done == (1u << s->n) - 1)
		return !s->want_end || (held == s->r->end_held && ever == s->r->end_ever);
	if (!lin_memo_add(s, done, held, ever))
		return false;
	for (uint32_t i = 0; i < s->n; i++) {
		if (!(done & 1u << i) && s->op[i]->resp < min_resp)
			min_resp = s->op[i]->resp;
	}
	for (uint32_t i = 0; i < s->n; i++) {
		uint32_t h = held, e = ever;

		if ((done & 1u << i) || s->op[i]->inv > min_resp)
			continue;
		if (lin_apply(s->r, s->op[i], &h, &e) && lin_dfs(s, done | 1u << i, h, e))
			return true;
	}
	return false;
}

static bool lin_check(struct lin_search *s, bool want_end)
{
	if (++memo_gen == 1u << 23) { /* the key's generation bits wrapped */
		memset(memo, 0, sizeof(memo));
		memo_gen = 1;
	}
	s->want_end = want_end;
	s->states = 0;
	s->overflow = false;
	return lin_dfs(s, 0, s->r->pre_held, s->r->pre_ever);
}

/* ---- a round -------------------------------------------------------------- */

static const char *lin_kind_name(uint8_t kind)
{
	static const char *const names[] = { "alloc", "alloc_at", "free", "is_allocated" };

	return names[kind];
}

static void lin_print_op(const struct lin_round *r, const struct lin_op *o, const char *who)
{
	char arg[48] = "", res[64];

	if (o->kind != LIN_ALLOC) {
		uint32_t off = o->arg - r->first;

		if (off < r->size)
			snprintf(arg, sizeof(arg), "%" PRIu32 " = first+%" PRIu32, o->arg, off);
		else
			snprintf(arg, sizeof(arg), "%" PRIu32 ", out of range", o->arg);
	}
	if (o->kind == LIN_IS_ALLOCATED)
		snprintf(res, sizeof(res), "%s", o->rc ? "true" : "false");
	else if (o->kind == LIN_ALLOC && o->rc == VMRES_OK)
		snprintf(res, sizeof(res), "0, id %" PRIu32 " = first+%" PRIu32, o->id,
			 o->id - r->first);
	else
		snprintf(res, sizeof(res), "%s", vmres_error_name(o->rc));
	fprintf(stderr, "  %s %s(%s) -> %s", who, lin_kind_name(o->kind), arg, res);
	if (o->inv || o->resp)
		fprintf(stderr, "   [%" PRIu64 ", %" PRIu64 "]", o->inv, o->resp);
	fprintf(stderr, "\n");
}

static void lin_print_set(const char *name, uint32_t mask)
{
	fprintf(stderr, "%s {", name);
	for (uint32_t i = 0; i < LIN_MAX_SIZE; i++) {
		if (mask & 1u << i)
			fprintf(stderr, " first+%" PRIu32, i);
	}
	fprintf(stderr, " }");
}

static void lin_print_state(const char *what, uint32_t held, uint32_t ever)
{
	fprintf(stderr, "  %s: ", what);
	lin_print_set("held", held);
	lin_print_set(", handed out since creation", ever);
	fprintf(stderr, "\n");
}

static int lin_by_inv(const void *a, const void *b)
{
	const struct lin_op *x = *(const struct lin_op *const *)a;
	const struct lin_op *y = *(const struct lin_op *const *)b;

	return x->inv < y->inv ? -1 : x->inv > y->inv;
}

/* The whole round, for a failure: replay with VMRES_TEST_SEED=@seed. */
static void lin_report(const struct lin_round *r, struct lin_search *s, uint64_t seed,
		       const char *why)
{
	const struct lin_op *sorted[LIN_MAX_OPS];

	fprintf(stderr,
		"stress_id_lin: %s\n  round %" PRIu64 " (round seed %" PRIu64 "), range [%" PRIu32
		", %" PRIu32 "] (%" PRIu32 " IDs), %" PRIu32 " threads\n",
		why, r->index, r->seed, r->first, lin_last(r), r->size, r->nthreads);
	fprintf(stderr,
		"  replay this round's calls (not their timing): VMRES_TEST_SEED=%" PRIu64
		" ./stress_id_lin\n",
		seed);
	fprintf(stderr, "  %" PRIu32 " sequential calls before the threads:\n", r->npre);
	for (uint32_t i = 0; i < r->npre; i++)
		lin_print_op(r, &r->pre[i], "main");
	lin_print_state("state before the threads", r->pre_held, r->pre_ever);
	if (s) {
		fprintf(stderr, "  the calls by invocation stamp [invocation, response]:\n");
		memcpy(sorted, s->op, s->n * sizeof(sorted[0]));
		qsort(sorted, s->n, sizeof(sorted[0]), lin_by_inv);
		for (uint32_t i = 0; i < s->n; i++) {
			char who[16];

			snprintf(who, sizeof(who), "t%u", (unsigned int)sorted[i]->thread);
			lin_print_op(r, sorted[i], who);
		}
		lin_print_state("state read back after the join", r->end_held, r->end_ever);
	}
}

/* The sequential calls that bring a fresh allocator to a random state. */
static bool lin_pre_state(struct lin_round *r, uint64_t *rng, uint64_t seed)
{
	r->npre = 0;
	r->pre_held = 0;
	r->pre_ever = 0;
	if (vmres_test_rand_below(rng, 2))
		return true;
	r->npre = (uint32_t)vmres_test_rand_below(rng, 2 * r->size + 1);
	for (uint32_t i = 0; i < r->npre; i++) {
		struct lin_op *o = &r->pre[i];
		uint32_t p = (uint32_t)vmres_test_rand_below(rng, 10);

		*o = (struct lin_op){ .kind = p < 4 ? LIN_ALLOC : p < 6 ? LIN_ALLOC_AT : LIN_FREE };
		if (o->kind != LIN_ALLOC)
			o->arg = r->first + (uint32_t)vmres_test_rand_below(rng, r->size);
		lin_call(r->ids, o);
		if (!lin_apply(r, o, &r->pre_held, &r->pre_ever)) {
			r->npre = i + 1;
			lin_report(r, NULL, seed,
				   "a sequential call before the threads ran "
				   "answered against the spec (the last one)");
			return false;
		}
	}
	return true;
}

/* Reads the state back, sequentially: is_allocated, then free on the free IDs. */
static bool lin_read_back(struct lin_round *r, struct lin_search *s, uint64_t seed)
{
	r->end_held = 0;
	r->end_ever = 0;
	for (uint32_t i = 0; i < r->size; i++) {
		if (vmres_id_is_allocated(r->ids, r->first + i))
			r->end_held |= 1u << i;
	}
	r->end_ever = r->end_held;
	for (uint32_t i = 0; i < r->size; i++) {
		int rc;

		if (r->end_held & 1u << i)
			continue;
		rc = vmres_id_free(r->ids, r->first + i);
		if (rc == VMRES_E_ALREADY_FREED) {
			r->end_ever |= 1u << i;
		} else if (rc != VMRES_E_NEVER_ALLOCATED) {
			char why[160];

			snprintf(why, sizeof(why),
				 "after the join, free(first+%" PRIu32 ") gave %s although "
				 "is_allocated() had just said false",
				 i, vmres_error_name(rc));
			lin_report(r, s, seed, why);
			return false;
		}
	}
	return true;
}

struct lin_totals {
	uint64_t rounds;
	uint64_t ops;
	uint64_t pre_rounds;
	uint64_t overlap_rounds; /* with two calls of different threads overlapping */
	uint64_t overlaps;	 /* such pairs */
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
	r.size = LIN_MIN_SIZE +
		 (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_SIZE - LIN_MIN_SIZE + 1);
	where = (uint32_t)vmres_test_rand_below(&rng, 3);
	if (where == 0)
		r.first = 0;
	else if (where == 1)
		r.first = UINT32_MAX - (r.size - 1);
	else
		r.first = 1 + (uint32_t)vmres_test_rand_below(&rng, UINT32_MAX - 2 * LIN_MAX_SIZE);
	r.nthreads = LIN_MIN_THREADS +
		     (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_THREADS - LIN_MIN_THREADS + 1);
	r.yield_every = 1u << (2 * vmres_test_rand_below(&rng, 5)); /* 1 .. 256 */
	r.delay_max = (uint32_t)vmres_test_rand_below(&rng, 4) * 32;
	r.op_yield = vmres_test_rand_below(&rng, 2) ? 0 : 8;
	for (uint32_t t = 0; t < r.nthreads; t++)
		r.nops[t] = 3 + (uint32_t)vmres_test_rand_below(&rng, LIN_MAX_THREAD_OPS - 2);
	assert_int_equal(vmres_id_allocator_create_ex(r.first, lin_last(&r), &ops, &r.ids),
			 VMRES_OK);
	batch[nbatch++] = r.ids;
	if (!lin_pre_state(&r, &rng, seed))
		return false;
	tot->pre_rounds += r.npre > 0;

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
	if (vmres__id_check(r.ids, NULL) != 0) {
		lin_report(&r, &s, seed,
			   "the history is linearizable, but vmres__id_check() failed after it");
		return false;
	}
	{
		uint64_t pairs = 0;

		for (uint32_t i = 0; i < s.n; i++) {
			for (uint32_t j = i + 1; j < s.n; j++) {
				if (s.op[i]->thread != s.op[j]->thread &&
				    s.op[i]->inv < s.op[j]->resp && s.op[j]->inv < s.op[i]->resp)
					pairs++;
			}
		}
		tot->overlaps += pairs;
		tot->overlap_rounds += pairs > 0;
	}
	tot->rounds++;
	tot->ops += s.n;
	tot->states += s.states;
	if (s.states > tot->max_states)
		tot->max_states = s.states;
	if (nbatch == LIN_BATCH)
		lin_flush();
	return true;
}

static void test_id_lin_histories(void **state)
{
	(void)state;
	uint64_t seed = vmres_test_seed("VMRES_TEST_SEED", "test_id_lin_histories");
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
	printf("stress_id_lin: %.2f s, %" PRIu64 " rounds (%" PRIu64 " from a random state), "
	       "%" PRIu64 " calls; %" PRIu64 " rounds had calls of two threads overlapping, "
	       "%" PRIu64 " such pairs; search: %" PRIu64 " states, at most %" PRIu64
	       " in a round\n",
	       vmres_test_now() - start, tot.rounds, tot.pre_rounds, tot.ops, tot.overlap_rounds,
	       tot.overlaps, tot.states, tot.max_states);
	if (!ok)
		fail_msg("stress_id_lin: a round broke the spec (above); seed %" PRIu64, seed);
	/* Every allocator gave all its memory back. */
	assert_int_equal(vmres_test_mem_live_blocks(&lin_mem), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_lin_histories),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
