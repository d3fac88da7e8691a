/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The demo's device manager: registers devices through allocation callbacks
 * (or with resources the VMM already holds), publishes each device's bus
 * ranges to vCPU threads under a sequence lock, and checks every dispatch.
 *
 * The dispatch check. A vCPU thread reads a live device's slot under its
 * sequence lock (s1), picks an address inside one of the device's ranges,
 * resolves it through vmres_system_lookup() (the bus), and reads the
 * sequence again (s2). Registration publishes a slot only after its batch
 * succeeded and unpublishes it before freeing anything, so s1 == s2 (even)
 * means the device held the range for the whole lookup: the lookup must
 * then return exactly that range with that device's tag. Anything else is a
 * wrong dispatch. When s1 != s2 the device was plugged or unplugged
 * meanwhile and the exit is counted as raced, not judged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "demo.h"

/* ---- counting memory hook ---- */

static void *demo_alloc(void *ctx, size_t size)
{
	struct demo_mem *m = ctx;
	void *p = malloc(size);

	if (p) {
		long long now = atomic_fetch_add(&m->live_bytes, (long long)size) + (long long)size;
		long long peak = atomic_load(&m->peak_bytes);

		while (now > peak && !atomic_compare_exchange_weak(&m->peak_bytes, &peak, now))
			;
		atomic_fetch_add(&m->live_blocks, 1);
		atomic_fetch_add(&m->allocs, 1);
	}
	return p;
}

static void demo_free(void *ctx, void *p, size_t size)
{
	struct demo_mem *m = ctx;

	atomic_fetch_sub(&m->live_bytes, (long long)size);
	atomic_fetch_sub(&m->live_blocks, 1);
	free(p);
}

struct vmres_mem_ops demo_mem_ops(struct demo_mem *m)
{
	return (struct vmres_mem_ops){ demo_alloc, demo_free, m };
}

/* ---- device manager ---- */

void demo_dm_init(struct demo_dm *dm, struct vmres_system *sys, bool with_callbacks,
		  struct demo_slot *slots, size_t nslots)
{
	dm->bus = sys;
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		dm->cb[k] = with_callbacks ? vmres_system_allocator(sys, (enum vmres_kind)k) : NULL;
	dm->slots = slots;
	dm->nslots = nslots;
}

/* Publish the slot's bus ranges: the sequence lock's write side. */
void demo_publish(struct demo_slot *slot)
{
	uint64_t pio_start = 1, pio_end = 0, mmio_start = 1, mmio_end = 0;
	int mmio_kind = -1;

	for (size_t i = 0; i < slot->nres; i++) {
		const struct vmres_resource *r = &slot->res[i];

		if (r->kind == VMRES_PIO) {
			pio_start = r->range.start;
			pio_end = r->range.end;
		} else if (r->kind == VMRES_MMIO32 || r->kind == VMRES_MMIO64) {
			mmio_kind = (int)r->kind;
			mmio_start = r->range.start;
			mmio_end = r->range.end;
		}
	}
	atomic_fetch_add_explicit(&slot->seq, 1, memory_order_relaxed); /* odd: changing */
	/*
	 * Release stores, not a release fence (TSAN does not model fences; gcc
	 * refuses them under -fsanitize=thread): a reader whose acquire load of
	 * a field sees a new value also sees the odd sequence (Boehm, "Can
	 * seqlocks get along with programming language memory models?", 2012).
	 */
	atomic_store_explicit(&slot->tag, slot->device_tag, memory_order_release);
	atomic_store_explicit(&slot->pio_start, pio_start, memory_order_release);
	atomic_store_explicit(&slot->pio_end, pio_end, memory_order_release);
	atomic_store_explicit(&slot->mmio_kind, mmio_kind, memory_order_release);
	atomic_store_explicit(&slot->mmio_start, mmio_start, memory_order_release);
	atomic_store_explicit(&slot->mmio_end, mmio_end, memory_order_release);
	atomic_store_explicit(&slot->live, true, memory_order_release);
	/* Release: the fields before the even value; pairs with the reader's acquire. */
	atomic_fetch_add_explicit(&slot->seq, 1, memory_order_release);
}

void demo_unpublish(struct demo_slot *slot)
{
	atomic_fetch_add_explicit(&slot->seq, 1, memory_order_relaxed);
	/* Release: pairs with the reader's acquire load of @live (see demo_publish). */
	atomic_store_explicit(&slot->live, false, memory_order_release);
	/*
	 * Acquire (seq_cst includes it) is what matters here: both increments
	 * are read-modify-writes, so they continue the release sequence of a
	 * reader's re-check (its fetch_add(0), acq_rel). If that re-check came
	 * first, this increment synchronizes with it and the frees that follow
	 * come after the reader's lookup, which cannot have seen them; if it
	 * came after, the reader sees the sequence move. Plain stores in place
	 * of these read-modify-writes would break the argument.
	 */
	atomic_fetch_add_explicit(&slot->seq, 1, memory_order_seq_cst);
}

/*
 * full_register_device(): @need goes to the callbacks in one all-or-nothing
 * batch; @known are resources the VMM allocated itself (kinds without a
 * callback, or everything in the lightweight case). Published on success.
 */
int demo_full_register_device(struct demo_dm *dm, struct demo_slot *slot,
			      const struct vmres_request *need, size_t n,
			      const struct vmres_resource *known, size_t nknown,
			      size_t *failed_index)
{
	int err;

	if (n + nknown > DEMO_MAX_RES)
		return VMRES_E_INVALID_ARGUMENT;
	err = vmres_allocate_batch(dm->cb, need, n, slot->res, failed_index);
	if (err)
		return err;
	for (size_t i = 0; i < nknown; i++)
		slot->res[n + i] = known[i];
	slot->nres = n + nknown;
	demo_publish(slot);
	return VMRES_OK;
}

/*
 * full_unregister_device(): unpublish, then give back through the callbacks
 * what they gave; resources of kinds without a callback stay with the VMM,
 * which frees them itself.
 */
int demo_full_unregister_device(struct demo_dm *dm, struct demo_slot *slot)
{
	int first_err = VMRES_OK;

	demo_unpublish(slot);
	for (size_t i = 0; i < slot->nres; i++) {
		struct vmres_allocator *a = dm->cb[slot->res[i].kind];
		int err;

		if (!a)
			continue;
		err = a->free(a, &slot->res[i]);
		if (err && !first_err)
			first_err = err;
	}
	slot->nres = 0;
	return first_err;
}

/* One exit against a device that looks live; see the top of this file. */
enum demo_dispatch demo_dispatch_checked(struct demo_dm *dm, struct demo_slot *slot,
					 enum vmres_kind kind, uint64_t addr)
{
	/* Acquire: pairs with the release in demo_publish(). */
	uint64_t s1 = atomic_load_explicit(&slot->seq, memory_order_acquire);
	/* Acquire loads: pair with demo_publish()'s release stores (the seqlock's reads). */
	uint64_t tag = atomic_load_explicit(&slot->tag, memory_order_acquire);
	bool pio = kind == VMRES_PIO;
	uint64_t start = atomic_load_explicit(pio ? &slot->pio_start : &slot->mmio_start,
					      memory_order_acquire);
	uint64_t end =
		atomic_load_explicit(pio ? &slot->pio_end : &slot->mmio_end, memory_order_acquire);
	bool live = atomic_load_explicit(&slot->live, memory_order_acquire);
	struct vmres_resource hit;
	int err;

	if (s1 & 1)
		return DEMO_RACED;
	if (!live || start > end)
		return DEMO_IDLE;
	if (!pio)
		kind = (enum vmres_kind)atomic_load_explicit(&slot->mmio_kind,
							     memory_order_acquire);
	addr = start + addr % (end - start + 1);
	err = vmres_system_lookup(dm->bus, kind, addr, &hit);
	/*
	 * The re-check of the sequence is a read-don't-modify-write with
	 * acq_rel order: it keeps the field loads and the lookup's reads before
	 * it (Boehm, 2012), as tests/stress_system.c does, and unlike a fence
	 * TSAN understands it.
	 */
	if (atomic_fetch_add_explicit(&slot->seq, 0, memory_order_acq_rel) != s1)
		return DEMO_RACED;
	if (err || hit.tag != tag || hit.range.start != start || hit.range.end != end ||
	    hit.kind != kind)
		return DEMO_WRONG;
	return DEMO_DISPATCHED;
}

void demo_count_held(struct vmres_system *sys, uint64_t held[VMRES_KIND_COUNT])
{
	struct vmres_layout l;

	vmres_system_layout(sys, &l);
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		struct vmres_addr_stats st;
		struct vmres_resource r;

		held[k] = 0;
		if (!l.present[k])
			continue;
		if (vmres_kind_is_address((enum vmres_kind)k)) {
			if (!vmres_system_addr_stats(sys, (enum vmres_kind)k, &st))
				held[k] = st.ranges;
			continue;
		}
		for (uint64_t id = l.span[k].start; id <= l.span[k].end; id++)
			held[k] += !vmres_system_lookup(sys, (enum vmres_kind)k, id, &r);
	}
}

void demo_print_resource(const struct vmres_resource *r)
{
	if (vmres_kind_is_id(r->kind))
		printf("%s %llu", vmres_kind_name(r->kind), (unsigned long long)r->range.start);
	else
		printf("%s [%#llx-%#llx]", vmres_kind_name(r->kind),
		       (unsigned long long)r->range.start, (unsigned long long)r->range.end);
}

void demo_destroy_checked(struct vmres_system *sys, struct demo_mem *mem, struct demo_result *res,
			  const char *indent)
{
	long long live;

	vmres_system_destroy(sys);
	vmres_rcu_barrier();
	live = atomic_load(&mem->live_bytes);
	printf("%sleak check: %lld bytes, %lld blocks still live after destroy (peak %lld bytes, "
	       "%lld allocations)\n",
	       indent, live, (long long)atomic_load(&mem->live_blocks),
	       (long long)atomic_load(&mem->peak_bytes), (long long)atomic_load(&mem->allocs));
	if (live)
		res->leaked_bytes += (uint64_t)(live > 0 ? live : -live);
}

double demo_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t demo_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
