/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Comparison allocators for the benchmark suite: ports of what virtual
 * machine monitors use today, each behind the lock those projects put
 * around it. They answer with the same enum vmres_error codes as libvmres
 * so a benchmark can treat both alike; none of them is part of the library.
 *
 *   bl_id_set      rust-vmm vm-allocator IdAllocator: an ordered set of
 *                  freed IDs plus next_id, behind a pthread mutex
 *                  (id_mutex_set.cc, std::set standing in for BTreeSet).
 *   bl_id_bitmap   cloud-hypervisor / Firecracker shape: a bitmap taking
 *                  the lowest clear bit, behind a Concurrency Kit spinlock
 *                  (id_spin_bitmap.c).
 *   bl_locked_tree the libvmres address tree itself behind a reader-writer
 *                  lock: writers call vmres_addr_alloc/free under the write
 *                  side, readers vmres__addr_lookup_unsynchronized() under
 *                  the read side (addr_locked_tree.c).
 *   bl_linear      crosvm AddressAllocator: an ordered set of free regions
 *                  scanned linearly for the first (or last) fit, linear
 *                  coalescing on release, behind a pthread mutex
 *                  (addr_linear.cc).
 *   bl_system      cloud-hypervisor's shape for a whole VM: one
 *                  SystemAllocator (the two above per kind) behind one
 *                  mutex, and the device bus that vCPU exits resolve
 *                  addresses on behind a reader-writer lock
 *                  (system_locked.cc).
 *
 * Memory: the C++ baselines allocate through bl_mem_counter so the memory
 * benchmark can report their bytes beside ours.
 */
#ifndef VMRES_BENCH_BASELINES_H
#define VMRES_BENCH_BASELINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/addr.h>
#include <vmres/error.h>
#include <vmres/resource.h>
#include <vmres/system.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes currently held by the C++ baselines' containers (all instances). */
int64_t bl_mem_bytes_in_use(void);

/* --- rust-vmm IdAllocator behind a pthread mutex */
struct bl_id_set;
int bl_id_set_create(uint32_t first, uint32_t last, struct bl_id_set **out);
void bl_id_set_destroy(struct bl_id_set *s);
int bl_id_set_alloc(struct bl_id_set *s, uint32_t *id_out);
int bl_id_set_free(struct bl_id_set *s, uint32_t id);
/*
 * Takes the freed ID @id back: an extension rust-vmm does not have (it has
 * no alloc_at), for the benchmark of takes in the middle of the free list.
 * 0, or VMRES_E_IN_USE when @id is not in the freed set (IDs past next_id
 * are not handled: VMRES_E_INVALID_ARGUMENT).
 */
int bl_id_set_take_freed(struct bl_id_set *s, uint32_t id);

/* --- lowest-free-bit bitmap behind a ck_spinlock */
struct bl_id_bitmap;
int bl_id_bitmap_create(uint32_t first, uint32_t last, struct bl_id_bitmap **out);
void bl_id_bitmap_destroy(struct bl_id_bitmap *b);
int bl_id_bitmap_alloc(struct bl_id_bitmap *b, uint32_t *id_out);
int bl_id_bitmap_free(struct bl_id_bitmap *b, uint32_t id);
/* Bytes the bitmap holds (its words and its header). */
size_t bl_id_bitmap_bytes(const struct bl_id_bitmap *b);

/* --- the libvmres tree behind a lock */
/* RWLOCK: glibc's default (readers first); RWLOCK_WRITER_PREF: new readers
 * wait while a writer waits, as Rust's std::sync::RwLock does on Linux. */
enum bl_lock_kind { BL_LOCK_RWLOCK, BL_LOCK_RWLOCK_WRITER_PREF, BL_LOCK_MUTEX, BL_LOCK_BRLOCK };
struct bl_locked_tree;
struct bl_reader; /* per reader thread (ck_brlock needs one) */
/* Takes ownership of @a: destroy destroys it. */
int bl_locked_tree_create(enum bl_lock_kind kind, struct vmres_addr_allocator *a,
			  struct bl_locked_tree **out);
void bl_locked_tree_destroy(struct bl_locked_tree *t);
struct bl_reader *bl_locked_tree_reader_register(struct bl_locked_tree *t);
void bl_locked_tree_reader_unregister(struct bl_locked_tree *t, struct bl_reader *r);
int bl_locked_tree_lookup(struct bl_locked_tree *t, struct bl_reader *r, uint64_t addr,
			  struct vmres_range *out, uint64_t *tag_out);
int bl_locked_tree_alloc(struct bl_locked_tree *t, const struct vmres_addr_request *req,
			 struct vmres_range *out);
int bl_locked_tree_free(struct bl_locked_tree *t, struct vmres_range r);
const char *bl_lock_kind_name(enum bl_lock_kind kind);

/* --- crosvm-style linear first-fit allocator behind a pthread mutex */
struct bl_linear;
int bl_linear_create(uint64_t first, uint64_t last, struct bl_linear **out);
void bl_linear_destroy(struct bl_linear *l);
/* FIRST/LAST/EXACT as in vmres_addr_alloc (same error codes for the cases used). */
int bl_linear_alloc(struct bl_linear *l, const struct vmres_addr_request *req,
		    struct vmres_range *out);
int bl_linear_free(struct bl_linear *l, struct vmres_range r);
int bl_linear_lookup(struct bl_linear *l, uint64_t addr, struct vmres_range *out,
		     uint64_t *tag_out);

/* --- a VM's resources the way VMMs hold them today */
struct bl_system;
int bl_system_create(const struct vmres_layout *layout, struct bl_system **out);
void bl_system_destroy(struct bl_system *s);
/* All or nothing; ID kinds: FIRST only (rust-vmm has no alloc_at). */
int bl_system_allocate(struct bl_system *s, const struct vmres_request *reqs, size_t n,
		       struct vmres_resource *out);
int bl_system_free(struct bl_system *s, const struct vmres_resource *res, size_t n);
/* Address kinds: the device owning @addr, from the bus. */
int bl_system_lookup(struct bl_system *s, enum vmres_kind kind, uint64_t addr,
		     struct vmres_resource *out);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_BENCH_BASELINES_H */
