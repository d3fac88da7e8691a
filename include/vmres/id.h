/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Lock-free ID allocator: integer resources (legacy IRQs/GSIs, MSI GSIs,
 * device instance IDs, KVM memory slots). The smallest free ID is handed out
 * first. See docs/design.md for the algorithm.
 *
 * Calls that may run at the same time (any registered threads):
 *   alloc, alloc_at, free, is_allocated  - with each other, freely
 *   create                               - with anything (new object)
 *   destroy                              - with nothing on the same allocator
 */
#ifndef VMRES_ID_H
#define VMRES_ID_H

#include <stdbool.h>
#include <stdint.h>

#include <vmres/error.h>
#include <vmres/export.h>
#include <vmres/mem.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_id_allocator; /* opaque */

/**
 * vmres_id_allocator_create() - make an allocator for the IDs [first, last]
 * @first: lowest ID handed out
 * @last:  highest ID handed out (inclusive; UINT32_MAX allowed)
 * @out:   receives the allocator
 *
 * Uses the process-wide memory hook (vmres_mem_set_default()).
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @out is NULL; VMRES_E_INVALID_RANGE
 * if @first > @last; VMRES_E_NOMEM.
 *
 * Context: any thread.
 */
VMRES_API int vmres_id_allocator_create(uint32_t first, uint32_t last,
					struct vmres_id_allocator **out);

/**
 * vmres_id_allocator_create_ex() - vmres_id_allocator_create() with a memory hook
 * @first: lowest ID handed out
 * @last:  highest ID handed out (inclusive)
 * @mem:   the hook this allocator uses for all its memory, copied; NULL for
 *         the process-wide default
 * @out:   receives the allocator
 *
 * Return: as vmres_id_allocator_create(); also VMRES_E_INVALID_ARGUMENT if
 * @mem lacks alloc or free.
 *
 * Context: any thread.
 */
VMRES_API int vmres_id_allocator_create_ex(uint32_t first, uint32_t last,
					   const struct vmres_mem_ops *mem,
					   struct vmres_id_allocator **out);

/**
 * vmres_id_allocator_destroy() - free the allocator and everything it holds
 * @ids: the allocator, or NULL (nothing happens)
 *
 * Waits for nodes retired under RCU to be freed (an RCU barrier), so no
 * memory of this allocator is left once it returns.
 *
 * Context: a registered thread, outside any RCU read-side section; no other
 * call on @ids may run at the same time or after. Blocks.
 */
VMRES_API void vmres_id_allocator_destroy(struct vmres_id_allocator *ids);

/**
 * vmres_id_alloc() - take the smallest free ID
 * @ids:    the allocator
 * @id_out: receives the ID
 *
 * Lock-free and linearizable: the ID returned was the smallest free one at
 * the call's linearization point.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids or @id_out;
 * VMRES_E_EXHAUSTED if no ID is free; VMRES_E_NOMEM (nothing changed).
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_id_alloc(struct vmres_id_allocator *ids, uint32_t *id_out);

/**
 * vmres_id_alloc_at() - take one given ID
 * @ids: the allocator
 * @id:  the ID wanted, freed before or never handed out
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids; VMRES_E_OUT_OF_RANGE if
 * @id is outside [first, last]; VMRES_E_IN_USE if @id is held;
 * VMRES_E_NOMEM (nothing changed).
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_id_alloc_at(struct vmres_id_allocator *ids, uint32_t id);

/**
 * vmres_id_free() - give an ID back
 * @ids: the allocator
 * @id:  an ID held by the caller
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT for NULL @ids; VMRES_E_OUT_OF_RANGE if
 * @id is outside [first, last]; VMRES_E_NEVER_ALLOCATED if @id was never
 * handed out since creation; VMRES_E_ALREADY_FREED if it is free again;
 * VMRES_E_NOMEM (nothing changed).
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_id_free(struct vmres_id_allocator *ids, uint32_t id);

/**
 * vmres_id_is_allocated() - whether an ID is held right now
 * @ids: the allocator
 * @id:  any value
 *
 * Return: true exactly when @id is currently held; false for NULL @ids and
 * for IDs outside the range.
 *
 * Context: any registered thread.
 */
VMRES_API bool vmres_id_is_allocated(struct vmres_id_allocator *ids, uint32_t id);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ID_H */
