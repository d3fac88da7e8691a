/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * ID allocator benchmarks.
 *
 * id_churn/<impl>/<F>: every iteration is one alloc/free pair. Setup hands
 * out F + H IDs (H = 1024 held IDs), then frees F of them in random order,
 * so the free list holds F IDs scattered over the range. Each thread owns a
 * slice of the H held IDs; an iteration allocates (the smallest free ID),
 * frees a random ID of its slice and keeps the new one in its place. The
 * free list stays at F (give or take one per thread) and frees land at
 * random positions in it at first. But alloc takes the smallest: within a
 * few thousand pairs the free IDs are those above every held one, and from
 * then on nearly every free lands in front of the free list and the next
 * alloc takes that ID back (front churn: the commonest case in a VMM, a
 * device unplugged and the next one plugged). So this measures the front,
 * not the search.
 *
 * id_scattered/<impl>/<F>: every iteration is one free + one alloc_at of
 * the same ID in the middle of the free list, so both pay their O(log F)
 * search and a one-ID interval is made and emptied each time. Setup hands
 * out 3F IDs and frees every third one (3k): F free IDs scattered over the
 * range. Each thread owns a slice of the IDs 3k + 1 (3k + 2 stay held, so a
 * free never merges) and frees and takes back random ones of its slice.
 * The rust-vmm baseline has no alloc_at; bl_id_set_take_freed() erases the
 * ID from its ordered set.
 *
 * memory/id/<impl>/<F>: bytes held with F scattered free IDs (2F handed
 * out, every other one freed), measured: libvmres through a counting
 * struct vmres_mem_ops given to vmres_id_allocator_create_ex(), the std::set
 * baseline through a counting std::allocator, the bitmap by its size.
 * bytes_per_free_id is the growth from "none free" to "F free" over F; the
 * bitmap pays its whole size whatever is free, so its figure is size / F.
 */
#include "bench_common.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "baselines/baselines.h"
extern "C" {
#include "internal/atomic_count.h"
}

namespace
{

struct impl_vmres {
	using handle = vmres_id_allocator *;
	static constexpr const char *name = "vmres";
	static int create(uint32_t first, uint32_t last, handle *h)
	{
		return vmres_id_allocator_create(first, last, h);
	}
	static void destroy(handle h)
	{
		vmres_id_allocator_destroy(h);
	}
	static int alloc(handle h, uint32_t *id)
	{
		return vmres_id_alloc(h, id);
	}
	static int free(handle h, uint32_t id)
	{
		return vmres_id_free(h, id);
	}
	static int take(handle h, uint32_t id)
	{
		return vmres_id_alloc_at(h, id);
	}
};

struct impl_set_mutex {
	using handle = bl_id_set *;
	static constexpr const char *name = "rustvmm_set_mutex";
	static int create(uint32_t first, uint32_t last, handle *h)
	{
		return bl_id_set_create(first, last, h);
	}
	static void destroy(handle h)
	{
		bl_id_set_destroy(h);
	}
	static int alloc(handle h, uint32_t *id)
	{
		return bl_id_set_alloc(h, id);
	}
	static int free(handle h, uint32_t id)
	{
		return bl_id_set_free(h, id);
	}
	static int take(handle h, uint32_t id)
	{
		return bl_id_set_take_freed(h, id);
	}
};

struct impl_bitmap_spin {
	using handle = bl_id_bitmap *;
	static constexpr const char *name = "ck_spinlock_bitmap";
	static int create(uint32_t first, uint32_t last, handle *h)
	{
		return bl_id_bitmap_create(first, last, h);
	}
	static void destroy(handle h)
	{
		bl_id_bitmap_destroy(h);
	}
	static int alloc(handle h, uint32_t *id)
	{
		return bl_id_bitmap_alloc(h, id);
	}
	static int free(handle h, uint32_t id)
	{
		return bl_id_bitmap_free(h, id);
	}
};

constexpr uint32_t held_ids = 1024;
constexpr uint32_t range_slack = 65536; /* never-used tail of the range */
constexpr uint32_t memory_slack = 64;

template <class Impl> struct churn_fixture {
	typename Impl::handle h = nullptr;
	std::vector<uint32_t> held;
	bool ok = false;
};
template <class Impl> churn_fixture<Impl> g_churn;

template <class Impl> void churn_setup(const benchmark::State &st)
{
	auto &fx = g_churn<Impl>;
	const uint32_t f = (uint32_t)st.range(0);
	const uint32_t n = f + held_ids;
	fx.ok = false;
	if (Impl::create(0, n + range_slack - 1, &fx.h))
		return;
	std::vector<uint32_t> ids(n);
	for (uint32_t i = 0; i < n; i++) /* fresh: smallest first means 0, 1, 2... */
		if (Impl::alloc(fx.h, &ids[i]) || ids[i] != i)
			return;
	vb::rng r(42 + f);
	for (uint32_t i = n - 1; i > 0; i--) /* Fisher-Yates */
		std::swap(ids[i], ids[r.below(i + 1)]);
	for (uint32_t i = 0; i < f; i++)
		if (Impl::free(fx.h, ids[i]))
			return;
	fx.held.assign(ids.begin() + f, ids.end());
	fx.ok = true;
}

/* Teardown of the fixture @fx (churn or scattered). */
template <class Impl, churn_fixture<Impl> &fx> void fixture_teardown(const benchmark::State &)
{
	Impl::destroy(fx.h);
	fx.h = nullptr;
	fx.held.clear();
	vmres_thread_quiescent();
}

/*
 * In a build configured with -DVMRES_COUNT_ATOMICS=ON, libvmres counts the
 * locked read-modify-writes each thread makes (src/internal/atomic_count.h); the
 * churn then reports them per pair, averaged over threads: locked_cas (lock
 * cmpxchg), locked_cas2 (lock cmpxchg16b), locked_faa (lock xadd),
 * locked_swap (xchg) and locked_total. The counting build is for these
 * counts only, not for timing. liburcu's own (call_rcu's enqueue) and the
 * callback thread's are not in them.
 */
static void count_locked(benchmark::State &st, const vmres__atomic_counts &before)
{
	vmres__atomic_counts after;
	if (!vmres__atomic_counts_get(&after) || !st.iterations())
		return;
	const double n = (double)st.iterations();
	const double cas = (double)(after.cas - before.cas) / n;
	const double cas2 = (double)(after.cas2 - before.cas2) / n;
	const double faa = (double)(after.faa - before.faa) / n;
	const double swap = (double)(after.swap - before.swap) / n;
	const auto avg = benchmark::Counter::kAvgThreads;
	st.counters["locked_cas"] = benchmark::Counter(cas, avg);
	st.counters["locked_cas2"] = benchmark::Counter(cas2, avg);
	st.counters["locked_faa"] = benchmark::Counter(faa, avg);
	st.counters["locked_swap"] = benchmark::Counter(swap, avg);
	st.counters["locked_total"] = benchmark::Counter(cas + cas2 + faa + swap, avg);
}

template <class Impl> void BM_id_churn(benchmark::State &st)
{
	vb::ensure_registered();
	auto &fx = g_churn<Impl>;
	if (!fx.ok) {
		st.SkipWithError("setup failed");
		return;
	}
	const size_t slice = fx.held.size() / (size_t)st.threads();
	uint32_t *mine = fx.held.data() + slice * (size_t)st.thread_index();
	vb::rng r(1234 + (uint64_t)st.thread_index());
	uint64_t i = 0;
	vmres__atomic_counts before;
	vmres__atomic_counts_get(&before);
	for (auto _ : st) {
		uint32_t id;
		if (Impl::alloc(fx.h, &id)) {
			st.SkipWithError("alloc failed");
			break;
		}
		size_t k = (size_t)r.below(slice);
		uint32_t victim = mine[k];
		mine[k] = id;
		if (Impl::free(fx.h, victim)) {
			st.SkipWithError("free failed");
			break;
		}
		vb::quiesce_every(++i);
	}
	vmres_thread_quiescent();
	st.SetItemsProcessed(st.iterations()); /* alloc/free pairs */
	/* Only libvmres counts its locked instructions, not the baselines. */
	if constexpr (std::is_same_v<Impl, impl_vmres>)
		count_locked(st, before);
}

/* --- frees and takes in the middle of the free list */

template <class Impl> churn_fixture<Impl> g_scattered;

template <class Impl> void scattered_setup(const benchmark::State &st)
{
	auto &fx = g_scattered<Impl>;
	const uint32_t f = (uint32_t)st.range(0);
	fx.ok = false;
	if (Impl::create(0, 3 * f + range_slack - 1, &fx.h))
		return;
	for (uint32_t i = 0; i < 3 * f; i++) {
		uint32_t id;
		if (Impl::alloc(fx.h, &id) || id != i)
			return;
	}
	fx.held.clear();
	for (uint32_t k = 0; k < f; k++) {
		if (Impl::free(fx.h, 3 * k))
			return;
		fx.held.push_back(3 * k + 1);
	}
	vb::rng r(7 + f);
	for (size_t i = fx.held.size() - 1; i > 0; i--) /* Fisher-Yates */
		std::swap(fx.held[i], fx.held[r.below(i + 1)]);
	fx.ok = true;
}

template <class Impl> void BM_id_scattered(benchmark::State &st)
{
	vb::ensure_registered();
	auto &fx = g_scattered<Impl>;
	if (!fx.ok) {
		st.SkipWithError("setup failed");
		return;
	}
	const size_t slice = fx.held.size() / (size_t)st.threads();
	if (!slice) {
		st.SkipWithError("fewer IDs than threads");
		return;
	}
	const uint32_t *mine = fx.held.data() + slice * (size_t)st.thread_index();
	vb::rng r(4321 + (uint64_t)st.thread_index());
	uint64_t i = 0;
	vmres__atomic_counts before;
	vmres__atomic_counts_get(&before);
	for (auto _ : st) {
		uint32_t id = mine[r.below(slice)];
		if (Impl::free(fx.h, id)) {
			st.SkipWithError("free failed");
			break;
		}
		if (Impl::take(fx.h, id)) {
			st.SkipWithError("alloc_at of the freed ID failed");
			break;
		}
		vb::quiesce_every(++i);
	}
	vmres_thread_quiescent();
	st.SetItemsProcessed(st.iterations()); /* free/alloc_at pairs */
	if constexpr (std::is_same_v<Impl, impl_vmres>)
		count_locked(st, before);
}

/* --- memory */

template <class Impl> int64_t id_bytes_with_free(uint32_t f, int64_t *marginal);

template <> int64_t id_bytes_with_free<impl_vmres>(uint32_t f, int64_t *marginal)
{
	vb::counting_mem mem;
	struct vmres_mem_ops ops = mem.ops();
	vmres_id_allocator *h;
	if (vmres_id_allocator_create_ex(0, 2 * f + memory_slack - 1, &ops, &h))
		return -1;
	uint32_t id;
	for (uint32_t i = 0; i < 2 * f; i++)
		if (vmres_id_alloc(h, &id))
			return -1;
	vmres_rcu_barrier();
	int64_t before = mem.bytes.load();
	for (uint32_t i = 0; i < 2 * f; i += 2)
		if (vmres_id_free(h, i))
			return -1;
	vmres_rcu_barrier();
	int64_t total = mem.bytes.load();
	*marginal = total - before;
	vmres_id_allocator_destroy(h);
	vmres_rcu_barrier();
	return total;
}

template <> int64_t id_bytes_with_free<impl_set_mutex>(uint32_t f, int64_t *marginal)
{
	int64_t base = bl_mem_bytes_in_use();
	bl_id_set *h;
	if (bl_id_set_create(0, 2 * f + memory_slack - 1, &h))
		return -1;
	uint32_t id;
	for (uint32_t i = 0; i < 2 * f; i++)
		if (bl_id_set_alloc(h, &id))
			return -1;
	int64_t before = bl_mem_bytes_in_use();
	for (uint32_t i = 0; i < 2 * f; i += 2)
		if (bl_id_set_free(h, i))
			return -1;
	int64_t total = bl_mem_bytes_in_use() - base;
	*marginal = bl_mem_bytes_in_use() - before;
	bl_id_set_destroy(h);
	return total;
}

template <> int64_t id_bytes_with_free<impl_bitmap_spin>(uint32_t f, int64_t *marginal)
{
	bl_id_bitmap *h;
	if (bl_id_bitmap_create(0, 2 * f + memory_slack - 1, &h))
		return -1;
	int64_t total = (int64_t)bl_id_bitmap_bytes(h);
	*marginal = total; /* one bit per ID of the range, free or not */
	bl_id_bitmap_destroy(h);
	return total;
}

template <class Impl> void BM_id_memory(benchmark::State &st)
{
	vb::ensure_registered();
	const uint32_t f = (uint32_t)st.range(0);
	int64_t total = 0, marginal = 0;
	for (auto _ : st)
		total = id_bytes_with_free<Impl>(f, &marginal);
	if (total < 0) {
		st.SkipWithError("memory run failed");
		return;
	}
	st.counters["free_ids"] = f;
	st.counters["range_ids"] = 2.0 * f + memory_slack;
	st.counters["bytes_total"] = (double)total;
	/* what the F free IDs cost over the same allocator with none free */
	st.counters["bytes_per_free_id"] = (double)marginal / f;
}

/* Free-list sizes F up to @max (--vmres_max_ranges): the smoke run skips 10^5. */
template <class Impl> void register_impl(uint64_t max)
{
	std::string n = Impl::name;
	auto *churn = benchmark::RegisterBenchmark(("id_churn/" + n).c_str(), BM_id_churn<Impl>);
	auto *memory = benchmark::RegisterBenchmark(("memory/id/" + n).c_str(), BM_id_memory<Impl>);

	for (int64_t f : { 10, 1000, 100000 })
		if ((uint64_t)f <= max)
			churn->Arg(f);
	churn->Apply(vb::thread_sweep)
		->Setup(churn_setup<Impl>)
		->Teardown(fixture_teardown<Impl, g_churn<Impl>>);
	if constexpr (!std::is_same_v<Impl, impl_bitmap_spin>) {
		auto *mid = benchmark::RegisterBenchmark(("id_scattered/" + n).c_str(),
							 BM_id_scattered<Impl>);
		for (int64_t f : { 10, 1000, 100000 })
			if ((uint64_t)f <= max)
				mid->Arg(f);
		mid->Apply(vb::thread_sweep)
			->Setup(scattered_setup<Impl>)
			->Teardown(fixture_teardown<Impl, g_scattered<Impl>>);
	}
	for (int64_t f : { 1000, 100000 })
		if ((uint64_t)f <= max)
			memory->Arg(f);
	memory->Iterations(1);
}

} // namespace

void vb::register_benchmarks(const options &o)
{
	register_impl<impl_vmres>(o.max_ranges);
	register_impl<impl_set_mutex>(o.max_ranges);
	register_impl<impl_bitmap_spin>(o.max_ranges);
}

void vb::cleanup_benchmarks()
{
}
