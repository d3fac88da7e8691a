/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Thread registration with the RCU flavor libvmres was built with.
 *
 * libvmres readers (address lookups, foreach, stats, system lookups) and
 * writers (which read the structure they update) run inside liburcu
 * read-side critical sections. liburcu only waits for threads it knows
 * about, so:
 *
 *   Every thread that calls into libvmres must call vmres_thread_register()
 *   first and vmres_thread_unregister() before it exits, unless it has
 *   already registered itself with the same liburcu flavor
 *   (vmres_rcu_flavor() names it).
 *
 * A thread that does not is invisible to grace periods: a node it is reading
 * can be freed under it (a use-after-free, silent in release builds). With
 * the "bp" flavor registration is automatic and these calls are no-ops.
 *
 * With the "qsbr" flavor a registered thread is "online" and must also call
 * vmres_thread_quiescent() regularly (or go offline around blocking calls
 * with vmres_thread_offline()/vmres_thread_online()); otherwise memory
 * retired by writers is never reclaimed, and whatever waits for a grace
 * period blocks in every thread: allocator destroy, vmres_rcu_barrier(), a
 * system batch rolling back under memory exhaustion. A thread that joins one
 * doing any of these, while online, deadlocks with it.
 * With the other flavors those three calls are no-ops.
 *
 * fork(): liburcu's call_rcu thread does not exist in the child, so a child
 * must not use allocators or systems made before the fork (destroy and
 * vmres_rcu_barrier() would wait forever for it); it may exec or exit.
 */
#ifndef VMRES_THREAD_H
#define VMRES_THREAD_H

#include <vmres/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * vmres_thread_register() - register the calling thread as an RCU reader
 *
 * Return: 0. (An int so a future flavor may report failure.) Registering a
 * thread twice without unregistering is a caller bug that liburcu traps
 * (an assertion: the process aborts).
 *
 * Context: any thread, once, before its first other libvmres call.
 */
VMRES_API int vmres_thread_register(void);

/**
 * vmres_thread_unregister() - unregister the calling thread
 *
 * Unregistering a thread that is not registered is a caller bug that
 * liburcu traps (an assertion: the process aborts).
 *
 * Context: a registered thread, outside any libvmres call, before it exits.
 */
VMRES_API void vmres_thread_unregister(void);

/**
 * vmres_thread_quiescent() - announce a quiescent state (qsbr flavor)
 *
 * Context: a registered thread, between libvmres calls. No-op unless the
 * library was built with VMRES_RCU_FLAVOR=qsbr.
 */
VMRES_API void vmres_thread_quiescent(void);

/**
 * vmres_thread_offline() - stop being a reader until vmres_thread_online()
 *
 * Context: a registered thread about to block for a long time (qsbr flavor).
 */
VMRES_API void vmres_thread_offline(void);

/**
 * vmres_thread_online() - become a reader again after vmres_thread_offline()
 *
 * Context: a registered thread that went offline.
 */
VMRES_API void vmres_thread_online(void);

/**
 * vmres_rcu_barrier() - wait until every retired node has left RCU's hands
 *
 * Waits for all RCU callbacks queued so far (by any allocator) to run: every
 * node retired before the call has then been freed, or put in its
 * allocator's bounded pool for reuse (docs/design.md: an ID allocator's
 * "Node pools", where fewer than 32 per node size may still wait for a
 * batch; an address allocator's pool of retired versions and their nodes).
 * What an allocator pools goes back to its hook at destroy, so after
 * destroying every allocator and calling this, a leak checker sees no
 * libvmres memory.
 *
 * Context: a registered thread, outside any libvmres call; blocks.
 */
VMRES_API void vmres_rcu_barrier(void);

/**
 * vmres_rcu_flavor() - the liburcu flavor libvmres was built with
 *
 * Return: "memb", "qsbr", "mb" or "bp".
 *
 * Context: any thread; no registration needed.
 */
VMRES_API const char *vmres_rcu_flavor(void);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_THREAD_H */
