/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * For bench_system's system_hook_pair: a system whose rollback reserve grew
 * by @refills chunks during an outage and shrank back, and one allocation
 * and free through the memory hook its per-kind allocators use, which tells
 * reserve blocks from hook blocks by walking the reserve's chunk list
 * (src/system_reserve.c). C, since src/internal/system.h is.
 */
#include <stddef.h>

#include <vmres/vmres.h>

#include "internal/system.h"
#include "reserve_walk.h"

static int hook_fails; /* single-threaded: set around the lending */

static void *walk_alloc(void *ctx, size_t size)
{
	struct vmres_mem_ops *base = ctx;

	return hook_fails ? NULL : base->alloc(base->ctx, size);
}

static void walk_free(void *ctx, void *p, size_t size)
{
	struct vmres_mem_ops *base = ctx;

	base->free(base->ctx, p, size);
}

static struct vmres_mem_ops base_hook;
static struct vmres_mem_ops walk_hook = { walk_alloc, walk_free, &base_hook };

struct vmres_system *vb_reserve_system(unsigned refills)
{
	struct vmres_layout l;
	struct vmres_system *sys = NULL;
	void **lent;
	size_t n = 0;

	if (vmres_mem_get_default(&base_hook))
		return NULL;
	vmres_layout_x86_64_default(&l);
	if (vmres_system_create_ex(&l, &walk_hook, &sys))
		return NULL;
	lent = base_hook.alloc(base_hook.ctx, (size_t)refills * 4 * sizeof(void *) + 1);
	if (!lent) {
		vmres_system_destroy(sys);
		return NULL;
	}
	for (unsigned r = 0; r < refills; r++) {
		/* An outage: a rollback takes a quantum (4) of large blocks... */
		hook_fails = 1;
		vmres__rollback_enter();
		for (int i = 0; i < 4; i++) {
			void *p =
				sys->kind_mem.alloc(sys->kind_mem.ctx, VMRES__RESERVE_LARGE_BLOCK);

			if (p)
				lent[n++] = p;
		}
		vmres__rollback_leave();
		hook_fails = 0;
		/* ...then the hook works again: the class refills by a chunk. */
		vb_reserve_pair(sys);
	}
	while (n) /* everything back: the class shrinks to its size at create */
		sys->kind_mem.free(sys->kind_mem.ctx, lent[--n], VMRES__RESERVE_LARGE_BLOCK);
	base_hook.free(base_hook.ctx, lent, (size_t)refills * 4 * sizeof(void *) + 1);
	return sys;
}

void vb_reserve_pair(struct vmres_system *sys)
{
	void *p = sys->kind_mem.alloc(sys->kind_mem.ctx, 64);

	if (p)
		sys->kind_mem.free(sys->kind_mem.ctx, p, 64);
}

unsigned vb_reserve_large_blocks(struct vmres_system *sys)
{
	return vmres__reserve_blocks(sys, 1);
}
