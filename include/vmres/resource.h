/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Resource kinds, requests, and the ResourceAllocator "trait": the ops table
 * both allocators are exposed through, so a device manager can hold one as an
 * allocation callback (or NULL when the VMM allocates that kind itself).
 */
#ifndef VMRES_RESOURCE_H
#define VMRES_RESOURCE_H

#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/error.h>
#include <vmres/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum vmres_kind - the resources a VMM hands to devices
 * @VMRES_PIO:        x86 port I/O space (address kind)
 * @VMRES_MMIO32:     MMIO window below 4 GiB (address kind)
 * @VMRES_MMIO64:     MMIO window above 4 GiB (address kind)
 * @VMRES_LEGACY_IRQ: legacy IRQ / GSI numbers (ID kind)
 * @VMRES_MSI_GSI:    GSIs for MSI/MSI-X routes (ID kind)
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
 *          smallest free ID; LAST is not supported for IDs)
 * @fixed:  EXACT: the address or the ID wanted
 * @tag:    owner tag, e.g. the device's id, given back by lookups
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
 */
struct vmres_allocator {
	int (*allocate)(struct vmres_allocator *self, const struct vmres_request *req,
			struct vmres_resource *out);
	int (*free)(struct vmres_allocator *self, const struct vmres_resource *res);
};

#ifdef __cplusplus
}
#endif

#endif /* VMRES_RESOURCE_H */
