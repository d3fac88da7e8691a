/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The system allocator: one allocator per resource kind for a whole VM,
 * thread-safe by composition of the lock-free allocators (no global lock).
 */
#ifndef VMRES_SYSTEM_H
#define VMRES_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>

#include <vmres/export.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct vmres_layout - which kinds a VM has and their spans
 * @span:    the inclusive span of each kind (ID kinds: within 32 bits)
 * @present: whether the kind is served at all
 */
struct vmres_layout {
	struct vmres_range span[VMRES_KIND_COUNT];
	bool present[VMRES_KIND_COUNT];
};

struct vmres_system; /* opaque, thread-safe */

VMRES_API void vmres_layout_x86_64_default(struct vmres_layout *out);
VMRES_API int vmres_system_create(const struct vmres_layout *layout, struct vmres_system **out);
VMRES_API void vmres_system_destroy(struct vmres_system *sys);
VMRES_API int vmres_system_allocate(struct vmres_system *sys, const struct vmres_request *reqs,
				    size_t n, struct vmres_resource *out);
VMRES_API int vmres_system_free(struct vmres_system *sys, const struct vmres_resource *res,
				size_t n);
VMRES_API int vmres_system_lookup(struct vmres_system *sys, enum vmres_kind kind, uint64_t addr,
				  struct vmres_resource *out);
VMRES_API struct vmres_allocator *vmres_system_allocator(struct vmres_system *sys,
							 enum vmres_kind kind);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_SYSTEM_H */
