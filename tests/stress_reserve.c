/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The rollback reserve (src/system_reserve.c) under its own race: rollback
 * threads pop it while other threads push its blocks back, refills open
 * chunks, reusing closed headers, and shrinks close them and unlink them
 * from their class's list, all at once.
 *
 * Threads (7, more than the 2 CPUs of the CI machines, so they are also
 * preempted between a load and its CAS, or in the middle of a refill or a
 * shrink):
 *   - POPPERS rollback threads: inside vmres__rollback_enter() their hook
 *     fails, so sys->kind_mem.alloc() of 128 B or 2 KiB takes a reserve
 *     block; each fills its blocks with an owner tag, then gives half back
 *     at once and queues the others;
 *   - PUSHERS stand in for liburcu's call_rcu thread: they give queued
 *     blocks back from a thread that did not take them, in tides (they
 *     wait until TIDE_HIGH blocks are queued, then drain the queue), so
 *     classes grow by several chunks and shrink back again and again;
 *   - a refiller allocates and frees hook blocks outside any rollback: its
 *     allocations start refills, its frees walk the lists for a block that
 *     is no reserve block;
 *   - a list walker follows each class's list as kind_mem_free() does,
 *     yielding in its first WALK_YIELD_STEPS steps, so it stands on chunks
 *     that are unlinked and linked again meanwhile.
 * The hook yields in half of its arena allocations and frees (ARENA_BYTES,
 * a refill chunk's arena in both classes) to widen the refill and shrink
 * windows, and refuses one arena in ARENA_FAIL_PERIOD, so a refill that
 * reused a closed header must unlink it again.
 *
 * Checked while racing: a block's owner tag is intact when it is given back
 * (no block is handed out twice); every free the hook gets is of one of its
 * own blocks, given once and with its size (a reserve block whose chunk a
 * free's walk missed would come here), and it poisons what it frees (a
 * header read after its free shows no valid link); every walk of a list
 * ends at the base within WALK_STEPS_MAX steps (more means a cycle: the
 * process aborts, since threads inside the library could never leave it)
 * and meets only whole headers. At the end, every block back, per class: the stacked
 * blocks equal the blocks of open chunks and the stacked count; the class
 * holds [target, target + quantum) blocks; busy and again are 0; the list
 * holds only open chunks and the base, the closed stack only closed
 * headers, and the two hold every header made exactly once. After destroy,
 * nothing is left at the hook. The run shows, or the test fails: reserve
 * blocks lent, completed tides, header reuses, refused reopens, closes,
 * hook blocks freed past the lists, and walks.
 *
 * Bounded by VMRES_STRESS_SECONDS (default 2 s), counted by every thread
 * from a start gate they pass together; the poppers and the refiller go on
 * past a short deadline only while the run has not shown all of the above
 * (keep_going()), for EVIDENCE_EXTRA_S at most; then the pushers drain the
 * queue and the walker stops. No thread registers with RCU: the hook's
 * wrappers do not use it.
 */
#include "vmres_test.h"

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal/system.h"

#define POPPERS 3
#define PUSHERS 2
#define REFILLERS 1
#define WALKERS 1
#define THREADS (POPPERS + PUSHERS + REFILLERS + WALKERS)
#define TAKE_MAX 8	    /* blocks a popper takes in one rollback */
#define TIDE_HIGH 224	    /* queued blocks at which the pushers drain the queue */
#define QUEUE_CAP 1024	    /* more than TIDE_HIGH + POPPERS * TAKE_MAX */
#define ARENA_BYTES 8192u   /* a refill chunk's arena: 64 x 128 B or 4 x 2 KiB */
#define ARENA_FAIL_PERIOD 4 /* the hook refuses one refill arena in 4 */
#define WALK_STEPS_MAX (1u << 20)
#define WALK_YIELD_STEPS 16 /* the walker yields only this far: a cycle aborts soon */
#define ERRORS_PRINTED 20
#define EVIDENCE_EXTRA_S 10.0
#define HOOK_MAGIC 0x766d7265732d686bull

_Static_assert(VMRES__RESERVE_SMALL_BLOCK *(VMRES__RESERVE_SMALL_COUNT / 4) == ARENA_BYTES &&
		       VMRES__RESERVE_LARGE_BLOCK * (VMRES__RESERVE_LARGE_COUNT / 4) == ARENA_BYTES,
	       "a refill chunk's arena is ARENA_BYTES in both classes");

static int errors;

/* Counts a failed check; prints the first ERRORS_PRINTED. */
#define CHECK(cond, ...)                                                                  \
	do {                                                                              \
		if (!(cond) &&                                                            \
		    __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED) <= ERRORS_PRINTED) { \
			fprintf(stderr, "stress_reserve: " __VA_ARGS__);                  \
			fputc('\n', stderr);                                              \
		}                                                                         \
	} while (0)

/*
 * The hook: aligned_alloc() with a 16-byte header before each block (its
 * address xor HOOK_MAGIC, and its size), so a free of anything else, or of
 * a block twice, is counted and not passed on. Static, as the system: a
 * failed assertion returns at once and the teardown destroys the system,
 * whose frees still come here.
 */
struct hook {
	int64_t live; /* blocks */
	bool counting;
	/* while counting, by class (a header's size tells it) */
	uint64_t header_allocs[VMRES__RESERVE_CLASSES], header_frees[VMRES__RESERVE_CLASSES];
	uint64_t arena_allocs, arena_refusals, arena_frees;
};
static struct hook hook;
static _Thread_local bool hook_refuses; /* a popper inside its rollback */
static _Thread_local uint64_t rng;	/* this thread's, seeded at its start */

struct hook_header {
	uint64_t check; /* HOOK_MAGIC ^ the block's address, 0 once freed */
	uint64_t size;
};

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* A refill chunk header's size in class @cls, or -1. */
static int header_class(size_t size)
{
	static const size_t quanta[VMRES__RESERVE_CLASSES] = { VMRES__RESERVE_SMALL_COUNT / 4,
							       VMRES__RESERVE_LARGE_COUNT / 4 };

	for (int i = 0; i < VMRES__RESERVE_CLASSES; i++)
		if (size == sizeof(struct vmres__reserve_chunk) + quanta[i] * sizeof(uint64_t))
			return i;
	return -1;
}

static void *hook_alloc(void *ctx, size_t size)
{
	struct hook *h = ctx;
	bool counting = __atomic_load_n(&h->counting, __ATOMIC_RELAXED);
	struct hook_header *hdr;
	int cls;

	if (hook_refuses)
		return NULL;
	if (counting && size == ARENA_BYTES) {
		if (vmres_test_rand_below(&rng, 2))
			sched_yield(); /* inside a refill: widen it */
		if (vmres_test_rand_below(&rng, ARENA_FAIL_PERIOD) == 0) {
			count(&h->arena_refusals);
			return NULL;
		}
	}
	hdr = aligned_alloc(16, sizeof(*hdr) + (size + 15) / 16 * 16);
	if (!hdr)
		return NULL;
	__atomic_store_n(&hdr->check, HOOK_MAGIC ^ (uintptr_t)(hdr + 1), __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->size, size, __ATOMIC_RELAXED);
	__atomic_add_fetch(&h->live, 1, __ATOMIC_RELAXED);
	if (counting && size == ARENA_BYTES)
		count(&h->arena_allocs);
	else if (counting && (cls = header_class(size)) >= 0)
		count(&h->header_allocs[cls]);
	return hdr + 1;
}

static void hook_free(void *ctx, void *p, size_t size)
{
	struct hook *h = ctx;
	bool counting = __atomic_load_n(&h->counting, __ATOMIC_RELAXED);
	struct hook_header *hdr = (struct hook_header *)p - 1;
	uint64_t check = HOOK_MAGIC ^ (uintptr_t)p;
	int cls;

	/* Atomic loads: for a reserve block, hdr is the end of the block before
	 * it, which its owner may be writing. */
	if (__atomic_load_n(&hdr->size, __ATOMIC_RELAXED) != size ||
	    !__atomic_compare_exchange_n(&hdr->check, &check, 0, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED)) {
		CHECK(false, "the hook got %p (%zu bytes): not its block, or freed twice", p, size);
		return; /* leaked: better than freeing what is not ours */
	}
	if (counting && size == ARENA_BYTES) {
		count(&h->arena_frees);
		if (vmres_test_rand_below(&rng, 2))
			sched_yield(); /* inside a shrink */
	} else if (counting && (cls = header_class(size)) >= 0) {
		count(&h->header_frees[cls]);
	}
	/* Poisoned: a header read after its free has no valid link or count. */
	memset(hdr + 1, 0xa5, size);
	free(hdr);
	__atomic_sub_fetch(&h->live, 1, __ATOMIC_RELAXED);
}

/*
 * The system under test (static, see struct hook): teardown_system()
 * destroys what a failed assertion left, once the threads are joined.
 */
static struct vmres_system *sys;
static bool threads_joined;
static struct vmres_test_gate gate;
static uint64_t base_seed;

/* What the run showed (keep_going()). */
static uint64_t blocks_lent, tides, hook_blocks_freed, walks;
static uint64_t producers_left; /* poppers and refillers still running */

/* Blocks the poppers queued for the pushers. */
struct lent {
	uint64_t *p;
	size_t size; /* asked for, and given back with */
	uint64_t tag;
};
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lent queue[QUEUE_CAP];
static unsigned queued;
static bool draining; /* atomic: the pushers drain the queue (a tide's ebb) */

static bool evidence_missing(void)
{
	uint64_t headers = 0, header_frees = 0;

	for (int i = 0; i < VMRES__RESERVE_CLASSES; i++) {
		headers += load(&hook.header_allocs[i]);
		header_frees += load(&hook.header_frees[i]);
	}
	/* A refill makes a header, or opens a reused one with an arena; a new
	 * header whose arena the hook refuses is freed at once. So more arenas
	 * than headers means reuses; more refusals than header frees, a reused
	 * header refused. */
	return !load(&blocks_lent) || load(&tides) < 2 || !load(&hook_blocks_freed) ||
	       !load(&walks) || !load(&hook.arena_frees) || load(&hook.arena_allocs) <= headers ||
	       load(&hook.arena_refusals) <= header_frees;
}

static bool keep_going(double deadline)
{
	double now = vmres_test_now();

	return now < deadline || (now < deadline + EVIDENCE_EXTRA_S && evidence_missing());
}

static void give_back(const struct lent *l)
{
	size_t words = l->size / sizeof(uint64_t);

	for (size_t i = 0; i < words; i++) {
		/* Relaxed atomics: a block handed out twice is written by both. */
		uint64_t w = __atomic_load_n(&l->p[i], __ATOMIC_RELAXED);

		if (w != l->tag) {
			CHECK(false, "block %p word %zu: %#" PRIx64 ", its owner wrote %#" PRIx64,
			      (void *)l->p, i, w, l->tag);
			break;
		}
	}
	for (size_t i = 0; i < words; i++)
		__atomic_store_n(&l->p[i], ~l->tag, __ATOMIC_RELAXED);
	sys->kind_mem.free(sys->kind_mem.ctx, l->p, l->size);
}

static void *popper(void *arg)
{
	uint64_t me = (uint64_t)(uintptr_t)arg, seq = 0;
	double deadline = vmres_test_gate_pass(&gate);

	rng = base_seed ^ (me * 0x9e3779b97f4a7c15ull);
	while (keep_going(deadline)) {
		struct lent mine[TAKE_MAX];
		unsigned n = 0, want = 1 + (unsigned)vmres_test_rand_below(&rng, TAKE_MAX);

		vmres__rollback_enter();
		hook_refuses = true;
		while (n < want) {
			size_t size = vmres_test_rand_below(&rng, 4) ? VMRES__RESERVE_SMALL_BLOCK
								     : VMRES__RESERVE_LARGE_BLOCK;
			uint64_t *p = sys->kind_mem.alloc(sys->kind_mem.ctx, size);

			if (!p)
				break; /* dry until a refill */
			CHECK((uintptr_t)p % 16 == 0, "reserve block %p not 16-aligned", (void *)p);
			mine[n] = (struct lent){ p, size, (me + 1) << 48 | ++seq };
			for (size_t i = 0; i < size / sizeof(uint64_t); i++)
				__atomic_store_n(&p[i], mine[n].tag, __ATOMIC_RELAXED);
			n++;
		}
		hook_refuses = false;
		vmres__rollback_leave();
		__atomic_add_fetch(&blocks_lent, n, __ATOMIC_RELAXED);

		for (unsigned i = 0; i < n; i++) {
			bool queue_it = !__atomic_load_n(&draining, __ATOMIC_RELAXED) &&
					vmres_test_rand_below(&rng, 2);

			if (queue_it) {
				pthread_mutex_lock(&queue_lock);
				if (queued < QUEUE_CAP) {
					queue[queued++] = mine[i];
					if (queued >= TIDE_HIGH)
						__atomic_store_n(&draining, true, __ATOMIC_RELAXED);
				} else {
					queue_it = false;
				}
				pthread_mutex_unlock(&queue_lock);
			}
			if (!queue_it)
				give_back(&mine[i]);
		}
	}
	__atomic_sub_fetch(&producers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *pusher(void *arg)
{
	double deadline = vmres_test_gate_pass(&gate);

	(void)deadline; /* runs until the producers are done and the queue is empty */
	rng = base_seed ^ ((uint64_t)(uintptr_t)arg << 20) ^ 0x5bd1e995u;
	for (;;) {
		bool done = !__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE);
		struct lent l;

		pthread_mutex_lock(&queue_lock);
		if (!queued || (!done && !__atomic_load_n(&draining, __ATOMIC_RELAXED))) {
			bool empty = !queued;

			pthread_mutex_unlock(&queue_lock);
			if (done && empty)
				return NULL;
			sched_yield();
			continue;
		}
		unsigned k = (unsigned)vmres_test_rand_below(&rng, queued);

		l = queue[k];
		queue[k] = queue[--queued];
		if (!queued && __atomic_load_n(&draining, __ATOMIC_RELAXED)) {
			__atomic_store_n(&draining, false, __ATOMIC_RELAXED);
			count(&tides);
		}
		pthread_mutex_unlock(&queue_lock);
		give_back(&l);
	}
}

static void *refiller(void *arg)
{
	double deadline = vmres_test_gate_pass(&gate);

	rng = base_seed ^ ((uint64_t)(uintptr_t)arg << 30) ^ 0x2545f491u;
	while (keep_going(deadline)) {
		/* Outside a rollback: a hook block, and a refill if a class is short. */
		void *p = sys->kind_mem.alloc(sys->kind_mem.ctx, 64);

		CHECK(p != NULL, "the hook refused a 64-byte block");
		if (p) {
			/* Not a reserve block: the free walks both lists to the end. */
			sys->kind_mem.free(sys->kind_mem.ctx, p, 64);
			count(&hook_blocks_freed);
		}
	}
	__atomic_sub_fetch(&producers_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One walk of @c's list with acquire loads, as kind_mem_free() walks it. */
static void walk_list(unsigned cls)
{
	struct vmres__reserve_class *c = &sys->reserve.cls[cls];
	struct vmres__reserve_chunk *ch, *last = NULL;
	uint32_t quantum = c->target / 4;
	unsigned steps = 0;

	for (ch = __atomic_load_n(&c->chunks, __ATOMIC_ACQUIRE); ch;
	     ch = __atomic_load_n(&ch->older, __ATOMIC_ACQUIRE)) {
		if (++steps > WALK_STEPS_MAX) {
			fprintf(stderr,
				"stress_reserve: class %u: a walk of its list took %u steps: "
				"a cycle, which threads inside the library never leave\n",
				cls, steps);
			abort();
		}
		/* Whole: a header is published (release) after it is written. */
		if (ch == &c->base)
			CHECK(ch->count == c->target, "class %u: the base holds %" PRIu32 " blocks",
			      cls, ch->count);
		else
			CHECK(ch->count == quantum && ch->next == (uint64_t *)(void *)(ch + 1),
			      "class %u: chunk %p: count %" PRIu32 ", next %p: not whole", cls,
			      (void *)ch, ch->count, (void *)ch->next);
		if (steps <= WALK_YIELD_STEPS && vmres_test_rand_below(&rng, 4) == 0)
			sched_yield(); /* stand on ch while it may leave and join again */
		last = ch;
	}
	CHECK(last == &c->base, "class %u: a walk of the list ended at %p, not the base", cls,
	      (void *)last);
}

static void *walker(void *arg)
{
	double deadline = vmres_test_gate_pass(&gate);

	(void)deadline; /* runs until the producers are done */
	rng = base_seed ^ ((uint64_t)(uintptr_t)arg << 40) ^ 0x68e31da4u;
	while (__atomic_load_n(&producers_left, __ATOMIC_ACQUIRE)) {
		for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++)
			walk_list(cls);
		count(&walks);
	}
	return NULL;
}

/*
 * Every block back: the class is settled (see the top of the file). Run by
 * the main thread after the joins, so plain reads see every thread's writes.
 */
static void check_class(unsigned cls, unsigned *chunks_listed, unsigned *headers_closed)
{
	struct vmres__reserve_class *c = &sys->reserve.cls[cls];
	unsigned blocks = vmres__reserve_blocks(sys, cls);
	unsigned stacked = vmres__reserve_free_blocks(sys, cls);
	uint32_t quantum = c->target / 4;
	uint64_t headers = hook.header_allocs[cls] - hook.header_frees[cls];
	unsigned listed = 0, closed = 0;
	struct vmres__reserve_chunk *last = NULL;

	print_message("class %u: %u blocks, %u stacked, count %" PRId64 ", target %" PRIu32
		      "; busy %" PRIuPTR ", again %" PRIuPTR "\n",
		      cls, blocks, stacked, (int64_t)c->stacked, c->target, c->busy, c->again);
	CHECK(stacked == blocks, "class %u: %u blocks stacked of %u open", cls, stacked, blocks);
	CHECK((int64_t)c->stacked == (int64_t)stacked,
	      "class %u: stacked count %" PRId64 ", stacks hold %u", cls, (int64_t)c->stacked,
	      stacked);
	CHECK(blocks >= c->target && blocks < c->target + quantum,
	      "class %u: %u blocks, not in [%" PRIu32 ", %" PRIu32 ")", cls, blocks, c->target,
	      c->target + quantum);
	CHECK(c->busy == 0 && c->again == 0, "class %u: busy %" PRIuPTR ", again %" PRIuPTR, cls,
	      c->busy, c->again);
	for (struct vmres__reserve_chunk *ch = c->chunks; ch && listed <= headers; ch = ch->older) {
		CHECK((ch->head & 0xffffffffu) != 0xffffffffu && ch->arena,
		      "class %u: listed chunk %p is closed", cls, (void *)ch);
		listed += ch != &c->base;
		last = ch;
	}
	CHECK(last == &c->base && listed <= headers,
	      "class %u: the list ends at %p after %u chunks (%" PRIu64 " headers made)", cls,
	      (void *)last, listed, headers);
	for (struct vmres__reserve_chunk *ch = c->closed; ch && closed <= headers;
	     ch = ch->closed_next) {
		CHECK(ch != &c->base && (ch->head & 0xffffffffu) == 0xffffffffu && !ch->arena,
		      "class %u: chunk %p on the closed stack is open (or the base)", cls,
		      (void *)ch);
		for (struct vmres__reserve_chunk *l = c->chunks; l; l = l->older)
			CHECK(l != ch, "class %u: chunk %p both listed and closed", cls,
			      (void *)ch);
		closed++;
	}
	CHECK(listed + closed == headers,
	      "class %u: %u listed and %u closed headers, %" PRIu64 " made and kept", cls, listed,
	      closed, headers);
	*chunks_listed = listed;
	*headers_closed = closed;
}

static void test_reserve_stress_refill_shrink_race(void **state)
{
	(void)state;
	struct vmres_mem_ops ops = { hook_alloc, hook_free, &hook };
	struct vmres_layout layout;
	pthread_t t[THREADS];
	void *(*fn[THREADS])(void *);
	unsigned n = 0, listed[VMRES__RESERVE_CLASSES], closed[VMRES__RESERVE_CLASSES];

	base_seed = vmres_test_seed("VMRES_TEST_SEED", "stress_reserve");
	hook = (struct hook){ 0 };
	errors = 0;
	blocks_lent = tides = hook_blocks_freed = walks = 0;
	queued = 0;
	draining = false;
	producers_left = POPPERS + REFILLERS;
	threads_joined = false;
	vmres_layout_x86_64_default(&layout);
	assert_int_equal(vmres_system_create_ex(&layout, &ops, &sys), VMRES_OK);
	__atomic_store_n(&hook.counting, true, __ATOMIC_RELAXED);

	for (unsigned i = 0; i < POPPERS; i++)
		fn[n++] = popper;
	for (unsigned i = 0; i < REFILLERS; i++)
		fn[n++] = refiller;
	for (unsigned i = 0; i < PUSHERS; i++)
		fn[n++] = pusher;
	for (unsigned i = 0; i < WALKERS; i++)
		fn[n++] = walker;
	vmres_test_gate_init(&gate, THREADS, vmres_test_stress_seconds(2.0));
	for (uintptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fn[i], (void *)i), 0);
	for (unsigned i = 0; i < THREADS; i++) /* offline meanwhile (qsbr) */
		assert_int_equal(vmres_test_join(t[i]), 0);
	threads_joined = true;
	vmres_test_gate_destroy(&gate);
	__atomic_store_n(&hook.counting, false, __ATOMIC_RELAXED);

	print_message("%" PRIu64 " reserve blocks lent, %" PRIu64 " tides, %" PRIu64
		      " hook blocks freed past the lists, %" PRIu64 " walks; arenas: %" PRIu64
		      " opened, %" PRIu64 " refused, %" PRIu64 " closed; headers made %" PRIu64
		      " + %" PRIu64 ", freed %" PRIu64 " + %" PRIu64 "\n",
		      blocks_lent, tides, hook_blocks_freed, walks, hook.arena_allocs,
		      hook.arena_refusals, hook.arena_frees, hook.header_allocs[0],
		      hook.header_allocs[1], hook.header_frees[0], hook.header_frees[1]);
	assert_int_equal(queued, 0);
	for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++)
		check_class(cls, &listed[cls], &closed[cls]);
	print_message("at the end: %u + %u refill chunks open, %u + %u headers closed\n", listed[0],
		      listed[1], closed[0], closed[1]);
	assert_int_equal(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0);
	assert_false(evidence_missing());

	vmres_system_destroy(sys);
	sys = NULL;
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&errors, __ATOMIC_RELAXED), 0); /* fini's frees */
	assert_int_equal(__atomic_load_n(&hook.live, __ATOMIC_RELAXED), 0);
}

/* After a failed assertion: the system the test left goes, once its
 * threads are joined. */
static int teardown_system(void **state)
{
	(void)state;
	vmres_test_drop_system(&sys, threads_joined);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_reserve_stress_refill_shrink_race, teardown_system),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
