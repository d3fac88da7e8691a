/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The resource layer: the default layout, the three cases of the design
 * (lightweight VMM, callbacks, firmware-assigned), all-or-nothing batches,
 * every bad request, and memory-failure injection.
 */
#include "vmres_test.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal/rcu.h"
#include "internal/system.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct vmres_request id_req(enum vmres_kind kind, uint64_t tag)
{
	return (struct vmres_request){
		.kind = kind, .size = 1, .align = 1, .policy = VMRES_FIRST_MATCH, .tag = tag
	};
}

static struct vmres_request id_at(enum vmres_kind kind, uint64_t id, uint64_t tag)
{
	return (struct vmres_request){ .kind = kind,
				       .size = 1,
				       .align = 1,
				       .policy = VMRES_EXACT_MATCH,
				       .fixed = id,
				       .tag = tag };
}

static struct vmres_request addr_req(enum vmres_kind kind, uint64_t size, uint64_t align,
				     uint64_t tag)
{
	return (struct vmres_request){
		.kind = kind, .size = size, .align = align, .policy = VMRES_FIRST_MATCH, .tag = tag
	};
}

static struct vmres_request addr_at(enum vmres_kind kind, uint64_t addr, uint64_t size,
				    uint64_t tag)
{
	return (struct vmres_request){ .kind = kind,
				       .size = size,
				       .align = 1,
				       .policy = VMRES_EXACT_MATCH,
				       .fixed = addr,
				       .tag = tag };
}

static struct vmres_system *make_default(struct vmres_test_mem *mem)
{
	struct vmres_layout layout;
	struct vmres_mem_ops ops = vmres_test_mem_ops(mem);
	struct vmres_system *sys = NULL;

	vmres_layout_x86_64_default(&layout);
	assert_int_equal(vmres_system_create_ex(&layout, &ops, &sys), VMRES_OK);
	assert_non_null(sys);
	return sys;
}

static void destroy_and_check_leaks(struct vmres_system *sys, struct vmres_test_mem *mem)
{
	vmres_system_destroy(sys);
	vmres_rcu_barrier();
	assert_int_equal(vmres_test_mem_live_bytes(mem), 0);
	assert_int_equal(vmres_test_mem_live_blocks(mem), 0);
}

static uint64_t addr_ranges(struct vmres_system *sys, enum vmres_kind kind)
{
	struct vmres_addr_stats st;

	assert_int_equal(vmres_system_addr_stats(sys, kind, &st), VMRES_OK);
	return st.ranges;
}

static bool id_held(struct vmres_system *sys, enum vmres_kind kind, uint64_t id)
{
	struct vmres_resource r;
	int err = vmres_system_lookup(sys, kind, id, &r);

	assert_true(err == VMRES_OK || err == VMRES_E_NOT_FOUND);
	if (err == VMRES_OK) { /* the ID itself, of the kind asked for */
		assert_int_equal(r.kind, kind);
		assert_int_equal(r.range.start, id);
		assert_int_equal(r.range.end, id);
	}
	return err == VMRES_OK;
}

/* Nothing at all is allocated in any kind of the default layout. */
static void assert_all_free(struct vmres_system *sys)
{
	struct vmres_layout layout;

	assert_int_equal(vmres_system_layout(sys, &layout), VMRES_OK);
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		if (!layout.present[k])
			continue;
		if (vmres_kind_is_address((enum vmres_kind)k)) {
			assert_int_equal(addr_ranges(sys, (enum vmres_kind)k), 0);
			continue;
		}
		for (uint64_t id = layout.span[k].start; id <= layout.span[k].end; id++)
			assert_false(id_held(sys, (enum vmres_kind)k, id));
	}
}

static void test_system_default_layout_values(void **state)
{
	(void)state;
	struct vmres_layout l;

	memset(&l, 0xa5, sizeof(l));
	vmres_layout_x86_64_default(&l);
	vmres_layout_x86_64_default(NULL); /* no crash */
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		assert_true(l.present[k]);
		assert_true(l.span[k].start <= l.span[k].end);
	}
	assert_int_equal(l.span[VMRES_PIO].start, 0);
	assert_int_equal(l.span[VMRES_PIO].end, 0xffff);
	assert_true(l.span[VMRES_MMIO32].end < (1ull << 32));
	assert_int_equal(l.span[VMRES_MMIO32].start, 0xc0000000ull);
	assert_int_equal(l.span[VMRES_MMIO32].end, 0xe7ffffffull);
	assert_int_equal(l.span[VMRES_MMIO64].start, 256ull << 30);
	assert_int_equal(l.span[VMRES_MMIO64].end, (512ull << 30) - 1);
	assert_int_equal(l.span[VMRES_DEVICE_ID].start, 0);
	assert_int_equal(l.span[VMRES_MEM_SLOT].start, 0);
	assert_int_equal(l.span[VMRES_MEM_SLOT].end, 508);
	assert_int_equal(l.span[VMRES_LEGACY_IRQ].start, 5);
	assert_int_equal(l.span[VMRES_LEGACY_IRQ].end, 23);
	assert_int_equal(l.span[VMRES_MSI_GSI].start, 24);
	assert_int_equal(l.span[VMRES_MSI_GSI].end, 4095);
	assert_int_equal(l.span[VMRES_DEVICE_ID].end, 65535);
	assert_true(l.span[VMRES_MEM_SLOT].end <= UINT32_MAX);
}

static void test_system_kind_names_and_classes(void **state)
{
	(void)state;
	int address = 0, id = 0;

	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		assert_string_not_equal(vmres_kind_name((enum vmres_kind)k), "UNKNOWN");
		assert_true(vmres_kind_is_address((enum vmres_kind)k) !=
			    vmres_kind_is_id((enum vmres_kind)k));
		address += vmres_kind_is_address((enum vmres_kind)k);
		id += vmres_kind_is_id((enum vmres_kind)k);
	}
	assert_int_equal(address, 3);
	assert_int_equal(id, 4);
	assert_string_equal(vmres_kind_name(VMRES_MSI_GSI), "MSI_GSI");
	assert_string_equal(vmres_kind_name(VMRES_KIND_COUNT), "UNKNOWN");
	assert_string_equal(vmres_kind_name((enum vmres_kind) - 1), "UNKNOWN");
	assert_false(vmres_kind_is_address(VMRES_KIND_COUNT));
	assert_false(vmres_kind_is_id((enum vmres_kind) - 1));
}

static void test_system_create_rejects_bad_layouts(void **state)
{
	(void)state;
	struct vmres_layout l;
	struct vmres_system *sys = NULL;
	struct vmres_mem_ops half = { NULL, NULL, NULL };

	vmres_layout_x86_64_default(&l);
	assert_int_equal(vmres_system_create(NULL, &sys), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_create(&l, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_create_ex(&l, &half, &sys), VMRES_E_INVALID_ARGUMENT);

	l.span[VMRES_MMIO32] = (struct vmres_range){ 10, 9 };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_INVALID_RANGE);
	l.present[VMRES_MMIO32] = false; /* an absent kind's span is ignored */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);

	vmres_layout_x86_64_default(&l);
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 0, (uint64_t)UINT32_MAX + 1 };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_OUT_OF_RANGE);
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 0, UINT32_MAX };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
	vmres_system_destroy(NULL); /* no crash */

	vmres_layout_x86_64_default(&l);
	l.span[VMRES_PIO] = (struct vmres_range){ 0x1000, 0x10000 }; /* ports are 16-bit */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_OUT_OF_RANGE);
	l.span[VMRES_PIO] = (struct vmres_range){ 0xffff, 0xffff };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
}

/*
 * Kinds of one space (MMIO32 and MMIO64: guest-physical addresses;
 * LEGACY_IRQ and MSI_GSI: GSIs) may not overlap, or one batch could give one
 * address or GSI to two devices; MMIO32 ends below 4 GiB. Touching spans
 * are fine, and an absent kind's span is ignored.
 */
static void test_system_create_rejects_overlapping_spaces(void **state)
{
	(void)state;
	struct vmres_layout l;
	struct vmres_system *sys = NULL;

	vmres_layout_x86_64_default(&l);
	l.span[VMRES_MMIO64] = (struct vmres_range){ 0xe7fff000, 0x4fffffffffull };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_INVALID_RANGE);
	l.span[VMRES_MMIO64] =
		(struct vmres_range){ 0x100000, 0xc0000000 }; /* MMIO32's first byte */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_INVALID_RANGE);
	l.present[VMRES_MMIO32] = false;
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
	l.present[VMRES_MMIO32] = true;
	l.span[VMRES_MMIO64] = (struct vmres_range){ 0xe8000000, 0x4fffffffffull }; /* touching */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);

	vmres_layout_x86_64_default(&l);
	l.span[VMRES_MSI_GSI] = (struct vmres_range){ 23, 4095 }; /* shares GSI 23 */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_INVALID_RANGE);
	l.span[VMRES_MSI_GSI] = (struct vmres_range){ 0, 4 }; /* below, touching */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
	l.span[VMRES_MSI_GSI] = (struct vmres_range){ 0, 4095 }; /* around */
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_INVALID_RANGE);
	l.present[VMRES_LEGACY_IRQ] = false;
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);

	vmres_layout_x86_64_default(&l);
	l.span[VMRES_MMIO64] = (struct vmres_range){ 0x200000000ull, 0x4fffffffffull };
	l.span[VMRES_MMIO32] = (struct vmres_range){ 0xc0000000, 0x100000000ull };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_E_OUT_OF_RANGE);
	l.span[VMRES_MMIO32] = (struct vmres_range){ 0xc0000000, 0xffffffff };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
	/* Other kinds share no space: PIO over the same numbers is fine. */
	l.span[VMRES_PIO] = (struct vmres_range){ 0, 0xffff };
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 5, 4095 };
	l.span[VMRES_MEM_SLOT] = (struct vmres_range){ 5, 4095 };
	assert_int_equal(vmres_system_create(&l, &sys), VMRES_OK);
	vmres_system_destroy(sys);
}

/* Every allocation create makes can fail; each failure leaves nothing behind. */
/* A hook that breaks its contract: every block only 8-aligned. */
static int64_t misaligned_live; /* atomic */

static void *misaligned_alloc(void *ctx, size_t size)
{
	char *p = malloc(size + 16); /* 16-aligned */

	(void)ctx;
	if (!p)
		return NULL;
	__atomic_fetch_add(&misaligned_live, 1, __ATOMIC_RELAXED);
	return p + 8;
}

static void misaligned_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	__atomic_fetch_sub(&misaligned_live, 1, __ATOMIC_RELAXED);
	free((char *)p - 8);
}

/*
 * The system refuses the hook's blocks (system.h): create fails, keeps
 * nothing. With ID kinds their allocators refuse them; with address kinds
 * alone the reserve does (its blocks become ID nodes too, which need 16).
 */
static void test_system_create_refuses_misaligned_hook(void **state)
{
	(void)state;
	struct vmres_mem_ops ops = { misaligned_alloc, misaligned_free, NULL };
	struct vmres_layout l;
	struct vmres_system *sys = NULL;

	vmres_layout_x86_64_default(&l);
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_E_INVALID_ARGUMENT);
	assert_null(sys);
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		l.present[k] = k == VMRES_PIO;
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_E_INVALID_ARGUMENT);
	assert_null(sys);
	vmres_rcu_barrier();
	assert_int_equal(__atomic_load_n(&misaligned_live, __ATOMIC_RELAXED), 0);
}

static void test_system_create_nomem_at_every_point(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_layout l;
	struct vmres_system *sys;
	int err = VMRES_E_NOMEM;

	vmres_layout_x86_64_default(&l);
	for (int64_t k = 0; err == VMRES_E_NOMEM; k++) {
		struct vmres_mem_ops ops;

		assert_true(k < 1000);
		vmres_test_mem_init(&mem);
		ops = vmres_test_mem_ops(&mem);
		vmres_test_mem_fail_after(&mem, k);
		sys = NULL;
		err = vmres_system_create_ex(&l, &ops, &sys);
		if (err) {
			assert_int_equal(err, VMRES_E_NOMEM);
			assert_null(sys);
			vmres_rcu_barrier();
			assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
		}
	}
	assert_int_equal(err, VMRES_OK);
	vmres_test_mem_fail_after(&mem, -1);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * Case 1, lightweight VMM: a small system of its own (IDs, IRQs, PIO only)
 * takes an instance ID and an IRQ, and the device's port range is known in
 * advance (EXACT); no callbacks anywhere.
 */
static void test_system_case_lightweight_vmm(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops;
	struct vmres_layout l = { 0 };
	struct vmres_system *sys;
	struct vmres_allocator *cb = NULL;
	struct vmres_resource got[3], hit;
	size_t failed;
	const uint64_t tag = 0x5e1a1;
	const struct vmres_request reqs[] = {
		id_req(VMRES_DEVICE_ID, tag), id_req(VMRES_LEGACY_IRQ, tag),
		addr_at(VMRES_PIO, 0x3f8, 8, tag), /* COM1, known resource */
	};
	const struct vmres_request mmio = addr_req(VMRES_MMIO32, 0x1000, 0x1000, tag);

	vmres_test_mem_init(&mem);
	ops = vmres_test_mem_ops(&mem);
	l.present[VMRES_DEVICE_ID] = l.present[VMRES_LEGACY_IRQ] = l.present[VMRES_PIO] = true;
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 0, 15 };
	l.span[VMRES_LEGACY_IRQ] = (struct vmres_range){ 4, 7 };
	l.span[VMRES_PIO] = (struct vmres_range){ 0, 0xffff };
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_OK);

	/* The kinds it left out do not exist. */
	assert_null(vmres_system_allocator(sys, VMRES_MMIO32));
	assert_int_equal(vmres_system_get_allocator(sys, VMRES_MMIO32, &cb), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_allocate_ex(sys, &mmio, 1, got, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 0);
	assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO32, 0, &hit), VMRES_E_NOT_FOUND);
	assert_int_equal(
		vmres_system_addr_stats(sys, VMRES_MMIO64, &(struct vmres_addr_stats){ 0 }),
		VMRES_E_NOT_FOUND);

	assert_int_equal(vmres_system_allocate_ex(sys, reqs, ARRAY_SIZE(reqs), got, &failed),
			 VMRES_OK);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_int_equal(got[0].kind, VMRES_DEVICE_ID);
	assert_int_equal(got[0].range.start, 0);
	assert_int_equal(got[0].range.end, 0);
	assert_int_equal(got[1].kind, VMRES_LEGACY_IRQ);
	assert_int_equal(got[1].range.start, 4);
	assert_int_equal(got[2].range.start, 0x3f8);
	assert_int_equal(got[2].range.end, 0x3ff);
	assert_int_equal(got[2].tag, tag);

	/* The PIO bus finds the device for every port of it, and nothing around it. */
	for (uint64_t port = 0x3f8; port <= 0x3ff; port++) {
		assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, port, &hit), VMRES_OK);
		assert_int_equal(hit.tag, tag);
		assert_int_equal(hit.range.start, 0x3f8);
	}
	assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, 0x3f7, &hit), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, 0x400, &hit), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, 0x10000, &hit), VMRES_E_OUT_OF_RANGE);
	assert_true(id_held(sys, VMRES_LEGACY_IRQ, 4));
	assert_false(id_held(sys, VMRES_LEGACY_IRQ, 5));

	assert_int_equal(vmres_system_free(sys, got, ARRAY_SIZE(got)), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/* ---- case 2: a device manager that holds callbacks ---- */

struct device_manager {
	struct vmres_allocator *cb[VMRES_KIND_COUNT]; /* NULL: the VMM allocates that kind */
};

struct device {
	uint64_t tag;
	size_t n;
	struct vmres_request need[6];
	struct vmres_resource res[6];
};

static void dm_init(struct device_manager *dm, struct vmres_system *sys)
{
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		dm->cb[k] = vmres_system_allocator(sys, (enum vmres_kind)k);
}

static int full_register_device(struct device_manager *dm, struct device *dev, size_t *failed)
{
	return vmres_allocate_batch(dm->cb, dev->need, dev->n, dev->res, failed);
}

static int full_unregister_device(struct device_manager *dm, struct device *dev)
{
	for (size_t i = 0; i < dev->n; i++) {
		struct vmres_allocator *a = dm->cb[dev->res[i].kind];
		int err = a->free(a, &dev->res[i]);

		if (err)
			return err;
	}
	return VMRES_OK;
}

static void make_device(struct device *dev, uint64_t tag)
{
	*dev = (struct device){ .tag = tag, .n = 5 };
	dev->need[0] = id_req(VMRES_DEVICE_ID, tag);
	dev->need[1] = id_req(VMRES_MSI_GSI, tag);
	dev->need[2] = addr_req(VMRES_PIO, 0x20, 0x20, tag);
	dev->need[3] = addr_req(VMRES_MMIO32, 0x1000, 0x1000, tag);
	dev->need[4] = addr_req(VMRES_MMIO64, 1 << 20, 1 << 20, tag);
	dev->need[4].policy = VMRES_LAST_MATCH;
}

static void assert_dispatches_to(struct vmres_system *sys, const struct device *dev)
{
	for (size_t i = 0; i < dev->n; i++) {
		const struct vmres_resource *r = &dev->res[i];
		struct vmres_resource hit;

		if (!vmres_kind_is_address(r->kind))
			continue;
		const uint64_t probes[] = { r->range.start, r->range.end,
					    r->range.start + (r->range.end - r->range.start) / 2 };
		for (size_t p = 0; p < ARRAY_SIZE(probes); p++) {
			assert_int_equal(vmres_system_lookup(sys, r->kind, probes[p], &hit),
					 VMRES_OK);
			assert_int_equal(hit.tag, dev->tag);
			assert_int_equal(hit.kind, r->kind);
			assert_int_equal(hit.range.start, r->range.start);
			assert_int_equal(hit.range.end, r->range.end);
		}
	}
}

static void test_system_case_callbacks_register_unregister(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct device_manager dm;
	struct device devs[8];
	struct vmres_layout l;
	size_t failed;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	vmres_system_layout(sys, &l);
	dm_init(&dm, sys);
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		assert_non_null(dm.cb[k]);

	for (size_t d = 0; d < ARRAY_SIZE(devs); d++) {
		make_device(&devs[d], 100 + d);
		assert_int_equal(full_register_device(&dm, &devs[d], &failed), VMRES_OK);
		assert_int_equal(failed, VMRES_NO_INDEX);
		/* Smallest IDs first, addresses aligned, MMIO64 from the top. */
		assert_int_equal(devs[d].res[0].range.start, d);
		assert_int_equal(devs[d].res[1].range.start, 24 + d);
		assert_int_equal(devs[d].res[2].range.start % 0x20, 0);
		assert_int_equal(devs[d].res[3].range.start % 0x1000, 0);
		assert_int_equal(devs[d].res[4].range.end,
				 l.span[VMRES_MMIO64].end - (uint64_t)d * (1 << 20));
	}
	for (size_t d = 0; d < ARRAY_SIZE(devs); d++)
		assert_dispatches_to(sys, &devs[d]);
	assert_int_equal(addr_ranges(sys, VMRES_MMIO32), ARRAY_SIZE(devs));

	/* Unplug the odd ones; the even ones still dispatch, the odd space is free. */
	for (size_t d = 1; d < ARRAY_SIZE(devs); d += 2)
		assert_int_equal(full_unregister_device(&dm, &devs[d]), VMRES_OK);
	for (size_t d = 0; d < ARRAY_SIZE(devs); d += 2)
		assert_dispatches_to(sys, &devs[d]);
	for (size_t d = 1; d < ARRAY_SIZE(devs); d += 2) {
		struct vmres_resource hit;

		assert_int_equal(
			vmres_system_lookup(sys, VMRES_PIO, devs[d].res[2].range.start, &hit),
			VMRES_E_NOT_FOUND);
		assert_false(id_held(sys, VMRES_DEVICE_ID, devs[d].res[0].range.start));
	}
	/* A replug takes the smallest free device ID again: 1. */
	make_device(&devs[1], 999);
	assert_int_equal(full_register_device(&dm, &devs[1], NULL), VMRES_OK);
	assert_int_equal(devs[1].res[0].range.start, 1);
	assert_dispatches_to(sys, &devs[1]);
	for (size_t d = 0; d < ARRAY_SIZE(devs); d++)
		if (d % 2 == 0 || d == 1)
			assert_int_equal(full_unregister_device(&dm, &devs[d]), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/* A callback refuses a request of another kind, and frees only its own kind. */
static void test_system_callbacks_check_their_kind(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_allocator *irq, *pio;
	struct vmres_resource r;
	struct vmres_request q = addr_req(VMRES_PIO, 4, 4, 1);

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	irq = vmres_system_allocator(sys, VMRES_LEGACY_IRQ);
	pio = vmres_system_allocator(sys, VMRES_PIO);
	assert_int_equal(irq->allocate(irq, &q, &r), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(irq->allocate(irq, NULL, &r), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(pio->allocate(pio, &q, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(pio->allocate(pio, &q, &r), VMRES_OK);
	assert_int_equal(irq->free(irq, &r), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(pio->free(pio, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(pio->free(pio, &r), VMRES_OK);
	assert_int_equal(pio->free(pio, &r), VMRES_E_NOT_FOUND);
	q = id_req(VMRES_LEGACY_IRQ, 1);
	assert_int_equal(irq->allocate(irq, &q, &r), VMRES_OK);
	assert_int_equal(r.range.start, 5);
	assert_int_equal(irq->free(irq, &r), VMRES_OK);
	assert_int_equal(irq->free(irq, &r), VMRES_E_ALREADY_FREED);
	r.range = (struct vmres_range){ 6, 6 };
	assert_int_equal(irq->free(irq, &r), VMRES_E_NEVER_ALLOCATED);

	/* A table that gives a request the callback of another kind: refused
	 * before anything is taken, as any other bad request (resource.h). */
	struct vmres_allocator *table[VMRES_KIND_COUNT] = { 0 };
	struct vmres_request reqs[2] = { id_at(VMRES_LEGACY_IRQ, 7, 1),
					 addr_req(VMRES_MMIO32, 4, 4, 2) };
	struct vmres_resource out[2];
	struct vmres_system_counters c;
	size_t failed;

	table[VMRES_LEGACY_IRQ] = irq;
	table[VMRES_MMIO32] = pio;
	assert_int_equal(vmres_allocate_batch(table, reqs, 2, out, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, 1);
	r.range = (struct vmres_range){ 7, 7 };
	/* Taken and given back, it would be ALREADY_FREED. */
	assert_int_equal(irq->free(irq, &r), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	assert_int_equal(c.rollbacks, 0);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * Case 3, firmware-assigned: firmware fixed a BAR (EXACT MMIO32) and an IRQ
 * (alloc_at); the rest comes through callbacks; the device manager has no
 * callback for memory slots, so the VMM takes its slot itself.
 */
static void test_system_case_firmware_assigned(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct device_manager dm;
	struct vmres_resource got[4], slot, clash_got[3];
	size_t failed;
	const uint64_t bar = 0xc0100000ull, tag = 7;
	const struct vmres_request fw[] = {
		addr_at(VMRES_MMIO32, bar, 0x4000, tag),
		id_at(VMRES_LEGACY_IRQ, 10, tag),
		id_req(VMRES_DEVICE_ID, tag),
		addr_req(VMRES_PIO, 0x10, 0x10, tag),
	};
	const struct vmres_request want_slot = id_req(VMRES_MEM_SLOT, tag);
	const struct vmres_request clash[] = {
		id_req(VMRES_DEVICE_ID, 8), id_req(VMRES_MSI_GSI, 8),
		addr_at(VMRES_MMIO32, bar + 0x1000, 0x1000, 8), /* inside device 7's BAR */
	};

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	dm_init(&dm, sys);
	dm.cb[VMRES_MEM_SLOT] = NULL; /* the VMM allocates memory slots itself */

	assert_int_equal(vmres_allocate_batch(dm.cb, fw, ARRAY_SIZE(fw), got, &failed), VMRES_OK);
	assert_int_equal(got[0].range.start, bar);
	assert_int_equal(got[0].range.end, bar + 0x3fff);
	assert_int_equal(got[1].range.start, 10);
	/* The IRQ firmware took is skipped by later FIRST requests... */
	assert_true(id_held(sys, VMRES_LEGACY_IRQ, 10));
	assert_false(id_held(sys, VMRES_LEGACY_IRQ, 5));
	/* FIRST is the smallest free ID: 5..9 below it, then 11, never 10. */
	const uint64_t first_irqs[] = { 5, 6, 7, 8, 9, 11 };
	struct vmres_request irq_first[ARRAY_SIZE(first_irqs)];
	struct vmres_resource irq_got[ARRAY_SIZE(first_irqs)];

	for (size_t i = 0; i < ARRAY_SIZE(first_irqs); i++)
		irq_first[i] = id_req(VMRES_LEGACY_IRQ, 20 + i);
	assert_int_equal(
		vmres_allocate_batch(dm.cb, irq_first, ARRAY_SIZE(irq_first), irq_got, &failed),
		VMRES_OK);
	assert_int_equal(failed, VMRES_NO_INDEX);
	for (size_t i = 0; i < ARRAY_SIZE(first_irqs); i++) {
		assert_int_equal(irq_got[i].kind, VMRES_LEGACY_IRQ);
		assert_int_equal(irq_got[i].range.start, first_irqs[i]);
		assert_int_equal(irq_got[i].range.end, first_irqs[i]);
	}
	assert_int_equal(vmres_system_free(sys, irq_got, ARRAY_SIZE(irq_got)), VMRES_OK);
	assert_true(id_held(sys, VMRES_LEGACY_IRQ, 10));
	assert_false(id_held(sys, VMRES_LEGACY_IRQ, 5));

	/* ...the device manager cannot serve a memory slot... */
	assert_int_equal(vmres_allocate_batch(dm.cb, &want_slot, 1, &slot, &failed),
			 VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 0);
	/* ...so the VMM does, straight from the system. */
	assert_int_equal(vmres_system_allocate(sys, &want_slot, 1, &slot), VMRES_OK);
	assert_int_equal(slot.range.start, 0);

	/* A second firmware device claiming part of the BAR fails at index 2, whole. */
	assert_int_equal(vmres_allocate_batch(dm.cb, clash, ARRAY_SIZE(clash), clash_got, &failed),
			 VMRES_E_IN_USE);
	assert_int_equal(failed, 2);
	assert_false(id_held(sys, VMRES_DEVICE_ID, 1)); /* its device ID went back */
	assert_false(id_held(sys, VMRES_MSI_GSI, 24));	/* and its GSI */
	assert_int_equal(addr_ranges(sys, VMRES_MMIO32), 1);

	/* Firmware asking for an IRQ outside the span, or one taken: the allocator says so. */
	struct vmres_request irq = id_at(VMRES_LEGACY_IRQ, 30, 9);
	assert_int_equal(vmres_system_allocate_ex(sys, &irq, 1, clash_got, &failed),
			 VMRES_E_OUT_OF_RANGE);
	irq.fixed = 10;
	assert_int_equal(vmres_system_allocate_ex(sys, &irq, 1, clash_got, &failed),
			 VMRES_E_IN_USE);

	assert_int_equal(vmres_system_free(sys, got, ARRAY_SIZE(got)), VMRES_OK);
	assert_int_equal(vmres_system_free(sys, &slot, 1), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/* Exhaust one kind in the middle of a batch: nothing of the batch stays. */
static void test_system_rollback_when_middle_kind_exhausted(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_resource irqs[19], got[5], again;
	struct vmres_system_counters c;
	const struct vmres_request irq = id_req(VMRES_LEGACY_IRQ, 1);
	struct vmres_request batch[] = {
		id_req(VMRES_DEVICE_ID, 2),
		addr_req(VMRES_PIO, 0x100, 0x100, 2),
		addr_req(VMRES_MMIO32, 1 << 20, 1 << 20, 2),
		id_req(VMRES_LEGACY_IRQ, 2), /* exhausted */
		id_req(VMRES_MSI_GSI, 2),
	};
	size_t failed = 1234;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	for (size_t i = 0; i < ARRAY_SIZE(irqs); i++)
		assert_int_equal(vmres_system_allocate(sys, &irq, 1, &irqs[i]), VMRES_OK);
	assert_int_equal(vmres_system_allocate_ex(sys, batch, ARRAY_SIZE(batch), got, &failed),
			 VMRES_E_EXHAUSTED);
	assert_int_equal(failed, 3);
	assert_int_equal(addr_ranges(sys, VMRES_PIO), 0);
	assert_int_equal(addr_ranges(sys, VMRES_MMIO32), 0);
	assert_false(id_held(sys, VMRES_DEVICE_ID, 0));
	assert_false(id_held(sys, VMRES_MSI_GSI, 24)); /* never reached */
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	assert_int_equal(c.rollbacks, 1);
	assert_int_equal(c.rollback_leaks, 0);

	/* The rollback freed device ID 0, so it counts as handed out (documented
	 * at vmres_allocate_batch()); ID 1 was never taken. */
	again = (struct vmres_resource){ VMRES_DEVICE_ID, { 0, 0 }, 0 };
	assert_int_equal(vmres_system_free(sys, &again, 1), VMRES_E_ALREADY_FREED);
	again.range = (struct vmres_range){ 1, 1 };
	assert_int_equal(vmres_system_free(sys, &again, 1), VMRES_E_NEVER_ALLOCATED);

	/* A follow-up allocation gets exactly what the failed batch had taken. */
	assert_int_equal(vmres_system_allocate(sys, batch, 1, &again), VMRES_OK);
	assert_int_equal(again.range.start, 0);
	assert_int_equal(vmres_system_free(sys, &again, 1), VMRES_OK);

	/* With one IRQ back, the same batch succeeds in full. */
	assert_int_equal(vmres_system_free(sys, &irqs[7], 1), VMRES_OK);
	assert_int_equal(vmres_system_allocate_ex(sys, batch, ARRAY_SIZE(batch), got, &failed),
			 VMRES_OK);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_int_equal(got[3].range.start, irqs[7].range.start);
	assert_int_equal(vmres_system_free(sys, got, ARRAY_SIZE(got)), VMRES_OK);
	irqs[7] = irqs[18];
	assert_int_equal(vmres_system_free(sys, irqs, ARRAY_SIZE(irqs) - 1), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

struct bad_case {
	const char *what;
	struct vmres_request req;
	int err;
};

/* Each bad request, alone and as the last of a batch: its error, its index, nothing taken. */
static void test_system_bad_requests_are_refused(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_layout l;
	struct vmres_resource out[3];
	size_t failed;
	const struct bad_case cases[] = {
		{ "unknown kind",
		  { .kind = VMRES_KIND_COUNT, .size = 1, .align = 1 },
		  VMRES_E_INVALID_ARGUMENT },
		{ "negative kind",
		  { .kind = (enum vmres_kind) - 3, .size = 1, .align = 1 },
		  VMRES_E_INVALID_ARGUMENT },
		{ "ID size 0",
		  { .kind = VMRES_DEVICE_ID, .size = 0, .align = 1 },
		  VMRES_E_INVALID_SIZE },
		{ "ID size 2",
		  { .kind = VMRES_LEGACY_IRQ, .size = 2, .align = 1 },
		  VMRES_E_INVALID_SIZE },
		{ "ID LAST",
		  { .kind = VMRES_MSI_GSI, .size = 1, .policy = VMRES_LAST_MATCH },
		  VMRES_E_INVALID_ARGUMENT },
		{ "ID bad policy",
		  { .kind = VMRES_MSI_GSI, .size = 1, .policy = 7 },
		  VMRES_E_INVALID_ARGUMENT },
		{ "ID EXACT past 32 bits",
		  { .kind = VMRES_DEVICE_ID,
		    .size = 1,
		    .policy = VMRES_EXACT_MATCH,
		    .fixed = 1ull << 32 },
		  VMRES_E_OUT_OF_RANGE },
		{ "ID EXACT outside span",
		  { .kind = VMRES_LEGACY_IRQ, .size = 1, .policy = VMRES_EXACT_MATCH, .fixed = 4 },
		  VMRES_E_OUT_OF_RANGE },
		{ "address size 0",
		  { .kind = VMRES_PIO, .size = 0, .align = 1 },
		  VMRES_E_INVALID_SIZE },
		{ "address align 0",
		  { .kind = VMRES_MMIO32, .size = 16, .align = 0 },
		  VMRES_E_INVALID_ALIGNMENT },
		{ "address align 3",
		  { .kind = VMRES_MMIO64, .size = 16, .align = 3 },
		  VMRES_E_INVALID_ALIGNMENT },
		{ "address bad policy",
		  { .kind = VMRES_PIO, .size = 1, .align = 1, .policy = 9 },
		  VMRES_E_INVALID_ARGUMENT },
		{ "EXACT unaligned",
		  { .kind = VMRES_PIO,
		    .size = 8,
		    .align = 8,
		    .policy = VMRES_EXACT_MATCH,
		    .fixed = 0x3f9 },
		  VMRES_E_UNALIGNED_ADDRESS },
		{ "EXACT outside span",
		  { .kind = VMRES_PIO,
		    .size = 8,
		    .align = 1,
		    .policy = VMRES_EXACT_MATCH,
		    .fixed = 0xfffc },
		  VMRES_E_OUT_OF_RANGE },
		{ "larger than the span",
		  { .kind = VMRES_PIO, .size = 0x10001, .align = 1 },
		  VMRES_E_EXHAUSTED },
		{ "kind left out",
		  { .kind = VMRES_MEM_SLOT, .size = 1, .align = 1 },
		  VMRES_E_NOT_FOUND },
	};

	vmres_test_mem_init(&mem);
	vmres_layout_x86_64_default(&l);
	l.present[VMRES_MEM_SLOT] = false;
	struct vmres_mem_ops ops = vmres_test_mem_ops(&mem);
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_OK);
	const struct vmres_resource never = { .kind = VMRES_DEVICE_ID, .range = { 0, 0 } };
	struct vmres_system_counters c;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vmres_request batch[3] = { id_req(VMRES_DEVICE_ID, 1),
						  addr_req(VMRES_PIO, 4, 4, 1), cases[i].req };
		int err;

		print_message("bad request: %s\n", cases[i].what);
		failed = 77;
		err = vmres_system_allocate_ex(sys, &cases[i].req, 1, out, &failed);
		assert_int_equal(err, cases[i].err);
		assert_int_equal(failed, 0);
		failed = 77;
		err = vmres_system_allocate_ex(sys, batch, 3, out, &failed);
		assert_int_equal(err, cases[i].err);
		assert_int_equal(failed, 2);
		assert_int_equal(addr_ranges(sys, VMRES_PIO), 0);
		assert_false(id_held(sys, VMRES_DEVICE_ID, 0));
		/* Refused before anything was taken, not taken and rolled back:
		 * no rollback, and device ID 0 was never handed out. */
		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		assert_int_equal(c.rollbacks, 0);
		assert_int_equal(vmres_system_free(sys, &never, 1), VMRES_E_NEVER_ALLOCATED);
	}
	/* Whole-call errors have no index. */
	assert_int_equal(vmres_system_allocate_ex(NULL, &cases[2].req, 1, out, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_int_equal(vmres_system_allocate_ex(sys, NULL, 1, out, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	failed = 77;
	assert_int_equal(vmres_system_allocate_ex(sys, &cases[2].req, 1, NULL, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_int_equal(vmres_system_allocate(sys, NULL, 0, NULL), VMRES_OK);
	failed = 77;
	assert_int_equal(vmres_allocate_batch(NULL, &cases[2].req, 1, out, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);

	/* vmres_allocate_batch over the system's own callbacks: NULL reqs or out, n > 0. */
	struct vmres_allocator *table[VMRES_KIND_COUNT];
	const struct vmres_request good = id_req(VMRES_DEVICE_ID, 1);

	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		table[k] = vmres_system_allocator(sys, (enum vmres_kind)k);
	failed = 77;
	assert_int_equal(vmres_allocate_batch(table, NULL, 1, out, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	failed = 77;
	assert_int_equal(vmres_allocate_batch(table, &good, 1, NULL, &failed),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_false(id_held(sys, VMRES_DEVICE_ID, 0));
	failed = 77;
	assert_int_equal(vmres_allocate_batch(table, NULL, 0, NULL, &failed), VMRES_OK);
	assert_int_equal(failed, VMRES_NO_INDEX);

	/*
	 * Freeing a kind the layout leaves out (MEM_SLOT here): VMRES_E_NOT_FOUND
	 * at its index, found by the check of every entry before anything is
	 * freed, so a good entry in front of it stays held.
	 */
	const struct vmres_resource no_slot = { .kind = VMRES_MEM_SLOT, .range = { 0, 0 } };
	struct vmres_resource pair[2];

	failed = 77;
	assert_int_equal(vmres_system_free_ex(sys, &no_slot, 1, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 0);
	assert_int_equal(vmres_system_allocate(sys, &good, 1, &pair[0]), VMRES_OK);
	pair[1] = no_slot;
	failed = 77;
	assert_int_equal(vmres_system_free_ex(sys, pair, 2, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 1);
	assert_true(id_held(sys, VMRES_DEVICE_ID, pair[0].range.start));
	pair[1] = pair[0];
	pair[0] = no_slot;
	failed = 77;
	assert_int_equal(vmres_system_free_ex(sys, pair, 2, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 0);
	assert_true(id_held(sys, VMRES_DEVICE_ID, pair[1].range.start));
	failed = 77;
	assert_int_equal(vmres_system_free_ex(sys, &pair[1], 1, &failed), VMRES_OK);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

static void test_system_bad_frees_and_lookups(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_resource held[2], r, bad;
	size_t failed;
	const struct vmres_request reqs[] = { id_req(VMRES_DEVICE_ID, 3),
					      addr_req(VMRES_MMIO32, 0x1000, 0x1000, 3) };

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	assert_int_equal(vmres_system_allocate(sys, reqs, 2, held), VMRES_OK);

	/*
	 * @first_freed: what happens to a good entry in front of the bad one.
	 * free_ex checks every entry first (kind valid and present, range well
	 * formed, an ID a single value within 32 bits) and a bad entry there
	 * frees nothing: false. An entry that passes that check and is refused
	 * by its allocator stops the frees in index order, after the entries
	 * before it were freed: true.
	 */
	const struct {
		struct vmres_resource res;
		int err;
		bool first_freed;
	} frees[] = {
		{ { .kind = VMRES_KIND_COUNT }, VMRES_E_INVALID_ARGUMENT, false },
		{ { .kind = VMRES_PIO, .range = { 5, 4 } }, VMRES_E_INVALID_RANGE, false },
		{ { .kind = VMRES_DEVICE_ID, .range = { 1, 2 } }, VMRES_E_INVALID_SIZE, false },
		{ { .kind = VMRES_DEVICE_ID, .range = { 1ull << 32, 1ull << 32 } },
		  VMRES_E_OUT_OF_RANGE,
		  false },
		/* Within 32 bits but outside the span: the allocator refuses it. */
		{ { .kind = VMRES_DEVICE_ID, .range = { 70000, 70000 } },
		  VMRES_E_OUT_OF_RANGE,
		  true },
		{ { .kind = VMRES_DEVICE_ID, .range = { 9, 9 } }, VMRES_E_NEVER_ALLOCATED, true },
		{ { .kind = VMRES_MMIO32,
		    .range = { held[1].range.start, held[1].range.start + 0xff } },
		  VMRES_E_NOT_FOUND,
		  true },
	};
	for (size_t i = 0; i < ARRAY_SIZE(frees); i++) {
		struct vmres_resource two[2] = { held[0], frees[i].res };
		const uint64_t first_id = held[0].range.start;

		failed = 77;
		assert_int_equal(vmres_system_free_ex(sys, &frees[i].res, 1, &failed),
				 frees[i].err);
		assert_int_equal(failed, 0);
		assert_true(id_held(sys, VMRES_DEVICE_ID, first_id));
		failed = 77;
		assert_int_equal(vmres_system_free_ex(sys, two, 2, &failed), frees[i].err);
		assert_int_equal(failed, 1);
		assert_int_equal(id_held(sys, VMRES_DEVICE_ID, first_id), !frees[i].first_freed);
		/* The MMIO32 range the last cases point into is never touched. */
		assert_int_equal(addr_ranges(sys, VMRES_MMIO32), 1);
		if (!frees[i].first_freed)
			continue;
		/* Take it back: FIRST gives the smallest free ID, the one just freed. */
		assert_int_equal(vmres_system_allocate(sys, reqs, 1, &held[0]), VMRES_OK);
		assert_int_equal(held[0].range.start, first_id);
	}
	assert_int_equal(vmres_system_free_ex(NULL, held, 1, &failed), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(failed, VMRES_NO_INDEX);
	assert_int_equal(vmres_system_free(sys, NULL, 1), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_free(sys, NULL, 0), VMRES_OK);

	/* Lookups. */
	assert_int_equal(vmres_system_lookup(NULL, VMRES_PIO, 0, &r), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, 0, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_lookup(sys, VMRES_KIND_COUNT, 0, &r),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO32, 0, &r), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, 1ull << 40, &r),
			 VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_system_lookup(sys, VMRES_LEGACY_IRQ, 4, &r), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, held[0].range.start, &r),
			 VMRES_OK);
	assert_int_equal(r.kind, VMRES_DEVICE_ID);
	assert_int_equal(r.range.start, r.range.end);
	assert_int_equal(r.tag, 0); /* ID allocators keep no tags */
	assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO32, held[1].range.end, &r), VMRES_OK);
	assert_int_equal(r.tag, 3);
	assert_null(vmres_system_allocator(NULL, VMRES_PIO));
	assert_null(vmres_system_allocator(sys, VMRES_KIND_COUNT));

	/* The readers: each NULL argument and each non-kind on its own (system.h). */
	struct vmres_allocator *cb = NULL;
	struct vmres_addr_stats st;
	struct vmres_layout lay;
	struct vmres_system_counters cnt;

	assert_int_equal(vmres_system_get_allocator(sys, VMRES_PIO, NULL),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_get_allocator(NULL, VMRES_PIO, &cb),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_get_allocator(sys, VMRES_KIND_COUNT, &cb),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_get_allocator(sys, (enum vmres_kind) - 1, &cb),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_get_allocator(sys, VMRES_PIO, &cb), VMRES_OK);
	assert_ptr_equal(cb, vmres_system_allocator(sys, VMRES_PIO));

	assert_int_equal(vmres_system_addr_stats(NULL, VMRES_PIO, &st), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_PIO, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_KIND_COUNT, &st),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_DEVICE_ID, &st),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_MMIO32, &st), VMRES_OK);
	assert_int_equal(st.ranges, 1);

	assert_int_equal(vmres_system_layout(sys, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_layout(NULL, &lay), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_layout(sys, &lay), VMRES_OK);

	assert_int_equal(vmres_system_counters(NULL, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_counters(NULL, &cnt), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_counters(sys, NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_counters(sys, &cnt), VMRES_OK);

	bad = held[1];
	assert_int_equal(vmres_system_free(sys, held, 2), VMRES_OK);
	assert_int_equal(vmres_system_free_ex(sys, &bad, 1, &failed), VMRES_E_NOT_FOUND);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * The memory hook fails at every point of a batch and keeps failing (the
 * rollback's frees included): each failure returns VMRES_E_NOMEM with its
 * index and leaves nothing allocated, thanks to the rollback reserve.
 */
static void test_system_nomem_at_every_point_rolls_back(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_system_counters c;
	struct vmres_resource got[6];
	const struct vmres_request batch[] = {
		id_req(VMRES_DEVICE_ID, 4),  addr_req(VMRES_PIO, 0x40, 0x40, 4),
		id_req(VMRES_MSI_GSI, 4),    addr_req(VMRES_MMIO32, 0x2000, 0x1000, 4),
		id_req(VMRES_LEGACY_IRQ, 4), addr_req(VMRES_MMIO64, 1 << 16, 1 << 16, 4),
	};
	/* Some live allocations so the trees have paths to copy. */
	struct vmres_resource bg[4 * 40];
	const struct vmres_request bgq[] = { addr_req(VMRES_PIO, 0x10, 0x10, 9),
					     addr_req(VMRES_MMIO32, 0x1000, 0x1000, 9),
					     addr_req(VMRES_MMIO64, 0x1000, 0x1000, 9),
					     id_req(VMRES_MSI_GSI, 9) };
	bool succeeded = false;
	int failures = 0;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	for (size_t i = 0; i < ARRAY_SIZE(bg); i += 4)
		assert_int_equal(vmres_system_allocate(sys, bgq, 4, &bg[i]), VMRES_OK);
	for (int64_t k = 0; !succeeded; k++) {
		size_t failed = 999;
		int err;

		assert_true(k < 10000);
		vmres_test_mem_fail_after(&mem, k);
		err = vmres_system_allocate_ex(sys, batch, ARRAY_SIZE(batch), got, &failed);
		vmres_test_mem_fail_after(&mem, -1);
		if (!err) {
			succeeded = true;
			break;
		}
		failures++;
		assert_int_equal(err, VMRES_E_NOMEM);
		assert_true(failed < ARRAY_SIZE(batch));
		/* Nothing of the batch is left: the background is all there is. */
		assert_int_equal(addr_ranges(sys, VMRES_PIO), ARRAY_SIZE(bg) / 4);
		assert_int_equal(addr_ranges(sys, VMRES_MMIO32), ARRAY_SIZE(bg) / 4);
		assert_int_equal(addr_ranges(sys, VMRES_MMIO64), ARRAY_SIZE(bg) / 4);
		assert_false(id_held(sys, VMRES_DEVICE_ID, 0));
		assert_false(id_held(sys, VMRES_LEGACY_IRQ, 5));
		assert_false(id_held(sys, VMRES_MSI_GSI, 24 + ARRAY_SIZE(bg) / 4));
	}
	assert_true(failures > 0);
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	assert_int_equal(c.rollback_leaks, 0);
	assert_true(c.rollbacks > 0);
	assert_true(c.reserve_fallbacks > 0); /* the reserve did the rollbacks' work */
	print_message("%d injected failures, %llu rollbacks, %llu reserve blocks used\n", failures,
		      (unsigned long long)c.rollbacks, (unsigned long long)c.reserve_fallbacks);
	assert_int_equal(vmres_system_free(sys, got, ARRAY_SIZE(got)), VMRES_OK);
	assert_int_equal(vmres_system_free(sys, bg, ARRAY_SIZE(bg)), VMRES_OK);
	assert_all_free(sys);
	vmres_rcu_barrier();
	/* The stacks are intact and whole: every block came back, no cycle. The
	 * classes may have grown: refills made up for blocks lent at the time. */
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), vmres__reserve_blocks(sys, 0));
	assert_int_equal(vmres__reserve_free_blocks(sys, 1), vmres__reserve_blocks(sys, 1));
	assert_true(vmres__reserve_blocks(sys, 0) >= VMRES__RESERVE_SMALL_COUNT);
	assert_true(vmres__reserve_blocks(sys, 1) >= VMRES__RESERVE_LARGE_COUNT);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * The ->allocate of a callback table entry that makes the memory hook fail
 * from its first allocation on, then calls the system's own callback: a
 * short outage that starts in the middle of a batch.
 */
struct outage_allocator {
	struct vmres_allocator ops;
	struct vmres_allocator *real;
	struct vmres_test_mem *mem;
};

static int outage_allocate(struct vmres_allocator *self, const struct vmres_request *req,
			   struct vmres_resource *out)
{
	struct outage_allocator *o = (struct outage_allocator *)self;

	vmres_test_mem_fail_after(o->mem, 0);
	return o->real->allocate(o->real, req, out);
}

static int outage_free(struct vmres_allocator *self, const struct vmres_resource *res)
{
	struct outage_allocator *o = (struct outage_allocator *)self;

	return o->real->free(o->real, res);
}

/*
 * Many short outages on a tree that hardly changes. Each outage fails a
 * batch after its PIO range was taken; the rollback's free copies a path of
 * the PIO tree with reserve blocks, and those nodes stay in the tree, whose
 * 512 boot ranges never move. Without refills the reserve ran dry after a
 * hundred or so outages and every later rollback leaked its PIO range. The
 * hook works between outages (a device comes and goes), which is when the
 * reserve refills.
 */
static void test_system_reserve_refills_after_outages(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_system_counters c;
	struct outage_allocator outage = { { outage_allocate, outage_free }, NULL, &mem };
	struct vmres_allocator *table[VMRES_KIND_COUNT] = { 0 };
	struct vmres_resource boot[512], got[2];
	const struct vmres_request dev[] = { addr_req(VMRES_PIO, 0x10, 0x10, 7),
					     addr_req(VMRES_MMIO32, 0x1000, 0x1000, 7) };
	const int outages = 400;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	for (size_t i = 0; i < ARRAY_SIZE(boot); i++) {
		struct vmres_request q = addr_at(VMRES_PIO, 0x1000 + 0x40 * i, 0x10, i);

		assert_int_equal(vmres_system_allocate(sys, &q, 1, &boot[i]), VMRES_OK);
	}
	table[VMRES_PIO] = vmres_system_allocator(sys, VMRES_PIO);
	outage.real = vmres_system_allocator(sys, VMRES_MMIO32);
	table[VMRES_MMIO32] = &outage.ops;
	for (int r = 0; r < outages; r++) {
		/* In the gap after boot range r % 512: a path to a leaf. */
		uint64_t at = 0x1000 + 0x40 * (uint64_t)(r % 512) + 0x20;
		struct vmres_request batch[] = { addr_at(VMRES_PIO, at, 0x10, 1),
						 addr_req(VMRES_MMIO32, 0x1000, 0x1000, 1) };
		struct vmres_resource r_pio;
		size_t failed = 999;

		assert_int_equal(vmres_allocate_batch(table, batch, 2, got, &failed),
				 VMRES_E_NOMEM);
		vmres_test_mem_fail_after(&mem, -1);
		assert_int_equal(failed, 1);
		/* Given back, not leaked. */
		assert_int_equal(vmres_system_lookup(sys, VMRES_PIO, at, &r_pio),
				 VMRES_E_NOT_FOUND);
		/* The hook works: a device comes and goes. */
		assert_int_equal(vmres_system_allocate(sys, dev, 2, got), VMRES_OK);
		assert_int_equal(vmres_system_free(sys, got, 2), VMRES_OK);
		if (r % 8 == 7)
			vmres_rcu_barrier(); /* retired versions come back */
	}
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	print_message("%d outages: %llu reserve blocks used, %llu leaked; reserve now %u + %u "
		      "blocks (%u + %u at create)\n",
		      outages, (unsigned long long)c.reserve_fallbacks,
		      (unsigned long long)c.rollback_leaks, vmres__reserve_blocks(sys, 0),
		      vmres__reserve_blocks(sys, 1), VMRES__RESERVE_SMALL_COUNT,
		      VMRES__RESERVE_LARGE_COUNT);
	assert_int_equal(c.rollback_leaks, 0);
	assert_true(c.reserve_fallbacks > VMRES__RESERVE_SMALL_COUNT); /* more than it had */
	/* It grew by no more than what rollbacks took from it. */
	assert_true(vmres__reserve_blocks(sys, 0) + vmres__reserve_blocks(sys, 1) <=
		    VMRES__RESERVE_SMALL_COUNT + VMRES__RESERVE_LARGE_COUNT + c.reserve_fallbacks);
	assert_int_equal(addr_ranges(sys, VMRES_PIO), ARRAY_SIZE(boot));
	assert_int_equal(vmres_system_free(sys, boot, ARRAY_SIZE(boot)), VMRES_OK);
	vmres_rcu_barrier();
	for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++)
		assert_int_equal(vmres__reserve_free_blocks(sys, cls),
				 vmres__reserve_blocks(sys, cls));
	/* Every lent block is back, and the pushes shrank the reserve to less
	 * than a quantum (a quarter of its size at create) above it. */
	print_message("all back: reserve %u + %u blocks\n", vmres__reserve_blocks(sys, 0),
		      vmres__reserve_blocks(sys, 1));
	assert_true(vmres__reserve_blocks(sys, 0) < VMRES__RESERVE_SMALL_COUNT * 5 / 4);
	assert_true(vmres__reserve_blocks(sys, 1) < VMRES__RESERVE_LARGE_COUNT * 5 / 4);
	for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++)
		assert_int_equal(vmres__reserve_free_blocks(sys, cls),
				 vmres__reserve_blocks(sys, cls));
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/* Frees that fail with the hook failing return NOMEM and keep the resource. */
static void test_system_free_nomem_keeps_resource(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_resource got[2];
	const struct vmres_request reqs[] = { id_req(VMRES_DEVICE_ID, 5),
					      addr_req(VMRES_PIO, 8, 8, 5) };
	int nomem = 0;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	assert_int_equal(vmres_system_allocate(sys, reqs, 2, got), VMRES_OK);
	/*
	 * Deterministic: this thread is the only one that allocates through the
	 * hook (liburcu's thread only frees), frees use no reserve (that is for
	 * rollbacks), and the state before each try is the same. Freeing device
	 * ID 0 next to the never-allocated [1, 65535] inserts a node, and freeing
	 * the PIO range copies a tree path, so k = 0 fails the first free.
	 */
	for (int64_t k = 0;; k++) {
		size_t failed;
		int err;

		assert_true(k < 10000);
		vmres_test_mem_fail_after(&mem, k);
		err = vmres_system_free_ex(sys, got, 2, &failed);
		vmres_test_mem_fail_after(&mem, -1);
		if (!err)
			break;
		nomem++;
		assert_int_equal(err, VMRES_E_NOMEM);
		/* Entries before the failing one are free, the failing one is not. */
		if (failed == 1) {
			assert_false(id_held(sys, VMRES_DEVICE_ID, got[0].range.start));
			assert_int_equal(addr_ranges(sys, VMRES_PIO), 1);
			assert_int_equal(vmres_system_free(sys, &got[1], 1), VMRES_OK);
			break;
		}
		assert_int_equal(failed, 0);
		assert_true(id_held(sys, VMRES_DEVICE_ID, got[0].range.start));
		assert_int_equal(addr_ranges(sys, VMRES_PIO), 1);
	}
	print_message("%d frees refused for lack of memory\n", nomem);
	assert_true(nomem > 0); /* the injected failure was reached */
	assert_true(vmres_test_mem_failures(&mem) >= nomem);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/* The callbacks used directly with a NULL self refuse it instead of crashing. */
static void test_system_callbacks_refuse_null_self(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_resource r = { 0 };

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		enum vmres_kind kind = (enum vmres_kind)k;
		struct vmres_allocator *a = vmres_system_allocator(sys, kind);
		struct vmres_request q =
			vmres_kind_is_id(kind) ? id_req(kind, 1) : addr_req(kind, 16, 16, 1);

		assert_non_null(a);
		assert_int_equal(a->allocate(NULL, &q, &r), VMRES_E_INVALID_ARGUMENT);
		assert_int_equal(a->allocate(a, &q, &r), VMRES_OK);
		assert_int_equal(a->free(NULL, &r), VMRES_E_INVALID_ARGUMENT);
		assert_int_equal(a->free(a, &r), VMRES_OK);
	}
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * A failure at each index of a batch of every kind (an EXACT conflict there,
 * every other request fine): that request's error and index, and nothing of
 * the batch left, only what was held before.
 */
static void test_system_failure_at_each_index_rolls_back(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct vmres_layout l;
	struct vmres_resource held[VMRES_KIND_COUNT], got[VMRES_KIND_COUNT];
	struct vmres_request batch[VMRES_KIND_COUNT];

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	vmres_layout_x86_64_default(&l);
	for (int k = 0; k < VMRES_KIND_COUNT; k++) {
		enum vmres_kind kind = (enum vmres_kind)k;
		/* One resource held at the top of each span. */
		struct vmres_request top = vmres_kind_is_id(kind)
						   ? id_at(kind, l.span[k].end, 7)
						   : addr_at(kind, l.span[k].end - 0xf, 0x10, 7);

		assert_int_equal(vmres_system_allocate(sys, &top, 1, &held[k]), VMRES_OK);
		batch[k] = vmres_kind_is_id(kind) ? id_req(kind, 8) : addr_req(kind, 0x10, 0x10, 8);
	}
	for (size_t bad = 0; bad < VMRES_KIND_COUNT; bad++) {
		struct vmres_request q[VMRES_KIND_COUNT];
		size_t failed = 999;

		memcpy(q, batch, sizeof(q));
		q[bad].policy = VMRES_EXACT_MATCH;
		q[bad].fixed = held[bad].range.start;
		assert_int_equal(vmres_system_allocate_ex(sys, q, VMRES_KIND_COUNT, got, &failed),
				 VMRES_E_IN_USE);
		assert_int_equal(failed, bad);
		for (int k = 0; k < VMRES_KIND_COUNT; k++) {
			enum vmres_kind kind = (enum vmres_kind)k;
			struct vmres_resource r;

			if (vmres_kind_is_address(kind))
				assert_int_equal(addr_ranges(sys, kind), 1);
			else /* FIRST would have taken the lowest ID */
				assert_false(id_held(sys, kind, l.span[k].start));
			assert_int_equal(vmres_system_lookup(sys, kind, held[k].range.start, &r),
					 VMRES_OK);
			assert_int_equal(r.kind, kind);
			assert_int_equal(r.range.start, held[k].range.start);
			assert_int_equal(r.range.end, held[k].range.end);
		}
	}
	assert_int_equal(vmres_system_free(sys, held, VMRES_KIND_COUNT), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * Spans at the edges: ID kinds ending at UINT32_MAX or one ID wide, an
 * address kind covering all of 2^64; every resource taken, looked up, freed.
 */
static void test_system_edge_spans(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_mem_ops ops = vmres_test_mem_ops(&mem);
	struct vmres_layout l = { 0 };
	struct vmres_system *sys = NULL;
	struct vmres_resource got[4], spare[4], r;
	struct vmres_request q[4] = { id_req(VMRES_DEVICE_ID, 1), id_req(VMRES_DEVICE_ID, 1),
				      id_req(VMRES_MEM_SLOT, 1),
				      addr_req(VMRES_MMIO64, 1ull << 63, 1ull << 63, 3) };
	size_t failed;

	vmres_test_mem_init(&mem);
	l.present[VMRES_DEVICE_ID] = l.present[VMRES_MEM_SLOT] = l.present[VMRES_MMIO64] = true;
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ UINT32_MAX - 1ull, UINT32_MAX };
	l.span[VMRES_MEM_SLOT] = (struct vmres_range){ 7, 7 };
	l.span[VMRES_MMIO64] = (struct vmres_range){ 0, UINT64_MAX };
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_OK);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(vmres_system_allocate_ex(sys, q, 4, got, &failed), VMRES_OK);
		/* round 0: FIRST, FIRST; round 1: EXACT top, EXACT top - 1 */
		assert_int_equal(got[round].range.start, UINT32_MAX - 1ull);
		assert_int_equal(got[1 - round].range.start, UINT32_MAX);
		assert_int_equal(got[2].range.start, 7);
		assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, UINT32_MAX, &r),
				 VMRES_OK);
		assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, 1ull << 32, &r),
				 VMRES_E_OUT_OF_RANGE);
		assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO64, UINT64_MAX, &r),
				 VMRES_E_NOT_FOUND);
		assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO64, got[3].range.end, &r),
				 VMRES_OK);
		assert_int_equal(r.tag, 3);
		/* Everything held: the first request fails, nothing is taken. */
		assert_int_equal(vmres_system_allocate_ex(sys, q, 3, spare, &failed),
				 round ? VMRES_E_IN_USE : VMRES_E_EXHAUSTED);
		assert_int_equal(failed, 0);
		assert_int_equal(vmres_system_free(sys, got, 4), VMRES_OK);
		q[0] = id_at(VMRES_DEVICE_ID, UINT32_MAX, 1);
		q[1] = id_at(VMRES_DEVICE_ID, UINT32_MAX - 1ull, 1);
	}
	assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, UINT32_MAX, &r),
			 VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_lookup(sys, VMRES_MEM_SLOT, 7, &r), VMRES_E_NOT_FOUND);
	assert_int_equal(addr_ranges(sys, VMRES_MMIO64), 0);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * Destroy right after rollbacks that used the reserve, their retired nodes
 * still queued for RCU: the arena outlives every callback (ASAN checks).
 */
static void test_system_destroy_after_reserve_rollback(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system_counters c = { 0 };
	const struct vmres_request batch[] = { addr_req(VMRES_PIO, 8, 8, 1),
					       addr_req(VMRES_MMIO32, 0x1000, 0x1000, 1),
					       id_req(VMRES_MSI_GSI, 1),
					       id_req(VMRES_LEGACY_IRQ, 1) };
	struct vmres_resource got[4];

	vmres_test_mem_init(&mem);
	for (int64_t k = 0; k < 12 && !c.reserve_fallbacks; k++) {
		struct vmres_system *sys = make_default(&mem);

		vmres_test_mem_fail_after(&mem, k);
		(void)vmres_system_allocate(sys, batch, ARRAY_SIZE(batch), got);
		vmres_test_mem_fail_after(&mem, -1);
		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		assert_int_equal(c.rollback_leaks, 0);
		vmres_system_destroy(sys); /* no barrier before it */
		vmres_rcu_barrier();
		assert_int_equal(vmres_test_mem_live_bytes(&mem), 0);
	}
	assert_true(c.reserve_fallbacks > 0);
}

/* A callback table of the embedder's own: the batch rolls back through it too. */
struct counting_allocator {
	struct vmres_allocator ops;
	int taken, given_back, refuse_after;
	struct vmres_resource freed[4]; /* what ->free got, in call order */
};

static int counting_allocate(struct vmres_allocator *self, const struct vmres_request *req,
			     struct vmres_resource *out)
{
	struct counting_allocator *c = (struct counting_allocator *)self;

	if (c->taken >= c->refuse_after)
		return VMRES_E_EXHAUSTED;
	*out = (struct vmres_resource){ req->kind,
					{ (uint64_t)c->taken, (uint64_t)c->taken },
					req->tag };
	c->taken++;
	return VMRES_OK;
}

static int counting_free(struct vmres_allocator *self, const struct vmres_resource *res)
{
	struct counting_allocator *c = (struct counting_allocator *)self;

	if (c->given_back < 4)
		c->freed[c->given_back] = *res;
	c->given_back++;
	return VMRES_OK;
}

static void test_system_batch_over_foreign_callbacks(void **state)
{
	(void)state;
	struct counting_allocator mine = {
		{ counting_allocate, counting_free }, 0, 0, 2, { { 0 } }
	};
	struct vmres_allocator *table[VMRES_KIND_COUNT] = { 0 };
	struct vmres_request reqs[3] = { id_req(VMRES_DEVICE_ID, 1), id_req(VMRES_DEVICE_ID, 2),
					 id_req(VMRES_DEVICE_ID, 3) };
	struct vmres_resource out[3];
	size_t failed;

	table[VMRES_DEVICE_ID] = &mine.ops;
	assert_int_equal(vmres_allocate_batch(table, reqs, 3, out, &failed), VMRES_E_EXHAUSTED);
	assert_int_equal(failed, 2);
	assert_int_equal(mine.taken, 2);
	assert_int_equal(mine.given_back, 2);
	/* Given back last first (resource.h), each exactly as it was handed out. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mine.freed[i].kind, VMRES_DEVICE_ID);
		assert_int_equal(mine.freed[i].range.start, 1 - i);
		assert_int_equal(mine.freed[i].range.end, 1 - i);
		assert_int_equal(mine.freed[i].tag, reqs[1 - i].tag);
	}
	reqs[1].kind = VMRES_PIO; /* no callback: refused before anything is taken */
	assert_int_equal(vmres_allocate_batch(table, reqs, 3, out, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 1);
	assert_int_equal(mine.taken, 2);
}

/* A foreign ->free that refuses with something other than NOMEM. */
static int refusing_free(struct vmres_allocator *self, const struct vmres_resource *res)
{
	counting_free(self, res);
	return VMRES_E_NOT_FOUND;
}

/*
 * The rules of a batch over a table mixing a system's callbacks and the
 * embedder's: an entry without ->allocate or ->free is refused before
 * anything is taken; a ->free that fails with an error other than NOMEM
 * is not tried again (resource.h); a batch that fails at a foreign
 * callback is not counted in the system's rollbacks (system.h).
 */
static void test_system_batch_mixed_table_rules(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	struct counting_allocator mine = {
		{ counting_allocate, counting_free }, 0, 0, 0, { { 0 } }
	};
	struct counting_allocator half = { { counting_allocate, NULL }, 0, 0, 9, { { 0 } } };
	struct vmres_allocator *table[VMRES_KIND_COUNT] = { 0 };
	const struct vmres_request reqs[2] = { addr_req(VMRES_PIO, 8, 8, 1),
					       id_req(VMRES_DEVICE_ID, 2) };
	struct vmres_resource out[2];
	struct vmres_system_counters c;
	size_t failed;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	table[VMRES_PIO] = vmres_system_allocator(sys, VMRES_PIO);

	/* Half a table at index 1: refused in phase 1, nothing taken or called. */
	table[VMRES_DEVICE_ID] = &half.ops;
	assert_int_equal(vmres_allocate_batch(table, reqs, 2, out, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 1);
	half.ops = (struct vmres_allocator){ NULL, counting_free };
	assert_int_equal(vmres_allocate_batch(table, reqs, 2, out, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 1);
	assert_int_equal(half.taken + half.given_back, 0);
	assert_int_equal(addr_ranges(sys, VMRES_PIO), 0);

	/* The foreign callback refuses: the PIO range is given back, and the
	 * system counts no rollback (the failure was not at its callback). */
	table[VMRES_DEVICE_ID] = &mine.ops;
	assert_int_equal(vmres_allocate_batch(table, reqs, 2, out, &failed), VMRES_E_EXHAUSTED);
	assert_int_equal(failed, 1);
	assert_int_equal(addr_ranges(sys, VMRES_PIO), 0);
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	assert_int_equal(c.rollbacks, 0);

	/* A foreign ->free that refuses (not NOMEM) is asked once, then left;
	 * the batch fails at the system's PIO, on a range already taken. */
	mine.ops.free = refusing_free;
	mine.refuse_after = 1;
	{
		struct vmres_resource held;
		const struct vmres_request at = addr_at(VMRES_PIO, 0x100, 8, 4);
		const struct vmres_request clash[2] = { id_req(VMRES_DEVICE_ID, 4),
							addr_at(VMRES_PIO, 0x100, 8, 5) };

		assert_int_equal(vmres_system_allocate(sys, &at, 1, &held), VMRES_OK);
		assert_int_equal(vmres_allocate_batch(table, clash, 2, out, &failed),
				 VMRES_E_IN_USE);
		assert_int_equal(failed, 1);
		assert_int_equal(mine.taken, 1);
		assert_int_equal(mine.given_back, 1); /* not retried */
		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		assert_int_equal(c.rollbacks, 1);      /* failed at the system's PIO */
		assert_int_equal(c.rollback_leaks, 0); /* not the system's resource */
		assert_int_equal(vmres_system_free(sys, &held, 1), VMRES_OK);
	}
	destroy_and_check_leaks(sys, &mem);
}

/*
 * A device manager calling a system's callbacks directly gets the checks a
 * batch makes (system.h, vmres_system_allocator()), in the documented
 * order, with nothing taken or freed on error; lookups and stats of kinds
 * the layout leaves out say NOT_FOUND or INVALID_ARGUMENT as documented;
 * an ID lookup reports tag 0.
 */
static void test_system_direct_callbacks_check_their_input(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_layout l;
	struct vmres_mem_ops ops = vmres_test_mem_ops(&mem);
	struct vmres_system *sys = NULL;
	struct vmres_allocator *irq, *pio;
	struct vmres_request q;
	struct vmres_resource got, r5, r6, dev;
	struct vmres_addr_stats st;
	size_t failed;

	vmres_test_mem_init(&mem);
	vmres_layout_x86_64_default(&l);
	l.present[VMRES_MEM_SLOT] = false; /* its span [0, 508] is ignored */
	l.present[VMRES_MMIO64] = false;
	assert_int_equal(vmres_system_create_ex(&l, &ops, &sys), VMRES_OK);
	irq = vmres_system_allocator(sys, VMRES_LEGACY_IRQ);
	pio = vmres_system_allocator(sys, VMRES_PIO);
	assert_non_null(irq);
	assert_non_null(pio);

	q = id_req(VMRES_LEGACY_IRQ, 1);
	q.size = 2;
	q.policy = VMRES_LAST_MATCH;
	assert_int_equal(irq->allocate(irq, &q, &got), VMRES_E_INVALID_SIZE); /* size first */
	q.size = 1;
	assert_int_equal(irq->allocate(irq, &q, &got), VMRES_E_INVALID_ARGUMENT);
	q = id_at(VMRES_LEGACY_IRQ, 24, 1);
	assert_int_equal(irq->allocate(irq, &q, &got), VMRES_E_OUT_OF_RANGE);
	q = addr_req(VMRES_PIO, 0x20000, 1, 1); /* larger than the port space */
	assert_int_equal(pio->allocate(pio, &q, &got), VMRES_E_EXHAUSTED);
	q = addr_req(VMRES_PIO, 8, 3, 1);
	assert_int_equal(pio->allocate(pio, &q, &got), VMRES_E_INVALID_ALIGNMENT);
	q = addr_at(VMRES_PIO, 0xfffc, 8, 1);
	assert_int_equal(pio->allocate(pio, &q, &got), VMRES_E_OUT_OF_RANGE);
	assert_int_equal(addr_ranges(sys, VMRES_PIO), 0);
	for (uint64_t id = 5; id <= 23; id++)
		assert_false(id_held(sys, VMRES_LEGACY_IRQ, id));

	q = id_req(VMRES_LEGACY_IRQ, 1);
	assert_int_equal(irq->allocate(irq, &q, &r5), VMRES_OK);
	assert_int_equal(irq->allocate(irq, &q, &r6), VMRES_OK);
	assert_int_equal(r5.range.start, 5);
	assert_int_equal(r6.range.start, 6);
	got = (struct vmres_resource){ VMRES_LEGACY_IRQ, { 5, 6 }, 0 };
	assert_int_equal(irq->free(irq, &got), VMRES_E_INVALID_SIZE);
	got.range = (struct vmres_range){ 6, 5 };
	assert_int_equal(irq->free(irq, &got), VMRES_E_INVALID_RANGE);
	/* Not IRQ 5 with its high bits dropped. */
	got.range = (struct vmres_range){ (1ull << 32) + 5, (1ull << 32) + 5 };
	assert_int_equal(irq->free(irq, &got), VMRES_E_OUT_OF_RANGE);
	assert_true(id_held(sys, VMRES_LEGACY_IRQ, 5));
	assert_true(id_held(sys, VMRES_LEGACY_IRQ, 6));
	/* A kind the layout leaves out: NOT_FOUND before the range is looked at. */
	got = (struct vmres_resource){ VMRES_MEM_SLOT, { 9, 3 }, 0 };
	assert_int_equal(vmres_system_free_ex(sys, &got, 1, &failed), VMRES_E_NOT_FOUND);
	assert_int_equal(failed, 0);

	/* An ID lookup reports tag 0, whatever tag the request had. */
	q = id_at(VMRES_DEVICE_ID, 5, 9);
	assert_int_equal(vmres_system_allocate(sys, &q, 1, &dev), VMRES_OK);
	assert_true(id_held(sys, VMRES_DEVICE_ID, 5));
	assert_int_equal(vmres_system_lookup(sys, VMRES_DEVICE_ID, 5, &got), VMRES_OK);
	assert_int_equal(got.tag, 0);
	/* Kinds the layout leaves out, also outside the span they would have. */
	assert_int_equal(vmres_system_lookup(sys, VMRES_MEM_SLOT, 1000, &got), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_lookup(sys, VMRES_MMIO64, 0, &got), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_MMIO64, &st), VMRES_E_NOT_FOUND);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_MEM_SLOT, &st),
			 VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_system_addr_stats(sys, VMRES_DEVICE_ID, &st),
			 VMRES_E_INVALID_ARGUMENT);

	assert_int_equal(irq->free(irq, &r6), VMRES_OK);
	assert_int_equal(irq->free(irq, &r5), VMRES_OK);
	assert_int_equal(vmres_system_free(sys, &dev, 1), VMRES_OK);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * A batch that fails in phase 2 at its first request took nothing, yet it
 * is counted as a rollback (system.h: "whether or not earlier requests had
 * to be given back").
 */
static void test_system_rollback_counted_with_nothing_taken(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	const struct vmres_request at = { .kind = VMRES_DEVICE_ID,
					  .size = 1,
					  .align = 1,
					  .policy = VMRES_EXACT_MATCH,
					  .fixed = 3 };
	struct vmres_resource r, again;
	struct vmres_system_counters c;
	size_t failed = 77;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	assert_int_equal(vmres_system_allocate(sys, &at, 1, &r), VMRES_OK);
	assert_int_equal(vmres_system_allocate_ex(sys, &at, 1, &again, &failed), VMRES_E_IN_USE);
	assert_int_equal(failed, 0);
	assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
	assert_int_equal(c.rollbacks, 1);
	assert_int_equal(c.rollback_leaks, 0);
	assert_int_equal(vmres_system_free(sys, &r, 1), VMRES_OK);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * free_ex stops at the first entry it cannot free, even at index 0: the
 * entries after it stay allocated.
 */
static void test_system_free_ex_stops_at_the_first_entry(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct vmres_test_mem mem;
	struct vmres_system *sys;
	const struct vmres_request reqs[2] = { id_req(VMRES_DEVICE_ID, 1),
					       addr_req(VMRES_PIO, 8, 8, 1) };
	struct vmres_resource res[3];
	size_t failed = 77;

	vmres_test_mem_init(&mem);
	sys = make_default(&mem);
	assert_int_equal(vmres_system_allocate(sys, reqs, 2, res + 1), VMRES_OK);
	res[0] = (struct vmres_resource){ .kind = VMRES_DEVICE_ID, .range = { 9, 9 } };
	assert_int_equal(vmres_system_free_ex(sys, res, 3, &failed), VMRES_E_NEVER_ALLOCATED);
	assert_int_equal(failed, 0);
	assert_true(id_held(sys, VMRES_DEVICE_ID, res[1].range.start));
	assert_int_equal(addr_ranges(sys, VMRES_PIO), 1);
	assert_int_equal(vmres_system_free(sys, res + 1, 2), VMRES_OK);
	destroy_and_check_leaks(sys, &mem);
}

/*
 * The hook of the reserve tests below: the counting hook of vmres_test.h
 * plus two gates. After alloc_gate_arm(n), the n-th failed allocation sets
 * alloc_gate_open. After free_stop_armed is set, the next free of one 8 KiB
 * block (a small-class chunk's arena: 64 blocks of 128 bytes) sets
 * free_stopped and waits for free_go before it frees. After alloc_stop_armed
 * is set, the next allocation of such an arena does the same with
 * alloc_stopped and alloc_go before it allocates. (A large-class refill's
 * arena, 4 blocks of 2 KiB, has that size too: the tests that arm a stop keep
 * the large class at its target.) A test that arms a stop sets stopped_mem,
 * so that its teardown can let a thread go that a failed assertion left
 * stopped.
 */
struct reserve_mem {
	struct vmres_test_mem base;
	struct vmres_mem_ops inner;
	int alloc_gate;	      /* atomic: failures left before the gate opens, 0 = off */
	int alloc_gate_open;  /* atomic */
	int free_stop_armed;  /* atomic */
	int free_stopped;     /* atomic */
	int free_go;	      /* atomic */
	int alloc_stop_armed; /* atomic */
	int alloc_stopped;    /* atomic */
	int alloc_go;	      /* atomic */
	/* The live small-class arena the hook gave last (NULL once freed), and
	 * whether a block inside it was given to the hook's free: a reserve
	 * block that kind_mem_free() did not know. */
	unsigned char *last_arena; /* atomic */
	int foreign_free;	   /* atomic */
	/* Blocks of BASE_ARENA bytes (the classes' arenas at create) get
	 * PAD_AFTER more, unused: after_arena points there for the last one.
	 * With give_after_arena set, the next block of VMRES__RESERVE_SMALL_BLOCK
	 * bytes is after_arena itself, and its free only sets after_arena_freed. */
	unsigned char *after_arena;
	int give_after_arena;  /* atomic */
	int after_arena_freed; /* atomic */
};

/* The hook of the test that armed a stop (see above). */
static struct reserve_mem *stopped_mem;

#define BASE_ARENA (VMRES__RESERVE_SMALL_BLOCK * VMRES__RESERVE_SMALL_COUNT)
#define PAD_AFTER VMRES__RESERVE_SMALL_BLOCK
_Static_assert(VMRES__RESERVE_LARGE_BLOCK *VMRES__RESERVE_LARGE_COUNT == BASE_ARENA,
	       "both classes' arenas at create are BASE_ARENA bytes");

static void *reserve_mem_alloc(void *ctx, size_t size)
{
	struct reserve_mem *m = ctx;
	int one = 1;
	void *p;

	if (size == 64 * VMRES__RESERVE_SMALL_BLOCK &&
	    __atomic_compare_exchange_n(&m->alloc_stop_armed, &one, 0, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED)) {
		/* Release/acquire: pair with the test thread's loads and store. */
		__atomic_store_n(&m->alloc_stopped, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&m->alloc_go, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	if (size == VMRES__RESERVE_SMALL_BLOCK &&
	    __atomic_exchange_n(&m->give_after_arena, 0, __ATOMIC_RELAXED))
		return m->after_arena;
	p = m->inner.alloc(m->inner.ctx, size == BASE_ARENA ? size + PAD_AFTER : size);
	if (p && size == 64 * VMRES__RESERVE_SMALL_BLOCK)
		__atomic_store_n(&m->last_arena, p, __ATOMIC_RELAXED);
	if (p && size == BASE_ARENA)
		m->after_arena = (unsigned char *)p + size;

	if (!p && __atomic_load_n(&m->alloc_gate, __ATOMIC_RELAXED) > 0 &&
	    __atomic_sub_fetch(&m->alloc_gate, 1, __ATOMIC_RELAXED) == 0)
		__atomic_store_n(&m->alloc_gate_open, 1, __ATOMIC_RELEASE); /* see gp_hold() */
	return p;
}

static void reserve_mem_free(void *ctx, void *p, size_t size)
{
	struct reserve_mem *m = ctx;
	int one = 1;

	unsigned char *arena = __atomic_load_n(&m->last_arena, __ATOMIC_RELAXED);

	if (p == m->after_arena) {
		__atomic_store_n(&m->after_arena_freed, 1, __ATOMIC_RELAXED);
		return;
	}
	if (p == arena && size == 64 * VMRES__RESERVE_SMALL_BLOCK) {
		__atomic_store_n(&m->last_arena, NULL, __ATOMIC_RELAXED);
	} else if (arena && (unsigned char *)p >= arena &&
		   (unsigned char *)p < arena + 64 * VMRES__RESERVE_SMALL_BLOCK) {
		/* A block of a live arena: not the hook's to free. */
		__atomic_store_n(&m->foreign_free, 1, __ATOMIC_RELAXED);
		return;
	}
	if (size == 64 * VMRES__RESERVE_SMALL_BLOCK &&
	    __atomic_compare_exchange_n(&m->free_stop_armed, &one, 0, false, __ATOMIC_RELAXED,
					__ATOMIC_RELAXED)) {
		/* Release/acquire: pair with the test thread's loads and store. */
		__atomic_store_n(&m->free_stopped, 1, __ATOMIC_RELEASE);
		while (!__atomic_load_n(&m->free_go, __ATOMIC_ACQUIRE))
			sched_yield();
	}
	m->inner.free(m->inner.ctx, p, size == BASE_ARENA ? size + PAD_AFTER : size);
}

/*
 * Waits until another thread sets *@flag at a stop of the tests' hook or at a
 * pause point; fails the test after 60 s, so a stop that never comes (a bug)
 * is a failure, not a hang.
 */
static void wait_stopped(const int *flag, const char *what)
{
	const double end = vmres_test_now() + 60.0;

	/* Acquire: pairs with the stopping thread's release. */
	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (vmres_test_now() > end)
			fail_msg("%s never stopped", what);
		sched_yield();
	}
}

/* A default-layout system on @m (static: late RCU callbacks may use it). */
static struct vmres_system *make_on_reserve_mem(struct reserve_mem *m)
{
	struct vmres_layout layout;
	struct vmres_mem_ops ops = { reserve_mem_alloc, reserve_mem_free, m };
	struct vmres_system *sys = NULL;

	memset(m, 0, sizeof(*m));
	vmres_test_mem_init(&m->base);
	m->inner = vmres_test_mem_ops(&m->base);
	vmres_layout_x86_64_default(&layout);
	assert_int_equal(vmres_system_create_ex(&layout, &ops, &sys), VMRES_OK);
	return sys;
}

/* A registered reader that holds up every grace period until the gate opens. */
struct gp_holder {
	struct reserve_mem *mem;
	int ready; /* atomic */
};

static void *gp_hold(void *arg)
{
	struct gp_holder *h = arg;

	if (vmres_thread_register())
		abort();
	vmres__rcu_read_lock(); /* qsbr: being online is what holds them up */
	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&h->mem->alloc_gate_open, __ATOMIC_ACQUIRE))
		sched_yield();
	vmres__rcu_read_unlock();
	vmres_thread_unregister();
	return NULL;
}

static unsigned reserve_free(struct vmres_system *sys)
{
	return vmres__reserve_free_blocks(sys, 0) + vmres__reserve_free_blocks(sys, 1);
}

/*
 * With the hook failing and the reserve dry, a rollback's free fails every
 * try: the resource stays allocated and is counted in rollback_leaks
 * (system.h). Then a rollback whose first try fails but whose later try
 * succeeds, once an RCU barrier has brought reserve blocks back, leaks
 * nothing. Deterministic: only this thread allocates, and retired nodes
 * come back only after the barrier (a reader holds grace periods up until
 * the rollback's second failed hook call, so its first try cannot succeed).
 *
 * Set-up: device IDs 0..800 taken, the odd ones freed (1 is held inline in
 * the ID allocator's head link, src/internal/id_list.h; the others get one
 * node each, from the hook). With the hook failing, each batch takes odd ID
 * id >= 3 (alloc_at empties its node: no memory needed) and fails on ID 0
 * (IN_USE); its rollback frees id, above the inline 1, so its node must come
 * from the reserve, and stays in the list: one block per batch, never back.
 */
static void test_system_rollback_leak_when_reserve_dry(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	struct vmres_system_counters c;
	struct vmres_resource held[801], got[17];
	uint64_t big[VMRES__RESERVE_LARGE_COUNT], leaked[8];
	unsigned nbig = 0, nleaked = 0;
	uint64_t fallbacks;
	size_t failed;
	bool dry = false;

	for (uint64_t id = 0; id < ARRAY_SIZE(held); id++) {
		const struct vmres_request q = id_req(VMRES_DEVICE_ID, id);

		assert_int_equal(vmres_system_allocate(sys, &q, 1, &held[id]), VMRES_OK);
		assert_int_equal(held[id].range.start, id);
	}
	for (uint64_t id = 1; id < ARRAY_SIZE(held); id += 2)
		assert_int_equal(vmres_system_free(sys, &held[id], 1), VMRES_OK);
	vmres_rcu_barrier();
	assert_int_equal(reserve_free(sys),
			 VMRES__RESERVE_SMALL_COUNT + VMRES__RESERVE_LARGE_COUNT);

	vmres_test_mem_fail_after(&mem.base, 0); /* every allocation fails from now */
	for (uint64_t id = 3; id < ARRAY_SIZE(held) && !dry; id += 2) {
		const struct vmres_request batch[] = { id_at(VMRES_DEVICE_ID, id, id),
						       id_at(VMRES_DEVICE_ID, 0, id) };
		const unsigned small = vmres__reserve_free_blocks(sys, 0);
		const unsigned large = vmres__reserve_free_blocks(sys, 1);

		failed = 77;
		assert_int_equal(vmres_system_allocate_ex(sys, batch, 2, got, &failed),
				 VMRES_E_IN_USE);
		assert_int_equal(failed, 1);
		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		assert_int_equal(c.rollbacks, (id - 1) / 2);
		if (c.rollback_leaks == nleaked) {
			/* Given back, with one reserve block. */
			assert_false(id_held(sys, VMRES_DEVICE_ID, id));
			assert_int_equal(reserve_free(sys), small + large - 1);
			if (vmres__reserve_free_blocks(sys, 1) < large)
				big[nbig++] = id;
			continue;
		}
		/* Leaked: only when no reserve block could hold its node. */
		assert_int_equal(c.rollback_leaks, nleaked + 1);
		assert_int_equal(large, 0);
		assert_true(id_held(sys, VMRES_DEVICE_ID, id));
		assert_true(nleaked < ARRAY_SIZE(leaked));
		leaked[nleaked++] = id;
		dry = small == 0;
	}
	print_message("reserve dry: %u leaked, %u large blocks lent\n", nleaked, nbig);
	assert_true(dry);
	assert_int_equal(reserve_free(sys), 0);
	assert_true(nbig > 0);

	/*
	 * Now a rollback that needs a retry: the batch empties the nodes of
	 * some IDs that hold large reserve blocks (retired, but held up by the
	 * reader) and fails; the first free of the rollback finds the reserve
	 * dry, and a later try finds the blocks the barrier brought back.
	 */
	{
		struct gp_holder holder = { &mem, 0 };
		struct vmres_request batch[VMRES__RESERVE_LARGE_COUNT + 1];
		pthread_t t;
		int64_t failures = vmres_test_mem_failures(&mem.base);

		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		fallbacks = c.reserve_fallbacks;
		for (unsigned i = 0; i < nbig; i++)
			batch[i] = id_at(VMRES_DEVICE_ID, big[i], i);
		batch[nbig] = id_at(VMRES_DEVICE_ID, 0, nbig);
		__atomic_store_n(&mem.alloc_gate, 2, __ATOMIC_RELAXED);
		assert_int_equal(pthread_create(&t, NULL, gp_hold, &holder), 0);
		while (!__atomic_load_n(&holder.ready, __ATOMIC_ACQUIRE))
			sched_yield();
		failed = 77;
		assert_int_equal(vmres_system_allocate_ex(sys, batch, nbig + 1, got, &failed),
				 VMRES_E_IN_USE);
		assert_int_equal(failed, nbig);
		assert_int_equal(pthread_join(t, NULL), 0);
		/* The first try failed, then a retry ran (each try asks the hook once). */
		assert_true(vmres_test_mem_failures(&mem.base) - failures >= 2);
		assert_int_equal(__atomic_load_n(&mem.alloc_gate_open, __ATOMIC_RELAXED), 1);
		assert_int_equal(vmres_system_counters(sys, &c), VMRES_OK);
		assert_int_equal(c.rollback_leaks, nleaked);
		assert_int_equal(c.reserve_fallbacks, fallbacks + nbig);
		for (unsigned i = 0; i < nbig; i++)
			assert_false(id_held(sys, VMRES_DEVICE_ID, big[i]));
	}

	/* The hook works again: a leaked ID is still allocated and frees. */
	vmres_test_mem_fail_after(&mem.base, -1);
	for (unsigned i = 0; i < nleaked; i++) {
		const struct vmres_resource r = { .kind = VMRES_DEVICE_ID,
						  .range = { leaked[i], leaked[i] } };

		assert_int_equal(vmres_system_free(sys, &r, 1), VMRES_OK);
	}
	for (uint64_t id = 0; id < ARRAY_SIZE(held); id += 2)
		assert_int_equal(vmres_system_free(sys, &held[id], 1), VMRES_OK);
	assert_all_free(sys);
	destroy_and_check_leaks(sys, &mem.base);
}

/* The open chunk of the small class that @p is a block of, or NULL. */
static struct vmres__reserve_chunk *small_chunk_of(struct vmres_system *sys, const void *p)
{
	const struct vmres__reserve_class *c = &sys->reserve.cls[0];

	for (struct vmres__reserve_chunk *ch = c->chunks; ch; ch = ch->older) {
		const unsigned char *a = ch->arena;

		if (a && (const unsigned char *)p >= a &&
		    (const unsigned char *)p < a + (size_t)ch->count * c->block)
			return ch;
	}
	return NULL;
}

/*
 * Lends @n reserve blocks for requests of @size bytes, as a rollback whose
 * hook fails would; each from the small-class chunk @from, unless NULL.
 */
static void lend(struct vmres_system *sys, struct reserve_mem *m, void **out, unsigned n,
		 size_t size, struct vmres__reserve_chunk *from)
{
	vmres_test_mem_fail_after(&m->base, 0);
	vmres__rollback_enter();
	for (unsigned i = 0; i < n; i++) {
		out[i] = sys->kind_mem.alloc(sys->kind_mem.ctx, size);
		assert_non_null(out[i]);
		if (from)
			assert_ptr_equal(small_chunk_of(sys, out[i]), from);
	}
	vmres__rollback_leave();
	vmres_test_mem_fail_after(&m->base, -1);
}

static void lend_small(struct vmres_system *sys, struct reserve_mem *m, void **out, unsigned n,
		       struct vmres__reserve_chunk *from)
{
	lend(sys, m, out, n, VMRES__RESERVE_SMALL_BLOCK, from);
}

static void give_back_all(struct vmres_system *sys, void **blocks, unsigned n, size_t size)
{
	for (unsigned i = 0; i < n; i++)
		sys->kind_mem.free(sys->kind_mem.ctx, blocks[i], size);
}

/* An allocation outside a rollback that the hook serves: it refills. */
static void hook_works_once(struct vmres_system *sys)
{
	void *p = sys->kind_mem.alloc(sys->kind_mem.ctx, VMRES__RESERVE_SMALL_BLOCK);

	assert_non_null(p);
	sys->kind_mem.free(sys->kind_mem.ctx, p, VMRES__RESERVE_SMALL_BLOCK);
}

struct give_back_arg {
	struct vmres_system *sys;
	void *block;
};

static void *give_back_block(void *arg)
{
	struct give_back_arg *g = arg;

	g->sys->kind_mem.free(g->sys->kind_mem.ctx, g->block, VMRES__RESERVE_SMALL_BLOCK);
	return NULL;
}

/*
 * The reserve's refill and shrink rules, one step at a time from this
 * thread (src/system_reserve.c): a class refills by one quantum (a quarter
 * of its size at create: 64 small blocks, 4 large) once it lacks a quantum,
 * not before; a refill whose arena the hook refuses keeps nothing; a
 * request the small class cannot serve takes a large block; once every
 * block is back the refill chunks close and the class is at its size at
 * create, with closed chunks off the class's list; the next refill reuses a
 * closed chunk's header, and keeps it closed if the hook refuses its arena;
 * and a hook block that lies right after an arena is not taken for a
 * reserve block.
 */
static void test_system_reserve_refill_rules(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	static void *small[VMRES__RESERVE_SMALL_COUNT + 64];
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	const size_t sz = VMRES__RESERVE_SMALL_BLOCK;
	void *large[4], *p;
	int64_t live;

	assert_int_equal(VMRES__RESERVE_SMALL_COUNT, 256);
	assert_int_equal(VMRES__RESERVE_LARGE_COUNT, 16);
	lend(sys, &mem, small, 63, sz, NULL);
	hook_works_once(sys); /* 63 short: less than a quantum */
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256);

	/* 64 short, but the hook refuses the arena (the third allocation, after
	 * hook_works_once()'s block and the chunk's header): nothing is kept. */
	lend(sys, &mem, small + 63, 1, sz, NULL);
	live = vmres_test_mem_live_blocks(&mem.base);
	vmres_test_mem_fail_after(&mem.base, 2);
	hook_works_once(sys);
	vmres_test_mem_fail_after(&mem.base, -1);
	assert_int_equal(vmres_test_mem_live_blocks(&mem.base), live);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256);
	hook_works_once(sys);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256 + 64);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 256);

	/* The small class dry: small requests take large blocks. */
	lend(sys, &mem, small + 64, 256, sz, NULL);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 0);
	lend(sys, &mem, large, 4, sz, NULL);
	assert_int_equal(vmres__reserve_free_blocks(sys, 1), 12);
	hook_works_once(sys); /* each class a quantum short: one more chunk each */
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256 + 128);
	assert_int_equal(vmres__reserve_blocks(sys, 1), 16 + 4);

	/* Everything back: the refill chunks close. */
	give_back_all(sys, small, 320, sz);
	give_back_all(sys, large, 4, sz);
	for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++)
		assert_int_equal(vmres__reserve_free_blocks(sys, cls),
				 vmres__reserve_blocks(sys, cls));
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256);
	assert_int_equal(vmres__reserve_blocks(sys, 1), 16);
	/* Closed chunks left the lists, which every free walks: the bases alone. */
	for (unsigned cls = 0; cls < VMRES__RESERVE_CLASSES; cls++) {
		assert_ptr_equal(sys->reserve.cls[cls].chunks, &sys->reserve.cls[cls].base);
		assert_null(sys->reserve.cls[cls].base.older);
		assert_non_null(sys->reserve.cls[cls].closed);
	}

	/* A second refill reuses a closed chunk's header: no block more kept.
	 * First the hook refuses its arena (the second allocation, after
	 * hook_works_once()'s block): the header goes back to the closed stack. */
	live = vmres_test_mem_live_blocks(&mem.base);
	lend(sys, &mem, small, 64, sz, NULL);
	vmres_test_mem_fail_after(&mem.base, 1);
	hook_works_once(sys);
	vmres_test_mem_fail_after(&mem.base, -1);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256);
	assert_ptr_equal(sys->reserve.cls[0].chunks, &sys->reserve.cls[0].base);
	hook_works_once(sys);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256 + 64);
	give_back_all(sys, small, 64, sz);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 256);
	assert_ptr_equal(sys->reserve.cls[0].chunks, &sys->reserve.cls[0].base);
	assert_int_equal(vmres_test_mem_live_blocks(&mem.base), live);

	/* A hook block just past the large class's arena goes back to the hook. */
	assert_ptr_equal(mem.after_arena, sys->reserve.cls[1].base.arena + BASE_ARENA);
	__atomic_store_n(&mem.give_after_arena, 1, __ATOMIC_RELAXED);
	p = sys->kind_mem.alloc(sys->kind_mem.ctx, sz);
	assert_ptr_equal(p, mem.after_arena);
	sys->kind_mem.free(sys->kind_mem.ctx, p, sz);
	assert_int_equal(__atomic_load_n(&mem.after_arena_freed, __ATOMIC_RELAXED), 1);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 256);
	assert_int_equal(vmres__reserve_free_blocks(sys, 1), 16);
	destroy_and_check_leaks(sys, &mem.base);
}

/*
 * A shrink asked for while another thread's shrink holds the class is not
 * lost (class_shrink() in src/system_reserve.c). The small class (target
 * 256, quantum 64) is made to hold the base and two refill chunks, C2 and
 * the newer C1, all free but for one block of C1 and one of C2. Thread A
 * gives C2's block back: its shrink pass finds C1 not wholly free, closes
 * C2 and stops in the hook's free of C2's arena. Then this thread gives
 * C1's block back: the class is a quantum over its target, but A holds it,
 * so this push only asks for another pass. A must make it when it leaves
 * and close C1 too, which brings the class back to its target.
 */
static void test_system_reserve_shrink_asked_while_busy(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	struct vmres__reserve_chunk *base, *c1, *c2;
	void *from_base[64], *from_c2[64], *from_c1;
	/* Static: a thread a failed assertion left stopped may still read it. */
	static struct give_back_arg a;
	pthread_t t;

	stopped_mem = &mem;

	assert_int_equal(VMRES__RESERVE_SMALL_COUNT / 4, 64); /* the quantum */
	base = sys->reserve.cls[0].chunks;

	lend_small(sys, &mem, from_base, 64, base);
	hook_works_once(sys); /* opens C2 */
	c2 = sys->reserve.cls[0].chunks;
	assert_ptr_not_equal(c2, base);
	lend_small(sys, &mem, from_c2, 64, c2); /* newest first: all of C2 */
	hook_works_once(sys);			/* opens C1 */
	c1 = sys->reserve.cls[0].chunks;
	assert_ptr_not_equal(c1, c2);
	lend_small(sys, &mem, &from_c1, 1, c1);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 384);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 255);

	/* Back to the base, then all of C2 but one: no chunk is wholly free. */
	for (unsigned i = 0; i < 64; i++)
		sys->kind_mem.free(sys->kind_mem.ctx, from_base[i], VMRES__RESERVE_SMALL_BLOCK);
	for (unsigned i = 0; i < 63; i++)
		sys->kind_mem.free(sys->kind_mem.ctx, from_c2[i], VMRES__RESERVE_SMALL_BLOCK);
	assert_int_equal(vmres__reserve_blocks(sys, 0), 384);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 382);

	__atomic_store_n(&mem.free_stop_armed, 1, __ATOMIC_RELAXED);
	a = (struct give_back_arg){ sys, from_c2[63] };
	assert_int_equal(pthread_create(&t, NULL, give_back_block, &a), 0);
	wait_stopped(&mem.free_stopped, "a shrink in the free of an arena");
	/* A holds the class, in the middle of closing C2. */
	assert_int_equal(__atomic_load_n(&sys->reserve.cls[0].busy, __ATOMIC_RELAXED), 1);
	sys->kind_mem.free(sys->kind_mem.ctx, from_c1, VMRES__RESERVE_SMALL_BLOCK);
	assert_int_equal(__atomic_load_n(&sys->reserve.cls[0].busy, __ATOMIC_RELAXED), 1);
	__atomic_store_n(&mem.free_go, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(t, NULL), 0);

	/* Both refill chunks closed: the base alone, wholly free. */
	assert_int_equal(vmres__reserve_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(vmres__reserve_blocks(sys, 1), VMRES__RESERVE_LARGE_COUNT);
	destroy_and_check_leaks(sys, &mem.base);
}

/* hook_works_once() on a thread of its own: no cmocka assertion off the test's thread. */
static void *hook_works_once_thread(void *arg)
{
	struct vmres_system *sys = arg;
	void *p = sys->kind_mem.alloc(sys->kind_mem.ctx, VMRES__RESERVE_SMALL_BLOCK);

	if (!p)
		abort();
	sys->kind_mem.free(sys->kind_mem.ctx, p, VMRES__RESERVE_SMALL_BLOCK);
	return NULL;
}

static void release_stops(void);

/*
 * Teardown of the tests that stop threads: a failed assertion leaves the
 * test with a thread still stopped; let it go, so that it neither stays
 * stopped nor races with the next test's set-up.
 */
static int release_stops_teardown(void **state)
{
	(void)state;
	release_stops();
	return 0;
}

/*
 * Blocks that come back while a refill opens its chunk do not leave the class
 * a quantum above its target (class_refill()'s last check in
 * src/system_reserve.c). The small class (target 256, quantum 64) lends 64
 * blocks. Thread A's next allocation through the hook starts a refill, which
 * stops in the hook's allocation of the new chunk's arena. Meanwhile this
 * thread gives the 64 blocks back: each push finds the class at most at its
 * target (the new chunk is not counted yet), so none asks for a shrink. Once
 * A counts the new chunk the class is a quantum over, and A must close the
 * chunk again on its way out.
 */
static void test_system_reserve_refill_sees_blocks_come_back(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	static void *small[64];
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	struct vmres__reserve_class *c = &sys->reserve.cls[0];
	pthread_t t;

	stopped_mem = &mem;

	assert_int_equal(VMRES__RESERVE_SMALL_COUNT, 256);
	lend(sys, &mem, small, 64, VMRES__RESERVE_SMALL_BLOCK, &c->base);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 192);

	__atomic_store_n(&mem.alloc_stop_armed, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_create(&t, NULL, hook_works_once_thread, sys), 0);
	wait_stopped(&mem.alloc_stopped, "a refill in the allocation of an arena");
	/* A holds the class, in the hook's allocation of the new arena. */
	assert_int_equal(__atomic_load_n(&c->busy, __ATOMIC_RELAXED), 1);
	give_back_all(sys, small, 64, VMRES__RESERVE_SMALL_BLOCK);
	assert_int_equal(__atomic_load_n(&c->again, __ATOMIC_RELAXED), 0); /* nobody asked */
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 256);
	__atomic_store_n(&mem.alloc_go, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(t, NULL), 0);

	/* The refill's chunk opened and closed again: the base alone. */
	assert_int_equal(vmres__reserve_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_ptr_equal(c->chunks, &c->base);
	assert_non_null(c->closed);
	destroy_and_check_leaks(sys, &mem.base);
}

/* One thread stopped at a pause point of src/system_reserve.c (test copy). */
struct point_stop {
	struct vmres__reserve_chunk *chunk; /* atomic: where to stop; NULL: anywhere */
	struct vmres__reserve_chunk *seen;  /* atomic: where it stopped */
	int armed;			    /* atomic */
	int stopped;			    /* atomic */
	int go;				    /* atomic */
};

static struct point_stop point_stops[2]; /* by enum vmres__reserve_point */

static void reserve_point(enum vmres__reserve_point point, struct vmres__reserve_chunk *chunk)
{
	struct point_stop *s = &point_stops[point];
	struct vmres__reserve_chunk *want;
	int one = 1;

	/* Acquire: pairs with point_arm()'s release, so chunk is the one set. */
	if (!__atomic_load_n(&s->armed, __ATOMIC_ACQUIRE))
		return;
	want = __atomic_load_n(&s->chunk, __ATOMIC_RELAXED);
	if ((want && want != chunk) ||
	    !__atomic_compare_exchange_n(&s->armed, &one, 0, false, __ATOMIC_RELAXED,
					 __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&s->seen, chunk, __ATOMIC_RELAXED);
	/* Release/acquire: pair with the test thread's loads and store. */
	__atomic_store_n(&s->stopped, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&s->go, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void point_arm(enum vmres__reserve_point point, struct vmres__reserve_chunk *chunk)
{
	struct point_stop *s = &point_stops[point];

	/* Atomic stores: a thread a failed test left here may still read them. */
	__atomic_store_n(&s->chunk, chunk, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seen, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&s->stopped, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->go, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->armed, 1, __ATOMIC_RELEASE);
}

static void release_stops(void)
{
	for (unsigned i = 0; i < 2; i++) {
		__atomic_store_n(&point_stops[i].armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&point_stops[i].go, 1, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&vmres__reserve_test_point, NULL, __ATOMIC_RELAXED);
	if (stopped_mem) {
		__atomic_store_n(&stopped_mem->alloc_stop_armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&stopped_mem->alloc_go, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&stopped_mem->free_stop_armed, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&stopped_mem->free_go, 1, __ATOMIC_RELEASE);
		stopped_mem = NULL;
	}
}

static void point_wait(enum vmres__reserve_point point)
{
	wait_stopped(&point_stops[point].stopped, "a thread at a pause point");
}

static void point_go(enum vmres__reserve_point point)
{
	__atomic_store_n(&point_stops[point].go, 1, __ATOMIC_RELEASE);
}

struct rollback_pop_arg {
	struct vmres_system *sys;
	void *block;
};

/* A rollback whose hook call fails takes one small block from the reserve. */
static void *rollback_pop_thread(void *arg)
{
	struct rollback_pop_arg *a = arg;

	vmres__rollback_enter();
	a->block = a->sys->kind_mem.alloc(a->sys->kind_mem.ctx, VMRES__RESERVE_SMALL_BLOCK);
	vmres__rollback_leave();
	return NULL;
}

/*
 * A walker that stood on a chunk while it closed, and pops from it once its
 * header is reused, gets a block whose free finds the chunk (invariant 5 of
 * src/system_reserve.c: a reused header is listed before it opens). The
 * small class gets a refill chunk C1 beside its base. Rollback W, whose hook
 * call failed, stops on C1 just before its pop. C1 closes under it (the
 * base's lent blocks come back and put the class a quantum over its
 * target), leaving the list. The class is made short again, and thread R's
 * refill reuses C1's header and stops just after opening it. W goes on and
 * pops a block of C1; this thread frees it at once, while R still holds the
 * class: the free must find C1 on the list and stack the block there, not
 * hand it to the hook. The windows hold no hook call, hence the pause
 * points of the test copy of the library.
 */
static void test_system_reserve_walker_on_a_reused_header(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	static void *from_base[64];
	const size_t sz = VMRES__RESERVE_SMALL_BLOCK;
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	struct vmres__reserve_class *c = &sys->reserve.cls[0];
	/* Static: a thread a failed assertion left stopped may still write it. */
	static struct rollback_pop_arg w;
	struct vmres__reserve_chunk *c1;
	const unsigned char *arena;
	int foreign;
	pthread_t tw, tr;

	stopped_mem = &mem;
	w = (struct rollback_pop_arg){ sys, NULL };

	lend(sys, &mem, from_base, 64, sz, &c->base);
	hook_works_once(sys); /* opens C1 */
	c1 = c->chunks;
	assert_ptr_not_equal(c1, &c->base);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 256);

	__atomic_store_n(&vmres__reserve_test_point, reserve_point, __ATOMIC_RELAXED);
	point_arm(VMRES__RESERVE_AT_POP, c1);
	vmres_test_mem_fail_after(&mem.base, 0); /* W's hook call fails */
	assert_int_equal(pthread_create(&tw, NULL, rollback_pop_thread, &w), 0);
	point_wait(VMRES__RESERVE_AT_POP);
	vmres_test_mem_fail_after(&mem.base, -1);

	/* C1 closes under W and leaves the list. */
	give_back_all(sys, from_base, 64, sz);
	assert_ptr_equal(c->chunks, &c->base);
	assert_ptr_equal(c->closed, c1);

	/* Short again: R reuses C1's header and stops once it is open. */
	lend(sys, &mem, from_base, 64, sz, &c->base);
	point_arm(VMRES__RESERVE_REOPENED, c1);
	assert_int_equal(pthread_create(&tr, NULL, hook_works_once_thread, sys), 0);
	point_wait(VMRES__RESERVE_REOPENED);

	point_go(VMRES__RESERVE_AT_POP);
	assert_int_equal(pthread_join(tw, NULL), 0);
	arena = c1->arena;
	sys->kind_mem.free(sys->kind_mem.ctx, w.block, sz);
	foreign = __atomic_load_n(&mem.foreign_free, __ATOMIC_RELAXED);
	point_go(VMRES__RESERVE_REOPENED);
	assert_int_equal(pthread_join(tr, NULL), 0);
	__atomic_store_n(&vmres__reserve_test_point, NULL, __ATOMIC_RELAXED);

	assert_non_null(w.block); /* W popped C1, open again */
	assert_true((const unsigned char *)w.block >= arena &&
		    (const unsigned char *)w.block < arena + 64 * sz);
	assert_int_equal(foreign, 0); /* the free found C1 */
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), 256);
	give_back_all(sys, from_base, 64, sz); /* over again: C1 closes */
	assert_int_equal(vmres__reserve_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(__atomic_load_n(&mem.foreign_free, __ATOMIC_RELAXED), 0);
	destroy_and_check_leaks(sys, &mem.base);
}

/*
 * A new chunk header is out of every walker's reach until it is open, so a
 * refill whose arena the hook refuses can free it (invariant 5 of
 * src/system_reserve.c). The small class is made a quantum short; thread R's
 * refill makes a header and stops in the hook's allocation of its arena.
 * Then rollback W, whose hook call failed, starts its walk and stops on the
 * first chunk it finds: it must be the base. R's arena allocation fails, R
 * frees the header, and W pops from the base.
 */
static void test_system_reserve_new_header_unseen_until_open(void **state)
{
	(void)state;
	/* Static: after a failed assertion, RCU callbacks still due may count here. */
	static struct reserve_mem mem;
	static void *from_base[64];
	const size_t sz = VMRES__RESERVE_SMALL_BLOCK;
	struct vmres_system *sys = make_on_reserve_mem(&mem);
	struct vmres__reserve_class *c = &sys->reserve.cls[0];
	/* Static: a thread a failed assertion left stopped may still write it. */
	static struct rollback_pop_arg w;
	struct vmres__reserve_chunk *seen;
	int64_t live;
	pthread_t tw, tr;

	stopped_mem = &mem;
	w = (struct rollback_pop_arg){ sys, NULL };

	lend(sys, &mem, from_base, 64, sz, &c->base);
	live = vmres_test_mem_live_blocks(&mem.base);
	__atomic_store_n(&mem.alloc_stop_armed, 1, __ATOMIC_RELAXED);
	assert_int_equal(pthread_create(&tr, NULL, hook_works_once_thread, sys), 0);
	wait_stopped(&mem.alloc_stopped, "a refill in the allocation of an arena");

	/* From here every hook allocation fails: W's, then R's arena. */
	__atomic_store_n(&vmres__reserve_test_point, reserve_point, __ATOMIC_RELAXED);
	point_arm(VMRES__RESERVE_AT_POP, NULL);
	vmres_test_mem_fail_after(&mem.base, 0);
	assert_int_equal(pthread_create(&tw, NULL, rollback_pop_thread, &w), 0);
	point_wait(VMRES__RESERVE_AT_POP);
	seen = __atomic_load_n(&point_stops[VMRES__RESERVE_AT_POP].seen, __ATOMIC_RELAXED);
	__atomic_store_n(&mem.alloc_go, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(tr, NULL), 0);
	vmres_test_mem_fail_after(&mem.base, -1);
	point_go(VMRES__RESERVE_AT_POP);
	assert_int_equal(pthread_join(tw, NULL), 0);
	__atomic_store_n(&vmres__reserve_test_point, NULL, __ATOMIC_RELAXED);

	assert_ptr_equal(seen, &c->base); /* not the header being opened */
	assert_ptr_equal(small_chunk_of(sys, w.block), &c->base);
	assert_ptr_equal(c->chunks, &c->base);
	assert_null(c->closed);
	assert_int_equal(vmres_test_mem_live_blocks(&mem.base), live); /* header freed */
	sys->kind_mem.free(sys->kind_mem.ctx, w.block, sz);
	give_back_all(sys, from_base, 64, sz);
	assert_int_equal(vmres__reserve_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	assert_int_equal(vmres__reserve_free_blocks(sys, 0), VMRES__RESERVE_SMALL_COUNT);
	destroy_and_check_leaks(sys, &mem.base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_default_layout_values),
		cmocka_unit_test(test_system_kind_names_and_classes),
		cmocka_unit_test(test_system_create_rejects_bad_layouts),
		cmocka_unit_test(test_system_create_rejects_overlapping_spaces),
		cmocka_unit_test(test_system_rollback_counted_with_nothing_taken),
		cmocka_unit_test(test_system_free_ex_stops_at_the_first_entry),
		cmocka_unit_test(test_system_create_nomem_at_every_point),
		cmocka_unit_test(test_system_create_refuses_misaligned_hook),
		cmocka_unit_test(test_system_case_lightweight_vmm),
		cmocka_unit_test(test_system_case_callbacks_register_unregister),
		cmocka_unit_test(test_system_callbacks_check_their_kind),
		cmocka_unit_test(test_system_case_firmware_assigned),
		cmocka_unit_test(test_system_rollback_when_middle_kind_exhausted),
		cmocka_unit_test(test_system_bad_requests_are_refused),
		cmocka_unit_test(test_system_bad_frees_and_lookups),
		cmocka_unit_test(test_system_nomem_at_every_point_rolls_back),
		cmocka_unit_test(test_system_free_nomem_keeps_resource),
		cmocka_unit_test(test_system_batch_over_foreign_callbacks),
		cmocka_unit_test(test_system_batch_mixed_table_rules),
		cmocka_unit_test(test_system_direct_callbacks_check_their_input),
		cmocka_unit_test(test_system_callbacks_refuse_null_self),
		cmocka_unit_test(test_system_failure_at_each_index_rolls_back),
		cmocka_unit_test(test_system_edge_spans),
		cmocka_unit_test(test_system_destroy_after_reserve_rollback),
		cmocka_unit_test(test_system_reserve_refills_after_outages),
		cmocka_unit_test(test_system_rollback_leak_when_reserve_dry),
		cmocka_unit_test_teardown(test_system_reserve_shrink_asked_while_busy,
					  release_stops_teardown),
		cmocka_unit_test(test_system_reserve_refill_rules),
		cmocka_unit_test_teardown(test_system_reserve_refill_sees_blocks_come_back,
					  release_stops_teardown),
		cmocka_unit_test_teardown(test_system_reserve_walker_on_a_reused_header,
					  release_stops_teardown),
		cmocka_unit_test_teardown(test_system_reserve_new_header_unseen_until_open,
					  release_stops_teardown),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
