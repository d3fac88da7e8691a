/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The system allocator: create, destroy, the per-kind callbacks
 * ("ResourceAllocator" ops tables) and lookups. Batches and their rollback
 * are in system_batch.c, the memory hook and reserve in system_reserve.c.
 *
 * Concurrency argument. A system is a fixed table of per-kind allocators:
 * every field of struct vmres_system except the reserve's stack and the
 * counters is written once by create, before the pointer is handed to the
 * caller, and only read afterwards. So the system adds no shared mutable
 * state on the allocation and lookup paths, and it takes no lock; each call
 * is exactly as concurrent as the one allocator call it forwards to:
 *   - lookup of an address kind is one vmres_addr_lookup(): a wait-free RCU
 *     reader whose linearization point is its dereference of the tree root;
 *   - allocate/free of one resource is one vmres_addr_alloc/free or
 *     vmres_id_alloc/alloc_at/free, linearizable at that call's own point.
 *
 * Invariants:
 *   1. kinds[k].addr != NULL exactly when k is an address kind present in
 *      the layout; kinds[k].ids != NULL exactly when k is a present ID kind.
 *   2. kinds[k].ops.allocate/free are set exactly when kind k is present;
 *      kinds[k].kind == k and kinds[k].sys == the system, so a callback
 *      finds its kind and system from its own pointer (container_of).
 *   3. A present ID kind's span lies within [0, UINT32_MAX].
 *   4. None of the above changes between create and destroy.
 */
#include <stdint.h>
#include <string.h>

#include <vmres/error.h>
#include <vmres/system.h>

#include "internal/addr_node.h"
#include "internal/addr_tree.h"
#include "internal/id.h"
#include "internal/mem.h"
#include "internal/rcu.h"
#include "internal/system.h"

static bool kind_valid(enum vmres_kind kind)
{
	return (unsigned)kind < (unsigned)VMRES_KIND_COUNT;
}

static bool kind_present(const struct vmres_system *sys, enum vmres_kind kind)
{
	return sys->kinds[kind].addr || sys->kinds[kind].ids; /* invariant 1 */
}

/*
 * The checks of this layer, in the documented order (system.h): every error
 * a request can get whatever the allocators hold, so a batch that would fail
 * with one takes nothing. They give the codes the kind's allocator would.
 */
int vmres__system_check_request(const struct vmres_system *sys, const struct vmres_request *req)
{
	struct vmres_range span;
	uint64_t start;
	int err;

	if (!kind_valid(req->kind))
		return VMRES_E_INVALID_ARGUMENT;
	if (!kind_present(sys, req->kind))
		return VMRES_E_NOT_FOUND;
	span = sys->kinds[req->kind].span;
	if (vmres_kind_is_id(req->kind)) {
		if (req->size != 1)
			return VMRES_E_INVALID_SIZE;
		if (req->policy != VMRES_FIRST_MATCH && req->policy != VMRES_EXACT_MATCH)
			return VMRES_E_INVALID_ARGUMENT; /* LAST, or not a policy */
		if (req->policy == VMRES_EXACT_MATCH &&
		    (req->fixed < span.start || req->fixed > span.end))
			return VMRES_E_OUT_OF_RANGE; /* past UINT32_MAX too (invariant 3) */
		return VMRES_OK;
	}
	/* The address allocator's own argument checks, on the kind's span. */
	err = vmres__addr_validate(span.start, span.end,
				   &(struct vmres_addr_request){ .size = req->size,
								 .align = req->align,
								 .policy = req->policy,
								 .addr = req->fixed });
	if (err || req->policy == VMRES_EXACT_MATCH)
		return err;
	/* FIRST/LAST that would not fit even in the empty span. */
	return vmres__addr_fit(NULL, span.start, span.end, req->size, req->align, req->policy,
			       &start)
		       ? VMRES_OK
		       : VMRES_E_EXHAUSTED;
}

int vmres__system_check_resource(const struct vmres_system *sys, const struct vmres_resource *res)
{
	if (!kind_valid(res->kind))
		return VMRES_E_INVALID_ARGUMENT;
	if (!kind_present(sys, res->kind))
		return VMRES_E_NOT_FOUND;
	if (res->range.start > res->range.end)
		return VMRES_E_INVALID_RANGE;
	if (vmres_kind_is_id(res->kind)) {
		if (res->range.start != res->range.end)
			return VMRES_E_INVALID_SIZE;
		if (res->range.start > UINT32_MAX)
			return VMRES_E_OUT_OF_RANGE;
	}
	return VMRES_OK;
}

/* ---- the per-kind callbacks ---- */

struct vmres__system_kind *vmres__system_kind_of(struct vmres_allocator *a)
{
	return vmres__container_of(a, struct vmres__system_kind, ops); /* invariant 2 */
}

/* The kind behind a callback's @self; NULL for a NULL @self (caller input). */
static struct vmres__system_kind *callback_kind(struct vmres_allocator *self)
{
	return self ? vmres__system_kind_of(self) : NULL;
}

/* Takes one resource of an address kind; @req already checked. */
static int addr_take(struct vmres__system_kind *k, const struct vmres_request *req,
		     struct vmres_range *r)
{
	struct vmres_addr_request ar = { .size = req->size,
					 .align = req->align,
					 .policy = req->policy,
					 .addr = req->fixed,
					 .tag = req->tag };

	return vmres_addr_alloc(k->addr, &ar, r);
}

/* Takes one ID; @req already checked (EXACT fits in 32 bits, no LAST). */
static int id_take(struct vmres__system_kind *k, const struct vmres_request *req,
		   struct vmres_range *r)
{
	uint32_t id = (uint32_t)req->fixed;
	int err = req->policy == VMRES_EXACT_MATCH ? vmres_id_alloc_at(k->ids, id)
						   : vmres_id_alloc(k->ids, &id);

	if (!err)
		*r = (struct vmres_range){ id, id };
	return err;
}

/* The "allocate" of every kind's ops table (invariant 1 picks the allocator). */
static int kind_allocate(struct vmres_allocator *self, const struct vmres_request *req,
			 struct vmres_resource *out)
{
	struct vmres__system_kind *k = callback_kind(self);
	struct vmres_range r;
	int err;

	if (!k || !req || !out || req->kind != k->kind)
		return VMRES_E_INVALID_ARGUMENT;
	err = vmres__system_check_request(k->sys, req);
	if (err)
		return err;
	err = k->addr ? addr_take(k, req, &r) : id_take(k, req, &r);
	if (err)
		return err;
	*out = (struct vmres_resource){ .kind = k->kind, .range = r, .tag = req->tag };
	return VMRES_OK;
}

/* The "free" of every kind's ops table. */
static int kind_free(struct vmres_allocator *self, const struct vmres_resource *res)
{
	struct vmres__system_kind *k = callback_kind(self);
	int err;

	if (!k || !res || res->kind != k->kind)
		return VMRES_E_INVALID_ARGUMENT;
	err = vmres__system_check_resource(k->sys, res);
	if (err)
		return err;
	return k->addr ? vmres_addr_free(k->addr, res->range)
		       : vmres_id_free(k->ids, (uint32_t)res->range.start);
}

bool vmres__system_owns_callback(const struct vmres_allocator *a)
{
	return a->allocate == kind_allocate;
}

/* ---- create / destroy ---- */

/* Whether kinds @a and @b are both present and their spans share a unit. */
static bool spans_overlap(const struct vmres_layout *layout, enum vmres_kind a, enum vmres_kind b)
{
	const struct vmres_range *x = &layout->span[a];
	const struct vmres_range *y = &layout->span[b];

	return layout->present[a] && layout->present[b] && x->start <= y->end && y->start <= x->end;
}

static int check_layout(const struct vmres_layout *layout)
{
	for (size_t k = 0; k < VMRES_KIND_COUNT; k++) {
		if (!layout->present[k])
			continue;
		if (layout->span[k].start > layout->span[k].end)
			return VMRES_E_INVALID_RANGE;
		if (vmres_kind_is_id((enum vmres_kind)k) && layout->span[k].end > UINT32_MAX)
			return VMRES_E_OUT_OF_RANGE; /* keeps invariant 3 */
		if (k == VMRES_MMIO32 && layout->span[k].end > UINT32_MAX)
			return VMRES_E_OUT_OF_RANGE; /* a 32-bit BAR cannot reach it */
		if (k == VMRES_PIO && layout->span[k].end > 0xffff)
			return VMRES_E_OUT_OF_RANGE; /* x86 ports are 16-bit */
	}
	/* Two kinds of one space would hand one unit to two devices. */
	if (spans_overlap(layout, VMRES_MMIO32, VMRES_MMIO64) ||
	    spans_overlap(layout, VMRES_LEGACY_IRQ, VMRES_MSI_GSI))
		return VMRES_E_INVALID_RANGE;
	return VMRES_OK;
}

static int kind_init(struct vmres_system *sys, enum vmres_kind kind)
{
	struct vmres__system_kind *k = &sys->kinds[kind];
	struct vmres_range span = sys->layout.span[kind];
	int err;

	k->sys = sys;
	k->kind = kind;
	k->span = span;
	if (!sys->layout.present[kind])
		return VMRES_OK;
	/* keeps invariants 1 and 2 */
	if (vmres_kind_is_address(kind))
		err = vmres_addr_allocator_create_ex(span.start, span.end, &sys->kind_mem,
						     &k->addr);
	else
		err = vmres_id_allocator_create_ex((uint32_t)span.start, (uint32_t)span.end,
						   &sys->kind_mem, &k->ids);
	/* Reserve blocks must reach the reserve: no pools on the system's kinds. */
	if (!err && vmres_kind_is_address(kind))
		vmres__addr_pool_disable(k->addr);
	else if (!err)
		vmres__id_pool_disable(k->ids);
	if (!err)
		k->ops = (struct vmres_allocator){ kind_allocate, kind_free }; /* invariant 2 */
	return err;
}

static void kinds_destroy(struct vmres_system *sys)
{
	/* One barrier for all kinds (each destroy would wait for its own, about
	 * 10 ms each): every node any of them retired has been freed after it. */
	vmres__rcu_barrier();
	for (size_t k = 0; k < VMRES_KIND_COUNT; k++) {
		vmres__addr_allocator_free(sys->kinds[k].addr);
		vmres__id_allocator_free(sys->kinds[k].ids);
		sys->kinds[k].addr = NULL;
		sys->kinds[k].ids = NULL;
	}
}

int vmres_system_create_ex(const struct vmres_layout *layout, const struct vmres_mem_ops *mem,
			   struct vmres_system **out)
{
	struct vmres_mem_ops user_mem;
	struct vmres_system *sys;
	int err;

	if (!layout || !out)
		return VMRES_E_INVALID_ARGUMENT;
	err = vmres__mem_resolve(mem, &user_mem);
	if (!err)
		err = check_layout(layout);
	if (err)
		return err;
	sys = vmres__mem_alloc(&user_mem, sizeof(*sys));
	if (!sys)
		return VMRES_E_NOMEM;
	memset(sys, 0, sizeof(*sys));
	sys->user_mem = user_mem;
	sys->layout = *layout;
	err = vmres__reserve_init(sys);
	for (size_t k = 0; !err && k < VMRES_KIND_COUNT; k++)
		err = kind_init(sys, (enum vmres_kind)k);
	if (err) {
		kinds_destroy(sys);
		vmres__reserve_fini(sys); /* no-op for arenas never taken */
		vmres__mem_free(&user_mem, sys, sizeof(*sys));
		return err;
	}
	*out = sys; /* the caller publishes it (invariant 4) */
	return VMRES_OK;
}

int vmres_system_create(const struct vmres_layout *layout, struct vmres_system **out)
{
	return vmres_system_create_ex(layout, NULL, out);
}

void vmres_system_destroy(struct vmres_system *sys)
{
	struct vmres_mem_ops user_mem;

	if (!sys)
		return;
	user_mem = sys->user_mem;
	/* kinds_destroy() waits for every RCU callback, so the reserve can go next. */
	kinds_destroy(sys);
	vmres__reserve_fini(sys);
	vmres__mem_free(&user_mem, sys, sizeof(*sys));
}

/* ---- readers ---- */

int vmres_system_lookup(struct vmres_system *sys, enum vmres_kind kind, uint64_t addr,
			struct vmres_resource *out)
{
	struct vmres__system_kind *k;
	struct vmres_range r;
	uint64_t tag;
	int err;

	if (!sys || !out || !kind_valid(kind))
		return VMRES_E_INVALID_ARGUMENT;
	if (!kind_present(sys, kind))
		return VMRES_E_NOT_FOUND;
	k = &sys->kinds[kind];
	if (k->addr) {
		/* Wait-free RCU reader; linearizes at its root dereference. */
		err = vmres_addr_lookup(k->addr, addr, &r, &tag);
		if (err)
			return err;
		*out = (struct vmres_resource){ .kind = kind, .range = r, .tag = tag };
		return VMRES_OK;
	}
	if (addr < k->span.start || addr > k->span.end)
		return VMRES_E_OUT_OF_RANGE;
	if (!vmres_id_is_allocated(k->ids, (uint32_t)addr)) /* invariant 3 */
		return VMRES_E_NOT_FOUND;
	*out = (struct vmres_resource){ .kind = kind, .range = { addr, addr }, .tag = 0 };
	return VMRES_OK;
}

int vmres_system_get_allocator(struct vmres_system *sys, enum vmres_kind kind,
			       struct vmres_allocator **out)
{
	if (!sys || !out || !kind_valid(kind))
		return VMRES_E_INVALID_ARGUMENT;
	if (!kind_present(sys, kind))
		return VMRES_E_NOT_FOUND;
	*out = &sys->kinds[kind].ops; /* invariant 2 */
	return VMRES_OK;
}

struct vmres_allocator *vmres_system_allocator(struct vmres_system *sys, enum vmres_kind kind)
{
	struct vmres_allocator *a = NULL;

	return vmres_system_get_allocator(sys, kind, &a) ? NULL : a;
}

int vmres_system_addr_stats(struct vmres_system *sys, enum vmres_kind kind,
			    struct vmres_addr_stats *out)
{
	if (!sys || !out || !vmres_kind_is_address(kind))
		return VMRES_E_INVALID_ARGUMENT;
	if (!kind_present(sys, kind))
		return VMRES_E_NOT_FOUND;
	return vmres_addr_stats(sys->kinds[kind].addr, out);
}

int vmres_system_layout(struct vmres_system *sys, struct vmres_layout *out)
{
	if (!sys || !out)
		return VMRES_E_INVALID_ARGUMENT;
	*out = sys->layout; /* invariant 4: never written after create */
	return VMRES_OK;
}
