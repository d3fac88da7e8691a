/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Hotplug threads race batches (device ID, PIO, MMIO32, legacy IRQ, MSI GSI)
 * for the last legacy IRQs while vCPU-like threads look ports up.
 *
 * Checked: every resource is owned by one batch at a time (an ownership
 * word per ID, per PIO slot and per MMIO32 page, claimed by CAS after the
 * batch succeeds);
 * a losing batch fails with VMRES_E_EXHAUSTED at the IRQ's index and is
 * fully rolled back (afterwards nothing is left allocated, and the system's
 * rollback counter equals the losses seen); a lookup of a port whose owner
 * word is the same before and after the lookup returns that owner's tag.
 * The thread count is fixed (HOTPLUG_THREADS + LOOKUP_THREADS = 8), more
 * than the cores of the 2-CPU CI machines, so threads are also preempted in
 * the middle of batches there; each run is bounded by VMRES_STRESS_SECONDS
 * (default 2 s), which every thread counts from a start gate they all pass
 * together (vmres_test_gate_pass()).
 */
#include "vmres_test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal/system.h"

#define HOTPLUG_THREADS 6
#define LOOKUP_THREADS 2
#define HOLD_MAX 3 /* batches a hotplug thread holds at most */
#define PIO_SLOT 0x10u
#define PIO_SLOTS (0x10000u / PIO_SLOT)
#define IRQ_FIRST 5u
#define IRQ_COUNT 8u /* fewer than HOTPLUG_THREADS * HOLD_MAX: a real race */
#define DEV_COUNT 256u
#define MSI_FIRST 24u
#define MSI_COUNT 4072u
#define BATCH 5
#define MMIO_PAGE 0x1000u
#define MMIO_SLOTS 0x28000u /* pages of the default MMIO32 span, 640 MiB */

/*
 * The system under test and the hook it allocates through are file-scope,
 * not on a test's stack: a failed assertion returns from the test at once,
 * and teardown_system() then destroys the system (once its threads are
 * joined), so none of its RCU callbacks later writes into a stack frame
 * that is gone or into the next test's hook.
 */
static struct vmres_system *sys;
static struct vmres_test_mem mem;
static bool threads_joined;
static struct vmres_test_gate gate; /* every hotplug and lookup thread */
static uint64_t base_seed;

/* Ownership words: 0 free, else the owning batch's token. */
static uint64_t pio_owner[PIO_SLOTS];
static uint64_t irq_owner[IRQ_COUNT];
static uint64_t dev_owner[DEV_COUNT];
static uint64_t msi_owner[MSI_COUNT];
static uint64_t mmio_owner[MMIO_SLOTS];
static uint64_t mmio_first; /* the MMIO32 span's first address */

/* Results, summed by the threads (checked by the main thread). */
static uint64_t batches_ok, batches_lost, bad_errors, double_owned, free_errors;
static uint64_t lookups_checked, wrong_lookups, batches_nomem, frees_nomem;

/*
 * The flaky memory hook of the second test: every FLAKY_PERIOD-th allocation
 * fails, whichever thread makes it (rollbacks included).
 */
#define FLAKY_PERIOD 61
static bool flaky;
static bool flaky_on;
static uint64_t flaky_calls;
static struct vmres_mem_ops flaky_base;

static void count(uint64_t *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static bool seen(uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED) != 0;
}

/*
 * What run_race() and the flaky test assert happened at least once: batches
 * taken and lost, lookups checked; with the flaky hook, batches out of
 * memory and rollbacks served by the reserve.
 */
static bool evidence_missing(void)
{
	struct vmres_system_counters c;

	if (!seen(&batches_ok) || !seen(&batches_lost) || !seen(&lookups_checked))
		return true;
	if (!flaky)
		return false;
	return !seen(&batches_nomem) || vmres_system_counters(sys, &c) || !c.reserve_fallbacks;
}

/*
 * Whether a hotplug or lookup thread goes round again. Past its deadline it
 * goes on while evidence is missing (a very short VMRES_STRESS_SECONDS, or
 * a lookup thread that ran its whole time before anything was plugged), for
 * EVIDENCE_EXTRA_S at most: then the assertions fail.
 */
#define EVIDENCE_EXTRA_S 10.0
static bool keep_going(double deadline)
{
	double now = vmres_test_now();

	return now < deadline || (now < deadline + EVIDENCE_EXTRA_S && evidence_missing());
}

/* Claim after the batch succeeded: a CAS from 0 that fails means two owners. */
static void claim(uint64_t *word, uint64_t token)
{
	uint64_t expected = 0;

	/* Release: pairs with the lookup threads' acquire load of the word. */
	if (!__atomic_compare_exchange_n(word, &expected, token, false, __ATOMIC_RELEASE,
					 __ATOMIC_RELAXED))
		count(&double_owned);
}

/* Give up before the free, so "word == token" implies "still allocated". */
static void unclaim(uint64_t *word, uint64_t token)
{
	uint64_t expected = token;

	if (!__atomic_compare_exchange_n(word, &expected, 0, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_RELAXED))
		count(&double_owned);
}

struct held {
	uint64_t token;
	struct vmres_resource res[BATCH];
};

static void set_ownership(const struct held *h, bool own)
{
	uint64_t *words[] = {
		&dev_owner[h->res[0].range.start],
		&pio_owner[h->res[1].range.start / PIO_SLOT],
		&mmio_owner[(h->res[2].range.start - mmio_first) / MMIO_PAGE],
		&irq_owner[h->res[3].range.start - IRQ_FIRST],
		&msi_owner[h->res[4].range.start - MSI_FIRST],
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (own)
			claim(words[i], h->token);
		else
			unclaim(words[i], h->token);
	}
}

static bool plug(struct held *h, uint64_t token)
{
	const struct vmres_request reqs[BATCH] = {
		{ .kind = VMRES_DEVICE_ID, .size = 1, .align = 1, .tag = token },
		{ .kind = VMRES_PIO, .size = PIO_SLOT, .align = PIO_SLOT, .tag = token },
		{ .kind = VMRES_MMIO32, .size = MMIO_PAGE, .align = MMIO_PAGE, .tag = token },
		{ .kind = VMRES_LEGACY_IRQ, .size = 1, .align = 1, .tag = token },
		{ .kind = VMRES_MSI_GSI, .size = 1, .align = 1, .tag = token },
	};
	size_t failed;
	int err = vmres_system_allocate_ex(sys, reqs, BATCH, h->res, &failed);

	if (err) {
		/* Only the IRQs are scarce (and memory, when flaky): else a bug. */
		if (err == VMRES_E_EXHAUSTED && failed == 3)
			count(&batches_lost);
		else if (err == VMRES_E_NOMEM && flaky && failed < BATCH)
			count(&batches_nomem);
		else
			count(&bad_errors);
		return false;
	}
	h->token = token;
	set_ownership(h, true);
	count(&batches_ok);
	return true;
}

static void unplug(struct held *h)
{
	size_t done = 0, failed;
	int err;

	set_ownership(h, false);
	/* A free that runs out of memory stops at its index: resume there. */
	while ((err = vmres_system_free_ex(sys, h->res + done, BATCH - done, &failed)) ==
		       VMRES_E_NOMEM &&
	       flaky) {
		count(&frees_nomem);
		done += failed;
	}
	if (err)
		count(&free_errors);
}

static void *flaky_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (__atomic_load_n(&flaky_on, __ATOMIC_RELAXED) &&
	    __atomic_add_fetch(&flaky_calls, 1, __ATOMIC_RELAXED) % FLAKY_PERIOD == 0)
		return NULL;
	return flaky_base.alloc(flaky_base.ctx, size);
}

static void flaky_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	flaky_base.free(flaky_base.ctx, p, size);
}

static void *hotplug_thread(void *arg)
{
	uint64_t me = (uint64_t)(uintptr_t)arg;
	uint64_t rng = base_seed ^ (me * 0x9e3779b97f4a7c15ull);
	struct held held[HOLD_MAX];
	size_t nheld = 0;
	uint64_t seq = 0;
	double deadline = vmres_test_gate_pass(&gate);

	vmres_thread_register();
	while (keep_going(deadline)) {
		vmres_thread_quiescent(); /* qsbr builds: let grace periods end */
		bool want_plug = nheld < HOLD_MAX && (nheld == 0 || vmres_test_rand_below(&rng, 2));

		if (want_plug) {
			uint64_t token = ((me + 1) << 40) | ++seq;

			if (plug(&held[nheld], token))
				nheld++;
		} else {
			size_t victim = (size_t)vmres_test_rand_below(&rng, nheld);

			unplug(&held[victim]);
			held[victim] = held[--nheld];
		}
	}
	while (nheld)
		unplug(&held[--nheld]);
	vmres_thread_unregister();
	return NULL;
}

static void *lookup_thread(void *arg)
{
	uint64_t rng = base_seed ^ ((uint64_t)(uintptr_t)arg << 17) ^ 0x5bd1e995u;
	double deadline = vmres_test_gate_pass(&gate);

	vmres_thread_register();
	while (keep_going(deadline)) {
		/* FIRST fit packs the live ranges (at most 18) into the lowest slots. */
		uint64_t slot = vmres_test_rand_below(&rng, 4 * HOTPLUG_THREADS * HOLD_MAX);
		uint64_t port = slot * PIO_SLOT + vmres_test_rand_below(&rng, PIO_SLOT);
		/* Acquire: pairs with claim(), so the allocation happened before. */
		uint64_t before = __atomic_load_n(&pio_owner[slot], __ATOMIC_ACQUIRE);
		struct vmres_resource hit;
		int err;

		vmres_thread_quiescent();
		if (!before)
			continue;
		err = vmres_system_lookup(sys, VMRES_PIO, port, &hit);
		/*
		 * Seqlock-style re-check: if the free had been visible to the lookup,
		 * the unclaim before it would be visible to this read. A
		 * read-don't-modify-write with release order keeps the lookup's reads
		 * before it (Boehm, "Can seqlocks get along with programming language
		 * memory models?", 2012), and unlike a fence TSAN understands it.
		 */
		if (__atomic_fetch_add(&pio_owner[slot], 0, __ATOMIC_ACQ_REL) != before)
			continue;
		count(&lookups_checked);
		if (err || hit.tag != before || hit.range.start != slot * PIO_SLOT ||
		    hit.range.end != slot * PIO_SLOT + PIO_SLOT - 1)
			count(&wrong_lookups);
	}
	vmres_thread_unregister();
	return NULL;
}

static void assert_nothing_left(void)
{
	struct vmres_addr_stats st;
	struct vmres_resource r;

	assert_int_equal(vmres_system_addr_stats(sys, VMRES_PIO, &st), VMRES_OK);
	assert_int_equal(st.ranges, 0);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_MMIO32, &st), VMRES_OK);
	assert_int_equal(st.ranges, 0);
	for (uint64_t i = 0; i < IRQ_COUNT; i++)
		assert_int_equal(vmres_system_lookup(sys, VMRES_LEGACY_IRQ, IRQ_FIRST + i, &r),
				 VMRES_E_NOT_FOUND);
	for (uint64_t i = 0; i < DEV_COUNT; i++)
		assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, i, &r),
				 VMRES_E_NOT_FOUND);
	for (uint64_t i = 0; i < MSI_COUNT; i++)
		assert_int_equal(vmres_system_lookup(sys, VMRES_MSI_GSI, MSI_FIRST + i, &r),
				 VMRES_E_NOT_FOUND);
}

static void reset_results(void)
{
	memset(pio_owner, 0, sizeof(pio_owner));
	memset(irq_owner, 0, sizeof(irq_owner));
	memset(mmio_owner, 0, sizeof(mmio_owner));
	memset(dev_owner, 0, sizeof(dev_owner));
	memset(msi_owner, 0, sizeof(msi_owner));
	batches_ok = batches_lost = bad_errors = double_owned = free_errors = 0;
	lookups_checked = wrong_lookups = batches_nomem = frees_nomem = 0;
}

/* Runs the threads on a fresh system; checks everything but the memory verdict. */
static void run_race(const struct vmres_mem_ops *ops, double seconds,
		     struct vmres_system_counters *c)
{
	struct vmres_layout l = { 0 };
	pthread_t hp[HOTPLUG_THREADS], lk[LOOKUP_THREADS];

	reset_results();
	vmres_layout_x86_64_default(&l);
	l.present[VMRES_MMIO64] = l.present[VMRES_MEM_SLOT] = false;
	l.span[VMRES_LEGACY_IRQ] = (struct vmres_range){ IRQ_FIRST, IRQ_FIRST + IRQ_COUNT - 1 };
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 0, DEV_COUNT - 1 };
	l.span[VMRES_MSI_GSI] = (struct vmres_range){ MSI_FIRST, MSI_FIRST + MSI_COUNT - 1 };
	mmio_first = l.span[VMRES_MMIO32].start;
	assert_true((l.span[VMRES_MMIO32].end - mmio_first) / MMIO_PAGE < MMIO_SLOTS);
	threads_joined = false;
	assert_int_equal(vmres_system_create_ex(&l, ops, &sys), VMRES_OK);
	__atomic_store_n(&flaky_on, flaky, __ATOMIC_RELAXED);

	vmres_test_gate_init(&gate, HOTPLUG_THREADS + LOOKUP_THREADS, seconds);
	for (uintptr_t i = 0; i < HOTPLUG_THREADS; i++)
		assert_int_equal(pthread_create(&hp[i], NULL, hotplug_thread, (void *)i), 0);
	for (uintptr_t i = 0; i < LOOKUP_THREADS; i++)
		assert_int_equal(pthread_create(&lk[i], NULL, lookup_thread, (void *)i), 0);
	/* Offline (qsbr): a hotplug thread's rollback may wait for RCU callbacks
	 * (its memory hook and the reserve both failing). */
	for (int i = 0; i < HOTPLUG_THREADS; i++)
		assert_int_equal(vmres_test_join(hp[i]), 0);
	for (int i = 0; i < LOOKUP_THREADS; i++)
		assert_int_equal(vmres_test_join(lk[i]), 0);
	threads_joined = true;
	vmres_test_gate_destroy(&gate);
	__atomic_store_n(&flaky_on, false, __ATOMIC_RELAXED);

	assert_int_equal(vmres_system_counters(sys, c), VMRES_OK);
	print_message("%.1f s: %llu batches taken, %llu lost the race and rolled back, "
		      "%llu ran out of memory and rolled back, %llu frees resumed after NOMEM, "
		      "%llu lookups checked; reserve used %llu times\n",
		      seconds, (unsigned long long)batches_ok, (unsigned long long)batches_lost,
		      (unsigned long long)batches_nomem, (unsigned long long)frees_nomem,
		      (unsigned long long)lookups_checked,
		      (unsigned long long)c->reserve_fallbacks);
	assert_int_equal(bad_errors, 0);
	assert_int_equal(double_owned, 0);
	assert_int_equal(free_errors, 0);
	assert_int_equal(wrong_lookups, 0);
	assert_true(batches_ok > 0);
	assert_true(batches_lost > 0); /* the IRQs really ran out */
	assert_true(lookups_checked > 0);
	assert_int_equal(c->rollbacks, batches_lost + batches_nomem);
	assert_int_equal(c->rollback_leaks, 0);
	assert_nothing_left();
}

static void test_system_stress_batches_race_for_last_irqs(void **state)
{
	(void)state;
	struct vmres_mem_ops ops;
	struct vmres_system_counters c;

	base_seed = vmres_test_seed("VMRES_TEST_SEED", "stress_system");
	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	flaky = false;
	run_race(&ops, vmres_test_stress_seconds(2.0), &c);
	assert_int_equal(batches_nomem, 0);
	vmres_system_destroy(sys);
	sys = NULL;
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
}

/*
 * The same race with a memory hook that fails one allocation in 61, for
 * every thread that allocates (rollbacks included): batches
 * fail with VMRES_E_NOMEM at any index and roll back through the reserve
 * while other threads pop and push it.
 *
 * That the reserve is used is checked (reserve_fallbacks > 0), on a
 * probabilistic argument: the hook fails every 61st call whichever thread
 * makes it, and a run holds thousands of rollbacks (batches_lost and
 * batches_nomem, both asserted > 0; typically tens of thousands), each
 * calling the hook several times (an address free copies a tree path). A
 * rollback call that draws a failing turn of the hook takes a reserve block,
 * so a run with none would need every one of many thousand 1-in-61 turns to
 * fall outside rollbacks. Observed: 1400 to 3000 reserve blocks in a
 * default run (TSAN builds included), still 5 to 40 in 0.05 s runs. Like
 * batches_lost > 0 and batches_nomem > 0, it needs some hundreds of batches:
 * the threads go on past a short deadline until the run has shown all of
 * them (keep_going()).
 */
static void test_system_stress_flaky_memory_rolls_back(void **state)
{
	(void)state;
	struct vmres_mem_ops ops = { flaky_alloc, flaky_free, NULL };
	struct vmres_system_counters c;

	base_seed = vmres_test_seed("VMRES_TEST_SEED", "stress_system_flaky");
	vmres_test_mem_init(&mem);
	flaky_base = vmres_test_mem_ops(&mem);
	flaky = true;
	run_race(&ops, vmres_test_stress_seconds(2.0) * 0.75, &c);
	assert_true(batches_nomem > 0);
	assert_true(c.reserve_fallbacks > 0); /* rollbacks really fell back on the reserve */
	/* Refills and shrinks ran among the racing pops and pushes (TSAN sees
	 * them); how many depends on the interleaving, so it is printed. */
	print_message("reserve at the end of the race: %u + %u blocks, %u + %u free\n",
		      vmres__reserve_blocks(sys, 0), vmres__reserve_blocks(sys, 1),
		      vmres__reserve_free_blocks(sys, 0), vmres__reserve_free_blocks(sys, 1));
	/* Blocks that nodes still hold (an ID free-list node, the current tree
	 * version) stay lent: nothing exact to check here. */
	vmres_rcu_barrier();
	print_message("after the callbacks: %u + %u blocks, %u + %u free (%u + %u at create)\n",
		      vmres__reserve_blocks(sys, 0), vmres__reserve_blocks(sys, 1),
		      vmres__reserve_free_blocks(sys, 0), vmres__reserve_free_blocks(sys, 1),
		      VMRES__RESERVE_SMALL_COUNT, VMRES__RESERVE_LARGE_COUNT);
	vmres_system_destroy(sys);
	sys = NULL;
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
}

/* After a failed assertion: the system the test left goes, once its
 * hotplug and lookup threads are joined. */
static int teardown_system(void **state)
{
	(void)state;
	vmres_test_drop_system(&sys, threads_joined);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_system_stress_batches_race_for_last_irqs,
					  teardown_system),
		cmocka_unit_test_teardown(test_system_stress_flaky_memory_rolls_back,
					  teardown_system),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
