/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Baseline: the libvmres address tree itself behind a lock, so the
 * benchmark isolates what RCU buys over locking the very same structure.
 *
 * Writers (vmres_addr_alloc / vmres_addr_free) run under the write side;
 * readers call vmres__addr_lookup_unsynchronized() (the lookup without the
 * RCU read-side section) under the read side. Three locks:
 *   - pthread_rwlock_t with glibc's default attributes (reader-preferring,
 *     the best case for readers; the writer may wait long);
 *   - pthread_rwlock_t preferring writers (PTHREAD_RWLOCK_PREFER_WRITER_
 *     NONRECURSIVE_NP): new readers queue behind a waiting writer, the
 *     policy of Rust's std::sync::RwLock on Linux, which Rust VMMs use;
 *   - pthread_mutex_t, readers and writers alike (what Arc<Mutex<..>> gives);
 *   - ck_brlock, Concurrency Kit's big-reader lock: a per-reader counter on
 *     its own cache line, writers scan every reader (cheap reads, costly
 *     writes).
 * A seqlock (ck_sequence) is not offered: a reader chasing tree pointers
 * while a writer changes them can follow a node that the writer has already
 * retired, which only RCU's grace period makes safe.
 *
 * The writer's nodes are still retired through call_rcu by the tree code;
 * readers here hold no RCU section, but the write lock excludes them while
 * a writer runs, and every retired node was unlinked before the writer
 * released the lock, so a reader that takes the lock afterwards cannot reach
 * it.
 */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np; pthread_rwlock_t under -std=c11 */

#include "baselines.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <ck_brlock.h>

#include "internal/addr_tree.h"

struct bl_reader {
	struct ck_brlock_reader br; /* only ck_brlock uses it */
	char pad[64 - sizeof(struct ck_brlock_reader)];
};

struct bl_locked_tree {
	enum bl_lock_kind kind;
	struct vmres_addr_allocator *a;
	pthread_rwlock_t rw;
	pthread_mutex_t mutex;
	struct ck_brlock br;
	struct bl_reader shared_reader; /* handed to rwlock/mutex readers */
};

const char *bl_lock_kind_name(enum bl_lock_kind kind)
{
	switch (kind) {
	case BL_LOCK_RWLOCK:
		return "rwlock";
	case BL_LOCK_RWLOCK_WRITER_PREF:
		return "rwlock_writer_pref";
	case BL_LOCK_MUTEX:
		return "mutex";
	case BL_LOCK_BRLOCK:
		return "ck_brlock";
	}
	return "?";
}

int bl_locked_tree_create(enum bl_lock_kind kind, struct vmres_addr_allocator *a,
			  struct bl_locked_tree **out)
{
	struct bl_locked_tree *t;

	if (!a || !out)
		return VMRES_E_INVALID_ARGUMENT;
	t = aligned_alloc(64, (sizeof(*t) + 63) / 64 * 64);
	if (!t)
		return VMRES_E_NOMEM;
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->a = a;
	if (kind == BL_LOCK_RWLOCK_WRITER_PREF) {
		pthread_rwlockattr_t attr;
		pthread_rwlockattr_init(&attr);
		pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
		pthread_rwlock_init(&t->rw, &attr);
		pthread_rwlockattr_destroy(&attr);
	} else {
		pthread_rwlock_init(&t->rw, NULL);
	}
	pthread_mutex_init(&t->mutex, NULL);
	ck_brlock_init(&t->br);
	*out = t;
	return 0;
}

void bl_locked_tree_destroy(struct bl_locked_tree *t)
{
	if (!t)
		return;
	vmres_addr_allocator_destroy(t->a);
	pthread_rwlock_destroy(&t->rw);
	pthread_mutex_destroy(&t->mutex);
	free(t);
}

struct bl_reader *bl_locked_tree_reader_register(struct bl_locked_tree *t)
{
	struct bl_reader *r;

	if (t->kind != BL_LOCK_BRLOCK)
		return &t->shared_reader;
	r = aligned_alloc(64, sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	ck_brlock_read_register(&t->br, &r->br);
	return r;
}

void bl_locked_tree_reader_unregister(struct bl_locked_tree *t, struct bl_reader *r)
{
	if (t->kind != BL_LOCK_BRLOCK || !r)
		return;
	ck_brlock_read_unregister(&t->br, &r->br);
	free(r);
}

int bl_locked_tree_lookup(struct bl_locked_tree *t, struct bl_reader *r, uint64_t addr,
			  struct vmres_range *out, uint64_t *tag_out)
{
	int err;

	switch (t->kind) {
	case BL_LOCK_RWLOCK:
	case BL_LOCK_RWLOCK_WRITER_PREF:
		pthread_rwlock_rdlock(&t->rw);
		err = vmres__addr_lookup_unsynchronized(t->a, addr, out, tag_out);
		pthread_rwlock_unlock(&t->rw);
		return err;
	case BL_LOCK_MUTEX:
		pthread_mutex_lock(&t->mutex);
		err = vmres__addr_lookup_unsynchronized(t->a, addr, out, tag_out);
		pthread_mutex_unlock(&t->mutex);
		return err;
	case BL_LOCK_BRLOCK:
		ck_brlock_read_lock(&t->br, &r->br);
		err = vmres__addr_lookup_unsynchronized(t->a, addr, out, tag_out);
		ck_brlock_read_unlock(&r->br);
		return err;
	}
	return VMRES_E_INVALID_ARGUMENT;
}

static void write_lock(struct bl_locked_tree *t)
{
	switch (t->kind) {
	case BL_LOCK_RWLOCK:
	case BL_LOCK_RWLOCK_WRITER_PREF:
		pthread_rwlock_wrlock(&t->rw);
		break;
	case BL_LOCK_MUTEX:
		pthread_mutex_lock(&t->mutex);
		break;
	case BL_LOCK_BRLOCK:
		ck_brlock_write_lock(&t->br);
		break;
	}
}

static void write_unlock(struct bl_locked_tree *t)
{
	switch (t->kind) {
	case BL_LOCK_RWLOCK:
	case BL_LOCK_RWLOCK_WRITER_PREF:
		pthread_rwlock_unlock(&t->rw);
		break;
	case BL_LOCK_MUTEX:
		pthread_mutex_unlock(&t->mutex);
		break;
	case BL_LOCK_BRLOCK:
		ck_brlock_write_unlock(&t->br);
		break;
	}
}

int bl_locked_tree_alloc(struct bl_locked_tree *t, const struct vmres_addr_request *req,
			 struct vmres_range *out)
{
	int err;

	write_lock(t);
	err = vmres_addr_alloc(t->a, req, out);
	write_unlock(t);
	return err;
}

int bl_locked_tree_free(struct bl_locked_tree *t, struct vmres_range r)
{
	int err;

	write_lock(t);
	err = vmres_addr_free(t->a, r);
	write_unlock(t);
	return err;
}
