/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Case 1 (lightweight VMM) and case 3 (firmware-assigned resources) of the
 * design; case 2 (hotplug with callbacks) is in demo_hotplug.c.
 */
#include <stdio.h>
#include <string.h>

#include "demo.h"

static struct vmres_request want(enum vmres_kind kind, uint64_t size, uint64_t align, uint64_t tag)
{
	return (struct vmres_request){
		.kind = kind, .size = size, .align = align, .policy = VMRES_FIRST_MATCH, .tag = tag
	};
}

static struct vmres_request fixed(enum vmres_kind kind, uint64_t at, uint64_t size, uint64_t tag)
{
	return (struct vmres_request){ .kind = kind,
				       .size = size,
				       .align = 1,
				       .policy = VMRES_EXACT_MATCH,
				       .fixed = at,
				       .tag = tag };
}

static void print_resources(const char *indent, const struct vmres_resource *r, size_t n)
{
	printf("%s", indent);
	for (size_t i = 0; i < n; i++) {
		printf(i ? ", " : "");
		demo_print_resource(&r[i]);
	}
	printf("\n");
}

/* Every PIO/MMIO address at the edges and middle of the slot's ranges. */
static void check_bus(struct demo_dm *dm, struct demo_slot *slot, uint64_t *ok, uint64_t *wrong)
{
	for (size_t i = 0; i < slot->nres; i++) {
		const struct vmres_resource *r = &slot->res[i];
		uint64_t len = r->range.end - r->range.start + 1;
		const uint64_t offsets[] = { 0, len / 2, len - 1 };

		if (!vmres_kind_is_address(r->kind))
			continue;
		for (size_t o = 0; o < DEMO_ARRAY_SIZE(offsets); o++) {
			enum vmres_kind kind = r->kind == VMRES_PIO ? VMRES_PIO : VMRES_MMIO32;

			if (demo_dispatch_checked(dm, slot, kind, offsets[o]) == DEMO_DISPATCHED)
				(*ok)++;
			else
				(*wrong)++;
		}
	}
}

static int check(struct demo_result *res, int err, const char *what)
{
	if (err) {
		printf("    UNEXPECTED: %s: %s (%s)\n", what, vmres_error_name(err),
		       vmres_strerror(err));
		res->errors++;
	}
	return err;
}

/* ---- case 1 ---- */

void demo_case_lightweight(const struct demo_options *opt, struct demo_result *res)
{
	struct demo_mem mem = { 0 };
	struct vmres_mem_ops ops = demo_mem_ops(&mem);
	struct vmres_layout l = { 0 };
	struct vmres_system *sys;
	struct demo_slot slot;
	struct demo_dm dm;
	struct vmres_resource known[3], probe;
	const uint64_t tag = demo_tag(0, 1);
	const struct vmres_request ids[] = { want(VMRES_DEVICE_ID, 1, 1, tag),
					     want(VMRES_LEGACY_IRQ, 1, 1, tag) };
	const struct vmres_request com1 = fixed(VMRES_PIO, 0x3f8, 8, tag);
	const struct vmres_request mmio = want(VMRES_MMIO32, 0x1000, 0x1000, tag);
	uint64_t ok = 0, wrong = 0;
	size_t failed;
	int err;

	(void)opt;
	printf("\n[1] Lightweight VMM: its own small system allocator, no callbacks\n");
	l.present[VMRES_DEVICE_ID] = l.present[VMRES_LEGACY_IRQ] = l.present[VMRES_PIO] = true;
	l.span[VMRES_DEVICE_ID] = (struct vmres_range){ 0, 15 };
	l.span[VMRES_LEGACY_IRQ] = (struct vmres_range){ 5, 23 };
	l.span[VMRES_PIO] = (struct vmres_range){ 0, 0xffff };
	if (check(res, vmres_system_create_ex(&l, &ops, &sys), "create"))
		return;
	printf("    layout: DEVICE_ID 0-15, LEGACY_IRQ 5-23, PIO 0-0xffff; nothing else\n");

	memset(&slot, 0, sizeof(slot));
	demo_dm_init(&dm, sys, false, &slot, 1);
	err = vmres_system_allocate(sys, ids, 2, known);
	if (!err)
		err = vmres_system_allocate(sys, &com1, 1, &known[2]);
	if (check(res, err, "instance ID, IRQ and COM1 ports")) {
		vmres_system_destroy(sys);
		return;
	}
	print_resources("    the VMM took: ", known, 3);
	slot.device_tag = tag;
	check(res, demo_full_register_device(&dm, &slot, NULL, 0, known, 3, NULL),
	      "register serial");
	for (uint64_t port = 0; port < 8; port++)
		if (demo_dispatch_checked(&dm, &slot, VMRES_PIO, port) == DEMO_DISPATCHED)
			ok++;
		else
			wrong++;
	printf("    serial registered with those known resources; PIO bus: %llu/8 ports of "
	       "0x3f8-0x3ff reach it\n",
	       (unsigned long long)ok);
	res->wrong_dispatches += wrong;
	err = vmres_system_lookup(sys, VMRES_PIO, 0x3f7, &probe);
	printf("    port 0x3f7: %s (unclaimed)\n", vmres_error_name(err));
	if (err != VMRES_E_NOT_FOUND)
		res->errors++;
	err = vmres_system_allocate_ex(sys, &mmio, 1, &probe, &failed);
	printf("    MMIO32 request: %s at index %zu, the layout has no MMIO\n",
	       vmres_error_name(err), failed);
	if (err != VMRES_E_NOT_FOUND || failed != 0)
		res->errors++;

	check(res, demo_full_unregister_device(&dm, &slot), "unregister serial");
	check(res, vmres_system_free(sys, known, 3), "free known resources");
	demo_destroy_checked(sys, &mem, res, "    ");
}

/* ---- case 3 ---- */

struct fw_device {
	const char *name;
	size_t n;
	struct vmres_request need[5];
	bool needs_mem_slot; /* the VMM allocates it: no callback for MEM_SLOT */
	int expect_err;
	size_t expect_index;
};

static void fw_register(struct demo_dm *dm, struct vmres_system *sys, struct fw_device *d,
			struct demo_slot *slot, struct demo_result *res)
{
	struct vmres_resource memslot;
	const struct vmres_request slot_req = want(VMRES_MEM_SLOT, 1, 1, slot->device_tag);
	size_t failed;
	int err;

	if (d->needs_mem_slot &&
	    check(res, vmres_system_allocate(sys, &slot_req, 1, &memslot), "memory slot"))
		return;
	err = demo_full_register_device(dm, slot, d->need, d->n, &memslot, d->needs_mem_slot,
					&failed);
	if (err) {
		printf("    %-10s refused: %s at request %zu (", d->name, vmres_error_name(err),
		       failed);
		if (failed < d->n)
			printf("%s at %#llx", vmres_kind_name(d->need[failed].kind),
			       (unsigned long long)d->need[failed].fixed);
		printf("); the whole batch was given back\n");
		if (err != d->expect_err || failed != d->expect_index)
			res->errors++;
		if (d->needs_mem_slot)
			check(res, vmres_system_free(sys, &memslot, 1), "give the slot back");
		return;
	}
	if (d->expect_err)
		res->errors++;
	printf("    %-10s ", d->name);
	print_resources("", slot->res, slot->nres);
}

void demo_case_firmware(const struct demo_options *opt, struct demo_result *res)
{
	struct demo_mem mem = { 0 };
	struct vmres_mem_ops ops = demo_mem_ops(&mem);
	struct vmres_layout l;
	struct vmres_system *sys;
	struct demo_slot slots[4];
	struct demo_dm dm;
	uint64_t ok = 0, wrong = 0, held[VMRES_KIND_COUNT];
	struct fw_device devs[4];

	(void)opt;
	printf("\n[3] Firmware-assigned: fixed BARs and IRQs, the rest through callbacks\n");
	vmres_layout_x86_64_default(&l);
	if (check(res, vmres_system_create_ex(&l, &ops, &sys), "create"))
		return;
	memset(slots, 0, sizeof(slots));
	demo_dm_init(&dm, sys, true, slots, DEMO_ARRAY_SIZE(slots));
	dm.cb[VMRES_MEM_SLOT] = NULL; /* NULL callback: the VMM allocates memory slots itself */
	printf("    device manager callbacks: every kind but MEM_SLOT (the VMM's own)\n");

	for (size_t i = 0; i < DEMO_ARRAY_SIZE(slots); i++)
		slots[i].device_tag = demo_tag(i, 1);
	devs[0] = (struct fw_device){
		.name = "ahci",
		.n = 4,
		.need = { fixed(VMRES_MMIO32, 0xc0000000ull, 0x2000, slots[0].device_tag),
			  fixed(VMRES_LEGACY_IRQ, 11, 1, slots[0].device_tag),
			  fixed(VMRES_PIO, 0x1f0, 8, slots[0].device_tag),
			  want(VMRES_DEVICE_ID, 1, 1, slots[0].device_tag) }
	};
	devs[1] = (struct fw_device){ .name = "pmem",
				      .n = 3,
				      .need = { fixed(VMRES_MMIO64, l.span[VMRES_MMIO64].start,
						      1ull << 30, slots[1].device_tag),
						want(VMRES_MSI_GSI, 1, 1, slots[1].device_tag),
						want(VMRES_DEVICE_ID, 1, 1, slots[1].device_tag) },
				      .needs_mem_slot = true };
	/* A firmware table bug: this BAR overlaps the AHCI one. */
	devs[2] = (struct fw_device){ .name = "nvme",
				      .n = 3,
				      .need = { want(VMRES_DEVICE_ID, 1, 1, slots[2].device_tag),
						want(VMRES_MSI_GSI, 1, 1, slots[2].device_tag),
						fixed(VMRES_MMIO32, 0xc0001000ull, 0x1000,
						      slots[2].device_tag) },
				      .expect_err = VMRES_E_IN_USE,
				      .expect_index = 2 };
	devs[3] = (struct fw_device){ .name = "virtio-net",
				      .n = 4,
				      .need = { want(VMRES_DEVICE_ID, 1, 1, slots[3].device_tag),
						want(VMRES_MSI_GSI, 1, 1, slots[3].device_tag),
						want(VMRES_PIO, 0x20, 0x20, slots[3].device_tag),
						want(VMRES_MMIO32, 0x1000, 0x1000,
						     slots[3].device_tag) } };
	for (size_t i = 0; i < DEMO_ARRAY_SIZE(devs); i++)
		fw_register(&dm, sys, &devs[i], &slots[i], res);

	/* nvme's device ID and GSI went back: virtio-net got the very same ones. */
	if (slots[3].nres &&
	    (slots[3].res[0].range.start != 2 || slots[3].res[1].range.start != 25))
		res->errors++;
	printf("    rollback check: virtio-net got DEVICE_ID %llu and MSI_GSI %llu, the ones "
	       "nvme held for a moment\n",
	       (unsigned long long)slots[3].res[0].range.start,
	       (unsigned long long)slots[3].res[1].range.start);

	for (size_t i = 0; i < DEMO_ARRAY_SIZE(slots); i++)
		if (slots[i].nres)
			check_bus(&dm, &slots[i], &ok, &wrong);
	printf("    bus check: %llu exits reached their device, %llu wrong\n",
	       (unsigned long long)ok, (unsigned long long)wrong);
	res->wrong_dispatches += wrong;

	for (size_t i = 0; i < DEMO_ARRAY_SIZE(slots); i++) {
		if (!slots[i].nres)
			continue;
		struct vmres_resource own[DEMO_MAX_RES];
		size_t n_own = 0;

		for (size_t r = 0; r < slots[i].nres; r++)
			if (!dm.cb[slots[i].res[r].kind])
				own[n_own++] = slots[i].res[r];
		check(res, demo_full_unregister_device(&dm, &slots[i]), "unregister");
		check(res, vmres_system_free(sys, own, n_own), "the VMM frees its own");
	}
	demo_count_held(sys, held);
	for (int k = 0; k < VMRES_KIND_COUNT; k++)
		if (held[k]) {
			printf("    UNEXPECTED: %llu %s still held after teardown\n",
			       (unsigned long long)held[k], vmres_kind_name((enum vmres_kind)k));
			res->errors++;
		}
	demo_destroy_checked(sys, &mem, res, "    ");
}
