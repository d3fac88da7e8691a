/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The few atomic operations libvmres uses, named by their memory order.
 *
 * Normal builds use Concurrency Kit's ck_pr_* (inline asm on x86, where
 * acquire/release fences are compiler barriers under TSO). Under
 * ThreadSanitizer, which cannot see inside inline asm, the same helpers are
 * built on the compiler's __atomic builtins with the same orders, so TSAN
 * checks the real synchronization instead of reporting ck's asm as races.
 *
 * Callers comment each use with what it orders and what it pairs with;
 * these helpers only promise the order in their name:
 *   *_load_acquire   later accesses stay after the load
 *   *_store_release  earlier accesses stay before the store
 *   *_cas, *_faa     full barrier (sequentially consistent) read-modify-write
 *   *_load_relaxed / *_store_relaxed  atomic, no ordering
 */
#ifndef VMRES_INTERNAL_ATOMIC_H
#define VMRES_INTERNAL_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define VMRES__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VMRES__TSAN 1
#endif
#endif

#ifndef VMRES__TSAN
#include <ck_pr.h>
#endif

#include "atomic_count.h"

/* Counts a locked read-modify-write (src/internal/atomic_count.h). */
#ifdef VMRES_COUNT_ATOMICS
extern _Thread_local struct vmres__atomic_counts vmres__atomic_counted;
#define VMRES__COUNT_ATOMIC(field) ((void)vmres__atomic_counted.field++)
#else
#define VMRES__COUNT_ATOMIC(field) ((void)0)
#endif

_Static_assert(sizeof(void *) == sizeof(uint64_t), "libvmres assumes 64-bit pointers");
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "libvmres assumes 64-bit uintptr_t");

#ifdef VMRES__TSAN
#define VMRES__DEFINE_ATOMICS(name, type)                                                          \
	static inline type vmres__##name##_load_relaxed(const type *p)                             \
	{                                                                                          \
		return __atomic_load_n(p, __ATOMIC_RELAXED);                                       \
	}                                                                                          \
	static inline type vmres__##name##_load_acquire(const type *p)                             \
	{                                                                                          \
		return __atomic_load_n(p, __ATOMIC_ACQUIRE);                                       \
	}                                                                                          \
	static inline void vmres__##name##_store_relaxed(type *p, type v)                          \
	{                                                                                          \
		__atomic_store_n(p, v, __ATOMIC_RELAXED);                                          \
	}                                                                                          \
	static inline void vmres__##name##_store_release(type *p, type v)                          \
	{                                                                                          \
		__atomic_store_n(p, v, __ATOMIC_RELEASE);                                          \
	}                                                                                          \
	static inline bool vmres__##name##_cas(type *p, type expected, type desired)               \
	{                                                                                          \
		VMRES__COUNT_ATOMIC(cas);                                                          \
		return __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, \
						   __ATOMIC_SEQ_CST);                              \
	}
#else
/*
 * ck_pr loads and stores are single volatile accesses; the fences give them
 * the order in the helper's name. ck_pr_cas_* is a locked cmpxchg: a full
 * barrier on x86.
 */
#define VMRES__DEFINE_ATOMICS_CK(name, type, ck)                                             \
	static inline type vmres__##name##_load_relaxed(const type *p)                       \
	{                                                                                    \
		return (type)ck_pr_load_##ck((const uint64_t *)p);                           \
	}                                                                                    \
	static inline type vmres__##name##_load_acquire(const type *p)                       \
	{                                                                                    \
		type v = (type)ck_pr_load_##ck((const uint64_t *)p);                         \
		ck_pr_fence_acquire();                                                       \
		return v;                                                                    \
	}                                                                                    \
	static inline void vmres__##name##_store_relaxed(type *p, type v)                    \
	{                                                                                    \
		ck_pr_store_##ck((uint64_t *)p, (uint64_t)v);                                \
	}                                                                                    \
	static inline void vmres__##name##_store_release(type *p, type v)                    \
	{                                                                                    \
		ck_pr_fence_release();                                                       \
		ck_pr_store_##ck((uint64_t *)p, (uint64_t)v);                                \
	}                                                                                    \
	static inline bool vmres__##name##_cas(type *p, type expected, type desired)         \
	{                                                                                    \
		VMRES__COUNT_ATOMIC(cas);                                                    \
		return ck_pr_cas_##ck((uint64_t *)p, (uint64_t)expected, (uint64_t)desired); \
	}
#define VMRES__DEFINE_ATOMICS(name, type) VMRES__DEFINE_ATOMICS_CK(name, type, 64)
#endif

/* vmres__u64_*: counters, bounds, packed words. */
VMRES__DEFINE_ATOMICS(u64, uint64_t)
/* vmres__uptr_*: marked pointers (the low bits carry flags). */
VMRES__DEFINE_ATOMICS(uptr, uintptr_t)

/* vmres__ptr_*: plain pointers, through uintptr_t so any pointer type fits. */
static inline void *vmres__ptr_load_relaxed(void *const *p)
{
	return (void *)vmres__uptr_load_relaxed((const uintptr_t *)p);
}

static inline void *vmres__ptr_load_acquire(void *const *p)
{
	return (void *)vmres__uptr_load_acquire((const uintptr_t *)p);
}

static inline void vmres__ptr_store_relaxed(void **p, void *v)
{
	vmres__uptr_store_relaxed((uintptr_t *)p, (uintptr_t)v);
}

static inline void vmres__ptr_store_release(void **p, void *v)
{
	vmres__uptr_store_release((uintptr_t *)p, (uintptr_t)v);
}

static inline bool vmres__ptr_cas(void **p, void *expected, void *desired)
{
	return vmres__uptr_cas((uintptr_t *)p, (uintptr_t)expected, (uintptr_t)desired);
}

/* Fetch-and-add, full barrier; returns the value before the add. */
static inline uint64_t vmres__u64_faa(uint64_t *p, uint64_t delta)
{
	VMRES__COUNT_ATOMIC(faa);
#ifdef VMRES__TSAN
	return __atomic_fetch_add(p, delta, __ATOMIC_SEQ_CST);
#else
	return ck_pr_faa_64(p, delta);
#endif
}

/* Exchange, full barrier; returns the value before the store. */
static inline uintptr_t vmres__uptr_swap(uintptr_t *p, uintptr_t v)
{
	VMRES__COUNT_ATOMIC(swap);
#ifdef VMRES__TSAN
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
#else
	return (uintptr_t)ck_pr_fas_64((uint64_t *)p, (uint64_t)v);
#endif
}

/* A full memory barrier (orders earlier stores before later loads too). */
static inline void vmres__fence_seq_cst(void)
{
#ifdef VMRES__TSAN
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#else
	ck_pr_fence_memory();
#endif
}

/*
 * A spin-wait hint for the CPU (x86 `pause`, arm64 `yield`); orders nothing.
 * It only slows the calling thread down: backoff loops call it so that
 * they do not touch contended lines. Never optimized out.
 */
static inline void vmres__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * vmres__pair_*: two adjacent 64-bit words read and changed as one unit
 * (a double-width CAS, cmpxchg16b). 16-byte aligned. Used by the ID
 * allocator for a list link that carries a pointer and the interval it
 * points to.
 *   vmres__pair_load  an atomic snapshot of both words, acquire; normal
 *                     builds use one 16-byte SSE load on CPUs with AVX
 *                     (atomic there) or else ck_pr_load_64_2 (a locked
 *                     cmpxchg16b, a full barrier), TSAN builds an
 *                     acquire __atomic load (TSAN's 128-bit atomics are
 *                     serialised by its runtime)
 *   vmres__pair_cas   full barrier (sequentially consistent) double-width CAS
 * Under TSAN, clang needs -mcx16 for the 16-byte builtins (src/id.cmake).
 */
struct vmres__pair {
	_Alignas(16) uint64_t w0;
	uint64_t w1;
};

#ifdef VMRES__TSAN
__extension__ typedef unsigned __int128 vmres__u128;

static inline struct vmres__pair vmres__pair_load(const struct vmres__pair *p)
{
	vmres__u128 v = __atomic_load_n((const vmres__u128 *)(const void *)p, __ATOMIC_ACQUIRE);

	return (struct vmres__pair){ (uint64_t)v, (uint64_t)(v >> 64) };
}

static inline bool vmres__pair_cas(struct vmres__pair *p, struct vmres__pair expected,
				   struct vmres__pair desired)
{
	vmres__u128 e = ((vmres__u128)expected.w1 << 64) | expected.w0;
	vmres__u128 d = ((vmres__u128)desired.w1 << 64) | desired.w0;

	VMRES__COUNT_ATOMIC(cas2);

	return __atomic_compare_exchange_n((vmres__u128 *)(void *)p, &e, d, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}
#else
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

static inline struct vmres__pair vmres__pair_load(const struct vmres__pair *p)
{
	uint64_t v[2];

#if defined(__x86_64__) && !defined(VMRES_PAIR_LOAD_LOCKED)
	/*
	 * (Build with -DVMRES_PAIR_LOAD_LOCKED to test the fallback below on
	 * a CPU with AVX.)
	 * On CPUs with AVX, Intel (SDM vol. 3A, 10.1.1) and AMD (APM vol. 2,
	 * 7.3.2) guarantee that a 16-byte aligned SSE load is one atomic
	 * access; libatomic uses the same for 16-byte loads. It avoids the
	 * locked cmpxchg16b, which writes the line. x86 loads are not
	 * reordered with other loads (acquire); the empty asm keeps the
	 * compiler from moving later accesses above it.
	 */
	if (__builtin_expect(__builtin_cpu_supports("avx"), 1)) {
		__m128i x = *(const volatile __m128i *)(const volatile void *)p;

		__asm__ __volatile__("" ::: "memory");
		return (struct vmres__pair){ (uint64_t)_mm_cvtsi128_si64(x),
					     (uint64_t)_mm_cvtsi128_si64(
						     _mm_unpackhi_epi64(x, x)) };
	}
#endif
	ck_pr_load_64_2((const uint64_t *)(const void *)p, v);
	return (struct vmres__pair){ v[0], v[1] };
}

static inline bool vmres__pair_cas(struct vmres__pair *p, struct vmres__pair expected,
				   struct vmres__pair desired)
{
	uint64_t e[2] = { expected.w0, expected.w1 };
	uint64_t d[2] = { desired.w0, desired.w1 };

	VMRES__COUNT_ATOMIC(cas2);

	return ck_pr_cas_64_2((uint64_t *)(void *)p, e, d);
}
#endif

#endif /* VMRES_INTERNAL_ATOMIC_H */
