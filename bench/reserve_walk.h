/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* bench/reserve_walk.c: a system whose reserve grew and shrank, for bench_system. */
#ifndef VB_RESERVE_WALK_H
#define VB_RESERVE_WALK_H

#ifdef __cplusplus
extern "C" {
#endif

struct vmres_system;

/* A default-layout system after @refills outages, each lending 4 large
 * reserve blocks and then refilling, all blocks back; NULL on failure. */
struct vmres_system *vb_reserve_system(unsigned refills);
/* One 64-byte allocation and free through the per-kind allocators' hook. */
void vb_reserve_pair(struct vmres_system *sys);
/* Blocks of the reserve's large class (all open chunks). */
unsigned vb_reserve_large_blocks(struct vmres_system *sys);

#ifdef __cplusplus
}
#endif

#endif
