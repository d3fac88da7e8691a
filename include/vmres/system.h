/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The system allocator: one allocator per resource kind for a whole VM,
 * thread-safe by composition of the lock-free allocators (no global lock).
 * Address kinds (PIO, MMIO32, MMIO64) are served by vmres_addr allocators,
 * ID kinds (legacy IRQs, MSI GSIs, device IDs, memory slots) by vmres_id
 * allocators. See docs/design.md, "The resource layer" and docs/layouts.md.
 *
 * Calls that may run at the same time (any registered threads):
 *   lookup, addr_stats, counters, layout, allocator, get_allocator
 *                        - with anything but destroy; lookup of an address
 *                          kind is a wait-free RCU reader
 *   allocate, allocate_ex, free, free_ex, the callbacks' allocate/free,
 *   vmres_allocate_batch on the callbacks
 *                        - lock-free writers, with each other and readers
 *                          (except a batch's rollback under memory
 *                          exhaustion, which may wait for RCU callbacks:
 *                          see vmres_system_allocate_ex())
 *   create               - with anything (a new object)
 *   destroy              - with nothing on the same system; the callbacks
 *                          from vmres_system_allocator() die with it
 *
 * A system never changes shape after create: which kinds exist and their
 * spans are fixed, so the per-kind allocators and callbacks can be read
 * without synchronization by any thread that got the system pointer through
 * the usual means (pthread_create, a mutex, an atomic release/acquire).
 */
#ifndef VMRES_SYSTEM_H
#define VMRES_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/export.h>
#include <vmres/mem.h>
#include <vmres/resource.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct vmres_layout - which kinds a VM has and their spans
 * @span:    the inclusive span of each kind (ID kinds: within 32 bits)
 * @present: whether the kind is served at all
 *
 * Spans of kinds that are not present are ignored.
 */
struct vmres_layout {
	struct vmres_range span[VMRES_KIND_COUNT];
	bool present[VMRES_KIND_COUNT];
};

/**
 * struct vmres_system_counters - what a system's rollbacks did
 * @rollbacks:        batches whose request failed while being taken at one
 *                    of this system's callbacks (after passing the checks),
 *                    counted whether or not earlier requests had to be
 *                    given back; a batch that fails at another table's
 *                    callback is not counted here
 * @reserve_fallbacks: allocations a rollback's frees took from the system's
 *                    reserve because the memory hook returned NULL
 * @rollback_leaks:   resources of this system a rollback could not give back
 *                    (->free still failed after every retry: for a system's
 *                    callbacks, the memory hook and the reserve both
 *                    failed); they stay allocated. 0 unless memory ran out
 *                    for a long time, with no allocation succeeding in
 *                    between to refill the reserve.
 *
 * Counters only grow; each is read atomically, the three not as one
 * snapshot.
 */
struct vmres_system_counters {
	uint64_t rollbacks;
	uint64_t reserve_fallbacks;
	uint64_t rollback_leaks;
};

struct vmres_system; /* opaque, thread-safe */

/**
 * vmres_layout_x86_64_default() - the default x86_64 layout
 * @out: receives the layout; nothing happens if NULL
 *
 * Every kind is present:
 *   PIO          [0x0, 0xffff]                   the whole port space
 *   MMIO32       [0xc0000000, 0xe7ffffff]        640 MiB below 4 GiB
 *   MMIO64       [0x4000000000, 0x7fffffffff]    256 GiB .. 512 GiB - 1
 *   LEGACY_IRQ   [5, 23]                         IOAPIC pins after the ISA ones
 *   MSI_GSI      [24, 4095]                      GSIs past the IOAPIC
 *   DEVICE_ID    [0, 65535]
 *   MEM_SLOT     [0, 508]                        509 KVM user memory slots
 * docs/layouts.md gives the reasons and which VMM each value follows
 * (Firecracker, cloud-hypervisor, crosvm).
 *
 * Context: any thread; no registration needed.
 */
VMRES_API void vmres_layout_x86_64_default(struct vmres_layout *out);

/**
 * vmres_system_create() - make a system allocator for a layout
 * @layout: which kinds to serve and their spans; copied
 * @out:    receives the system
 *
 * Uses the process-wide memory hook (vmres_mem_set_default()).
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @layout or @out is NULL;
 * VMRES_E_INVALID_RANGE if a present kind's span has start > end, or if the
 * spans of two present kinds of one space overlap (MMIO32 and MMIO64: both
 * guest-physical addresses; LEGACY_IRQ and MSI_GSI: both GSIs), which would
 * hand one unit to two devices; VMRES_E_OUT_OF_RANGE if a present ID kind's
 * span goes past UINT32_MAX, MMIO32's past 4 GiB - 1 (0xffffffff), or
 * PIO's past 0xffff (x86 ports are 16-bit);
 * VMRES_E_NOMEM; VMRES_E_INVALID_ARGUMENT also if the memory hook gives the
 * reserve a block that is not 16-aligned; a misaligned block for an ID
 * kind's allocator gives VMRES_E_INVALID_ARGUMENT or VMRES_E_NOMEM, as
 * vmres_id_allocator_create_ex() says. On error nothing is left allocated.
 *
 * Context: a registered thread (a failed create destroys what it built).
 */
VMRES_API int vmres_system_create(const struct vmres_layout *layout, struct vmres_system **out);

/**
 * vmres_system_create_ex() - vmres_system_create() with a memory hook
 * @layout: which kinds to serve and their spans; copied
 * @mem:    the hook the system and all its per-kind allocators use for every
 *          byte, copied; NULL for the process-wide default
 * @out:    receives the system
 *
 * The system takes a small reserve (VMRES_SYSTEM_RESERVE_BYTES) from @mem
 * at create, which rollbacks fall back on when @mem fails. Blocks a
 * rollback took stay with the nodes they became, which may live long, so
 * when @mem works again an allocation that finds a quarter or more of a
 * class of the reserve lent out takes that many blocks more from @mem; when
 * lent blocks come back, the reserve gives the extra ones back to @mem. So
 * it can hold more than its size at create while blocks it lent are in use
 * (at most a quarter of a class more per such block, as extra blocks come
 * and go in chunks of a quarter), and less than a quarter more per class
 * once they are all back.
 *
 * Return: as vmres_system_create(); also VMRES_E_INVALID_ARGUMENT if @mem
 * lacks alloc or free.
 *
 * Context: a registered thread.
 */
VMRES_API int vmres_system_create_ex(const struct vmres_layout *layout,
				     const struct vmres_mem_ops *mem, struct vmres_system **out);

/* Bytes of the rollback reserve each system takes from its memory hook at create. */
#define VMRES_SYSTEM_RESERVE_BYTES (256u * 256u)

/**
 * vmres_system_destroy() - free the system, its allocators and all they hold
 * @sys: the system, or NULL (nothing happens)
 *
 * Resources still allocated are dropped with it. Waits for nodes retired
 * under RCU to be freed, so no memory of @sys is left once it returns.
 *
 * Context: a registered thread, outside any RCU read-side section; no other
 * call on @sys or on its callbacks may run at the same time or after.
 * Blocks: waits once for RCU callbacks (an rcu_barrier() for all kinds;
 * about 10 ms for an almost empty system on the 2-vCPU test machine).
 */
VMRES_API void vmres_system_destroy(struct vmres_system *sys);

/**
 * vmres_system_allocate() - take a device's resources, all or nothing
 * @sys:  the system
 * @reqs: the requests, @n of them
 * @n:    how many; 0 takes nothing and returns 0
 * @out:  receives out[i] for reqs[i]; unspecified when the call fails
 *
 * vmres_system_allocate_ex() without the failing index.
 *
 * Return: as vmres_system_allocate_ex().
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_system_allocate(struct vmres_system *sys, const struct vmres_request *reqs,
				    size_t n, struct vmres_resource *out);

/**
 * vmres_system_allocate_ex() - take several resources, all or nothing, and say which failed
 * @sys:          the system
 * @reqs:         the requests, @n of them
 * @n:            how many; 0 takes nothing and returns 0
 * @out:          receives out[i] for reqs[i]; unspecified when the call fails
 * @failed_index: if not NULL, receives the index of the failing request, or
 *                VMRES_NO_INDEX on success and for errors about no request
 *
 * Two phases. First every request is checked for every error it would get
 * whatever the allocators hold; a batch that fails there takes nothing.
 * Then the requests are served in index order by their kind's allocator; if
 * one fails, everything this call took is given back (last first) before
 * the first failure's error is returned. Per request, checked in this order:
 *   kind not an enum vmres_kind          VMRES_E_INVALID_ARGUMENT
 *   kind not present in the layout       VMRES_E_NOT_FOUND
 *   ID kinds: size != 1                  VMRES_E_INVALID_SIZE
 *   ID kinds: policy LAST or unknown     VMRES_E_INVALID_ARGUMENT
 *   ID kinds: EXACT @fixed outside the kind's span
 *                                        VMRES_E_OUT_OF_RANGE
 *   address kinds: size 0                VMRES_E_INVALID_SIZE
 *   address kinds: align 0 or not 2^k    VMRES_E_INVALID_ALIGNMENT
 *   address kinds: policy unknown        VMRES_E_INVALID_ARGUMENT
 *   address kinds: FIRST/LAST that would not fit even in the empty span
 *                                        VMRES_E_EXHAUSTED
 *   address kinds: EXACT @fixed not a multiple of @align
 *                                        VMRES_E_UNALIGNED_ADDRESS
 *   address kinds: EXACT [@fixed, @fixed + @size - 1] not inside the span
 *                                        VMRES_E_OUT_OF_RANGE
 * then, in phase two, what the allocator says: VMRES_E_IN_USE,
 * VMRES_E_EXHAUSTED (nothing free fits now), VMRES_E_NOMEM.
 * Requests for ID kinds ignore @align; their @tag is not recorded.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys is NULL, or @reqs or @out is
 * NULL with @n > 0 (index VMRES_NO_INDEX); otherwise the first failing
 * request's error, as listed above.
 *
 * Context: any registered thread. Each resource is taken atomically and is
 * never owned by two callers. The batch is not one atomic step: a
 * concurrent lookup may find part of a batch that is then rolled back, and
 * a concurrent allocation may fail for lack of space that such a batch held
 * for a moment. Lock-free (no global lock), except under memory
 * exhaustion: a rollback whose memory hook and reserve both fail retries a
 * bounded number of times, yielding and then waiting for RCU callbacks to
 * give memory back (an RCU barrier: blocks; see struct
 * vmres_system_counters). So call it outside any RCU read-side section.
 */
VMRES_API int vmres_system_allocate_ex(struct vmres_system *sys, const struct vmres_request *reqs,
				       size_t n, struct vmres_resource *out, size_t *failed_index);

/**
 * vmres_system_free() - give resources back
 * @sys: the system
 * @res: resources from vmres_system_allocate() or a callback, @n of them
 * @n:   how many; 0 returns 0
 *
 * vmres_system_free_ex() without the failing index.
 *
 * Return: as vmres_system_free_ex().
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_system_free(struct vmres_system *sys, const struct vmres_resource *res,
				size_t n);

/**
 * vmres_system_free_ex() - give resources back, and say which one failed
 * @sys:          the system
 * @res:          the resources, @n of them
 * @n:            how many; 0 returns 0
 * @failed_index: if not NULL, receives the index of the failing entry, or
 *                VMRES_NO_INDEX on success and for errors about no entry
 *
 * First every entry is checked (kind valid and present, range well formed,
 * an ID a single value within 32 bits); a bad entry frees nothing. Then the
 * entries are freed in index order and the call stops at the first that
 * fails: entries before it are free, it and the ones after are untouched.
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys is NULL or @res is NULL with
 * @n > 0, or an entry's kind is not a kind; VMRES_E_NOT_FOUND for a kind
 * the layout leaves out; VMRES_E_INVALID_RANGE for start > end;
 * VMRES_E_INVALID_SIZE for an ID entry with start != end;
 * VMRES_E_OUT_OF_RANGE for an ID past UINT32_MAX; then the allocator's
 * error: IDs VMRES_E_OUT_OF_RANGE, VMRES_E_NEVER_ALLOCATED,
 * VMRES_E_ALREADY_FREED; addresses VMRES_E_NOT_FOUND (not exactly an
 * allocated range); both VMRES_E_NOMEM.
 *
 * Context: any registered thread; lock-free. Each entry is freed atomically;
 * the batch is not one atomic step: a concurrent caller may see some entries
 * freed and others still held, and may take a freed one before the call
 * returns.
 */
VMRES_API int vmres_system_free_ex(struct vmres_system *sys, const struct vmres_resource *res,
				   size_t n, size_t *failed_index);

/**
 * vmres_system_lookup() - who holds an address or an ID
 * @sys:  the system
 * @kind: which kind
 * @addr: the address (address kinds) or the ID (ID kinds)
 * @out:  receives the resource that holds @addr
 *
 * Address kinds: the allocated range that contains @addr and its owner tag,
 * from one RCU snapshot of that kind's tree. This is the vCPU exit path of
 * a VMM's PIO and MMIO buses: wait-free, no locks, no allocation, no stores
 * to shared memory.
 * ID kinds: whether the ID is held right now; the resource is then
 * [@addr, @addr] with tag 0 (ID allocators keep no tags). Lock-free, as
 * vmres_id_is_allocated().
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys or @out is NULL or @kind is
 * not a kind; VMRES_E_NOT_FOUND if @kind is not in the layout, or @addr is
 * free; VMRES_E_OUT_OF_RANGE if @addr is outside the kind's span.
 *
 * Context: any registered thread. A lookup running with writers sees each
 * allocation or free either wholly done or not at all.
 *
 * The answer is about one instant: by the time the call returns, the range
 * may have been freed and even handed to another device. A VMM that
 * dispatches an exit to the device the tag names must keep that device
 * alive until the dispatch ends by its own means: a reference taken under
 * its own lock, or lookup and dispatch inside a read-side section of
 * libvmres's RCU flavor (vmres_rcu_flavor()) with devices freed only after
 * a grace period. Then an exit may still reach a device just unplugged
 * (alive, no longer plugged), and a handler inside the section must not
 * allocate or free (those may wait for a grace period: defer the work).
 * A lookup may also return the tag of a batch still being taken or rolled
 * back: tags should be unique per device instance, and a tag the VMM does
 * not know is a miss. (The demo checks with a sequence lock that the
 * device stayed plugged through the lookup: docs/design.md, "The demo".)
 */
VMRES_API int vmres_system_lookup(struct vmres_system *sys, enum vmres_kind kind, uint64_t addr,
				  struct vmres_resource *out);

/**
 * vmres_system_allocator() - the callback that serves one kind
 * @sys:  the system
 * @kind: which kind
 *
 * The returned table's ->allocate takes one resource of @kind, checked and
 * served exactly as one request of vmres_system_allocate_ex() (a request
 * of another kind, or a NULL self, request or out, gives
 * VMRES_E_INVALID_ARGUMENT); ->free gives one back as vmres_system_free_ex()
 * would (a NULL self or resource, or one of another kind: the same error).
 * A device manager holds these as its allocation callbacks; they live as
 * long as @sys. Keep the pointer, not a copy of the table: the callbacks
 * find their kind and system from their own address (struct
 * vmres_allocator).
 *
 * Return: the callback, or NULL if @sys is NULL, @kind is not a kind, or
 * the layout leaves @kind out (vmres_system_get_allocator() tells which).
 *
 * Context: any registered thread.
 */
VMRES_API struct vmres_allocator *vmres_system_allocator(struct vmres_system *sys,
							 enum vmres_kind kind);

/**
 * vmres_system_get_allocator() - vmres_system_allocator() with an error code
 * @sys:  the system
 * @kind: which kind
 * @out:  receives the callback
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys or @out is NULL or @kind is
 * not a kind; VMRES_E_NOT_FOUND if the layout leaves @kind out.
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_system_get_allocator(struct vmres_system *sys, enum vmres_kind kind,
					 struct vmres_allocator **out);

/**
 * vmres_system_addr_stats() - totals of one address kind
 * @sys:  the system
 * @kind: VMRES_PIO, VMRES_MMIO32 or VMRES_MMIO64
 * @out:  receives the totals, from one snapshot
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys or @out is NULL or @kind is
 * not an address kind; VMRES_E_NOT_FOUND if the layout leaves @kind out.
 *
 * Context: any registered thread; wait-free.
 */
VMRES_API int vmres_system_addr_stats(struct vmres_system *sys, enum vmres_kind kind,
				      struct vmres_addr_stats *out);

/**
 * vmres_system_layout() - the layout a system was created with
 * @sys: the system
 * @out: receives a copy
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys or @out is NULL.
 *
 * Context: any registered thread.
 */
VMRES_API int vmres_system_layout(struct vmres_system *sys, struct vmres_layout *out);

/**
 * vmres_system_counters() - read a system's rollback counters
 * @sys: the system
 * @out: receives the counters
 *
 * Return: 0; VMRES_E_INVALID_ARGUMENT if @sys or @out is NULL.
 *
 * Context: any registered thread.
 */
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
/* Both a struct and a function, as vmres_addr_stats; g++ -Wshadow objects in C++. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
VMRES_API int vmres_system_counters(struct vmres_system *sys, struct vmres_system_counters *out);
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* VMRES_SYSTEM_H */
