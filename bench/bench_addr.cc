/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Address allocator benchmarks.
 *
 * addr_lookup_under_hotplug/<variant>: N vCPU reader threads (the
 * google-benchmark threads) each do one lookup of a random address inside
 * one of 1024 mapped "device" ranges per iteration, and check the tag, while
 * one background writer thread (the hotplug thread) allocates and frees
 * continuously (a ring of 64 ranges: allocate one FIRST-fit, free the
 * oldest). Variants:
 *   vmres_rcu        vmres_addr_lookup() / vmres_addr_alloc() on one tree;
 *   rwlock, rwlock_writer_pref, mutex, ck_brlock
 *                    the same tree, the writer under the write side, the
 *                    readers calling vmres__addr_lookup_unsynchronized()
 *                    under the read side (bench/baselines/addr_locked_tree.c);
 *   unsync_ceiling   the same lookup without any synchronisation on a
 *                    frozen tree and no writer at all: the limit;
 *   unsync_ceiling_busy_writer
 *                    the same, while the writer does the same work on a
 *                    private tree: the limit under the same CPU load (on a
 *                    2-core machine the writer takes a core's share).
 * Counters: lookups_per_reader (per second, per reader thread) and
 * writer_pairs_per_s (alloc+free pairs of the writer per second).
 *
 * addr_lookup_paced_writer/<variant>: the same readers while the writer
 * sleeps 100 us after each alloc+free pair. A continuous writer turns the
 * lock baselines into convoys (the workload the issue asks for, and the
 * worst case for them); a paced one shows what the locks cost readers when
 * writes are rare, which is the common case in a VM.
 *
 * addr_alloc_scaling/<impl>/<policy>/<N>: the cost of one aligned alloc
 * (8 KiB, 8 KiB aligned) plus its free with N live ranges laid out so that
 * exactly one hole in the middle fits (all others are 4 KiB holes): FIRST
 * and LAST both have to find it. vmres vs the crosvm-style linear
 * allocator (bench/baselines/addr_linear.cc).
 *
 * memory/addr/<impl>/<N>: bytes per live range, measured through a
 * counting struct vmres_mem_ops (vmres_addr_allocator_create_ex) and a
 * counting std::allocator for the baseline.
 */
#include "bench_common.h"

#include <chrono>
#include <string>
#include <thread>
#include <type_traits>

#include "baselines/baselines.h"
extern "C" {
#include "internal/addr_tree.h"
}

namespace
{

/* ------------------------------------------------------------------ lookups */

constexpr uint64_t span_last = (1ULL << 36) - 1; /* a 64 GiB MMIO window */
constexpr uint64_t device_count = 1024;
constexpr uint64_t device_stride = 1ULL << 20;
constexpr size_t writer_ring = 64;

enum class variant { rcu, rwlock, rwlock_wpref, mutex, brlock, ceiling, ceiling_busy };

struct lookup_fixture {
	vmres_addr_allocator *a = nullptr;	   /* the tree readers read */
	bl_locked_tree *t = nullptr;		   /* locked variants (owns a) */
	vmres_addr_allocator *private_a = nullptr; /* ceiling_busy's writer tree */
	std::vector<vmres_range> devices;
	vb::background_writer writer;
	bool ok = false;
};
lookup_fixture g_lookup;

/* Maps the 1024 device ranges (4..64 KiB, one per MiB, tag = index + 1). */
int map_devices(vmres_addr_allocator *a, std::vector<vmres_range> *devices)
{
	vb::rng r(7);
	devices->clear();
	for (uint64_t i = 0; i < device_count; i++) {
		vmres_addr_request req{};
		req.size = 4096 * (1 + r.below(16));
		req.align = 4096;
		req.policy = VMRES_EXACT_MATCH;
		req.addr = i * device_stride + 4096 * r.below(64);
		req.tag = i + 1;
		vmres_range out;
		int err = vmres_addr_alloc(a, &req, &out);
		if (err)
			return err;
		devices->push_back(out);
	}
	return 0;
}

/* The hotplug writer: a ring of ranges, allocate one, free the oldest. */
template <class Alloc, class Free> struct hotplug_step {
	Alloc alloc;
	Free free;
	std::vector<vmres_range> ring = std::vector<vmres_range>(writer_ring);
	size_t next = 0;
	uint64_t n = 0;
	vb::rng r{ 99 };
	unsigned pace_us = 0; /* sleep after each pair: a paced hotplug thread */
	bool operator()()
	{
		vmres_range &slot = ring[next];
		if (n >= writer_ring && free(slot))
			return false;
		vmres_addr_request req{};
		req.size = 4096 * (1 + r.below(4));
		req.align = 4096;
		req.policy = (n & 1) ? VMRES_LAST_MATCH : VMRES_FIRST_MATCH;
		req.tag = UINT64_MAX; /* never a device tag */
		if (alloc(&req, &slot))
			return false;
		next = (next + 1) % writer_ring;
		n++;
		if (pace_us) {
			vmres_thread_offline(); /* qsbr: not a reader while asleep */
			std::this_thread::sleep_for(std::chrono::microseconds(pace_us));
			vmres_thread_online();
		}
		return true;
	}
};
template <class A, class F> hotplug_step<A, F> make_step(A a, F f, unsigned pace_us)
{
	hotplug_step<A, F> s{ a, f };
	s.pace_us = pace_us;
	return s;
}

template <variant V, unsigned PaceUs> void lookup_setup(const benchmark::State &)
{
	auto &fx = g_lookup;
	fx.ok = false;
	if (vmres_addr_allocator_create(0, span_last, &fx.a) || map_devices(fx.a, &fx.devices))
		return;
	if (V == variant::rwlock || V == variant::rwlock_wpref || V == variant::mutex ||
	    V == variant::brlock) {
		enum bl_lock_kind k = BL_LOCK_BRLOCK;
		if (V == variant::rwlock)
			k = BL_LOCK_RWLOCK;
		else if (V == variant::rwlock_wpref)
			k = BL_LOCK_RWLOCK_WRITER_PREF;
		else if (V == variant::mutex)
			k = BL_LOCK_MUTEX;
		if (bl_locked_tree_create(k, fx.a, &fx.t))
			return;
		bl_locked_tree *t = fx.t;
		fx.writer.start(make_step(
			[t](const vmres_addr_request *q, vmres_range *o) {
				return bl_locked_tree_alloc(t, q, o);
			},
			[t](const vmres_range &r) { return bl_locked_tree_free(t, r); }, PaceUs));
	} else if (V == variant::rcu || V == variant::ceiling_busy) {
		vmres_addr_allocator *w = fx.a;
		if (V == variant::ceiling_busy) {
			std::vector<vmres_range> unused;
			if (vmres_addr_allocator_create(0, span_last, &fx.private_a) ||
			    map_devices(fx.private_a, &unused))
				return;
			w = fx.private_a;
		}
		fx.writer.start(make_step(
			[w](const vmres_addr_request *q, vmres_range *o) {
				return vmres_addr_alloc(w, q, o);
			},
			[w](const vmres_range &r) { return vmres_addr_free(w, r); }, PaceUs));
	}
	fx.ok = true;
}

void lookup_teardown(const benchmark::State &)
{
	auto &fx = g_lookup;
	fx.writer.stop();
	if (fx.t)
		bl_locked_tree_destroy(fx.t); /* destroys fx.a too */
	else
		vmres_addr_allocator_destroy(fx.a);
	vmres_addr_allocator_destroy(fx.private_a);
	fx.t = nullptr;
	fx.a = nullptr;
	fx.private_a = nullptr;
	vmres_thread_quiescent();
	vmres_rcu_barrier();
}

template <variant V> inline int one_lookup(bl_reader *rd, uint64_t addr, uint64_t *tag)
{
	if (V == variant::rcu)
		return vmres_addr_lookup(g_lookup.a, addr, nullptr, tag);
	if (V == variant::ceiling || V == variant::ceiling_busy)
		return vmres__addr_lookup_unsynchronized(g_lookup.a, addr, nullptr, tag);
	return bl_locked_tree_lookup(g_lookup.t, rd, addr, nullptr, tag);
}

/*
 * Each reader thread runs one timed window (--vmres_window_s) of lookups
 * and reports its own rate: a fixed time rather than a fixed count, because
 * behind a lock in a convoy a reader may manage a few dozen lookups per
 * second, and google-benchmark's iteration estimate would then run for
 * minutes.
 */
template <variant V> void BM_lookup(benchmark::State &st)
{
	vb::ensure_registered();
	auto &fx = g_lookup;
	if (!fx.ok) {
		st.SkipWithError("setup failed");
		return;
	}
	bl_reader *rd = fx.t ? bl_locked_tree_reader_register(fx.t) : nullptr;
	const vmres_range *dev = fx.devices.data();
	vb::rng r(5 + (uint64_t)st.thread_index());
	uint64_t n = 0, w0 = 0, w1 = 0;
	double elapsed = 0;
	bool missed = false;
	for (auto _ : st) {
		w0 = fx.writer.ops();
		const double t0 = vb::now_seconds();
		const double deadline = t0 + vb::opts().window_s;
		do {
			for (int j = 0; j < 64; j++) {
				uint64_t k = r.below(device_count);
				uint64_t addr =
					dev[k].start + r.below(dev[k].end - dev[k].start + 1);
				uint64_t tag = 0;
				missed |= one_lookup<V>(rd, addr, &tag) != 0 || tag != k + 1;
			}
			n += 64;
			vmres_thread_quiescent(); /* qsbr; a no-op call elsewhere */
		} while (vb::now_seconds() < deadline);
		elapsed = vb::now_seconds() - t0;
		w1 = fx.writer.ops();
		st.SetIterationTime(elapsed);
	}
	if (fx.t)
		bl_locked_tree_reader_unregister(fx.t, rd);
	if (missed)
		st.SkipWithError("lookup missed a mapped device");
	if (fx.writer.failed())
		st.SkipWithError("writer failed");
	st.SetItemsProcessed((int64_t)n);
	st.counters["lookups_per_reader"] =
		benchmark::Counter((double)n / elapsed, benchmark::Counter::kAvgThreads);
	if (st.thread_index() == 0)
		st.counters["writer_pairs_per_s"] = (double)(w1 - w0) / elapsed;
}

template <variant V> void register_lookup(const char *name)
{
	benchmark::RegisterBenchmark((std::string("addr_lookup_under_hotplug/") + name).c_str(),
				     BM_lookup<V>)
		->Apply(vb::thread_sweep_windowed)
		->Setup(lookup_setup<V, 0>)
		->Teardown(lookup_teardown);
}

/* The same with a paced writer (one alloc+free pair, then 100 us asleep):
 * still far more hotplug than a VM sees, but no longer a lock convoy. */
template <variant V> void register_lookup_paced(const char *name)
{
	benchmark::RegisterBenchmark((std::string("addr_lookup_paced_writer/") + name).c_str(),
				     BM_lookup<V>)
		->Apply(vb::thread_sweep_windowed)
		->Setup(lookup_setup<V, 100>)
		->Teardown(lookup_teardown);
}

/* ------------------------------------------------------------ alloc scaling */

constexpr uint64_t small = 4096;
constexpr uint64_t big = 8192;

uint64_t range_start(uint64_t k, uint64_t n)
{
	return k * big + (k >= n / 2 ? 2 * big : 0);
}
uint64_t layout_last(uint64_t n)
{
	return range_start(n - 1, n) + small - 1;
}
/* The only fits for an aligned 8 KiB request: the middle hole. */
uint64_t expected_start(uint64_t n, enum vmres_policy p)
{
	return (n / 2) * big + (p == VMRES_LAST_MATCH ? big : 0);
}

struct impl_vmres_addr {
	using handle = vmres_addr_allocator *;
	static constexpr const char *name = "vmres";
	static int create(uint64_t first, uint64_t last, handle *h, const vmres_mem_ops *mem)
	{
		return vmres_addr_allocator_create_ex(first, last, mem, h);
	}
	static void destroy(handle h)
	{
		vmres_addr_allocator_destroy(h);
		vmres_rcu_barrier();
	}
	static int alloc(handle h, const vmres_addr_request *q, vmres_range *o)
	{
		return vmres_addr_alloc(h, q, o);
	}
	static int free(handle h, vmres_range r)
	{
		return vmres_addr_free(h, r);
	}
};

struct impl_linear {
	using handle = bl_linear *;
	static constexpr const char *name = "linear_mutex";
	static int create(uint64_t first, uint64_t last, handle *h, const vmres_mem_ops *)
	{
		return bl_linear_create(first, last, h);
	}
	static void destroy(handle h)
	{
		bl_linear_destroy(h);
	}
	static int alloc(handle h, const vmres_addr_request *q, vmres_range *o)
	{
		return bl_linear_alloc(h, q, o);
	}
	static int free(handle h, vmres_range r)
	{
		return bl_linear_free(h, r);
	}
};

template <class Impl>
int build_layout(uint64_t n, const vmres_mem_ops *mem, typename Impl::handle *h)
{
	if (Impl::create(0, layout_last(n), h, mem))
		return -1;
	/* top down: crosvm's allocate_at scans free regions from the bottom,
	 * and the one holding the next range is then always the first */
	for (uint64_t k = n; k-- > 0;) {
		vmres_addr_request req{};
		req.size = small;
		req.align = small;
		req.policy = VMRES_EXACT_MATCH;
		req.addr = range_start(k, n);
		req.tag = k;
		vmres_range out;
		if (Impl::alloc(*h, &req, &out))
			return -1;
		vb::quiesce_every(k);
	}
	return 0;
}

/* One cached layout at a time: building 10^6 ranges takes seconds, and
 * google-benchmark calls a benchmark several times (probes, repetitions). */
template <class Impl> struct layout_cache {
	typename Impl::handle h = nullptr;
	uint64_t n = 0;
	~layout_cache()
	{
		drop();
	}
	void drop()
	{
		if (h)
			Impl::destroy(h);
		h = nullptr;
		n = 0;
	}
	typename Impl::handle get(uint64_t want)
	{
		if (h && n == want)
			return h;
		drop();
		if (build_layout<Impl>(want, nullptr, &h)) {
			drop();
			return nullptr;
		}
		n = want;
		return h;
	}
};
template <class Impl> layout_cache<Impl> g_layout;

template <class Impl, enum vmres_policy Policy> void BM_alloc_scaling(benchmark::State &st)
{
	vb::ensure_registered();
	const uint64_t n = (uint64_t)st.range(0);
	auto h = g_layout<Impl>.get(n);
	if (!h) {
		st.SkipWithError("layout failed");
		return;
	}
	vmres_addr_request req{};
	req.size = big;
	req.align = big;
	req.policy = Policy;
	const uint64_t want = expected_start(n, Policy);
	uint64_t i = 0;
	for (auto _ : st) {
		vmres_range got;
		if (Impl::alloc(h, &req, &got) || got.start != want) {
			st.SkipWithError("alloc did not find the only fit");
			break;
		}
		if (Impl::free(h, got)) {
			st.SkipWithError("free failed");
			break;
		}
		vb::quiesce_every(++i);
	}
	vmres_thread_quiescent();
	st.SetItemsProcessed(st.iterations());
	st.counters["live_ranges"] = (double)n;
}

/* Releases the other implementation's cached layout before a switch. */
template <class Impl> void drop_all_layouts(const benchmark::State &)
{
	if (!std::is_same<Impl, impl_vmres_addr>::value)
		g_layout<impl_vmres_addr>.drop();
	if (!std::is_same<Impl, impl_linear>::value)
		g_layout<impl_linear>.drop();
}

template <class Impl> void register_scaling(uint64_t max_n)
{
	/* size-major order: both policies reuse one cached layout */
	for (uint64_t n = 100; n <= max_n; n *= 10) {
		std::string name = std::string("addr_alloc_scaling/") + Impl::name;
		benchmark::RegisterBenchmark((name + "/FIRST").c_str(),
					     BM_alloc_scaling<Impl, VMRES_FIRST_MATCH>)
			->Arg((int64_t)n)
			->Setup(drop_all_layouts<Impl>)
			->UseRealTime();
		benchmark::RegisterBenchmark((name + "/LAST").c_str(),
					     BM_alloc_scaling<Impl, VMRES_LAST_MATCH>)
			->Arg((int64_t)n)
			->Setup(drop_all_layouts<Impl>)
			->UseRealTime();
	}
}

/* ------------------------------------------------------------------ memory */

template <class Impl> int64_t layout_bytes(uint64_t n);

template <> int64_t layout_bytes<impl_vmres_addr>(uint64_t n)
{
	vb::counting_mem mem;
	vmres_mem_ops ops = mem.ops();
	vmres_addr_allocator *h = nullptr;
	int err = build_layout<impl_vmres_addr>(n, &ops, &h);
	vmres_rcu_barrier(); /* retired copies are pooled or freed */
	if (h)
		vmres__addr_pool_drain(h); /* only live bytes remain */
	int64_t bytes = mem.bytes.load();
	if (h)
		impl_vmres_addr::destroy(h);
	return err ? -1 : bytes;
}

template <> int64_t layout_bytes<impl_linear>(uint64_t n)
{
	int64_t base = bl_mem_bytes_in_use();
	bl_linear *h = nullptr;
	int err = build_layout<impl_linear>(n, nullptr, &h);
	int64_t bytes = bl_mem_bytes_in_use() - base;
	if (h)
		impl_linear::destroy(h);
	return err ? -1 : bytes;
}

template <class Impl> void BM_addr_memory(benchmark::State &st)
{
	vb::ensure_registered();
	g_layout<impl_vmres_addr>.drop();
	g_layout<impl_linear>.drop();
	const uint64_t n = (uint64_t)st.range(0);
	int64_t bytes = 0;
	for (auto _ : st)
		bytes = layout_bytes<Impl>(n);
	if (bytes < 0) {
		st.SkipWithError("memory run failed");
		return;
	}
	st.counters["live_ranges"] = (double)n;
	st.counters["bytes_total"] = (double)bytes;
	st.counters["bytes_per_range"] = (double)bytes / (double)n;
}

template <class Impl> void register_memory(uint64_t max_n)
{
	auto *b = benchmark::RegisterBenchmark((std::string("memory/addr/") + Impl::name).c_str(),
					       BM_addr_memory<Impl>);
	for (uint64_t n = 1000; n <= max_n && n <= 100000; n *= 100)
		b->Arg((int64_t)n);
	b->Iterations(1);
}

} // namespace

void vb::register_benchmarks(const options &o)
{
	register_lookup<variant::rcu>("vmres_rcu");
	register_lookup<variant::rwlock>("rwlock");
	register_lookup<variant::rwlock_wpref>("rwlock_writer_pref");
	register_lookup<variant::mutex>("mutex");
	register_lookup<variant::brlock>("ck_brlock");
	register_lookup<variant::ceiling>("unsync_ceiling");
	register_lookup<variant::ceiling_busy>("unsync_ceiling_busy_writer");
	register_lookup_paced<variant::rcu>("vmres_rcu");
	register_lookup_paced<variant::rwlock>("rwlock");
	register_lookup_paced<variant::rwlock_wpref>("rwlock_writer_pref");
	register_lookup_paced<variant::mutex>("mutex");
	register_lookup_paced<variant::brlock>("ck_brlock");
	register_scaling<impl_vmres_addr>(o.max_ranges);
	register_scaling<impl_linear>(o.max_ranges);
	register_memory<impl_vmres_addr>(o.max_ranges);
	register_memory<impl_linear>(o.max_ranges);
}

void vb::cleanup_benchmarks()
{
	g_layout<impl_vmres_addr>.drop();
	g_layout<impl_linear>.drop();
}
