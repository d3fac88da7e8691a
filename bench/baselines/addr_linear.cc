/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Baseline: crosvm's AddressAllocator (resources/src/address_allocator.rs)
 * behind a pthread mutex, the linear search cost VMMs pay today (rust-vmm's
 * non-augmented AVL walk and cloud-hypervisor's scan cost the same order).
 *
 * Ported shape:
 *   - `regions`: an ordered set of free inclusive ranges (BTreeSet there,
 *     std::set here);
 *   - allocate_with_align: regions.iter().find(first region where the
 *     aligned start + size - 1 fits), i.e. a linear scan from the bottom;
 *     reverse_allocate_with_align: the same scan from the top (LAST match);
 *     allocate_at: a linear scan for the region holding the whole request;
 *   - release: the allocation record is found by key (a map by start here,
 *     a HashMap by Alloc id there), then insert_at coalesces with a linear
 *     scan over every free region looking for the left and right
 *     neighbours, exactly as crosvm does.
 */
#include "baselines.h"

#include <pthread.h>

#include <map>
#include <set>
#include <utility>

#include "counting_allocator.h"

namespace
{
using region = std::pair<uint64_t, uint64_t>; /* start, end (inclusive) */
using region_set = std::set<region, std::less<region>, bl::counting_allocator<region>>;
using alloc_map =
	std::map<uint64_t, std::pair<uint64_t, uint64_t>, std::less<uint64_t>,
		 bl::counting_allocator<std::pair<const uint64_t, std::pair<uint64_t, uint64_t>>>>;
} // namespace

struct bl_linear {
	pthread_mutex_t lock;
	uint64_t first;
	uint64_t last;
	region_set regions; /* free space */
	alloc_map allocs;   /* start -> (end, tag) */
};

int bl_linear_create(uint64_t first, uint64_t last, struct bl_linear **out)
{
	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	if (first > last)
		return VMRES_E_INVALID_RANGE;
	bl_linear *l = new (std::nothrow) bl_linear();
	if (!l)
		return VMRES_E_NOMEM;
	pthread_mutex_init(&l->lock, nullptr);
	l->first = first;
	l->last = last;
	l->regions.insert(region(first, last));
	*out = l;
	return 0;
}

void bl_linear_destroy(struct bl_linear *l)
{
	if (!l)
		return;
	pthread_mutex_destroy(&l->lock);
	delete l;
}

/* Lowest aligned start of @size in @r, if any. */
static bool fit_first(const region &r, uint64_t size, uint64_t align, uint64_t *start)
{
	uint64_t rem = r.first & (align - 1);
	uint64_t s = rem ? r.first + (align - rem) : r.first;
	if (s < r.first) /* wrapped */
		return false;
	if (s > r.second || r.second - s < size - 1)
		return false;
	*start = s;
	return true;
}

/* Highest aligned start of @size in @r, if any. */
static bool fit_last(const region &r, uint64_t size, uint64_t align, uint64_t *start)
{
	if (r.second - r.first < size - 1)
		return false;
	uint64_t s = (r.second - (size - 1)) & ~(align - 1);
	if (s < r.first)
		return false;
	*start = s;
	return true;
}

static int linear_find(bl_linear *l, const vmres_addr_request *req, region *slot, uint64_t *start)
{
	uint64_t size = req->size;
	switch (req->policy) {
	case VMRES_FIRST_MATCH:
		for (const region &r : l->regions) /* linear, from the bottom */
			if (fit_first(r, size, req->align, start)) {
				*slot = r;
				return 0;
			}
		return VMRES_E_EXHAUSTED;
	case VMRES_LAST_MATCH:
		for (auto it = l->regions.rbegin(); it != l->regions.rend(); ++it)
			if (fit_last(*it, size, req->align, start)) {
				*slot = *it;
				return 0;
			}
		return VMRES_E_EXHAUSTED;
	case VMRES_EXACT_MATCH: {
		uint64_t end = req->addr + (size - 1);
		if (end < req->addr || req->addr < l->first || end > l->last)
			return VMRES_E_OUT_OF_RANGE;
		for (const region &r : l->regions) /* allocate_at: linear */
			if (r.first <= req->addr && end <= r.second) {
				*slot = r;
				*start = req->addr;
				return 0;
			}
		return VMRES_E_IN_USE;
	}
	}
	return VMRES_E_INVALID_ARGUMENT;
}

static int linear_alloc_locked(bl_linear *l, const vmres_addr_request *req, vmres_range *out)
{
	region slot;
	uint64_t start = 0;
	int err = linear_find(l, req, &slot, &start);
	if (err)
		return err;
	uint64_t end = start + (req->size - 1);
	l->regions.erase(slot);
	if (slot.first < start)
		l->regions.insert(region(slot.first, start - 1));
	if (slot.second > end)
		l->regions.insert(region(end + 1, slot.second));
	l->allocs.emplace(start, std::make_pair(end, req->tag));
	out->start = start;
	out->end = end;
	return 0;
}

int bl_linear_alloc(struct bl_linear *l, const struct vmres_addr_request *req,
		    struct vmres_range *out)
{
	if (!l || !req || !out)
		return VMRES_E_INVALID_ARGUMENT;
	if (req->size == 0)
		return VMRES_E_INVALID_SIZE;
	if (req->align == 0 || (req->align & (req->align - 1)))
		return VMRES_E_INVALID_ALIGNMENT;
	pthread_mutex_lock(&l->lock);
	int err = linear_alloc_locked(l, req, out);
	pthread_mutex_unlock(&l->lock);
	return err;
}

/* crosvm insert_at(): coalesce with a linear scan over every free region. */
static void linear_insert_free(bl_linear *l, region slot)
{
	const region *left = nullptr;
	const region *right = nullptr;
	for (const region &r : l->regions) {
		if (r.second != UINT64_MAX && r.second + 1 == slot.first)
			left = &r;
		if (slot.second != UINT64_MAX && r.first == slot.second + 1)
			right = &r;
	}
	if (left) {
		slot.first = left->first;
		l->regions.erase(*left);
	}
	if (right) {
		slot.second = right->second;
		l->regions.erase(*right);
	}
	l->regions.insert(slot);
}

int bl_linear_free(struct bl_linear *l, struct vmres_range r)
{
	if (!l)
		return VMRES_E_INVALID_ARGUMENT;
	if (r.start > r.end)
		return VMRES_E_INVALID_RANGE;
	int err = 0;
	pthread_mutex_lock(&l->lock);
	auto it = l->allocs.find(r.start);
	if (it == l->allocs.end() || it->second.first != r.end) {
		err = VMRES_E_NOT_FOUND;
	} else {
		l->allocs.erase(it);
		linear_insert_free(l, region(r.start, r.end));
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}

int bl_linear_lookup(struct bl_linear *l, uint64_t addr, struct vmres_range *out, uint64_t *tag_out)
{
	if (!l)
		return VMRES_E_INVALID_ARGUMENT;
	if (addr < l->first || addr > l->last)
		return VMRES_E_OUT_OF_RANGE;
	int err = VMRES_E_NOT_FOUND;
	pthread_mutex_lock(&l->lock);
	auto it = l->allocs.upper_bound(addr);
	if (it != l->allocs.begin()) {
		--it;
		if (addr <= it->second.first) {
			if (out) {
				out->start = it->first;
				out->end = it->second.first;
			}
			if (tag_out)
				*tag_out = it->second.second;
			err = 0;
		}
	}
	pthread_mutex_unlock(&l->lock);
	return err;
}
