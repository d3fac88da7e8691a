/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <stdlib.h>

#include <vmres/error.h>

#include "internal/mem.h"

static void *libc_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void libc_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

/* Written only by vmres_mem_set_default(), documented as not concurrent. */
static struct vmres_mem_ops default_ops = { libc_alloc, libc_free, NULL };

static int mem_ops_valid(const struct vmres_mem_ops *ops)
{
	return ops->alloc && ops->free;
}

int vmres_mem_set_default(const struct vmres_mem_ops *ops)
{
	if (!ops) {
		default_ops = (struct vmres_mem_ops){ libc_alloc, libc_free, NULL };
		return VMRES_OK;
	}
	if (!mem_ops_valid(ops))
		return VMRES_E_INVALID_ARGUMENT;
	default_ops = *ops;
	return VMRES_OK;
}

int vmres_mem_get_default(struct vmres_mem_ops *out)
{
	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	*out = default_ops;
	return VMRES_OK;
}

int vmres__mem_resolve(const struct vmres_mem_ops *given, struct vmres_mem_ops *out)
{
	if (!given) {
		*out = default_ops;
		return VMRES_OK;
	}
	if (!mem_ops_valid(given))
		return VMRES_E_INVALID_ARGUMENT;
	*out = *given;
	return VMRES_OK;
}
