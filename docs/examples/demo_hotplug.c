/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Case 2, a normal VMM without firmware: the device manager holds the
 * system allocator's callbacks; hotplug threads plug and unplug devices
 * (full_register_device / full_unregister_device, one all-or-nothing batch
 * each) while vCPU threads dispatch PIO and MMIO exits through the bus
 * (vmres_system_lookup) and check that each reaches its owner.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo.h"

struct hotplug_shared {
	struct demo_dm dm;
	double deadline;
	struct demo_mem *mem;		/* counts what the system holds, retired memory included */
	long long budget;		/* bytes; 0: no backpressure */
	atomic_uint_fast64_t rcu_waits; /* vmres_rcu_barrier() calls made over budget */
	atomic_uint_fast64_t plugs, unplugs, refused, bad;
	atomic_uint_fast64_t taken[VMRES_KIND_COUNT];	   /* resources handed out */
	atomic_uint_fast64_t refused_at[VMRES_KIND_COUNT]; /* kind of the failing request */
	bool can_run_out[VMRES_KIND_COUNT];		   /* kind_can_run_out(), set up front */
	atomic_int first_bad;
};

struct vcpu {
	pthread_t thread;
	struct hotplug_shared *sh;
	uint64_t seed;
	atomic_uint_fast64_t dispatched, idle, raced, wrong;
	double seconds;
};

struct hotplug {
	pthread_t thread;
	struct hotplug_shared *sh;
	uint64_t seed;
};

/* The largest request build_needs() makes of each kind (naturally aligned). */
static uint64_t largest_need(enum vmres_kind kind)
{
	switch (kind) {
	case VMRES_PIO:
		return 32;
	case VMRES_MMIO32:
		return 0x10000;
	case VMRES_MMIO64:
		return 8ull << 20;
	default:
		return 1; /* an ID */
	}
}

/*
 * Whether a kind can run out with @devices slots: each plugged device holds
 * at most one resource of a kind, so a batch meets at most @devices - 1 of
 * them. Requests are powers of two, naturally aligned, of at most M units;
 * each live one lies inside one M-aligned block of M units, so while fewer
 * are live than the span has such blocks, one block is wholly free and any
 * request fits in it. A refusal where that holds is the allocator's fault.
 */
static bool kind_can_run_out(const struct vmres_layout *l, enum vmres_kind kind, unsigned devices)
{
	uint64_t m = largest_need(kind);
	struct vmres_range span = l->span[kind];
	uint64_t first = (span.start + (m - 1)) & ~(m - 1);
	uint64_t blocks = 0;

	if (first >= span.start && first <= span.end) {
		uint64_t x = span.end - first; /* blocks in [first, end]: (x + 1) / m */
		blocks = x / m + (x % m == m - 1);
	}
	return (uint64_t)devices - 1 >= blocks;
}

/* What a device needs: an ID, an IRQ (legacy or MSI), ports, and an MMIO BAR. */
static size_t build_needs(struct vmres_request *need, uint64_t tag, uint64_t *rng)
{
	uint64_t r = demo_rand(rng);
	uint64_t pio = 8ull << (r % 3);
	bool legacy = (r >> 8) % 4 == 0;
	bool low = (r >> 16) % 2 == 0;
	uint64_t bar = low ? 0x1000ull << ((r >> 24) % 5) : 1ull << (20 + (r >> 24) % 4);

	need[0] = (struct vmres_request){ VMRES_DEVICE_ID, 1, 1, VMRES_FIRST_MATCH, 0, tag };
	need[1] = (struct vmres_request){
		legacy ? VMRES_LEGACY_IRQ : VMRES_MSI_GSI, 1, 1, VMRES_FIRST_MATCH, 0, tag
	};
	need[2] = (struct vmres_request){ VMRES_PIO, pio, pio, VMRES_FIRST_MATCH, 0, tag };
	/* 64-bit BARs from the top of the window, as firmware tends to place them. */
	need[3] = (struct vmres_request){ low ? VMRES_MMIO32 : VMRES_MMIO64,	      bar, bar,
					  low ? VMRES_FIRST_MATCH : VMRES_LAST_MATCH, 0,   tag };
	return 4;
}

static void note_bad(struct hotplug_shared *sh, int err, const char *what)
{
	int expected = 0;

	atomic_fetch_add(&sh->bad, 1);
	if (atomic_compare_exchange_strong(&sh->first_bad, &expected, 1))
		fprintf(stderr, "vmres-demo: unexpected %s from %s\n", vmres_error_name(err), what);
}

static void plug(struct hotplug_shared *sh, size_t index, struct demo_slot *slot, uint64_t *rng)
{
	struct vmres_request need[DEMO_MAX_RES];
	size_t n, failed;
	int err;

	slot->generation++;
	slot->device_tag = demo_tag(index, slot->generation);
	n = build_needs(need, slot->device_tag, rng);
	err = demo_full_register_device(&sh->dm, slot, need, n, NULL, 0, &failed);
	if (!err) {
		atomic_fetch_add_explicit(&sh->plugs, 1, memory_order_relaxed);
		for (size_t i = 0; i < n; i++)
			atomic_fetch_add_explicit(&sh->taken[need[i].kind], 1,
						  memory_order_relaxed);
	} else if (err == VMRES_E_EXHAUSTED && failed < n && sh->can_run_out[need[failed].kind]) {
		/* All or nothing: the batch gave back whatever it had taken. */
		atomic_fetch_add_explicit(&sh->refused, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->refused_at[need[failed].kind], 1,
					  memory_order_relaxed);
	} else {
		note_bad(sh, err, "full_register_device");
	}
}

/*
 * Backpressure, the embedder's side of it (docs/design.md, "Memory waiting
 * for grace periods"): every unplug and replug retires tree paths, versions
 * and list nodes that only liburcu's call_rcu thread gives back. Flat-out
 * hotplug on busy CPUs can retire faster than that thread frees, and the
 * backlog then grows for as long as the run lasts. A hotplug thread that
 * finds more than the budget live waits, outside any libvmres call, until
 * the callbacks queued so far have run.
 */
static void over_budget_wait(struct hotplug_shared *sh)
{
	/* Relaxed: a threshold, not a synchronisation. */
	if (!sh->budget ||
	    atomic_load_explicit(&sh->mem->live_bytes, memory_order_relaxed) <= sh->budget)
		return;
	vmres_rcu_barrier();
	/* Relaxed: a count, read by report() after the threads are joined. */
	atomic_fetch_add_explicit(&sh->rcu_waits, 1, memory_order_relaxed);
}

static void *hotplug_main(void *arg)
{
	struct hotplug *hp = arg;
	struct hotplug_shared *sh = hp->sh;
	uint64_t rng = hp->seed;

	vmres_thread_register();
	while (demo_now() < sh->deadline) {
		size_t index = (size_t)(demo_rand(&rng) % sh->dm.nslots);
		struct demo_slot *slot = &sh->dm.slots[index];
		int unclaimed = 0;

		vmres_thread_quiescent();
		/* Acquire: the previous holder's writes to the slot are visible. */
		if (!atomic_compare_exchange_strong_explicit(&slot->claimed, &unclaimed, 1,
							     memory_order_acquire,
							     memory_order_relaxed))
			continue;
		if (!slot->nres) {
			plug(sh, index, slot, &rng);
		} else {
			int err = demo_full_unregister_device(&sh->dm, slot);

			if (err)
				note_bad(sh, err, "full_unregister_device");
			atomic_fetch_add_explicit(&sh->unplugs, 1, memory_order_relaxed);
		}
		/* Release: pairs with the next holder's acquire. */
		atomic_store_explicit(&slot->claimed, 0, memory_order_release);
		over_budget_wait(sh);
	}
	vmres_thread_unregister();
	return NULL;
}

static void *vcpu_main(void *arg)
{
	struct vcpu *v = arg;
	struct hotplug_shared *sh = v->sh;
	uint64_t rng = v->seed;
	uint64_t counts[4] = { 0 };
	double start = demo_now();

	vmres_thread_register();
	for (uint64_t i = 0;; i++) {
		uint64_t r = demo_rand(&rng);
		struct demo_slot *slot = &sh->dm.slots[r % sh->dm.nslots];
		enum vmres_kind kind = (r >> 32) & 1 ? VMRES_PIO : VMRES_MMIO32;
		enum demo_dispatch d = demo_dispatch_checked(&sh->dm, slot, kind, r >> 33);

		counts[d]++;
		if ((i & 255) == 0) {
			vmres_thread_quiescent();
			/* Relaxed: progress numbers only; joined threads are read after join. */
			atomic_store_explicit(&v->dispatched, counts[DEMO_DISPATCHED],
					      memory_order_relaxed);
			atomic_store_explicit(&v->wrong, counts[DEMO_WRONG], memory_order_relaxed);
			if (demo_now() >= sh->deadline)
				break;
		}
	}
	v->seconds = demo_now() - start;
	atomic_store(&v->dispatched, counts[DEMO_DISPATCHED]);
	atomic_store(&v->idle, counts[DEMO_IDLE]);
	atomic_store(&v->raced, counts[DEMO_RACED]);
	atomic_store(&v->wrong, counts[DEMO_WRONG]);
	vmres_thread_unregister();
	return NULL;
}

static size_t live_devices(const struct demo_dm *dm)
{
	size_t live = 0;

	for (size_t i = 0; i < dm->nslots; i++)
		live += atomic_load_explicit(&dm->slots[i].live, memory_order_relaxed);
	return live;
}

static void sleep_until(double t)
{
	double left = t - demo_now();
	struct timespec ts;

	if (left <= 0)
		return;
	ts.tv_sec = (time_t)left;
	ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
	vmres_thread_offline(); /* qsbr: a sleeping reader must not hold up grace periods */
	nanosleep(&ts, NULL);
	vmres_thread_online();
}

static void progress(struct hotplug_shared *sh, struct vcpu *vcpus, unsigned nvcpus, double start,
		     double tick)
{
	for (double next = start + tick; next < sh->deadline + tick / 2; next += tick) {
		uint64_t dispatched = 0, wrong = 0;

		sleep_until(next < sh->deadline ? next : sh->deadline);
		for (unsigned i = 0; i < nvcpus; i++) {
			dispatched +=
				atomic_load_explicit(&vcpus[i].dispatched, memory_order_relaxed);
			wrong += atomic_load_explicit(&vcpus[i].wrong, memory_order_relaxed);
		}
		printf("    t=%5.1fs  devices %4zu/%-4zu plugs %-8llu unplugs %-8llu refused "
		       "%-6llu "
		       "dispatches %-10llu wrong %llu\n",
		       demo_now() - start, live_devices(&sh->dm), sh->dm.nslots,
		       (unsigned long long)atomic_load(&sh->plugs),
		       (unsigned long long)atomic_load(&sh->unplugs),
		       (unsigned long long)atomic_load(&sh->refused),
		       (unsigned long long)dispatched, (unsigned long long)wrong);
		fflush(stdout);
	}
}

static void report(struct hotplug_shared *sh, struct vcpu *vcpus, unsigned nvcpus,
		   const uint64_t held[VMRES_KIND_COUNT], struct demo_result *res)
{
	uint64_t total = 0, wrong = 0;

	printf("    devices: %zu of %zu slots plugged when hotplug stopped\n",
	       live_devices(&sh->dm), sh->dm.nslots);
	printf("    resources per kind (handed out during the run / held when hotplug stopped):\n");
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		printf("      %-10s %10llu / %-6llu%s\n", vmres_kind_name((enum vmres_kind)k),
		       (unsigned long long)atomic_load(&sh->taken[k]), (unsigned long long)held[k],
		       atomic_load(&sh->refused_at[k]) ? "  (ran out: batches refused here)" : "");
	printf("    batches: %llu plugged, %llu unplugged, %llu refused and rolled back whole\n",
	       (unsigned long long)atomic_load(&sh->plugs),
	       (unsigned long long)atomic_load(&sh->unplugs),
	       (unsigned long long)atomic_load(&sh->refused));
	if (sh->budget) {
		unsigned long long waits = atomic_load(&sh->rcu_waits);
		bool mib = !(sh->budget & ((1 << 20) - 1)); /* else shown in KiB */

		printf("    memory budget: %lld %s (--mem-budget); hotplug threads waited for RCU "
		       "callbacks %llu time%s\n",
		       mib ? sh->budget >> 20 : sh->budget >> 10, mib ? "MiB" : "KiB", waits,
		       waits == 1 ? "" : "s");
	} else {
		printf("    memory budget: off (--mem-budget 0); hotplug threads never waited for "
		       "RCU callbacks\n");
	}
	for (unsigned i = 0; i < nvcpus; i++) {
		uint64_t d = atomic_load(&vcpus[i].dispatched);
		double secs = vcpus[i].seconds > 0 ? vcpus[i].seconds : 1;

		printf("    vCPU %-2u %10.0f dispatches/s  (%llu checked, %llu to empty slots, "
		       "%llu raced with hotplug, %llu wrong)\n",
		       i, (double)d / secs, (unsigned long long)d,
		       (unsigned long long)atomic_load(&vcpus[i].idle),
		       (unsigned long long)atomic_load(&vcpus[i].raced),
		       (unsigned long long)atomic_load(&vcpus[i].wrong));
		total += d;
		wrong += atomic_load(&vcpus[i].wrong);
	}
	printf("    wrong dispatches: %llu of %llu\n", (unsigned long long)wrong,
	       (unsigned long long)total);
	res->wrong_dispatches += wrong;
	res->errors += atomic_load(&sh->bad);
	/*
	 * Not an error: on a busy or one-CPU machine a short run may never have
	 * a vCPU and a hotplug thread running at once, so every exit meets an
	 * empty slot. Say so, since then no lookup was checked.
	 */
	if (!total)
		printf("    note: no exit met a plugged device, so no lookup was checked (a "
		       "short run, or too few CPUs for vCPU and hotplug threads to overlap)\n");
}

static void teardown_devices(struct hotplug_shared *sh, struct demo_result *res)
{
	for (size_t i = 0; i < sh->dm.nslots; i++) {
		struct demo_slot *slot = &sh->dm.slots[i];

		if (slot->nres && demo_full_unregister_device(&sh->dm, slot))
			res->errors++;
	}
}

static void free_all(struct hotplug_shared *sh, struct demo_slot *slots, struct vcpu *vcpus,
		     struct hotplug *hps)
{
	free(sh);
	free(slots);
	free(vcpus);
	free(hps);
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	if (pthread_create(t, NULL, fn, arg)) {
		fprintf(stderr, "vmres-demo: cannot start a thread\n");
		exit(1); /* a demo: no partial run to report */
	}
}

static void run_threads(struct hotplug_shared *sh, const struct demo_options *opt,
			struct vcpu *vcpus, struct hotplug *hps)
{
	double start = demo_now();
	double tick = opt->seconds / 10 > 0.5 ? opt->seconds / 10 : 0.5;

	sh->deadline = start + opt->seconds;
	for (unsigned i = 0; i < opt->vcpus; i++) {
		vcpus[i].sh = sh;
		vcpus[i].seed = opt->seed ^ (0x1000u + i) * 0x9e3779b97f4a7c15ull;
		start_thread(&vcpus[i].thread, vcpu_main, &vcpus[i]);
	}
	for (unsigned i = 0; i < opt->hotplug_threads; i++) {
		hps[i].sh = sh;
		hps[i].seed = opt->seed ^ (0x2000u + i) * 0xbf58476d1ce4e5b9ull;
		start_thread(&hps[i].thread, hotplug_main, &hps[i]);
	}
	progress(sh, vcpus, opt->vcpus, start, tick);
	/* qsbr: a thread blocked in join must not hold up the grace periods that
	 * a hotplug thread's over_budget_wait() is waiting for. */
	vmres_thread_offline();
	for (unsigned i = 0; i < opt->hotplug_threads; i++)
		pthread_join(hps[i].thread, NULL);
	for (unsigned i = 0; i < opt->vcpus; i++)
		pthread_join(vcpus[i].thread, NULL);
	vmres_thread_online();
}

void demo_case_hotplug(const struct demo_options *opt, struct demo_result *res)
{
	struct demo_mem mem = { 0 };
	struct vmres_mem_ops ops = demo_mem_ops(&mem);
	struct vmres_layout l;
	struct vmres_system *sys;
	struct vmres_system_counters c;
	struct hotplug_shared *sh = calloc(1, sizeof(*sh));
	struct demo_slot *slots = calloc(opt->devices, sizeof(*slots));
	struct vcpu *vcpus = calloc(opt->vcpus, sizeof(*vcpus));
	struct hotplug *hps = calloc(opt->hotplug_threads, sizeof(*hps));
	uint64_t held[VMRES_KIND_COUNT], after[VMRES_KIND_COUNT];

	printf("\n[2] Normal VMM, no firmware: device manager with callbacks, %u hotplug "
	       "thread(s), %u vCPU thread(s), %u device slots, %.1f s\n",
	       opt->hotplug_threads, opt->vcpus, opt->devices, opt->seconds);
	vmres_layout_x86_64_default(&l);
	if (!sh || !slots || !vcpus || !hps || vmres_system_create_ex(&l, &ops, &sys)) {
		printf("    UNEXPECTED: out of memory\n");
		res->errors++;
		free_all(sh, slots, vcpus, hps);
		return;
	}
	demo_dm_init(&sh->dm, sys, true, slots, opt->devices);
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		sh->can_run_out[k] = kind_can_run_out(&l, (enum vmres_kind)k, opt->devices);
	sh->mem = &mem;
	sh->budget = (long long)opt->mem_budget_kib << 10;
	printf("    each device: DEVICE_ID, an IRQ (1 in 4 legacy, else MSI), 8-32 ports, and a\n"
	       "    4-64 KiB MMIO32 or 1-8 MiB MMIO64 BAR, in one batch through the callbacks;\n"
	       "    a batch refused at a kind that %u devices cannot fill is an error\n",
	       opt->devices);
	run_threads(sh, opt, vcpus, hps);

	demo_count_held(sys, held);
	report(sh, vcpus, opt->vcpus, held, res);
	teardown_devices(sh, res);
	demo_count_held(sys, after);
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		if (after[k]) {
			printf("    UNEXPECTED: %llu %s still held after every device left\n",
			       (unsigned long long)after[k], vmres_kind_name((enum vmres_kind)k));
			res->errors++;
		}
	vmres_system_counters(sys, &c);
	printf("    system counters: %llu rollbacks, %llu reserve fallbacks, %llu rollback leaks\n",
	       (unsigned long long)c.rollbacks, (unsigned long long)c.reserve_fallbacks,
	       (unsigned long long)c.rollback_leaks);
	if (c.rollbacks != atomic_load(&sh->refused) || c.rollback_leaks)
		res->errors++;
	demo_destroy_checked(sys, &mem, res, "    ");
	free_all(sh, slots, vcpus, hps);
}
