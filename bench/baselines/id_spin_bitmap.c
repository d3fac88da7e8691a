/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Baseline: a bitmap of IDs taking the lowest clear bit, behind a spinlock
 * (Concurrency Kit ck_spinlock_fas). This is the shape of cloud-hypervisor's
 * and Firecracker's small-range allocators (IRQ/GSI bitmaps, device slots):
 * one bit per ID of the range, a word-at-a-time scan for the first zero.
 *
 * The lock sits on its own cache line; bits past `last` are preset so the
 * scan never hands them out.
 */
#define _POSIX_C_SOURCE 200809L /* aligned_alloc and pthread under -std=c11 */

#include "baselines.h"

#include <stdlib.h>
#include <string.h>

#include <ck_spinlock.h>

struct bl_id_bitmap {
	ck_spinlock_fas_t lock;
	char pad[64 - sizeof(ck_spinlock_fas_t)];
	uint32_t first;
	uint32_t last;
	size_t nwords;
	uint64_t *words;
};

int bl_id_bitmap_create(uint32_t first, uint32_t last, struct bl_id_bitmap **out)
{
	struct bl_id_bitmap *b;
	uint64_t nbits;

	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	if (first > last)
		return VMRES_E_INVALID_RANGE;
	b = aligned_alloc(64, (sizeof(*b) + 63) / 64 * 64); /* C11: size a multiple of 64 */
	if (!b)
		return VMRES_E_NOMEM;
	memset(b, 0, sizeof(*b));
	nbits = (uint64_t)last - first + 1;
	b->nwords = (size_t)((nbits + 63) / 64);
	b->words = calloc(b->nwords, sizeof(uint64_t));
	if (!b->words) {
		free(b);
		return VMRES_E_NOMEM;
	}
	if (nbits % 64) /* bits past `last` are never free */
		b->words[b->nwords - 1] = ~0ULL << (nbits % 64);
	b->first = first;
	b->last = last;
	ck_spinlock_fas_init(&b->lock);
	*out = b;
	return 0;
}

void bl_id_bitmap_destroy(struct bl_id_bitmap *b)
{
	if (!b)
		return;
	free(b->words);
	free(b);
}

size_t bl_id_bitmap_bytes(const struct bl_id_bitmap *b)
{
	return sizeof(*b) + b->nwords * sizeof(uint64_t);
}

int bl_id_bitmap_alloc(struct bl_id_bitmap *b, uint32_t *id_out)
{
	int err = VMRES_E_EXHAUSTED;

	ck_spinlock_fas_lock(&b->lock);
	for (size_t i = 0; i < b->nwords; i++) {
		uint64_t w = b->words[i];
		if (w != ~0ULL) {
			unsigned bit = (unsigned)__builtin_ctzll(~w);
			b->words[i] = w | (1ULL << bit);
			*id_out = b->first + (uint32_t)(i * 64 + bit);
			err = 0;
			break;
		}
	}
	ck_spinlock_fas_unlock(&b->lock);
	return err;
}

int bl_id_bitmap_free(struct bl_id_bitmap *b, uint32_t id)
{
	int err = 0;

	if (id < b->first || id > b->last)
		return VMRES_E_OUT_OF_RANGE;
	uint64_t off = (uint64_t)id - b->first;
	uint64_t mask = 1ULL << (off % 64);
	ck_spinlock_fas_lock(&b->lock);
	if (b->words[off / 64] & mask)
		b->words[off / 64] &= ~mask;
	else
		err = VMRES_E_ALREADY_FREED; /* a bitmap cannot tell "never" from "already" */
	ck_spinlock_fas_unlock(&b->lock);
	return err;
}
