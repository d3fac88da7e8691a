/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * liburcu, for the flavor picked at build time (VMRES_RCU_FLAVOR), behind
 * vmres__rcu_* names so the allocators never name a flavor.
 *
 * Only the small pointer helpers are inlined (URCU_INLINE_SMALL_FUNCTIONS);
 * read_lock/unlock are calls into liburcu, as liburcu asks of code that is
 * not LGPL (libvmres is Apache-2.0 OR BSD-3-Clause).
 *
 * ThreadSanitizer cannot see liburcu's grace periods (membarrier, futexes,
 * inline asm). Under TSAN the pointer accesses use __atomic builtins and the
 * grace period is annotated: every reader releases vmres__rcu_gp_token when
 * it leaves its critical section, and every RCU callback acquires it before
 * it frees anything (vmres__rcu_callback_enter()). A free without a grace
 * period still shows up as a race; only the grace period itself is trusted.
 */
#ifndef VMRES_INTERNAL_RCU_H
#define VMRES_INTERNAL_RCU_H

#ifndef URCU_INLINE_SMALL_FUNCTIONS
#define URCU_INLINE_SMALL_FUNCTIONS
#endif

#if defined(VMRES_RCU_FLAVOR_QSBR)
#include <urcu/urcu-qsbr.h>
#define VMRES__URCU(fn) urcu_qsbr_##fn
#elif defined(VMRES_RCU_FLAVOR_MB)
#include <urcu/urcu-mb.h>
#define VMRES__URCU(fn) urcu_mb_##fn
#elif defined(VMRES_RCU_FLAVOR_BP)
#include <urcu/urcu-bp.h>
#define VMRES__URCU(fn) urcu_bp_##fn
#elif defined(VMRES_RCU_FLAVOR_MEMB)
#include <urcu/urcu-memb.h>
#define VMRES__URCU(fn) urcu_memb_##fn
#else
#error "define one VMRES_RCU_FLAVOR_{MEMB,QSBR,MB,BP} (the build does)"
#endif

#include "atomic.h"

#ifdef VMRES__TSAN
#include <sanitizer/tsan_interface.h>
extern char vmres__rcu_gp_token;
/*
 * Released at the end of every call_rcu callback that calls
 * vmres__rcu_callback_exit(), acquired when vmres__rcu_barrier() returns:
 * TSAN's stand-in for "rcu_barrier() waited for the callbacks" (defined in
 * src/thread.c).
 */
extern char vmres__rcu_barrier_token;
#endif

static inline void vmres__rcu_read_lock(void)
{
	VMRES__URCU(read_lock)();
}

/* Whether the calling thread is in a read-side section (qsbr: online); for assert(). */
static inline int vmres__rcu_read_ongoing(void)
{
	return VMRES__URCU(read_ongoing)();
}

static inline void vmres__rcu_read_unlock(void)
{
#ifdef VMRES__TSAN
	/* Pairs with the acquire in vmres__rcu_callback_enter(). */
	__tsan_release(&vmres__rcu_gp_token);
#endif
	VMRES__URCU(read_unlock)();
}

/* First statement of every call_rcu callback. */
static inline void vmres__rcu_callback_enter(void)
{
#ifdef VMRES__TSAN
	/* Pairs with the release in vmres__rcu_read_unlock(). */
	__tsan_acquire(&vmres__rcu_gp_token);
#endif
}

/* Last statement of a call_rcu callback whose work a barrier must order. */
static inline void vmres__rcu_callback_exit(void)
{
#ifdef VMRES__TSAN
	/* Pairs with the acquire in vmres__rcu_barrier(). */
	__tsan_release(&vmres__rcu_barrier_token);
#endif
}

static inline void vmres__call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *head))
{
	VMRES__URCU(call_rcu)(head, fn);
}

/*
 * Makes liburcu's default call_rcu worker now if there is none yet. Else the
 * first vmres__call_rcu() of the process makes it, under liburcu's
 * call_rcu_mutex and with pthread_create(): a blocking step inside an
 * operation that must be lock-free. Allocator create functions call this.
 */
static inline void vmres__rcu_prepare_callbacks(void)
{
	(void)VMRES__URCU(get_default_call_rcu_data)();
}

static inline void vmres__rcu_barrier(void)
{
	VMRES__URCU(barrier)();
#ifdef VMRES__TSAN
	/* Pairs with the release in vmres__rcu_callback_exit(). */
	__tsan_acquire(&vmres__rcu_barrier_token);
#endif
}

/*
 * RCU pointer accesses: a dereference is a consume/acquire load that pairs
 * with the release in vmres__rcu_assign() or vmres__rcu_cmpxchg() that
 * published the pointer, so the pointee's initialisation is visible.
 */
#ifdef VMRES__TSAN
#define vmres__rcu_dereference(p) __atomic_load_n(&(p), __ATOMIC_ACQUIRE)
#define vmres__rcu_assign(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELEASE)
/* Returns true when *pp was @old and is now @new (full barrier). */
#define vmres__rcu_cmpxchg(pp, old, new)                                          \
	__extension__({                                                           \
		__typeof__(*(pp)) vmres__expected = (old);                        \
		__atomic_compare_exchange_n((pp), &vmres__expected, (new), false, \
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);  \
	})
#else
#define vmres__rcu_dereference(p) rcu_dereference(p)
#define vmres__rcu_assign(p, v) rcu_assign_pointer(p, v)
#define vmres__rcu_cmpxchg(pp, old, new)                                              \
	__extension__({                                                               \
		__typeof__(*(pp)) vmres__expected = (old);                            \
		rcu_cmpxchg_pointer((pp), vmres__expected, (new)) == vmres__expected; \
	})
#endif

#endif /* VMRES_INTERNAL_RCU_H */
