/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libFuzzer harness: ID allocator against a reference model. */
#include "fuzz_common.h"

#define W_MAX 1024
enum { NEVER = 0, HELD = 1, FREED = 2 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vmres_thread_register();
	return 0;
}

static uint32_t first, last;
static uint64_t size; /* last - first + 1 */
static uint32_t M;    /* modelled window [first, first + M) */
static uint8_t st[W_MAX];

static int in_range(uint64_t id)
{
	return id >= first && id <= last;
}

/* expected state of any id (window or beyond: beyond window never touched) */
static int model_state(uint32_t id)
{
	if (!in_range(id))
		return -1;
	uint64_t off = (uint64_t)id - first;
	if (off < M)
		return st[off];
	return NEVER;
}

static uint32_t pick(struct rd *r)
{
	uint8_t b = u8(r);
	switch (b >> 5) {
	case 0:
		return first - 1; /* may wrap: out of range unless first == 0 */
	case 1:
		return last + 1u;
	case 2:
		return (b & 1) ? UINT32_MAX : 0;
	case 3:
		if (b & 16)
			return u32(r);
		return first + M; /* beyond window (may be in range) */
	default: {
		uint16_t v = u16(r);
		return first + (uint32_t)(v % M);
	}
	}
}

static void setup_range(struct rd *r)
{
	uint8_t k = u8(r);
	uint32_t n, x;
	switch (k % 8) {
	case 0:
		first = 0;
		last = u8(r);
		break;
	case 1:
		n = u8(r);
		first = UINT32_MAX - n;
		last = UINT32_MAX;
		break;
	case 2:
		first = 0;
		last = UINT32_MAX;
		break;
	case 3:
		x = u32(r);
		n = u16(r) % 2048;
		first = x;
		last = (x > UINT32_MAX - n) ? UINT32_MAX : x + n;
		break;
	case 4:
		x = u32(r);
		if (k & 8)
			x = (k & 16) ? UINT32_MAX : 0;
		first = last = x;
		break;
	case 5:
		first = u32(r);
		last = UINT32_MAX;
		break;
	case 6:
		first = u8(r);
		last = first + (u8(r) % 40);
		break;
	default:
		first = u32(r);
		last = u32(r);
		if (first > last) {
			uint32_t t = first;
			first = last;
			last = t;
		}
		break;
	}
	size = (uint64_t)last - first + 1;
	M = size < W_MAX ? (uint32_t)size : W_MAX;
}

static void check_window(struct vmres_id_allocator *ids)
{
	for (uint32_t i = 0; i < M; i++) {
		bool got = vmres_id_is_allocated(ids, first + i);
		if (got != (st[i] == HELD))
			FAIL("is_allocated(%u) = %d, model state %d", first + i, got, st[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd r = { data, len, 0 };
	if (len < 2)
		return 0;
	uint8_t mode = u8(&r);
	/* mode bit0/1: injection 0 none 1 NULL 2 misaligned; bit2: use plain create */
	int inject = hook_mode(mode);
	int plain = !inject && (mode & 4);
	setup_range(&r);

	/* schedule: up to 32 bytes of failure bits */
	hook_read_schedule(&r, (mode >> 3) % 33);

	struct vmres_id_allocator *ids = NULL;
	int rc;
	/* argument checks */
	if (vmres_id_allocator_create(first, last, NULL) != VMRES_E_INVALID_ARGUMENT)
		FAIL("create(NULL out)");
	if (first < last) {
		struct vmres_id_allocator *bad = (void *)0x1;
		rc = vmres_id_allocator_create_ex(last, first, &hook_ops, &bad);
		if (rc != VMRES_E_INVALID_RANGE || bad != (void *)0x1)
			FAIL("create(%u,%u) = %s, want INVALID_RANGE", last, first, en(rc));
	}
	struct vmres_mem_ops noalloc = { NULL, hook_free, NULL };
	if (vmres_id_allocator_create_ex(first, last, &noalloc, &ids) != VMRES_E_INVALID_ARGUMENT)
		FAIL("create_ex without alloc");

	struct hctx *hc = NULL;
	struct vmres_mem_ops ops;
	if (plain) {
		rc = vmres_id_allocator_create(first, last, &ids);
	} else {
		hook_inject = (mode & 4) ? inject : 0; /* else a working create */
		long f0 = atomic_load(&hook_fail_count);
		hc = new_ctx(&ops);
		rc = vmres_id_allocator_create_ex(first, last, &ops, &ids);
		hook_inject = 0;
		atomic_store(&hook_pos, 0);
		if (rc == VMRES_E_NOMEM || rc == VMRES_E_INVALID_ARGUMENT) {
			if (atomic_load(&hook_fail_count) == f0)
				FAIL("create %s without hook failure", en(rc));
			if (atomic_load(&hc->out) != 0)
				FAIL("create failure leaked %ld blocks", atomic_load(&hc->out));
			free(hc);
			if (ids)
				FAIL("out written on create failure");
			return 0;
		}
	}
	if (rc != 0)
		FAIL("create(%u,%u) = %s", first, last, en(rc));
	memset(st, 0, sizeof st);
	hook_inject = inject;

	int nops = 0, nbarrier = 0;
	while (rd_more(&r) && nops < 3000) {
		nops++;
		uint8_t op = u8(&r);
		long a0 = atomic_load(&hook_allocs), f0 = atomic_load(&hook_fail_count);
		switch (op % 9) {
		case 0:
		case 1: { /* alloc */
			uint32_t i;
			for (i = 0; i < M; i++)
				if (st[i] != HELD)
					break;
			uint32_t out = 0xdeadbeef;
			if (i == M && size > M)
				break; /* beyond the model window */
			rc = vmres_id_alloc(ids, &out);
			if (atomic_load(&hook_allocs) != a0)
				FAIL("alloc called the memory hook");
			if (i == M) {
				if (rc != VMRES_E_EXHAUSTED || out != 0xdeadbeef)
					FAIL("alloc on full = %s out %u", en(rc), out);
			} else {
				if (rc != 0 || out != first + i)
					FAIL("alloc = %s out %u, want %u", en(rc), out, first + i);
				st[i] = HELD;
			}
			break;
		}
		case 2:
		case 3: { /* alloc_at */
			uint32_t id = pick(&r);
			int s = model_state(id);
			if (s >= 0 && (uint64_t)id - first >= M)
				break; /* don't touch beyond window */
			rc = vmres_id_alloc_at(ids, id);
			int want = s < 0 ? VMRES_E_OUT_OF_RANGE : s == HELD ? VMRES_E_IN_USE : 0;
			if (rc == VMRES_E_NOMEM && want == 0 && atomic_load(&hook_fail_count) != f0)
				break; /* unchanged */
			if (rc != want)
				FAIL("alloc_at(%u) = %s want %s (state %d) [%u,%u] fails %ld", id,
				     en(rc), en(want), s, first, last,
				     atomic_load(&hook_fail_count) - f0);
			if (rc == 0)
				st[id - first] = HELD;
			break;
		}
		case 4:
		case 5:
		case 6: { /* free */
			uint32_t id = pick(&r);
			int s = model_state(id);
			rc = vmres_id_free(ids, id);
			int want = s < 0	? VMRES_E_OUT_OF_RANGE
				   : s == NEVER ? VMRES_E_NEVER_ALLOCATED
				   : s == FREED ? VMRES_E_ALREADY_FREED
						: 0;
			if (rc == VMRES_E_NOMEM && want == 0 && atomic_load(&hook_fail_count) != f0)
				break;
			if (rc != want)
				FAIL("free(%u) = %s want %s (state %d) [%u,%u] fails %ld", id,
				     en(rc), en(want), s, first, last,
				     atomic_load(&hook_fail_count) - f0);
			if (rc == 0)
				st[id - first] = FREED;
			break;
		}
		case 7: { /* is_allocated */
			uint32_t id = pick(&r);
			int s = model_state(id);
			bool got = vmres_id_is_allocated(ids, id);
			if (atomic_load(&hook_allocs) != a0)
				FAIL("is_allocated called the memory hook");
			if (got != (s == HELD))
				FAIL("is_allocated(%u) = %d state %d", id, got, s);
			break;
		}
		default: { /* NULL args + full check now and then */
			if ((op & 0x70) == 0x70 && nbarrier < 4) {
				nbarrier++;
				vmres_rcu_barrier(); /* retired nodes reach the pools */
				break;
			}
			uint32_t o = 7;
			if (vmres_id_alloc(NULL, &o) != VMRES_E_INVALID_ARGUMENT || o != 7)
				FAIL("alloc(NULL)");
			if (vmres_id_alloc(ids, NULL) != VMRES_E_INVALID_ARGUMENT)
				FAIL("alloc(ids, NULL)");
			if (vmres_id_alloc_at(NULL, first) != VMRES_E_INVALID_ARGUMENT)
				FAIL("alloc_at(NULL)");
			if (vmres_id_free(NULL, first) != VMRES_E_INVALID_ARGUMENT)
				FAIL("free(NULL)");
			if (vmres_id_is_allocated(NULL, first))
				FAIL("is_allocated(NULL)");
			if (op & 0x80)
				check_window(ids);
			break;
		}
		}
	}
	hook_inject = 0;
	check_window(ids);
	FUZZ_DESTROY(vmres_id_allocator_destroy, ids, hc);
	return 0;
}
