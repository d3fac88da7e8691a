/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The memory hook: where libvmres gets and returns every byte it uses.
 *
 * Each allocator copies a struct vmres_mem_ops when it is created (the one
 * passed to its *_create_ex() function, or the process-wide default) and
 * uses it for its own object and every node until destroy. Nodes retired
 * under RCU are returned from liburcu's call_rcu thread, so @free must be
 * callable from any thread.
 *
 * Calls that may run at the same time:
 *   vmres_mem_set_default()  - before any other libvmres call (not concurrent)
 *   vmres_mem_get_default()  - any thread, any time
 */
#ifndef VMRES_MEM_H
#define VMRES_MEM_H

#include <stddef.h>

#include <vmres/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct vmres_mem_ops - an embedder-supplied allocator
 * @alloc: returns @size bytes aligned for any object type, or NULL; NULL makes
 *         the libvmres call fail with VMRES_E_NOMEM and change nothing
 * @free:  returns @p, which @alloc gave for @size bytes; never called with NULL
 * @ctx:   passed back to both
 */
struct vmres_mem_ops {
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *p, size_t size);
	void *ctx;
};

/**
 * vmres_mem_set_default() - set the process-wide memory hook
 * @ops: the hook to copy, or NULL to go back to malloc()/free()
 *
 * Allocators created afterwards without their own hook use this one;
 * allocators that already exist keep the hook they were created with.
 *
 * Return: 0, or VMRES_E_INVALID_ARGUMENT if @ops has a NULL @alloc or @free.
 *
 * Context: not thread-safe; call it before other threads use libvmres.
 */
VMRES_API int vmres_mem_set_default(const struct vmres_mem_ops *ops);

/**
 * vmres_mem_get_default() - read the process-wide memory hook
 * @out: receives a copy of the current default
 *
 * Return: 0, or VMRES_E_INVALID_ARGUMENT if @out is NULL.
 *
 * Context: any thread.
 */
VMRES_API int vmres_mem_get_default(struct vmres_mem_ops *out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_MEM_H */
