/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libFuzzer harness: address allocator against a reference model. */
#include "fuzz_common.h"

typedef unsigned __int128 u128;
#define MAXR 4096

struct mr {
	uint64_t s, e, tag;
};
static struct mr R[MAXR];
static int nr;
static uint64_t first, last;
static struct vmres_range freed[16]; /* recently freed, for double frees */
static int nfreed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vmres_thread_register();
	return 0;
}

static int is_pow2(uint64_t a)
{
	return a && !(a & (a - 1));
}

/* gap i: free space before range i (i == nr: after the last) */
static int gap(int i, u128 *g0, u128 *g1)
{
	u128 lo = i == 0 ? (u128)first : (u128)R[i - 1].e + 1;
	u128 hi = i == nr ? (u128)last : (u128)R[i].s - 1; /* may underflow when R[i].s == 0 */
	if (i < nr && R[i].s == 0)
		return 0;
	if (lo > hi)
		return 0;
	*g0 = lo;
	*g1 = hi;
	return 1;
}

static int model_first(uint64_t size, uint64_t align, uint64_t *out)
{
	for (int i = 0; i <= nr; i++) {
		u128 g0, g1;
		if (!gap(i, &g0, &g1))
			continue;
		u128 s = (g0 + align - 1) / align * align;
		if (s + size - 1 <= g1) {
			*out = (uint64_t)s;
			return 1;
		}
	}
	return 0;
}

static int model_last(uint64_t size, uint64_t align, uint64_t *out)
{
	for (int i = nr; i >= 0; i--) {
		u128 g0, g1;
		if (!gap(i, &g0, &g1))
			continue;
		if (g1 - g0 + 1 < size)
			continue;
		u128 s = (g1 - size + 1) / align * align;
		if (s >= g0) {
			*out = (uint64_t)s;
			return 1;
		}
	}
	return 0;
}

static int find_idx(uint64_t addr) /* index of range containing addr, or -1 */
{
	int lo = 0, hi = nr - 1;
	while (lo <= hi) {
		int m = (lo + hi) / 2;
		if (addr < R[m].s)
			hi = m - 1;
		else if (addr > R[m].e)
			lo = m + 1;
		else
			return m;
	}
	return -1;
}

static int overlaps(uint64_t s, uint64_t e)
{
	for (int i = 0; i < nr; i++)
		if (!(R[i].e < s || R[i].s > e))
			return 1;
	return 0;
}

static void model_insert(uint64_t s, uint64_t e, uint64_t tag)
{
	int i = 0;
	while (i < nr && R[i].s < s)
		i++;
	memmove(&R[i + 1], &R[i], (size_t)(nr - i) * sizeof R[0]);
	R[i] = (struct mr){ s, e, tag };
	nr++;
}

static void model_remove(int i)
{
	memmove(&R[i], &R[i + 1], (size_t)(nr - i - 1) * sizeof R[0]);
	nr--;
}

struct walk {
	int idx;
	int stop_at;
	int ret;
	struct vmres_addr_allocator *a;
	struct rd *r;
	int do_alloc; /* do an alloc in the callback */
	struct mr snap[MAXR];
	int nsnap;
};

static int nested_alloc(struct vmres_addr_allocator *a, struct rd *r);

static int walk_cb(void *ctx, struct vmres_range rg, uint64_t tag)
{
	struct walk *w = ctx;
	if (w->idx >= w->nsnap)
		FAIL("foreach visited more than %d ranges", w->nsnap);
	struct mr *m = &w->snap[w->idx];
	if (rg.start != m->s || rg.end != m->e || tag != m->tag)
		FAIL("foreach #%d = [%#llx,%#llx] tag %llu, want [%#llx,%#llx] tag %llu", w->idx,
		     (unsigned long long)rg.start, (unsigned long long)rg.end,
		     (unsigned long long)tag, (unsigned long long)m->s, (unsigned long long)m->e,
		     (unsigned long long)m->tag);
	/* lookups from inside the walk */
	struct vmres_range o;
	uint64_t t;
	if (w->idx == 0 && w->do_alloc) {
		nested_alloc(w->a, w->r);
	}
	(void)o;
	(void)t;
	w->idx++;
	if (w->idx == w->stop_at)
		return w->ret;
	return 0;
}

static uint64_t pick_size(struct rd *r)
{
	uint8_t b = u8(r);
	u128 span = (u128)last - first + 1;
	switch (b % 10) {
	case 0:
	case 1:
	case 2:
		return 1 + (b >> 4);
	case 3:
		return u64(r);
	case 4:
		return (uint64_t)1 << (u8(r) % 64);
	case 5:
		return span > UINT64_MAX ? UINT64_MAX : (uint64_t)span - (b >> 7);
	case 6: {
		uint64_t s = (uint64_t)(span >> (1 + (u8(r) % 8)));
		return s ? s : 1;
	}
	case 7:
		return (b & 0x10) ? 0 : UINT64_MAX;
	case 8:
		return (uint64_t)(span > UINT64_MAX ? UINT64_MAX : span) + 1; /* may be 0 */
	default:
		return 1 + u16(r) % 4096;
	}
}

static uint64_t pick_align(struct rd *r)
{
	uint8_t b = u8(r);
	switch (b % 8) {
	case 0:
	case 1:
	case 2:
		return 1;
	case 3:
		return (uint64_t)1 << ((b >> 3) % 13);
	case 4:
		return (uint64_t)1 << (u8(r) % 64);
	case 5:
		return (b & 8) ? 0 : ((uint64_t)1 << 63);
	case 6:
		return (b & 8) ? 3 : (((uint64_t)1 << (u8(r) % 63)) + (uint64_t)1 + (b >> 7));
	default:
		return u64(r);
	}
}

static uint64_t pick_addr(struct rd *r)
{
	uint8_t b = u8(r);
	if (nr && (b & 1)) {
		struct mr *m = &R[u16(r) % nr];
		switch ((b >> 1) % 6) {
		case 0:
			return m->s;
		case 1:
			return m->e;
		case 2:
			return m->s - 1;
		case 3:
			return m->e + 1;
		case 4:
			return m->s + (m->e - m->s) / 2;
		default:
			return m->e + 1 + u8(r);
		}
	}
	switch ((b >> 1) % 8) {
	case 0:
		return first;
	case 1:
		return last;
	case 2:
		return first - 1;
	case 3:
		return last + 1;
	case 4:
		return u64(r);
	case 5:
		return first + (uint64_t)(((u128)u64(r) * ((u128)last - first + 1)) >> 64);
	case 6:
		return (b & 0x80) ? 0 : UINT64_MAX;
	default:
		return first + u16(r);
	}
}

static int do_alloc(struct vmres_addr_allocator *a, struct rd *r, int in_walk)
{
	struct vmres_addr_request q;
	q.size = pick_size(r);
	q.align = pick_align(r);
	uint8_t pb = u8(r);
	q.policy = (enum vmres_policy)(pb % 4 == 3 ? (pb & 0x80 ? 77 : -1) : pb % 3);
	if (pb % 4 == 3 && (pb & 0x40))
		q.policy = VMRES_EXACT_MATCH;
	q.addr = 0;
	if (q.policy == VMRES_EXACT_MATCH) {
		q.addr = pick_addr(r);
		if ((pb & 0x20) && is_pow2(q.align))
			q.addr &= ~(q.align - 1);
	}
	q.tag = u32(r);
	int want;
	uint64_t ws = 0;
	if (q.size == 0)
		want = VMRES_E_INVALID_SIZE;
	else if (!is_pow2(q.align))
		want = VMRES_E_INVALID_ALIGNMENT;
	else if ((unsigned)q.policy > VMRES_EXACT_MATCH)
		want = VMRES_E_INVALID_ARGUMENT;
	else if (q.policy == VMRES_EXACT_MATCH) {
		if (q.addr % q.align)
			want = VMRES_E_UNALIGNED_ADDRESS;
		else if (q.addr < first || (u128)q.addr + q.size - 1 > last)
			want = VMRES_E_OUT_OF_RANGE;
		else if (overlaps(q.addr, q.addr + q.size - 1))
			want = VMRES_E_IN_USE;
		else {
			want = 0;
			ws = q.addr;
		}
	} else if (q.policy == VMRES_FIRST_MATCH)
		want = model_first(q.size, q.align, &ws) ? 0 : VMRES_E_EXHAUSTED;
	else
		want = model_last(q.size, q.align, &ws) ? 0 : VMRES_E_EXHAUSTED;
	if (want == 0 && nr >= MAXR - 2)
		return 0;

	struct vmres_range out = { 0x1111, 0x2222 };
	long f0 = atomic_load(&hook_fail_count);
	int rc = vmres_addr_alloc(a, &q, &out);
	if (rc == VMRES_E_NOMEM && want == 0 && atomic_load(&hook_fail_count) != f0) {
		if (out.start != 0x1111 || out.end != 0x2222)
			FAIL("out written on NOMEM");
		return 0;
	}
	if (rc != want)
		FAIL("alloc(size %#llx align %#llx pol %d addr %#llx) span [%#llx,%#llx] nr %d = "
		     "%s, "
		     "want %s (model start %#llx)%s",
		     (unsigned long long)q.size, (unsigned long long)q.align, (int)q.policy,
		     (unsigned long long)q.addr, (unsigned long long)first,
		     (unsigned long long)last, nr, en(rc), en(want), (unsigned long long)ws,
		     in_walk ? " [in foreach]" : "");
	if (rc == 0) {
		if (out.start != ws || out.end != ws + q.size - 1)
			FAIL("alloc(size %#llx align %#llx pol %d) = [%#llx,%#llx], want start "
			     "%#llx "
			     "span [%#llx,%#llx] nr %d%s",
			     (unsigned long long)q.size, (unsigned long long)q.align, (int)q.policy,
			     (unsigned long long)out.start, (unsigned long long)out.end,
			     (unsigned long long)ws, (unsigned long long)first,
			     (unsigned long long)last, nr, in_walk ? " [in foreach]" : "");
		model_insert(out.start, out.end, q.tag);
	} else if (out.start != 0x1111 || out.end != 0x2222)
		FAIL("out written on error %s", en(rc));
	return rc;
}

static int nested_alloc(struct vmres_addr_allocator *a, struct rd *r)
{
	return do_alloc(a, r, 1);
}

static void do_free(struct vmres_addr_allocator *a, struct rd *r)
{
	uint8_t b = u8(r);
	struct vmres_range g;
	int k = nr ? u16(r) % nr : 0;
	switch (b % 8) {
	case 0:
	case 1:
	case 2:
		if (!nr)
			return;
		g.start = R[k].s;
		g.end = R[k].e;
		break;
	case 3: /* partial */
		if (!nr)
			return;
		g.start = R[k].s + ((b & 8) ? 1 : 0);
		g.end = R[k].e - ((b & 8) ? 0 : 1);
		if (R[k].s == R[k].e)
			g.end = R[k].e + 1;
		break;
	case 4: /* two */
		if (nr < 2)
			return;
		if (k == nr - 1)
			k--;
		g.start = R[k].s;
		g.end = R[k + 1].e;
		break;
	case 5:
		if (!nfreed)
			return;
		g = freed[u8(r) % nfreed];
		break;
	case 6:
		g.start = pick_addr(r);
		g.end = pick_addr(r);
		break;
	default:
		g.start = pick_addr(r);
		g.end = g.start + pick_size(r) - 1;
		break;
	}
	int want, idx = -1;
	if (g.start > g.end)
		want = VMRES_E_INVALID_RANGE;
	else {
		idx = find_idx(g.start);
		want = (idx >= 0 && R[idx].s == g.start && R[idx].e == g.end) ? 0
									      : VMRES_E_NOT_FOUND;
	}
	long f0 = atomic_load(&hook_fail_count);
	int rc = vmres_addr_free(a, g);
	if (rc == VMRES_E_NOMEM && want == 0 && atomic_load(&hook_fail_count) != f0)
		return;
	if (rc != want)
		FAIL("free([%#llx,%#llx]) = %s want %s nr %d", (unsigned long long)g.start,
		     (unsigned long long)g.end, en(rc), en(want), nr);
	if (rc == 0) {
		model_remove(idx);
		freed[nfreed < 16 ? nfreed++ : (u8(r) % 16)] = g;
	}
}

static void do_lookup(struct vmres_addr_allocator *a, struct rd *r)
{
	uint64_t addr = pick_addr(r);
	uint8_t b = u8(r);
	struct vmres_range o = { 7, 7 };
	uint64_t t = 9;
	int rc = vmres_addr_lookup(a, addr, (b & 1) ? NULL : &o, (b & 2) ? NULL : &t);
	int want, i = -1;
	if (addr < first || addr > last)
		want = VMRES_E_OUT_OF_RANGE;
	else {
		i = find_idx(addr);
		want = i >= 0 ? 0 : VMRES_E_NOT_FOUND;
	}
	if (rc != want)
		FAIL("lookup(%#llx) = %s want %s", (unsigned long long)addr, en(rc), en(want));
	if (rc == 0) {
		if (!(b & 1) && (o.start != R[i].s || o.end != R[i].e))
			FAIL("lookup(%#llx) range [%#llx,%#llx] want [%#llx,%#llx]",
			     (unsigned long long)addr, (unsigned long long)o.start,
			     (unsigned long long)o.end, (unsigned long long)R[i].s,
			     (unsigned long long)R[i].e);
		if (!(b & 2) && t != R[i].tag)
			FAIL("lookup tag %llu want %llu", (unsigned long long)t,
			     (unsigned long long)R[i].tag);
	}
}

static void do_stats(struct vmres_addr_allocator *a)
{
	struct vmres_addr_stats s;
	if (vmres_addr_stats(a, &s) != 0)
		FAIL("stats");
	u128 bytes = 0, lf = 0;
	for (int i = 0; i < nr; i++)
		bytes += (u128)R[i].e - R[i].s + 1;
	for (int i = 0; i <= nr; i++) {
		u128 g0, g1;
		if (gap(i, &g0, &g1) && g1 - g0 + 1 > lf)
			lf = g1 - g0 + 1;
	}
	if (bytes > UINT64_MAX)
		bytes = UINT64_MAX;
	if (lf > UINT64_MAX)
		lf = UINT64_MAX;
	if (s.ranges != (uint64_t)nr || s.allocated_bytes != (uint64_t)bytes ||
	    s.largest_free != (uint64_t)lf)
		FAIL("stats = {%llu, %#llx, %#llx} want {%d, %#llx, %#llx} span [%#llx,%#llx]",
		     (unsigned long long)s.ranges, (unsigned long long)s.allocated_bytes,
		     (unsigned long long)s.largest_free, nr, (unsigned long long)bytes,
		     (unsigned long long)lf, (unsigned long long)first, (unsigned long long)last);
}

static struct walk W;

static void do_foreach(struct vmres_addr_allocator *a, struct rd *r)
{
	uint8_t b = u8(r);
	W.idx = 0;
	W.a = a;
	W.r = r;
	W.stop_at = (b & 1) ? (int)(u8(r) % (nr + 1)) + 1 : -1;
	W.ret = (b & 2) ? -5 : 42;
	W.do_alloc = (b & 4) && nr > 0;
	memcpy(W.snap, R, (size_t)nr * sizeof R[0]);
	W.nsnap = nr;
	int rc = vmres_addr_foreach(a, walk_cb, &W);
	int want = (W.stop_at > 0 && W.stop_at <= W.nsnap) ? W.ret : 0;
	if (rc != want)
		FAIL("foreach = %d want %d", rc, want);
	int visited_want = (W.stop_at > 0 && W.stop_at <= W.nsnap) ? W.stop_at : W.nsnap;
	if (W.idx != visited_want)
		FAIL("foreach visited %d want %d", W.idx, visited_want);
}

static void setup_span(struct rd *r)
{
	uint8_t k = u8(r);
	uint64_t n;
	switch (k % 8) {
	case 0:
		first = 0;
		last = UINT64_MAX;
		break;
	case 1:
		first = 0;
		last = u16(r);
		break;
	case 2:
		n = u32(r);
		first = UINT64_MAX - n;
		last = UINT64_MAX;
		break;
	case 3:
		first = last = (k & 8) ? 0 : (k & 16) ? UINT64_MAX : u64(r);
		break;
	case 4:
		first = u64(r);
		n = u16(r);
		last = first > UINT64_MAX - n ? UINT64_MAX : first + n;
		break;
	case 5:
		first = u64(r);
		last = UINT64_MAX;
		break;
	case 6:
		first = 0;
		last = u64(r);
		break;
	default:
		first = u64(r);
		last = u64(r);
		if (first > last) {
			uint64_t t = first;
			first = last;
			last = t;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd r = { data, len, 0 };
	if (len < 2)
		return 0;
	uint8_t mode = u8(&r);
	int inject = hook_mode(mode);
	int plain = !inject && (mode & 4);
	setup_span(&r);
	hook_read_schedule(&r, (mode >> 3) % 33);
	nr = 0;
	nfreed = 0;

	struct vmres_addr_allocator *a = NULL, *bad = (void *)1;
	int rc;
	if (vmres_addr_allocator_create(first, last, NULL) != VMRES_E_INVALID_ARGUMENT)
		FAIL("create NULL out");
	if (first < last &&
	    (rc = vmres_addr_allocator_create(last, first, &bad)) != VMRES_E_INVALID_RANGE)
		FAIL("create inverted = %s", en(rc));
	if (bad != (void *)1)
		FAIL("out written");
	struct vmres_mem_ops nofree = { hook_alloc, NULL, NULL };
	if (vmres_addr_allocator_create_ex(first, last, &nofree, &bad) != VMRES_E_INVALID_ARGUMENT)
		FAIL("create_ex no free");

	struct hctx *hc = NULL;
	struct vmres_mem_ops ops;
	if (plain)
		rc = vmres_addr_allocator_create(first, last, &a);
	else {
		hook_inject = (mode & 4) ? inject : 0; /* else a working create */
		long f0 = atomic_load(&hook_fail_count);
		hc = new_ctx(&ops);
		rc = vmres_addr_allocator_create_ex(first, last, &ops, &a);
		hook_inject = 0;
		atomic_store(&hook_pos, 0);
		if (rc == VMRES_E_NOMEM) {
			if (atomic_load(&hook_fail_count) == f0)
				FAIL("create NOMEM without failure");
			if (a)
				FAIL("out written on NOMEM");
			if (atomic_load(&hc->out) != 0)
				FAIL("create failure leaked");
			free(hc);
			return 0;
		}
	}
	if (rc)
		FAIL("create [%#llx,%#llx] = %s", (unsigned long long)first,
		     (unsigned long long)last, en(rc));
	hook_inject = inject;
	do_stats(a);

	int nops = 0, nbarrier = 0;
	while (rd_more(&r) && nops < 2500) {
		nops++;
		uint8_t op = u8(&r);
		long a0 = atomic_load(&hook_allocs);
		switch (op % 12) {
		case 0:
		case 1:
		case 2:
		case 3:
			do_alloc(a, &r, 0);
			break;
		case 4:
		case 5:
		case 6:
			do_free(a, &r);
			break;
		case 7:
		case 8:
			do_lookup(a, &r);
			if (atomic_load(&hook_allocs) != a0)
				FAIL("lookup called hook");
			break;
		case 9:
			do_stats(a);
			if (atomic_load(&hook_allocs) != a0)
				FAIL("stats called hook");
			break;
		case 10:
			do_foreach(a, &r);
			break;
		default: {
			if ((op & 0xf0) == 0xf0 && nbarrier < 4) {
				/* let retired versions reach the pool, so writers reuse spares */
				nbarrier++;
				vmres_rcu_barrier();
				break;
			}
			struct vmres_addr_request q = { 1, 1, VMRES_FIRST_MATCH, 0, 0 };
			struct vmres_range o;
			struct vmres_addr_stats s;
			if (vmres_addr_alloc(NULL, &q, &o) != VMRES_E_INVALID_ARGUMENT ||
			    vmres_addr_alloc(a, NULL, &o) != VMRES_E_INVALID_ARGUMENT ||
			    vmres_addr_alloc(a, &q, NULL) != VMRES_E_INVALID_ARGUMENT)
				FAIL("alloc NULL");
			q.size = 0;
			if (vmres_addr_alloc(NULL, &q, &o) != VMRES_E_INVALID_ARGUMENT)
				FAIL("alloc NULL a with size 0");
			if (vmres_addr_free(NULL, (struct vmres_range){ 1, 0 }) !=
			    VMRES_E_INVALID_ARGUMENT)
				FAIL("free NULL");
			if (vmres_addr_lookup(NULL, first, &o, NULL) != VMRES_E_INVALID_ARGUMENT)
				FAIL("lookup NULL");
			if (vmres_addr_foreach(NULL, walk_cb, NULL) != VMRES_E_INVALID_ARGUMENT ||
			    vmres_addr_foreach(a, NULL, NULL) != VMRES_E_INVALID_ARGUMENT)
				FAIL("foreach NULL");
			if (vmres_addr_stats(NULL, &s) != VMRES_E_INVALID_ARGUMENT ||
			    vmres_addr_stats(a, NULL) != VMRES_E_INVALID_ARGUMENT)
				FAIL("stats NULL");
			break;
		}
		}
	}
	hook_inject = 0;
	do_stats(a);
	W.idx = 0;
	W.stop_at = -1;
	W.do_alloc = 0;
	memcpy(W.snap, R, (size_t)nr * sizeof R[0]);
	W.nsnap = nr;
	if (vmres_addr_foreach(a, walk_cb, &W) != 0 || W.idx != nr)
		FAIL("final foreach");
	FUZZ_DESTROY(vmres_addr_allocator_destroy, a, hc);
	return 0;
}
