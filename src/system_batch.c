/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * All-or-nothing batches: vmres_system_allocate_ex(), vmres_allocate_batch()
 * (the same over any table of callbacks) and vmres_system_free_ex().
 *
 * Algorithm (no lock, no transaction): check every request first (phase 1,
 * nothing taken); then take them one by one in index order through their
 * kind's callback (phase 2). When request i fails, give back out[i-1] ..
 * out[0] through the same callbacks (last first, so a batch undoes itself
 * like a stack) and return request i's error with index i.
 *
 * Why this is all or nothing without a global lock: each resource a batch
 * takes is taken by one linearizable allocator operation and is owned by
 * this batch alone from that point until the matching free (the allocators
 * never hand one resource to two owners). Nobody else can free it: a free of
 * a resource one does not own is a caller bug the allocators reject when
 * the resource is free (VMRES_E_NOT_FOUND / VMRES_E_ALREADY_FREED) and that
 * the contract forbids when it is not. So the rollback's frees find exactly
 * what the batch took, and when the call returns an error the batch owns
 * nothing. What a concurrent thread can observe is the batch's resources
 * existing between their allocation and their rollback: a lookup may return
 * them and an allocation may find their space taken. The batch is not
 * linearizable as one unit; each resource is.
 *
 * Rollback frees may need memory. They run inside vmres__rollback_enter()/
 * _leave(), so a system's callbacks fall back on the system's reserve when
 * the memory hook fails (system_reserve.c). Reserve blocks come back when
 * the nodes they became are retired and their RCU callbacks run, so a free
 * that still fails with VMRES_E_NOMEM is retried: first after a yield, then
 * after an RCU barrier (which runs every queued callback, giving retired
 * memory back to the hook and the reserve), up to ROLLBACK_TRIES times. Only
 * then is it counted in rollback_leaks and left allocated (system.h).
 *
 * Invariants:
 *   1. During phase 2, out[0..i) are exactly the resources this call holds.
 *   2. When the call returns an error, it holds nothing, except resources
 *      counted in rollback_leaks.
 *   3. Phase 1 changes nothing, so a batch that fails there took nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include <sched.h>
#include <stdint.h>

#include <vmres/error.h>
#include <vmres/system.h>

#include "internal/atomic.h"
#include "internal/rcu.h"
#include "internal/system.h"

#define ROLLBACK_TRIES 10
#define ROLLBACK_YIELDS 2 /* tries that only yield before barriers are used */

static struct vmres_system *system_of(struct vmres_allocator *a)
{
	return vmres__system_owns_callback(a) ? vmres__system_kind_of(a)->sys : NULL;
}

static void set_index(size_t *failed_index, size_t index)
{
	if (failed_index)
		*failed_index = index;
}

/* Give one resource back during a rollback; keeps invariant 2. */
static void give_back(struct vmres_allocator *a, const struct vmres_resource *res)
{
	struct vmres_system *sys = system_of(a);
	int err;

	vmres__rollback_enter();
	for (int tries = 0;; tries++) {
		err = a->free(a, res);
		if (err != VMRES_E_NOMEM || tries + 1 >= ROLLBACK_TRIES)
			break;
		/* Memory comes back as RCU callbacks run: let them, then make them. */
		if (tries < ROLLBACK_YIELDS)
			sched_yield();
		else
			vmres__rcu_barrier(); /* not in a read-side section here */
	}
	vmres__rollback_leave();
	if (err && sys)
		VMRES__COUNT(sys, rollback_leaks);
}

static void roll_back(struct vmres_allocator *const table[VMRES_KIND_COUNT],
		      const struct vmres_request *reqs, const struct vmres_resource *out,
		      size_t taken, struct vmres_allocator *failed)
{
	struct vmres_system *sys = system_of(failed);

	/* Through the callback that took it (the request's kind, checked in phase 1). */
	while (taken-- > 0)
		give_back(table[reqs[taken].kind], &out[taken]); /* invariant 1 */
	if (sys)
		VMRES__COUNT(sys, rollbacks);
}

/* Phase 1: nothing is taken here (invariant 3). */
static int check_batch(struct vmres_allocator *const table[VMRES_KIND_COUNT],
		       const struct vmres_request *reqs, size_t n, size_t *failed_index)
{
	for (size_t i = 0; i < n; i++) {
		struct vmres_allocator *a;
		int err = VMRES_OK;

		if ((unsigned)reqs[i].kind >= (unsigned)VMRES_KIND_COUNT)
			err = VMRES_E_INVALID_ARGUMENT;
		else if (!(a = table[reqs[i].kind]) || !a->allocate || !a->free)
			err = VMRES_E_NOT_FOUND;
		else if (vmres__system_owns_callback(a)) {
			struct vmres__system_kind *k = vmres__system_kind_of(a);

			/* A system callback of another kind would refuse it in phase 2. */
			err = k->kind != reqs[i].kind
				      ? VMRES_E_INVALID_ARGUMENT
				      : vmres__system_check_request(k->sys, &reqs[i]);
		}
		if (err) {
			set_index(failed_index, i);
			return err;
		}
	}
	return VMRES_OK;
}

/* Phase 2: take in index order, roll back on the first failure. */
static int take_batch(struct vmres_allocator *const table[VMRES_KIND_COUNT],
		      const struct vmres_request *reqs, size_t n, struct vmres_resource *out,
		      size_t *failed_index)
{
	for (size_t i = 0; i < n; i++) {
		struct vmres_allocator *a = table[reqs[i].kind];
		int err = a->allocate(a, &reqs[i], &out[i]);

		if (err) {
			roll_back(table, reqs, out, i, a);
			set_index(failed_index, i);
			return err;
		}
	}
	return VMRES_OK;
}

int vmres_allocate_batch(struct vmres_allocator *const table[VMRES_KIND_COUNT],
			 const struct vmres_request *reqs, size_t n, struct vmres_resource *out,
			 size_t *failed_index)
{
	int err;

	set_index(failed_index, VMRES_NO_INDEX);
	if (!table || (n && (!reqs || !out)))
		return VMRES_E_INVALID_ARGUMENT;
	err = check_batch(table, reqs, n, failed_index);
	if (!err)
		err = take_batch(table, reqs, n, out, failed_index);
	return err;
}

static void system_table(struct vmres_system *sys, struct vmres_allocator *table[VMRES_KIND_COUNT])
{
	for (size_t k = 0; k < VMRES_KIND_COUNT; k++)
		table[k] = vmres_system_allocator(sys, (enum vmres_kind)k);
}

int vmres_system_allocate_ex(struct vmres_system *sys, const struct vmres_request *reqs, size_t n,
			     struct vmres_resource *out, size_t *failed_index)
{
	struct vmres_allocator *table[VMRES_KIND_COUNT];

	set_index(failed_index, VMRES_NO_INDEX);
	if (!sys)
		return VMRES_E_INVALID_ARGUMENT;
	system_table(sys, table);
	return vmres_allocate_batch(table, reqs, n, out, failed_index);
}

int vmres_system_allocate(struct vmres_system *sys, const struct vmres_request *reqs, size_t n,
			  struct vmres_resource *out)
{
	return vmres_system_allocate_ex(sys, reqs, n, out, NULL);
}

int vmres_system_free_ex(struct vmres_system *sys, const struct vmres_resource *res, size_t n,
			 size_t *failed_index)
{
	struct vmres_allocator *table[VMRES_KIND_COUNT];

	set_index(failed_index, VMRES_NO_INDEX);
	if (!sys || (n && !res))
		return VMRES_E_INVALID_ARGUMENT;
	for (size_t i = 0; i < n; i++) {
		int err = vmres__system_check_resource(sys, &res[i]);

		if (err) {
			set_index(failed_index, i);
			return err;
		}
	}
	system_table(sys, table);
	for (size_t i = 0; i < n; i++) {
		struct vmres_allocator *a = table[res[i].kind];
		int err = a->free(a, &res[i]);

		if (err) {
			set_index(failed_index, i);
			return err;
		}
	}
	return VMRES_OK;
}

int vmres_system_free(struct vmres_system *sys, const struct vmres_resource *res, size_t n)
{
	return vmres_system_free_ex(sys, res, n, NULL);
}

int vmres_system_counters(struct vmres_system *sys, struct vmres_system_counters *out)
{
	if (!sys || !out)
		return VMRES_E_INVALID_ARGUMENT;
	/* Statistics: relaxed, each counter on its own (system.h says so). */
	out->rollbacks = vmres__u64_load_relaxed(&sys->counters.rollbacks);
	out->reserve_fallbacks = vmres__u64_load_relaxed(&sys->counters.reserve_fallbacks);
	out->rollback_leaks = vmres__u64_load_relaxed(&sys->counters.rollback_leaks);
	return VMRES_OK;
}
