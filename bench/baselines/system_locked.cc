/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Baseline for system_hotplug: a whole VM's resources held the way
 * cloud-hypervisor holds them (vmm/src/device_manager.rs):
 *   - allocation: one SystemAllocator behind one mutex
 *     (Arc<Mutex<SystemAllocator>>): rust-vmm IdAllocators for the ID kinds
 *     and crosvm-style linear address allocators for PIO/MMIO (the two
 *     baselines above; their own mutexes are uncontended under this one);
 *     a device's batch is taken under the lock, so it is all or nothing;
 *   - lookups: vCPU exits resolve an address on the device bus, a
 *     BTreeMap behind an RwLock (vm-device Bus); hotplug inserts the new
 *     device's ranges under the write lock after allocating them, and
 *     removes them before freeing.
 */
#include "baselines.h"

#include <pthread.h>

#include <map>
#include <new>
#include <utility>

namespace
{
bool is_id_kind(enum vmres_kind k)
{
	return k == VMRES_LEGACY_IRQ || k == VMRES_MSI_GSI || k == VMRES_DEVICE_ID ||
	       k == VMRES_MEM_SLOT;
}
using bus_map = std::map<uint64_t, std::pair<uint64_t, uint64_t>>; /* start -> end, tag */
} // namespace

struct bl_system {
	pthread_mutex_t alloc_lock;
	bl_id_set *ids[VMRES_KIND_COUNT] = {};
	bl_linear *addrs[VMRES_KIND_COUNT] = {};
	pthread_rwlock_t bus_lock;
	bus_map bus[VMRES_KIND_COUNT];
};

void bl_system_destroy(struct bl_system *s)
{
	if (!s)
		return;
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		bl_id_set_destroy(s->ids[k]);
		bl_linear_destroy(s->addrs[k]);
	}
	pthread_mutex_destroy(&s->alloc_lock);
	pthread_rwlock_destroy(&s->bus_lock);
	delete s;
}

int bl_system_create(const struct vmres_layout *layout, struct bl_system **out)
{
	if (!layout || !out)
		return VMRES_E_INVALID_ARGUMENT;
	bl_system *s = new (std::nothrow) bl_system();
	if (!s)
		return VMRES_E_NOMEM;
	pthread_mutex_init(&s->alloc_lock, nullptr);
	pthread_rwlock_init(&s->bus_lock, nullptr);
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		if (!layout->present[k])
			continue;
		const vmres_range &r = layout->span[k];
		int err = is_id_kind((enum vmres_kind)k)
				  ? bl_id_set_create((uint32_t)r.start, (uint32_t)r.end, &s->ids[k])
				  : bl_linear_create(r.start, r.end, &s->addrs[k]);
		if (err) {
			bl_system_destroy(s);
			return err;
		}
	}
	*out = s;
	return 0;
}

static int free_one(bl_system *s, const vmres_resource &r)
{
	if (is_id_kind(r.kind))
		return s->ids[r.kind] ? bl_id_set_free(s->ids[r.kind], (uint32_t)r.range.start)
				      : VMRES_E_NOT_FOUND;
	return s->addrs[r.kind] ? bl_linear_free(s->addrs[r.kind], r.range) : VMRES_E_NOT_FOUND;
}

static int alloc_one(bl_system *s, const vmres_request &q, vmres_resource *o)
{
	if ((unsigned)q.kind >= VMRES_KIND_COUNT)
		return VMRES_E_INVALID_ARGUMENT;
	o->kind = q.kind;
	o->tag = q.tag;
	if (is_id_kind(q.kind)) {
		if (!s->ids[q.kind])
			return VMRES_E_NOT_FOUND;
		if (q.policy != VMRES_FIRST_MATCH)
			return VMRES_E_INVALID_ARGUMENT;
		uint32_t id;
		int err = bl_id_set_alloc(s->ids[q.kind], &id);
		if (!err)
			o->range.start = o->range.end = id;
		return err;
	}
	if (!s->addrs[q.kind])
		return VMRES_E_NOT_FOUND;
	vmres_addr_request req{};
	req.size = q.size;
	req.align = q.align;
	req.policy = q.policy;
	req.addr = q.fixed;
	req.tag = q.tag;
	return bl_linear_alloc(s->addrs[q.kind], &req, &o->range);
}

int bl_system_allocate(struct bl_system *s, const struct vmres_request *reqs, size_t n,
		       struct vmres_resource *out)
{
	int err = 0;
	size_t i;

	pthread_mutex_lock(&s->alloc_lock);
	for (i = 0; i < n && !err; i++)
		err = alloc_one(s, reqs[i], &out[i]);
	if (err) /* roll back what this batch took, last first */
		for (i--; i-- > 0;)
			free_one(s, out[i]);
	pthread_mutex_unlock(&s->alloc_lock);
	if (err)
		return err;
	pthread_rwlock_wrlock(&s->bus_lock);
	for (i = 0; i < n; i++)
		if (!is_id_kind(out[i].kind))
			s->bus[out[i].kind].emplace(out[i].range.start,
						    std::make_pair(out[i].range.end, out[i].tag));
	pthread_rwlock_unlock(&s->bus_lock);
	return 0;
}

int bl_system_free(struct bl_system *s, const struct vmres_resource *res, size_t n)
{
	int err = 0;

	pthread_rwlock_wrlock(&s->bus_lock);
	for (size_t i = 0; i < n; i++)
		if (!is_id_kind(res[i].kind))
			s->bus[res[i].kind].erase(res[i].range.start);
	pthread_rwlock_unlock(&s->bus_lock);
	pthread_mutex_lock(&s->alloc_lock);
	for (size_t i = 0; i < n; i++) {
		int e = free_one(s, res[i]);
		if (e && !err)
			err = e;
	}
	pthread_mutex_unlock(&s->alloc_lock);
	return err;
}

int bl_system_lookup(struct bl_system *s, enum vmres_kind kind, uint64_t addr,
		     struct vmres_resource *out)
{
	if ((unsigned)kind >= VMRES_KIND_COUNT || is_id_kind(kind))
		return VMRES_E_INVALID_ARGUMENT;
	int err = VMRES_E_NOT_FOUND;
	pthread_rwlock_rdlock(&s->bus_lock);
	const bus_map &bus = s->bus[kind];
	auto it = bus.upper_bound(addr);
	if (it != bus.begin()) {
		--it;
		if (addr <= it->second.first) {
			out->kind = kind;
			out->range.start = it->first;
			out->range.end = it->second.first;
			out->tag = it->second.second;
			err = 0;
		}
	}
	pthread_rwlock_unlock(&s->bus_lock);
	return err;
}
