/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * RCU address allocator: port I/O space, 32- and 64-bit MMIO windows. An
 * augmented balanced interval tree, updated copy-on-write and published with
 * one atomic pointer swap; readers never wait. See docs/design.md.
 *
 * Calls that may run at the same time (any registered threads):
 *   lookup, foreach, stats   - wait-free readers, with anything but destroy
 *   alloc, free              - lock-free writers, with each other and readers
 *   destroy                  - with nothing on the same allocator
 */
#ifndef VMRES_ADDR_H
#define VMRES_ADDR_H

#include <stdint.h>

#include <vmres/error.h>
#include <vmres/export.h>
#include <vmres/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_addr_allocator; /* opaque */

/**
 * enum vmres_policy - where an allocation is placed
 * @VMRES_FIRST_MATCH: the lowest aligned start that fits
 * @VMRES_LAST_MATCH:  the highest aligned start that fits
 * @VMRES_EXACT_MATCH: exactly at the request's addr
 */
enum vmres_policy { VMRES_FIRST_MATCH, VMRES_LAST_MATCH, VMRES_EXACT_MATCH };

/**
 * struct vmres_addr_request - one allocation request
 * @size:   bytes, > 0
 * @align:  power of two; 1 means none
 * @policy: placement
 * @addr:   VMRES_EXACT_MATCH: the start wanted
 * @tag:    the caller's owner tag, given back by lookups
 */
struct vmres_addr_request {
	uint64_t size;
	uint64_t align;
	enum vmres_policy policy;
	uint64_t addr;
	uint64_t tag;
};

/**
 * struct vmres_addr_stats - one snapshot's totals
 * @ranges:          allocated ranges
 * @allocated_bytes: bytes in them (saturates at UINT64_MAX)
 * @largest_free:    the largest free block (saturates at UINT64_MAX)
 */
struct vmres_addr_stats {
	uint64_t ranges;
	uint64_t allocated_bytes;
	uint64_t largest_free;
};

VMRES_API int vmres_addr_allocator_create(uint64_t first, uint64_t last,
					  struct vmres_addr_allocator **out);
VMRES_API int vmres_addr_allocator_create_ex(uint64_t first, uint64_t last,
					     const struct vmres_mem_ops *mem,
					     struct vmres_addr_allocator **out);
VMRES_API void vmres_addr_allocator_destroy(struct vmres_addr_allocator *a);
VMRES_API int vmres_addr_alloc(struct vmres_addr_allocator *a, const struct vmres_addr_request *req,
			       struct vmres_range *out);
VMRES_API int vmres_addr_free(struct vmres_addr_allocator *a, struct vmres_range r);
VMRES_API int vmres_addr_lookup(struct vmres_addr_allocator *a, uint64_t addr,
				struct vmres_range *out, uint64_t *tag_out);
VMRES_API int vmres_addr_foreach(struct vmres_addr_allocator *a,
				 int (*fn)(void *ctx, struct vmres_range r, uint64_t tag),
				 void *ctx);
VMRES_API int vmres_addr_stats(struct vmres_addr_allocator *a, struct vmres_addr_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ADDR_H */
