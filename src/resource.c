/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Resource kinds and the default x86_64 layout (docs/layouts.md). */
#include <stddef.h>

#include <vmres/resource.h>
#include <vmres/system.h>

static const char *const kind_names[VMRES_KIND_COUNT] = {
	[VMRES_PIO] = "PIO",	       [VMRES_MMIO32] = "MMIO32",
	[VMRES_MMIO64] = "MMIO64",     [VMRES_LEGACY_IRQ] = "LEGACY_IRQ",
	[VMRES_MSI_GSI] = "MSI_GSI",   [VMRES_DEVICE_ID] = "DEVICE_ID",
	[VMRES_MEM_SLOT] = "MEM_SLOT",
};

/* An enum may hold any int: compare as unsigned so negatives are unknown too. */
static bool kind_valid(enum vmres_kind kind)
{
	return (unsigned)kind < (unsigned)VMRES_KIND_COUNT;
}

const char *vmres_kind_name(enum vmres_kind kind)
{
	return kind_valid(kind) ? kind_names[kind] : "UNKNOWN";
}

bool vmres_kind_is_address(enum vmres_kind kind)
{
	return kind == VMRES_PIO || kind == VMRES_MMIO32 || kind == VMRES_MMIO64;
}

bool vmres_kind_is_id(enum vmres_kind kind)
{
	return kind == VMRES_LEGACY_IRQ || kind == VMRES_MSI_GSI || kind == VMRES_DEVICE_ID ||
	       kind == VMRES_MEM_SLOT;
}

/*
 * Sources of each value (file paths in docs/layouts.md):
 *   PIO: the whole x86 port space, as every VMM's PIO bus.
 *   MMIO32: cloud-hypervisor's MEM_32BIT_DEVICES_START/SIZE (3 GiB, 640 MiB),
 *     below its PCI MMCONFIG window; inside Firecracker's 32-bit device
 *     window (MMIO32_MEM_START = 3 GiB up to PCI_MMCONFIG_START).
 *   MMIO64: Firecracker's MMIO64_MEM_START/SIZE: 256 GiB .. 512 GiB - 1,
 *     inside a 39-bit guest physical space; RAM goes below and above it.
 *   LEGACY_IRQ: Firecracker's IRQ_BASE = 5 .. IRQ_MAX = 23 (IOAPIC pins).
 *   MSI_GSI: after the 24 IOAPIC pins (cloud-hypervisor's GsiAllocator starts
 *     next_gsi at base + pins) up to KVM_MAX_IRQ_ROUTES (4096) - 1.
 *   DEVICE_ID: 16 bits, e.g. a PCI segment's BDFs.
 *   MEM_SLOT: 509, the x86 KVM_USER_MEM_SLOTS of older kernels; newer ones
 *     report more through KVM_CAP_NR_MEMSLOTS.
 */
void vmres_layout_x86_64_default(struct vmres_layout *out)
{
	static const struct vmres_range spans[VMRES_KIND_COUNT] = {
		[VMRES_PIO] = { 0x0, 0xffff },
		[VMRES_MMIO32] = { 0xc0000000ull, 0xc0000000ull + (640ull << 20) - 1 },
		[VMRES_MMIO64] = { 256ull << 30, (512ull << 30) - 1 },
		[VMRES_LEGACY_IRQ] = { 5, 23 },
		[VMRES_MSI_GSI] = { 24, 4095 },
		[VMRES_DEVICE_ID] = { 0, 0xffff },
		[VMRES_MEM_SLOT] = { 0, 508 },
	};

	if (!out)
		return;
	for (size_t k = 0; k < VMRES_KIND_COUNT; k++) {
		out->span[k] = spans[k];
		out->present[k] = true;
	}
}
