/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Baseline: rust-vmm vm-allocator's IdAllocator (src/id_allocator.rs) behind
 * a pthread mutex, which is how VMMs share it today (Arc<Mutex<..>>).
 *
 * Semantics ported one to one: `next_id` is the smallest never-handed-out
 * ID (none once the range is used up), `freed_ids` an ordered set of freed
 * IDs (BTreeSet in Rust; std::set here, the same O(log F) shape).
 * allocate_id pops the smallest freed ID if there is one, else hands out
 * next_id; free_id checks the range, "never allocated" (id >= next_id) and
 * "already released" (in freed_ids), then inserts.
 */
#include "baselines.h"

#include <pthread.h>

#include <set>

#include "counting_allocator.h"

std::atomic<int64_t> bl::bytes_in_use{ 0 };

int64_t bl_mem_bytes_in_use(void)
{
	return bl::bytes_in_use.load(std::memory_order_relaxed);
}

struct bl_id_set {
	pthread_mutex_t lock;
	uint32_t range_base;
	uint32_t range_end;
	bool has_next; /* Rust: next_id: Option<u32> */
	uint32_t next_id;
	std::set<uint32_t, std::less<uint32_t>, bl::counting_allocator<uint32_t>> freed_ids;
};

int bl_id_set_create(uint32_t first, uint32_t last, struct bl_id_set **out)
{
	if (!out)
		return VMRES_E_INVALID_ARGUMENT;
	if (first > last)
		return VMRES_E_INVALID_RANGE;
	bl_id_set *s = new (std::nothrow) bl_id_set();
	if (!s)
		return VMRES_E_NOMEM;
	pthread_mutex_init(&s->lock, nullptr);
	s->range_base = first;
	s->range_end = last;
	s->has_next = true;
	s->next_id = first;
	*out = s;
	return 0;
}

void bl_id_set_destroy(struct bl_id_set *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	delete s;
}

static int id_set_alloc_locked(bl_id_set *s, uint32_t *id_out)
{
	if (!s->freed_ids.empty()) {
		auto first = s->freed_ids.begin();
		*id_out = *first;
		s->freed_ids.erase(first);
		return 0;
	}
	if (!s->has_next)
		return VMRES_E_EXHAUSTED;
	*id_out = s->next_id;
	if (s->next_id == s->range_end)
		s->has_next = false; /* checked_add in Rust: never wraps */
	else
		s->next_id++;
	return 0;
}

int bl_id_set_alloc(struct bl_id_set *s, uint32_t *id_out)
{
	pthread_mutex_lock(&s->lock);
	int err = id_set_alloc_locked(s, id_out);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int id_set_free_locked(bl_id_set *s, uint32_t id)
{
	if (id < s->range_base || id > s->range_end)
		return VMRES_E_OUT_OF_RANGE;
	if (s->has_next && id >= s->next_id)
		return VMRES_E_NEVER_ALLOCATED;
	if (!s->freed_ids.insert(id).second)
		return VMRES_E_ALREADY_FREED;
	return 0;
}

int bl_id_set_free(struct bl_id_set *s, uint32_t id)
{
	pthread_mutex_lock(&s->lock);
	int err = id_set_free_locked(s, id);
	pthread_mutex_unlock(&s->lock);
	return err;
}

int bl_id_set_take_freed(struct bl_id_set *s, uint32_t id)
{
	pthread_mutex_lock(&s->lock);
	int err = s->freed_ids.erase(id)	      ? 0
		  : (s->has_next && id >= s->next_id) ? VMRES_E_INVALID_ARGUMENT
						      : VMRES_E_IN_USE;
	pthread_mutex_unlock(&s->lock);
	return err;
}
