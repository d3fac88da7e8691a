/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * A std::allocator that counts the bytes the C++ baselines' containers hold,
 * so the memory benchmark measures them the same way it measures libvmres
 * (through its struct vmres_mem_ops hook). Counts requested bytes, not
 * malloc's own per-block overhead, exactly like the libvmres hook does.
 */
#ifndef VMRES_BENCH_COUNTING_ALLOCATOR_H
#define VMRES_BENCH_COUNTING_ALLOCATOR_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

namespace bl
{

extern std::atomic<int64_t> bytes_in_use;

template <class T> struct counting_allocator {
	using value_type = T;
	counting_allocator() noexcept = default;
	template <class U> counting_allocator(const counting_allocator<U> &) noexcept
	{
	}
	T *allocate(std::size_t n)
	{
		/* relaxed: a statistic read after the threads are joined */
		bytes_in_use.fetch_add((int64_t)(n * sizeof(T)), std::memory_order_relaxed);
		return static_cast<T *>(::operator new(n * sizeof(T)));
	}
	void deallocate(T *p, std::size_t n) noexcept
	{
		bytes_in_use.fetch_sub((int64_t)(n * sizeof(T)), std::memory_order_relaxed);
		::operator delete(p);
	}
};

template <class T, class U>
bool operator==(const counting_allocator<T> &, const counting_allocator<U> &) noexcept
{
	return true;
}
template <class T, class U>
bool operator!=(const counting_allocator<T> &, const counting_allocator<U> &) noexcept
{
	return false;
}

} // namespace bl

#endif
