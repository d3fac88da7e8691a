/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Shared helpers of the libFuzzer harnesses (tests/fuzz/README.md): an input
 * reader, FAIL() for a mismatch with a harness's model, and a memory hook
 * that fails on a schedule read from the input (NULL, or a block that is not
 * 16-aligned) and counts what is outstanding, so that every harness can
 * check that a NOMEM changed nothing and that destroy gave everything back.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmres/vmres.h>

#define FAIL(...)                                                        \
	do {                                                             \
		fprintf(stderr, "MISMATCH %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                            \
		fprintf(stderr, "\n");                                   \
		abort();                                                 \
	} while (0)

struct rd {
	const uint8_t *p;
	size_t n, i;
};
static inline int rd_more(struct rd *r)
{
	return r->i < r->n;
}
static inline uint8_t u8(struct rd *r)
{
	return r->i < r->n ? r->p[r->i++] : 0;
}
static inline uint16_t u16(struct rd *r)
{
	return (uint16_t)(u8(r) | (u8(r) << 8));
}
static inline uint32_t u32(struct rd *r)
{
	return (uint32_t)u16(r) | ((uint32_t)u16(r) << 16);
}
static inline uint64_t u64(struct rd *r)
{
	return (uint64_t)u32(r) | ((uint64_t)u32(r) << 32);
}

/* ---- memory hook with failure injection and accounting ---- */
static _Atomic long hook_outstanding; /* live blocks */
static _Atomic long hook_bytes;
static _Atomic long hook_allocs;     /* alloc calls (incl. failed) */
static _Atomic long hook_fail_count; /* failed alloc calls */
static const uint8_t *hook_bits;     /* failure schedule */
static size_t hook_nbits;
static _Atomic size_t hook_pos;
static int hook_inject;	      /* 0 off, 1 NULL, 2 misaligned */
static long hook_budget = -1; /* burst failure, see hook_alloc */

/* The injection mode an input's mode byte asks for: 0 none, 1 NULL, 2 misaligned. */
static inline int hook_mode(uint8_t mode)
{
	return (mode & 3) == 3 ? 1 : (mode & 3);
}

/* Takes the next @nbytes of the input (fewer at its end) as the hook's failure
 * schedule, one bit per hook call, and leaves injection off until the harness
 * sets hook_inject. */
static inline void hook_read_schedule(struct rd *r, size_t nbytes)
{
	if (r->i + nbytes > r->n)
		nbytes = r->n - r->i;
	hook_bits = r->p + r->i;
	r->i += nbytes;
	hook_nbits = nbytes * 8;
	atomic_store(&hook_pos, 0);
	hook_inject = 0;
}

static void *hook_alloc(void *ctx, size_t size)
{
	(void)ctx;
	atomic_fetch_add(&hook_allocs, 1);
	if (hook_budget >= 0) { /* burst: the first hook_budget calls work, then all fail */
		if (hook_budget == 0) {
			atomic_fetch_add(&hook_fail_count, 1);
			return NULL;
		}
		hook_budget--;
	}
	if (hook_inject && hook_nbits) {
		size_t k = atomic_fetch_add(&hook_pos, 1) % hook_nbits;
		if (hook_bits[k / 8] & (1u << (k % 8))) {
			atomic_fetch_add(&hook_fail_count, 1);
			if (hook_inject == 2 &&
			    (hook_bits[(k / 8 + 1) % (hook_nbits / 8)] >> (k % 8) & 1)) {
				/* misaligned block (8 mod 16) */
				char *b = aligned_alloc(16, ((size + 16 + 15) / 16) * 16);
				if (!b)
					return NULL;
				atomic_fetch_add(&hook_outstanding, 1);
				atomic_fetch_add(&hook_bytes, (long)size);
				return b + 8;
			}
			return NULL;
		}
	}
	void *p = aligned_alloc(16, ((size + 15) / 16) * 16 ? ((size + 15) / 16) * 16 : 16);
	if (p) {
		atomic_fetch_add(&hook_outstanding, 1);
		atomic_fetch_add(&hook_bytes, (long)size);
	}
	return p;
}
static void hook_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	if (!p)
		FAIL("hook free called with NULL");
	atomic_fetch_sub(&hook_outstanding, 1);
	atomic_fetch_sub(&hook_bytes, (long)size);
	if (((uintptr_t)p & 15) == 8)
		p = (char *)p - 8;
	free(p);
}
static const struct vmres_mem_ops hook_ops = { hook_alloc, hook_free, NULL };

static inline const char *en(int e)
{
	return vmres_error_name(e);
}

/* ---- per-allocator accounting on top of the hook ---- */
struct hctx {
	_Atomic long out; /* blocks of this allocator's hook not yet freed */
};

static void *hook_alloc_c(void *ctx, size_t size)
{
	void *p = hook_alloc(NULL, size);

	if (p && ctx)
		atomic_fetch_add(&((struct hctx *)ctx)->out, 1);
	return p;
}

static void hook_free_c(void *ctx, void *p, size_t size)
{
	if (ctx)
		atomic_fetch_sub(&((struct hctx *)ctx)->out, 1);
	hook_free(NULL, p, size);
}

/* A counting hook for one allocator: *ops gets it; free the result with FUZZ_DESTROY. */
static inline struct hctx *new_ctx(struct vmres_mem_ops *ops)
{
	struct hctx *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	*ops = (struct vmres_mem_ops){ hook_alloc_c, hook_free_c, c };
	return c;
}

/* Destroys @obj with @destroy (which waits for its RCU callbacks) and checks
 * that its hook @c (or NULL) has no block left. */
#define FUZZ_DESTROY(destroy, obj, c)                                                       \
	do {                                                                                \
		struct hctx *c_ = (c);                                                      \
		destroy(obj);                                                               \
		if (c_ && atomic_load(&c_->out) != 0)                                       \
			FAIL("destroy left %ld blocks of its hook", atomic_load(&c_->out)); \
		free(c_);                                                                   \
	} while (0)

#endif /* FUZZ_COMMON_H */
