/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * vmres-demo: a toy VMM's device manager on top of libvmres, shared by the
 * three cases (demo_cases.c) and the main program (vmres_demo.c).
 */
#ifndef VMRES_DEMO_H
#define VMRES_DEMO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vmres/vmres.h>

#define DEMO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DEMO_MAX_RES 6

/* ---- a memory hook that counts, for the leak check ---- */
struct demo_mem {
	atomic_llong live_bytes;
	atomic_llong live_blocks;
	atomic_llong peak_bytes;
	atomic_llong allocs;
};
struct vmres_mem_ops demo_mem_ops(struct demo_mem *m);

/* ---- options and results ---- */
struct demo_options {
	unsigned vcpus;
	unsigned hotplug_threads;
	double seconds;
	unsigned devices;
	uint64_t seed;
	unsigned long long mem_budget_kib; /* case 2: wait for RCU callbacks above this; 0: never */
};

struct demo_result {
	uint64_t wrong_dispatches; /* an exit reached a device that does not own it */
	uint64_t leaked_bytes;	   /* live bytes after destroy + rcu barrier */
	uint64_t errors;	   /* any other unexpected result */
};

/* ---- the device manager ---- */

/*
 * One device slot. The hotplug thread that holds @claimed owns @res, @nres,
 * @generation and @device_tag. vCPU threads read the published copy (tag and bus
 * ranges) under @seq, a sequence lock: odd while it changes, and only
 * advanced by the claiming thread.
 */
struct demo_slot {
	atomic_int claimed;
	atomic_uint_fast64_t seq;
	atomic_bool live;
	atomic_uint_fast64_t tag;
	atomic_uint_fast64_t pio_start, pio_end;
	atomic_int mmio_kind;
	atomic_uint_fast64_t mmio_start, mmio_end;
	uint64_t generation;
	uint64_t device_tag;
	size_t nres;
	struct vmres_resource res[DEMO_MAX_RES];
};

/*
 * The device manager of the design: optional allocation callbacks per kind
 * (NULL: the VMM allocates that kind itself and hands the resource in), and
 * the PIO/MMIO bus, which is the system allocator's lookup.
 */
struct demo_dm {
	struct vmres_system *bus;
	struct vmres_allocator *cb[VMRES_KIND_COUNT];
	struct demo_slot *slots;
	size_t nslots;
};

/* Tag of a device: its slot and the slot's generation, never reused. */
static inline uint64_t demo_tag(size_t slot, uint64_t generation)
{
	return ((uint64_t)slot << 40) | (generation & ((1ull << 40) - 1));
}

static inline size_t demo_tag_slot(uint64_t tag)
{
	return (size_t)(tag >> 40);
}

void demo_dm_init(struct demo_dm *dm, struct vmres_system *sys, bool with_callbacks,
		  struct demo_slot *slots, size_t nslots);
int demo_full_register_device(struct demo_dm *dm, struct demo_slot *slot,
			      const struct vmres_request *need, size_t n,
			      const struct vmres_resource *known, size_t nknown,
			      size_t *failed_index);
int demo_full_unregister_device(struct demo_dm *dm, struct demo_slot *slot);
void demo_publish(struct demo_slot *slot);
void demo_unpublish(struct demo_slot *slot);

/* Outcome of one checked exit. */
enum demo_dispatch {
	DEMO_DISPATCHED, /* reached the device that owns the address */
	DEMO_IDLE,	 /* the slot holds no device */
	DEMO_RACED,	 /* the device was plugged or unplugged meanwhile */
	DEMO_WRONG,	 /* the bus answered with another owner, or none */
};
enum demo_dispatch demo_dispatch_checked(struct demo_dm *dm, struct demo_slot *slot,
					 enum vmres_kind kind, uint64_t addr);

/* Counts what is still allocated, by kind (ID kinds: by lookups over the span). */
void demo_count_held(struct vmres_system *sys, uint64_t held[VMRES_KIND_COUNT]);
void demo_print_resource(const struct vmres_resource *r);

/* ---- the cases ---- */
void demo_case_lightweight(const struct demo_options *opt, struct demo_result *res);
void demo_case_hotplug(const struct demo_options *opt, struct demo_result *res);
void demo_case_firmware(const struct demo_options *opt, struct demo_result *res);

/* A teardown's leak check: destroy, barrier, report live bytes. */
void demo_destroy_checked(struct vmres_system *sys, struct demo_mem *mem, struct demo_result *res,
			  const char *indent);

double demo_now(void);
uint64_t demo_rand(uint64_t *state);

#endif /* VMRES_DEMO_H */
