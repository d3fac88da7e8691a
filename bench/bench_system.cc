/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * System benchmarks.
 *
 * system_hotplug/<impl>: the hotplug threads (google-benchmark threads,
 * swept 1..8) each take and give back one device per iteration: a batch of
 * (device ID, MSI GSI, 32 I/O ports, one 64 KiB MMIO32 BAR), all or
 * nothing. Meanwhile one vCPU thread (a background thread) resolves random
 * PIO and MMIO32 addresses of 64 boot-time devices, as MMIO/PIO exits do,
 * and checks the owner tag. Counters: items_per_second (batches taken and
 * freed, all hotplug threads) and vcpu_lookups_per_s.
 *   vmres_system   vmres_system_allocate/free/lookup on the default
 *                  x86_64 layout (lock-free allocators, RCU lookups);
 *   global_mutex   cloud-hypervisor's shape: a SystemAllocator behind one
 *                  mutex plus a device bus behind a rwlock
 *                  (bench/baselines/system_locked.cc).
 *
 * system_hook_pair/<refills>: one 64-byte allocation and free through the
 * memory hook a system's per-kind allocators use (every node they make or
 * free goes through it), on a system whose rollback reserve grew by
 * <refills> chunks during memory outages and shrank back once every block
 * returned (bench/reserve_walk.c). The hook tells reserve blocks by walking
 * the reserve's open chunks, so the cost should not depend on <refills>.
 */
#include "bench_common.h"

#include <string>

#include "baselines/baselines.h"
#include "reserve_walk.h"

namespace
{

constexpr size_t boot_devices = 64;
constexpr size_t batch_len = 4;

struct impl_vmres_system {
	using handle = vmres_system *;
	static constexpr const char *name = "vmres_system";
	static int create(const vmres_layout *l, handle *h)
	{
		return vmres_system_create(l, h);
	}
	static void destroy(handle h)
	{
		vmres_system_destroy(h);
	}
	static int allocate(handle h, const vmres_request *q, size_t n, vmres_resource *o)
	{
		return vmres_system_allocate(h, q, n, o);
	}
	static int free(handle h, const vmres_resource *r, size_t n)
	{
		return vmres_system_free(h, r, n);
	}
	static int lookup(handle h, enum vmres_kind k, uint64_t addr, vmres_resource *o)
	{
		return vmres_system_lookup(h, k, addr, o);
	}
};

struct impl_locked_system {
	using handle = bl_system *;
	static constexpr const char *name = "global_mutex";
	static int create(const vmres_layout *l, handle *h)
	{
		return bl_system_create(l, h);
	}
	static void destroy(handle h)
	{
		bl_system_destroy(h);
	}
	static int allocate(handle h, const vmres_request *q, size_t n, vmres_resource *o)
	{
		return bl_system_allocate(h, q, n, o);
	}
	static int free(handle h, const vmres_resource *r, size_t n)
	{
		return bl_system_free(h, r, n);
	}
	static int lookup(handle h, enum vmres_kind k, uint64_t addr, vmres_resource *o)
	{
		return bl_system_lookup(h, k, addr, o);
	}
};

/* One device: what a virtio-pci device asks for, give or take. */
void device_batch(vmres_request q[batch_len], uint64_t tag)
{
	for (size_t i = 0; i < batch_len; i++) {
		q[i] = vmres_request{};
		q[i].policy = VMRES_FIRST_MATCH;
		q[i].size = 1;
		q[i].align = 1;
		q[i].tag = tag;
	}
	q[0].kind = VMRES_DEVICE_ID;
	q[1].kind = VMRES_MSI_GSI;
	q[2].kind = VMRES_PIO;
	q[2].size = 0x20;
	q[2].align = 0x20;
	q[3].kind = VMRES_MMIO32;
	q[3].size = 0x10000;
	q[3].align = 0x10000;
}

template <class Impl> struct system_fixture {
	typename Impl::handle h = nullptr;
	std::vector<vmres_resource> boot; /* PIO and MMIO32 ranges of boot devices */
	vb::background_writer vcpu;
	bool ok = false;
};
template <class Impl> system_fixture<Impl> g_sys;

template <class Impl> void system_setup(const benchmark::State &)
{
	auto &fx = g_sys<Impl>;
	fx.ok = false;
	vmres_layout layout;
	vmres_layout_x86_64_default(&layout);
	if (Impl::create(&layout, &fx.h))
		return;
	fx.boot.clear();
	for (size_t d = 0; d < boot_devices; d++) {
		vmres_request q[batch_len];
		vmres_resource r[batch_len];
		device_batch(q, d + 1);
		if (Impl::allocate(fx.h, q, batch_len, r))
			return;
		fx.boot.push_back(r[2]);
		fx.boot.push_back(r[3]);
	}
	typename Impl::handle h = fx.h;
	const std::vector<vmres_resource> *boot = &fx.boot;
	fx.vcpu.start([h, boot, r = vb::rng(3)]() mutable {
		const vmres_resource &dev = (*boot)[r.below(boot->size())];
		uint64_t addr = dev.range.start + r.below(dev.range.end - dev.range.start + 1);
		vmres_resource got;
		return Impl::lookup(h, dev.kind, addr, &got) == 0 && got.tag == dev.tag;
	});
	fx.ok = true;
}

template <class Impl> void system_teardown(const benchmark::State &)
{
	auto &fx = g_sys<Impl>;
	fx.vcpu.stop();
	Impl::destroy(fx.h);
	fx.h = nullptr;
	vmres_thread_quiescent();
}

template <class Impl> void BM_system_hotplug(benchmark::State &st)
{
	vb::ensure_registered();
	auto &fx = g_sys<Impl>;
	if (!fx.ok) {
		st.SkipWithError("setup failed");
		return;
	}
	vmres_request q[batch_len];
	vmres_resource r[batch_len];
	device_batch(q, 1000 + (uint64_t)st.thread_index());
	uint64_t v0 = fx.vcpu.ops();
	double t0 = vb::now_seconds();
	uint64_t i = 0;
	for (auto _ : st) {
		if (Impl::allocate(fx.h, q, batch_len, r)) {
			st.SkipWithError("batch allocation failed");
			break;
		}
		if (Impl::free(fx.h, r, batch_len)) {
			st.SkipWithError("batch free failed");
			break;
		}
		vb::quiesce_every(++i);
	}
	double t1 = vb::now_seconds();
	uint64_t v1 = fx.vcpu.ops();
	vmres_thread_quiescent();
	if (fx.vcpu.failed())
		st.SkipWithError("a vCPU lookup missed a boot device");
	st.SetItemsProcessed(st.iterations());
	if (st.thread_index() == 0)
		st.counters["vcpu_lookups_per_s"] = (double)(v1 - v0) / (t1 - t0);
}

template <class Impl> void register_impl()
{
	benchmark::RegisterBenchmark((std::string("system_hotplug/") + Impl::name).c_str(),
				     BM_system_hotplug<Impl>)
		->Apply(vb::thread_sweep)
		->Setup(system_setup<Impl>)
		->Teardown(system_teardown<Impl>);
}

void BM_system_hook_pair(benchmark::State &st)
{
	vb::ensure_registered();
	vmres_system *sys = vb_reserve_system((unsigned)st.range(0));

	if (!sys || vb_reserve_large_blocks(sys) != 16) {
		st.SkipWithError("the reserve did not grow and shrink back");
		if (sys)
			vmres_system_destroy(sys);
		return;
	}
	for (auto _ : st)
		vb_reserve_pair(sys);
	st.SetItemsProcessed(st.iterations());
	vmres_system_destroy(sys);
	vmres_thread_quiescent();
}

} // namespace

void vb::register_benchmarks(const options &)
{
	register_impl<impl_vmres_system>();
	register_impl<impl_locked_system>();
	benchmark::RegisterBenchmark("system_hook_pair", BM_system_hook_pair)->Arg(0)->Arg(300);
}

void vb::cleanup_benchmarks()
{
}
