/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* The memory hook as the allocators use it. */
#ifndef VMRES_INTERNAL_MEM_H
#define VMRES_INTERNAL_MEM_H

#include <stddef.h>

#include <vmres/mem.h>

/*
 * vmres__mem_resolve() - the hook an allocator being created will keep
 * @given: the caller's hook, or NULL for the process-wide default
 * @out:   receives the copy to keep
 *
 * Return: 0, or VMRES_E_INVALID_ARGUMENT if @given lacks alloc or free.
 */
int vmres__mem_resolve(const struct vmres_mem_ops *given, struct vmres_mem_ops *out);

static inline void *vmres__mem_alloc(const struct vmres_mem_ops *m, size_t size)
{
	return m->alloc(m->ctx, size);
}

static inline void vmres__mem_free(const struct vmres_mem_ops *m, void *p, size_t size)
{
	if (p)
		m->free(m->ctx, p, size);
}

#endif /* VMRES_INTERNAL_MEM_H */
