/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Resource kinds, requests, and the ResourceAllocator "trait": the ops table
 * both allocators are exposed through, so a device manager can hold one as an
 * allocation callback (or NULL when the VMM allocates that kind itself).
 * See docs/design.md, "The resource layer".
 *
 * Calls that may run at the same time:
 *   vmres_kind_name, vmres_kind_is_address, vmres_kind_is_id
 *                           - pure functions: any thread, any time
 *   vmres_allocate_batch    - any registered threads, with each other and
 *                             with any call on the allocators it is given,
 *                             as those allocators allow (the system
 *                             allocator's allow everything but destroy)
 */
#ifndef VMRES_RESOURCE_H
#define VMRES_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/error.h>
#include <vmres/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum vmres_kind - the resources a VMM hands to devices
 * @VMRES_PIO:        x86 port I/O space (address kind; a system's span must
 *                    end by 0xffff)
 * @VMRES_MMIO32:     MMIO window below 4 GiB (address kind; a system's
 *                    span must end by 0xffffffff)
 * @VMRES_MMIO64:     MMIO window for 64-bit BARs, usually above 4 GiB
 *                    (address kind; a system's span may not overlap MMIO32's)
 * @VMRES_LEGACY_IRQ: legacy IRQ / GSI numbers (ID kind)
 * @VMRES_MSI_GSI:    GSIs for MSI/MSI-X routes (ID kind; a system's span may
 *                    not overlap LEGACY_IRQ's: both are GSIs)
 * @VMRES_DEVICE_ID:  device instance IDs (ID kind)
 * @VMRES_MEM_SLOT:   KVM memory slots (ID kind)
 * @VMRES_KIND_COUNT: number of kinds, not a kind
 */
enum vmres_kind {
	VMRES_PIO,
	VMRES_MMIO32,
	VMRES_MMIO64,
	VMRES_LEGACY_IRQ,
	VMRES_MSI_GSI,
	VMRES_DEVICE_ID,
	VMRES_MEM_SLOT,
	VMRES_KIND_COUNT
};

/**
 * struct vmres_request - one resource a device needs
 * @kind:   which resource
 * @size:   bytes for address kinds; must be 1 for ID kinds
 * @align:  address kinds: power of two, 1 = none; ignored for ID kinds
 * @policy: FIRST, LAST, or EXACT at @fixed (ID kinds: FIRST is the
 *          smallest free ID; LAST is not supported for IDs and gives
 *          VMRES_E_INVALID_ARGUMENT)
 * @fixed:  EXACT: the address or the ID wanted
 * @tag:    owner tag, e.g. the device's id, given back by lookups of
 *          address kinds (ID allocators keep no tags)
 */
struct vmres_request {
	enum vmres_kind kind;
	uint64_t size;
	uint64_t align;
	enum vmres_policy policy;
	uint64_t fixed;
	uint64_t tag;
};

/**
 * struct vmres_resource - one resource held
 * @kind:  which resource
 * @range: the addresses; an ID is range.start == range.end
 * @tag:   the owner tag of the request
 */
struct vmres_resource {
	enum vmres_kind kind;
	struct vmres_range range;
	uint64_t tag;
};

/**
 * struct vmres_allocator - the ResourceAllocator "trait"
 * @allocate: take one resource for @req into @out; 0 or a negative
 *            enum vmres_error, with nothing taken on error
 * @free:     give back a resource @allocate returned
 *
 * Implemented by the system allocator for each kind it serves
 * (vmres_system_allocator()); an embedder may implement its own. Both
 * functions may be called from any registered thread at the same time.
 * @self is the table itself, so an implementation can find its state next
 * to it: use a table through the pointer you were given, never through a
 * copy. A copy of a system's table is not a system callback; calling
 * through it, or listing it in a vmres_allocate_batch() table, reads
 * memory around the copy (undefined behaviour).
 */
struct vmres_allocator {
	int (*allocate)(struct vmres_allocator *self, const struct vmres_request *req,
			struct vmres_resource *out);
	int (*free)(struct vmres_allocator *self, const struct vmres_resource *res);
};

/*
 * VMRES_NO_INDEX - the failing index of an error that is about no single
 * request (a NULL array, for instance).
 */
#define VMRES_NO_INDEX SIZE_MAX

/**
 * vmres_kind_name() - the name of a resource kind
 * @kind: any value
 *
 * Return: a static string such as "MMIO32" or "MSI_GSI"; "UNKNOWN" for a
 * value that is not a kind (VMRES_KIND_COUNT included); never NULL.
 *
 * Context: any thread; no registration needed.
 */
VMRES_API const char *vmres_kind_name(enum vmres_kind kind);

/**
 * vmres_kind_is_address() - whether a kind is served by an address allocator
 * @kind: any value
 *
 * Return: true for VMRES_PIO, VMRES_MMIO32 and VMRES_MMIO64; false for every
 * other value.
 *
 * Context: any thread; no registration needed.
 */
VMRES_API bool vmres_kind_is_address(enum vmres_kind kind);

/**
 * vmres_kind_is_id() - whether a kind is served by an ID allocator
 * @kind: any value
 *
 * Return: true for VMRES_LEGACY_IRQ, VMRES_MSI_GSI, VMRES_DEVICE_ID and
 * VMRES_MEM_SLOT; false for every other value.
 *
 * Context: any thread; no registration needed.
 */
VMRES_API bool vmres_kind_is_id(enum vmres_kind kind);

/**
 * vmres_allocate_batch() - take several resources through callbacks, all or nothing
 * @table:        one callback per kind, indexed by enum vmres_kind; a NULL
 *                entry means "this kind is not served here"
 * @reqs:         the requests, @n of them
 * @n:            how many; 0 takes nothing and returns 0
 * @out:          receives @n resources, out[i] for reqs[i]; its contents are
 *                unspecified when the call fails
 * @failed_index: if not NULL, receives the index of the request that failed,
 *                or VMRES_NO_INDEX on success and for errors about no single
 *                request
 *
 * First every request is checked, with nothing taken: its kind must have a
 * callback with both ->allocate and ->free, and a request served by a system
 * allocator's callback must be of that callback's kind and pass the checks
 * of vmres_system_allocate_ex()'s first phase. The first request that fails
 * a check gives that error and its index, even if an earlier request would
 * have failed when taken. Then the resources are taken in index order
 * through table[reqs[i].kind]->allocate.
 * If one fails, the ones this call already took are given back through their
 * ->free, last first, before the call returns that first failure's error.
 * This is what vmres_system_allocate_ex() does for a system allocator's own
 * callbacks; a device manager that holds callbacks uses it to register a
 * device in one step.
 *
 * A rollback gives an ID back with ->free, so an ID kind remembers it as
 * handed out: freeing it again later reports VMRES_E_ALREADY_FREED, not
 * VMRES_E_NEVER_ALLOCATED. Which IDs are free, and which one alloc returns
 * next, are as if the batch had never run.
 *
 * Giving back can itself need memory (a free may copy tree nodes). Callbacks
 * of a system allocator fall back on that system's reserve for it, so a
 * failing memory hook does not stop a rollback; see vmres_system_counters()
 * for the rare case where even the reserve runs dry. Any ->free that
 * returns VMRES_E_NOMEM in a rollback is tried again, up to ten times in
 * all: after a yield at first, then after an RCU barrier (which lets
 * memory waiting for a grace period come back). A resource whose ->free
 * still fails, with any error, stays taken and the caller is not told
 * which; a system's callbacks count it in rollback_leaks, others nowhere.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @table, or @reqs or @out with @n > 0,
 * is NULL (index VMRES_NO_INDEX), or a request's kind is not a kind;
 * VMRES_E_NOT_FOUND if the table has no callback for a request's kind, or
 * its callback lacks ->allocate or ->free; VMRES_E_INVALID_ARGUMENT also if
 * the table gives a request a system callback of another kind; a system
 * callback's check error (see vmres_system_allocate_ex()); otherwise the
 * error of the first ->allocate that failed.
 *
 * Context: any registered thread, outside any RCU read-side section: a
 * rollback whose ->free answers VMRES_E_NOMEM waits on an RCU barrier.
 * Concurrent callers: each resource is taken atomically and owned by one
 * caller, but the batch is not one atomic step: another thread may see part
 * of a batch that is later rolled back (a lookup finds it, or an allocation
 * finds the space taken and fails).
 */
VMRES_API int vmres_allocate_batch(struct vmres_allocator *const table[VMRES_KIND_COUNT],
				   const struct vmres_request *reqs, size_t n,
				   struct vmres_resource *out, size_t *failed_index);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_RESOURCE_H */
