/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libFuzzer harness: system layer (layout validation, batches, frees, lookups). */
#include "fuzz_common.h"

typedef unsigned __int128 u128;
#define K VMRES_KIND_COUNT
#define MAXR 512
#define IDW 512
enum { NEVER = 0, HELD = 1, FREED = 2 };

struct mr {
	uint64_t s, e, tag;
};
struct model {
	struct mr r[3][MAXR];
	int nr[3];
	uint8_t st[K][IDW];
};
static struct model Mo, Tmp;
static struct vmres_layout L;
static uint32_t idw[K]; /* modelled ID window per kind */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vmres_thread_register();
	struct vmres_layout d;
	vmres_layout_x86_64_default(&d);
	static const uint64_t want[K][2] = { { 0, 0xffff },
					     { 0xc0000000, 0xe7ffffff },
					     { 0x4000000000, 0x7fffffffff },
					     { 5, 23 },
					     { 24, 4095 },
					     { 0, 65535 },
					     { 0, 508 } };
	for (int k = 0; k < K; k++)
		if (!d.present[k] || d.span[k].start != want[k][0] || d.span[k].end != want[k][1])
			FAIL("default layout kind %d", k);
	vmres_layout_x86_64_default(NULL);
	return 0;
}

static int is_addr(int k)
{
	return k <= VMRES_MMIO64;
}
static int is_pow2(uint64_t a)
{
	return a && !(a & (a - 1));
}

/* ---- address model helpers (on struct model m, kind k) ---- */
static int gap(struct model *m, int k, int i, u128 *g0, u128 *g1)
{
	struct mr *R = m->r[k];
	int nr = m->nr[k];
	u128 lo = i == 0 ? (u128)L.span[k].start : (u128)R[i - 1].e + 1;
	if (i < nr && R[i].s == 0)
		return 0;
	u128 hi = i == nr ? (u128)L.span[k].end : (u128)R[i].s - 1;
	if (lo > hi)
		return 0;
	*g0 = lo;
	*g1 = hi;
	return 1;
}
static int afit(struct model *m, int k, uint64_t size, uint64_t align, int last, uint64_t *out)
{
	int nr = m->nr[k];
	for (int j = 0; j <= nr; j++) {
		int i = last ? nr - j : j;
		u128 g0, g1;
		if (!gap(m, k, i, &g0, &g1))
			continue;
		if (g1 - g0 + 1 < size)
			continue;
		u128 s = last ? (g1 - size + 1) / align * align : (g0 + align - 1) / align * align;
		if (s >= g0 && s + size - 1 <= g1) {
			*out = (uint64_t)s;
			return 1;
		}
	}
	return 0;
}
static int afind(struct model *m, int k, uint64_t a)
{
	for (int i = 0; i < m->nr[k]; i++)
		if (m->r[k][i].s <= a && a <= m->r[k][i].e)
			return i;
	return -1;
}
static int aoverlap(struct model *m, int k, uint64_t s, uint64_t e)
{
	for (int i = 0; i < m->nr[k]; i++)
		if (!(m->r[k][i].e < s || m->r[k][i].s > e))
			return 1;
	return 0;
}
static void ainsert(struct model *m, int k, uint64_t s, uint64_t e, uint64_t tag)
{
	int i = 0;
	while (i < m->nr[k] && m->r[k][i].s < s)
		i++;
	memmove(&m->r[k][i + 1], &m->r[k][i], (size_t)(m->nr[k] - i) * sizeof(struct mr));
	m->r[k][i] = (struct mr){ s, e, tag };
	m->nr[k]++;
}
static void aremove(struct model *m, int k, int i)
{
	memmove(&m->r[k][i], &m->r[k][i + 1], (size_t)(m->nr[k] - i - 1) * sizeof(struct mr));
	m->nr[k]--;
}

/* ID state of any id (beyond window: NEVER). -1 outside span */
static int idstate(struct model *m, int k, uint64_t id)
{
	if (id < L.span[k].start || id > L.span[k].end)
		return -1;
	uint64_t off = id - L.span[k].start;
	return off < idw[k] ? m->st[k][off] : NEVER;
}

/* phase-1 check per system.h; returns error */
static int check_req(const struct vmres_request *q)
{
	int k = (int)q->kind;
	if ((unsigned)q->kind >= K)
		return VMRES_E_INVALID_ARGUMENT;
	if (!L.present[k])
		return VMRES_E_NOT_FOUND;
	uint64_t fs = L.span[k].start, ls = L.span[k].end;
	if (!is_addr(k)) {
		if (q->size != 1)
			return VMRES_E_INVALID_SIZE;
		if (q->policy != VMRES_FIRST_MATCH && q->policy != VMRES_EXACT_MATCH)
			return VMRES_E_INVALID_ARGUMENT;
		if (q->policy == VMRES_EXACT_MATCH && (q->fixed < fs || q->fixed > ls))
			return VMRES_E_OUT_OF_RANGE;
		return 0;
	}
	if (q->size == 0)
		return VMRES_E_INVALID_SIZE;
	if (!is_pow2(q->align))
		return VMRES_E_INVALID_ALIGNMENT;
	if ((unsigned)q->policy > VMRES_EXACT_MATCH)
		return VMRES_E_INVALID_ARGUMENT;
	if (q->policy != VMRES_EXACT_MATCH) {
		static struct model empty; /* zero ranges */
		uint64_t s;
		return afit(&empty, k, q->size, q->align, q->policy == VMRES_LAST_MATCH, &s)
			       ? 0
			       : VMRES_E_EXHAUSTED;
	}
	if (q->fixed % q->align)
		return VMRES_E_UNALIGNED_ADDRESS;
	if (q->fixed < fs || (u128)q->fixed + q->size - 1 > ls)
		return VMRES_E_OUT_OF_RANGE;
	return 0;
}

/* phase 2 on model m: returns error (or 0 and fills *res); -100 = beyond model */
static int take(struct model *m, const struct vmres_request *q, struct vmres_resource *res)
{
	int k = (int)q->kind;
	if (is_addr(k)) {
		uint64_t s;
		if (q->policy == VMRES_EXACT_MATCH) {
			if (aoverlap(m, k, q->fixed, q->fixed + q->size - 1))
				return VMRES_E_IN_USE;
			s = q->fixed;
		} else if (!afit(m, k, q->size, q->align, q->policy == VMRES_LAST_MATCH, &s))
			return VMRES_E_EXHAUSTED;
		if (m->nr[k] >= MAXR)
			return -100;
		ainsert(m, k, s, s + q->size - 1, q->tag);
		*res = (struct vmres_resource){ (enum vmres_kind)k,
						{ s, s + q->size - 1 },
						q->tag };
		return 0;
	}
	uint64_t id;
	if (q->policy == VMRES_EXACT_MATCH) {
		int s = idstate(m, k, q->fixed);
		if (s == HELD)
			return VMRES_E_IN_USE;
		if (q->fixed - L.span[k].start >= idw[k])
			return -100;
		id = q->fixed;
	} else {
		uint32_t i;
		for (i = 0; i < idw[k]; i++)
			if (m->st[k][i] != HELD)
				break;
		if (i == idw[k]) {
			if ((u128)L.span[k].end - L.span[k].start + 1 > idw[k])
				return -100;
			return VMRES_E_EXHAUSTED;
		}
		id = L.span[k].start + i;
	}
	m->st[k][id - L.span[k].start] = HELD;
	*res = (struct vmres_resource){ (enum vmres_kind)k, { id, id }, q->tag };
	return 0;
}

static int check_res(const struct vmres_resource *r)
{
	int k = (int)r->kind;
	if ((unsigned)r->kind >= K)
		return VMRES_E_INVALID_ARGUMENT;
	if (!L.present[k])
		return VMRES_E_NOT_FOUND;
	if (r->range.start > r->range.end)
		return VMRES_E_INVALID_RANGE;
	if (!is_addr(k)) {
		if (r->range.start != r->range.end)
			return VMRES_E_INVALID_SIZE;
		if (r->range.start > UINT32_MAX)
			return VMRES_E_OUT_OF_RANGE;
	}
	return 0;
}

static int give(struct model *m, const struct vmres_resource *r)
{
	int k = (int)r->kind;
	if (is_addr(k)) {
		int i = afind(m, k, r->range.start);
		if (i < 0 || m->r[k][i].s != r->range.start || m->r[k][i].e != r->range.end)
			return VMRES_E_NOT_FOUND;
		aremove(m, k, i);
		return 0;
	}
	int s = idstate(m, k, r->range.start);
	if (s < 0)
		return VMRES_E_OUT_OF_RANGE;
	if (s == NEVER)
		return VMRES_E_NEVER_ALLOCATED;
	if (s == FREED)
		return VMRES_E_ALREADY_FREED;
	m->st[k][r->range.start - L.span[k].start] = FREED;
	return 0;
}

static int res_eq(const struct vmres_resource *a, const struct vmres_resource *b)
{
	return a->kind == b->kind && a->range.start == b->range.start &&
	       a->range.end == b->range.end && a->tag == b->tag;
}

/* ---- input-driven values ---- */
static struct vmres_resource held[64];
static int nheld;
static struct vmres_resource stale[16];
static int nstale;

static uint64_t pick_val(struct rd *r, int k)
{
	uint8_t b = u8(r);
	uint64_t fs = L.span[k % K].start, ls = L.span[k % K].end;
	switch (b % 8) {
	case 0:
		return fs;
	case 1:
		return ls;
	case 2:
		return fs - 1;
	case 3:
		return ls + 1;
	case 4:
		return u64(r);
	case 5:
		return fs + u16(r) % 600;
	case 6:
		return (b & 8) ? (uint64_t)UINT32_MAX + (b >> 7) : (b >> 7) ? UINT64_MAX : 0;
	default:
		return fs + u8(r);
	}
}

static void gen_req(struct rd *r, struct vmres_request *q)
{
	uint8_t b = u8(r);
	int k = b % 8 == 7 ? ((b & 8) ? K : 1000) : b % 8;
	if (b % 8 == 7 && (b & 16))
		k = -1;
	q->kind = (enum vmres_kind)k;
	int kk = (unsigned)k < K ? k : 0;
	uint8_t c = u8(r);
	if (!is_addr(kk) && (c & 3))
		q->size = 1;
	else
		switch (c % 8) {
		case 0:
			q->size = 0;
			break;
		case 1:
			q->size = u64(r);
			break;
		case 2:
			q->size = (uint64_t)1 << (u8(r) % 64);
			break;
		case 3: {
			u128 sp = (u128)L.span[kk].end - L.span[kk].start + 1;
			q->size = sp > UINT64_MAX ? UINT64_MAX : (uint64_t)sp + (c >> 7);
			break;
		}
		default:
			q->size = 1 + u8(r) % 64 * (c >> 6 ? 16 : 1);
		}
	uint8_t d = u8(r);
	switch (d % 6) {
	case 0:
	case 1:
	case 2:
		q->align = 1;
		break;
	case 3:
		q->align = (uint64_t)1 << (u8(r) % 64);
		break;
	case 4:
		q->align = (d & 8) ? 0 : 3;
		break;
	default:
		q->align = (uint64_t)1 << (d >> 4);
	}
	uint8_t p = u8(r);
	q->policy = (enum vmres_policy)(p % 8 < 3 ? p % 3 : p % 8 == 3 ? 9 : p % 8 < 6 ? 2 : 0);
	q->fixed = pick_val(r, kk);
	if ((p & 0x40) && is_pow2(q->align))
		q->fixed &= ~(q->align - 1);
	q->tag = u16(r);
}

static void gen_res(struct rd *r, struct vmres_resource *x)
{
	uint8_t b = u8(r);
	switch (b % 6) {
	case 0:
	case 1:
		if (nheld) {
			*x = held[u8(r) % nheld];
			return;
		}
		/* fallthrough */
	case 2:
		if (nstale) {
			*x = stale[u8(r) % nstale];
			return;
		}
		/* fallthrough */
	case 3:
		if (nheld) { /* mismatched */
			*x = held[u8(r) % nheld];
			uint8_t c = u8(r);
			if (c & 1)
				x->range.end += 1;
			if (c & 2)
				x->range.start -= 1;
			if (c & 4)
				x->kind = (enum vmres_kind)((x->kind + 1 + (c >> 5)) % K);
			if (c & 8)
				x->range.end = x->range.start - 1;
			return;
		}
		/* fallthrough */
	default: {
		int k = u8(r) % 9;
		x->kind = (enum vmres_kind)(k == 8 ? -1 : k);
		x->range.start = pick_val(r, k % K);
		x->range.end = (b & 0x80) ? x->range.start : pick_val(r, k % K);
		x->tag = 0;
	}
	}
}

static void add_held(const struct vmres_resource *x)
{
	if (nheld < 64)
		held[nheld++] = *x;
	else
		held[x->range.start % 64] = *x;
}

static void refresh_held(void)
{
	/* drop entries no longer held in the model */
	int j = 0;
	for (int i = 0; i < nheld; i++) {
		struct vmres_resource *x = &held[i];
		int k = x->kind, ok;
		if (is_addr(k)) {
			int a = afind(&Mo, k, x->range.start);
			ok = a >= 0 && Mo.r[k][a].s == x->range.start &&
			     Mo.r[k][a].e == x->range.end;
		} else
			ok = idstate(&Mo, k, x->range.start) == HELD;
		if (ok)
			held[j++] = *x;
		else if (nstale < 16)
			stale[nstale++] = *x;
		else
			stale[x->range.start % 16] = *x;
	}
	nheld = j;
}

static void lookup_check(struct vmres_system *sys, int k, uint64_t a)
{
	struct vmres_resource o = { 0 };
	int rc = vmres_system_lookup(sys, (enum vmres_kind)k, a, &o);
	int want;
	if ((unsigned)k >= K)
		want = VMRES_E_INVALID_ARGUMENT;
	else if (!L.present[k])
		want = VMRES_E_NOT_FOUND;
	else if (a < L.span[k].start || a > L.span[k].end)
		want = VMRES_E_OUT_OF_RANGE;
	else if (is_addr(k)) {
		int i = afind(&Mo, k, a);
		want = i < 0 ? VMRES_E_NOT_FOUND : 0;
		if (!rc && i >= 0 &&
		    (o.kind != (enum vmres_kind)k || o.range.start != Mo.r[k][i].s ||
		     o.range.end != Mo.r[k][i].e || o.tag != Mo.r[k][i].tag))
			FAIL("lookup(%d,%#llx) wrong resource", k, (unsigned long long)a);
	} else {
		want = idstate(&Mo, k, a) == HELD ? 0 : VMRES_E_NOT_FOUND;
		if (!rc && (o.range.start != a || o.range.end != a || o.tag != 0))
			FAIL("lookup id wrong resource");
	}
	if (rc != want)
		FAIL("lookup(kind %d, %#llx) = %s want %s", k, (unsigned long long)a, en(rc),
		     en(want));
}

static void full_check(struct vmres_system *sys)
{
	for (int k = 0; k < K; k++) {
		if (!L.present[k]) {
			lookup_check(sys, k, L.span[k].start);
			continue;
		}
		if (is_addr(k)) {
			struct vmres_addr_stats s;
			if (vmres_system_addr_stats(sys, (enum vmres_kind)k, &s))
				FAIL("stats");
			u128 bytes = 0, lf = 0;
			for (int i = 0; i < Mo.nr[k]; i++) {
				bytes += (u128)Mo.r[k][i].e - Mo.r[k][i].s + 1;
				lookup_check(sys, k, Mo.r[k][i].s);
				lookup_check(sys, k, Mo.r[k][i].e);
				lookup_check(sys, k, Mo.r[k][i].e + 1);
			}
			for (int i = 0; i <= Mo.nr[k]; i++) {
				u128 g0, g1;
				if (gap(&Mo, k, i, &g0, &g1) && g1 - g0 + 1 > lf)
					lf = g1 - g0 + 1;
			}
			if (bytes > UINT64_MAX)
				bytes = UINT64_MAX;
			if (lf > UINT64_MAX)
				lf = UINT64_MAX;
			if (s.ranges != (uint64_t)Mo.nr[k] ||
			    s.allocated_bytes != (uint64_t)bytes || s.largest_free != (uint64_t)lf)
				FAIL("kind %d stats {%llu,%#llx,%#llx} want {%d,%#llx,%#llx}", k,
				     (unsigned long long)s.ranges,
				     (unsigned long long)s.allocated_bytes,
				     (unsigned long long)s.largest_free, Mo.nr[k],
				     (unsigned long long)bytes, (unsigned long long)lf);
		} else {
			for (uint32_t i = 0; i < idw[k]; i++)
				lookup_check(sys, k, L.span[k].start + i);
		}
	}
}

/* an embedder callback that always fails (for vmres_allocate_batch) */
static int ext_calls;
static int ext_alloc(struct vmres_allocator *self, const struct vmres_request *q,
		     struct vmres_resource *o)
{
	(void)self;
	(void)q;
	(void)o;
	ext_calls++;
	return VMRES_E_EXHAUSTED;
}
static int ext_free(struct vmres_allocator *self, const struct vmres_resource *r)
{
	(void)self;
	(void)r;
	FAIL("ext free called: it never allocated");
}
static struct vmres_allocator ext = { ext_alloc, ext_free };

static void gen_layout(struct rd *r)
{
	memset(&L, 0, sizeof L);
	vmres_layout_x86_64_default(&L);
	uint8_t pres = u8(r);
	uint8_t how = u8(r);
	for (int k = 0; k < K; k++) {
		L.present[k] = (pres >> k) & 1;
		if (!((how >> (k % 8)) & 1))
			continue; /* keep default span */
		uint8_t b = u8(r);
		uint64_t lim =
			k == VMRES_PIO ? 0xffff : (k == VMRES_MMIO64 ? UINT64_MAX : UINT32_MAX);
		switch (b % 8) {
		case 0:
			L.span[k].start = 0;
			L.span[k].end = u8(r);
			break;
		case 1:
			L.span[k].start = lim - u8(r);
			L.span[k].end = lim + ((b & 8) ? 1 : 0);
			break;
		case 2:
			L.span[k].start = u64(r);
			L.span[k].end = u64(r);
			break;
		case 3:
			L.span[k].start = L.span[k].end = (b & 8) ? lim : u8(r);
			break;
		case 4:
			L.span[k].start = u32(r) % (lim + 1 == 0 ? UINT64_MAX : lim + 1);
			L.span[k].end = L.span[k].start + u16(r);
			break;
		case 5:
			L.span[k].start = 0;
			L.span[k].end = lim;
			break;
		case 6:
			L.span[k].start = u8(r);
			L.span[k].end = L.span[k].start + u8(r) % 20;
			break;
		default:
			L.span[k].start = L.span[k].end + 1; /* inverted */
		}
	}
	if (how & 0x80) { /* maybe overlap the pairs */
		L.span[VMRES_MMIO64] = L.span[VMRES_MMIO32];
		L.span[VMRES_MSI_GSI].start = L.span[VMRES_LEGACY_IRQ].end;
		if (L.span[VMRES_MSI_GSI].end < L.span[VMRES_MSI_GSI].start)
			L.span[VMRES_MSI_GSI].end = L.span[VMRES_MSI_GSI].start;
	}
}

/* set of acceptable create errors (bitmask over -err) */
static unsigned layout_errors(void)
{
	unsigned m = 0;
	for (int k = 0; k < K; k++) {
		if (!L.present[k])
			continue;
		if (L.span[k].start > L.span[k].end)
			m |= 1u << -VMRES_E_INVALID_RANGE;
		if (!is_addr(k) && L.span[k].end > UINT32_MAX)
			m |= 1u << -VMRES_E_OUT_OF_RANGE;
		if (k == VMRES_MMIO32 && L.span[k].end > UINT32_MAX)
			m |= 1u << -VMRES_E_OUT_OF_RANGE;
		if (k == VMRES_PIO && L.span[k].end > 0xffff)
			m |= 1u << -VMRES_E_OUT_OF_RANGE;
	}
	for (int p = 0; p < 2; p++) {
		int a = p ? VMRES_LEGACY_IRQ : VMRES_MMIO32, b = a + 1;
		if (L.present[a] && L.present[b] && L.span[a].start <= L.span[b].end &&
		    L.span[b].start <= L.span[a].end)
			m |= 1u << -VMRES_E_INVALID_RANGE;
	}
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rd r = { data, len, 0 };
	if (len < 4)
		return 0;
	uint8_t mode = u8(&r);
	int inject = hook_mode(mode);
	gen_layout(&r);
	hook_read_schedule(&r, (mode >> 3) % 17);

	struct vmres_system *sys = NULL;
	unsigned errs = layout_errors();
	struct vmres_mem_ops ops;
	struct hctx *hc = new_ctx(&ops);
	if (vmres_system_create_ex(NULL, &hook_ops, &sys) != VMRES_E_INVALID_ARGUMENT ||
	    vmres_system_create_ex(&L, &hook_ops, NULL) != VMRES_E_INVALID_ARGUMENT)
		FAIL("create NULL");
	hook_inject = (mode & 4) ? inject : 0; /* most inputs: a working create */
	long f0 = atomic_load(&hook_fail_count);
	int rc = vmres_system_create_ex(&L, &ops, &sys);
	hook_inject = 0;
	atomic_store(&hook_pos, 0);
	if (errs) {
		if (rc >= 0 || !(errs & (1u << -rc)))
			FAIL("create with bad layout = %s (acceptable mask %#x)", en(rc), errs);
		if (sys)
			FAIL("out written");
		free(hc);
		return 0;
	}
	if (rc) {
		if ((rc != VMRES_E_NOMEM && rc != VMRES_E_INVALID_ARGUMENT) ||
		    atomic_load(&hook_fail_count) == f0)
			FAIL("create = %s", en(rc));
		if (atomic_load(&hc->out) != 0)
			FAIL("failed create left %ld blocks", atomic_load(&hc->out));
		free(hc);
		return 0;
	}
	{
		struct vmres_layout g;
		if (vmres_system_layout(sys, &g))
			FAIL("layout");
		for (int k = 0; k < K; k++)
			if (g.present[k] != L.present[k] || g.span[k].start != L.span[k].start ||
			    g.span[k].end != L.span[k].end)
				FAIL("layout copy");
	}
	for (int k = 0; k < K; k++) {
		struct vmres_allocator *a = (void *)1;
		int e = vmres_system_get_allocator(sys, (enum vmres_kind)k, &a);
		if (L.present[k] ? (e || !a) : (e != VMRES_E_NOT_FOUND || a != (void *)1))
			FAIL("get_allocator %d = %s", k, en(e));
		if ((vmres_system_allocator(sys, (enum vmres_kind)k) != NULL) != L.present[k])
			FAIL("allocator %d", k);
		uint64_t sz = (u128)L.span[k].end - L.span[k].start + 1 > IDW
				      ? IDW
				      : L.span[k].end - L.span[k].start + 1;
		idw[k] = is_addr(k) ? 0 : (uint32_t)sz;
	}
	memset(&Mo, 0, sizeof Mo);
	nheld = nstale = 0;
	hook_inject = inject;

	int nops = 0, nbarrier = 0;
	struct vmres_system_counters c0, c1;
	while (rd_more(&r) && nops < 600) {
		nops++;
		uint8_t op = u8(&r);
		f0 = atomic_load(&hook_fail_count);
		switch (op % 8) {
		case 0:
		case 1:
		case 2:
		case 3: { /* batch */
			int n = 1 + (op >> 5);
			struct vmres_request q[8];
			struct vmres_resource out[8];
			for (int i = 0; i < n; i++)
				gen_req(&r, &q[i]);
			int use_table = (op & 0x10) && n > 1;
			struct vmres_allocator *table[K];
			int ext_kind = -1, wrong_kind = -1;
			if (use_table) {
				uint8_t t = u8(&r);
				for (int k = 0; k < K; k++)
					table[k] = vmres_system_allocator(sys, (enum vmres_kind)k);
				if (t & 1) {
					ext_kind = (t >> 1) % K;
					table[ext_kind] = &ext;
				}
				if (t & 0x10) {
					wrong_kind = (t >> 5) % K;
					if (wrong_kind != ext_kind)
						table[wrong_kind] = vmres_system_allocator(
							sys,
							(enum vmres_kind)((wrong_kind + 1) % K));
					else
						wrong_kind = -1;
				}
			}
			/* expected */
			int want = 0;
			size_t widx = VMRES_NO_INDEX;
			for (int i = 0; i < n && !want; i++) {
				int k = (int)q[i].kind, e;
				if (use_table) {
					if ((unsigned)k >= K)
						e = VMRES_E_INVALID_ARGUMENT;
					else if (!table[k])
						e = VMRES_E_NOT_FOUND;
					else if (k == ext_kind)
						e = 0;
					else if (k == wrong_kind)
						e = VMRES_E_INVALID_ARGUMENT;
					else
						e = check_req(&q[i]);
				} else
					e = check_req(&q[i]);
				if (e) {
					want = e;
					widx = (size_t)i;
				}
			}
			struct vmres_resource wout[8];
			memset(wout, 0, sizeof wout);
			int beyond = 0, phase2 = 0, ext_fail = 0;
			memcpy(&Tmp, &Mo, sizeof Mo);
			for (int i = 0; i < n && !want; i++) {
				if ((int)q[i].kind == ext_kind) {
					want = VMRES_E_EXHAUSTED;
					widx = (size_t)i;
					ext_fail = 1;
					break;
				}
				int e = take(&Tmp, &q[i], &wout[i]);
				if (e == -100) {
					beyond = 1;
					break;
				}
				if (e) {
					want = e;
					widx = (size_t)i;
					phase2 = 1;
				}
			}
			if (beyond)
				break;
			size_t fidx = 12345;
			vmres_system_counters(sys, &c0);
			ext_calls = 0;
			if (inject && (op & 8))
				hook_budget = u8(&r) % 24;
			int use_plain = !use_table && !(op & 8) && !inject;
			rc = use_table	  ? vmres_allocate_batch(table, q, (size_t)n, out, &fidx)
			     : !use_plain ? vmres_system_allocate_ex(sys, q, (size_t)n, out, &fidx)
					  : vmres_system_allocate(sys, q, (size_t)n, out);
			hook_budget = -1;
			vmres_system_counters(sys, &c1);
			if (use_plain)
				fidx = rc ? widx : VMRES_NO_INDEX;
			if (c1.rollback_leaks != c0.rollback_leaks) {
				/* model can no longer tell what is held: stop here */
				goto done_nocheck;
			}
			int injected = atomic_load(&hook_fail_count) != f0;
			if (rc == VMRES_E_NOMEM && injected &&
			    (!want || ((phase2 || ext_fail) && fidx < widx))) {
				/* failed at fidx: everything before rolled back */
				size_t upto = fidx;
				for (size_t i = 0; i < upto && i < (size_t)n; i++)
					if (!is_addr(q[i].kind)) {
						uint64_t id = wout[i].range.start;
						Mo.st[q[i].kind][id - L.span[q[i].kind].start] =
							FREED;
					}
				if (c1.rollbacks != c0.rollbacks + 1)
					FAIL("NOMEM batch: rollbacks %llu -> %llu",
					     (unsigned long long)c0.rollbacks,
					     (unsigned long long)c1.rollbacks);
				break;
			}
			if (rc != want || fidx != widx)
				FAIL("batch n=%d%s = %s idx %zu, want %s idx %zu", n,
				     use_table ? " (table)" : "", en(rc), fidx, en(want), widx);
			if (rc == 0) {
				for (int i = 0; i < n; i++)
					if (!res_eq(&out[i], &wout[i]))
						FAIL("batch out[%d] = {%d,[%#llx,%#llx],%llu} want "
						     "{%d,[%#llx,%#llx],%llu}",
						     i, out[i].kind,
						     (unsigned long long)out[i].range.start,
						     (unsigned long long)out[i].range.end,
						     (unsigned long long)out[i].tag, wout[i].kind,
						     (unsigned long long)wout[i].range.start,
						     (unsigned long long)wout[i].range.end,
						     (unsigned long long)wout[i].tag);
				memcpy(&Mo, &Tmp, sizeof Mo);
				for (int i = 0; i < n; i++)
					add_held(&out[i]);
				if (c1.rollbacks != c0.rollbacks)
					FAIL("rollbacks grew on success");
			} else {
				for (size_t i = 0; phase2 | ext_fail && i < widx; i++)
					if (!is_addr(q[i].kind)) {
						uint64_t id = wout[i].range.start;
						Mo.st[q[i].kind][id - L.span[q[i].kind].start] =
							FREED;
					}
				uint64_t wr = c0.rollbacks + (phase2 ? 1 : 0);
				if (c1.rollbacks != wr)
					FAIL("rollbacks %llu -> %llu (phase2 %d ext %d)",
					     (unsigned long long)c0.rollbacks,
					     (unsigned long long)c1.rollbacks, phase2, ext_fail);
			}
			/* spot-check what the batch touched */
			for (int i = 0; i < n; i++)
				if ((unsigned)q[i].kind < K && L.present[q[i].kind]) {
					lookup_check(sys, q[i].kind, wout[i].range.start);
					lookup_check(sys, q[i].kind, q[i].fixed);
				}
			break;
		}
		case 4:
		case 5: { /* free_ex */
			int n = 1 + (op >> 6);
			struct vmres_resource x[4];
			for (int i = 0; i < n; i++)
				gen_res(&r, &x[i]);
			int want = 0;
			size_t widx = VMRES_NO_INDEX, fidx = 999;
			for (int i = 0; i < n && !want; i++)
				if ((want = check_res(&x[i])))
					widx = (size_t)i;
			memcpy(&Tmp, &Mo, sizeof Mo);
			int stopped = -1;
			for (int i = 0; i < n && !want; i++) {
				int e = give(&Tmp, &x[i]);
				if (e) {
					want = e;
					widx = (size_t)i;
				}
				stopped = i;
			}
			(void)stopped;
			int check_fail = 0;
			for (int i = 0; i < n; i++)
				if (check_res(&x[i]))
					check_fail = 1;
			rc = vmres_system_free_ex(sys, x, (size_t)n, &fidx);
			if (rc == VMRES_E_NOMEM && atomic_load(&hook_fail_count) != f0 &&
			    !check_fail && (!want || fidx < widx)) {
				/* entries before fidx were freed */
				for (size_t i = 0; i < fidx; i++)
					give(&Mo, &x[i]);
				refresh_held();
				break;
			}
			if (rc != want || fidx != widx)
				FAIL("free_ex n=%d = %s idx %zu want %s idx %zu (first kind %d "
				     "[%#llx,%#llx])",
				     n, en(rc), fidx, en(want), widx, x[0].kind,
				     (unsigned long long)x[0].range.start,
				     (unsigned long long)x[0].range.end);
			if (want == 0 || widx != VMRES_NO_INDEX) {
				/* apply frees before the failure (or all) */
				if (!check_fail) {
					size_t upto = want ? widx : (size_t)n;
					for (size_t i = 0; i < upto; i++)
						give(&Mo, &x[i]);
				}
			}
			refresh_held();
			for (int i = 0; i < n; i++)
				lookup_check(sys, (int)x[i].kind, x[i].range.start);
			break;
		}
		case 6: { /* lookups */
			uint8_t b = u8(&r);
			int k = b % 9;
			lookup_check(sys, k == 8 ? 99 : k, pick_val(&r, k % K));
			break;
		}
		default: { /* checks + NULL args + single callback */
			uint8_t b = u8(&r);
			if ((b & 0xf0) == 0xf0 && nbarrier < 4) {
				nbarrier++;
				vmres_rcu_barrier();
			}
			if (b & 1)
				full_check(sys);
			struct vmres_resource o;
			size_t fi = 5;
			if (vmres_system_allocate_ex(NULL, NULL, 0, NULL, &fi) !=
				    VMRES_E_INVALID_ARGUMENT ||
			    fi != VMRES_NO_INDEX)
				FAIL("allocate_ex NULL sys");
			fi = 5;
			if (vmres_system_allocate_ex(sys, NULL, 1, &o, &fi) !=
				    VMRES_E_INVALID_ARGUMENT ||
			    fi != VMRES_NO_INDEX)
				FAIL("allocate_ex NULL reqs");
			fi = 5;
			if (vmres_system_allocate_ex(sys, NULL, 0, NULL, &fi) != 0 ||
			    fi != VMRES_NO_INDEX)
				FAIL("allocate_ex n=0");
			fi = 5;
			if (vmres_system_free_ex(sys, NULL, 2, &fi) != VMRES_E_INVALID_ARGUMENT ||
			    fi != VMRES_NO_INDEX)
				FAIL("free_ex NULL");
			if (vmres_system_free_ex(sys, NULL, 0, &fi) != 0 || fi != VMRES_NO_INDEX)
				FAIL("free_ex n=0");
			if (vmres_system_lookup(sys, VMRES_PIO, 0, NULL) !=
			    VMRES_E_INVALID_ARGUMENT)
				FAIL("lookup NULL out");
			if (b & 2) { /* single callback allocate/free */
				struct vmres_request q;
				gen_req(&r, &q);
				int k = (unsigned)q.kind < K ? (int)q.kind : 0;
				struct vmres_allocator *a =
					vmres_system_allocator(sys, (enum vmres_kind)k);
				if (!a)
					break;
				int want = q.kind != (enum vmres_kind)k ? VMRES_E_INVALID_ARGUMENT
									: check_req(&q);
				struct vmres_resource wo;
				memcpy(&Tmp, &Mo, sizeof Mo);
				if (!want) {
					want = take(&Tmp, &q, &wo);
					if (want == -100)
						break;
				}
				rc = a->allocate(a, &q, &o);
				if (rc == VMRES_E_NOMEM && !want &&
				    atomic_load(&hook_fail_count) != f0)
					break;
				if (rc != want)
					FAIL("callback allocate = %s want %s", en(rc), en(want));
				if (!rc) {
					if (!res_eq(&o, &wo))
						FAIL("callback out");
					memcpy(&Mo, &Tmp, sizeof Mo);
					add_held(&o);
					if (b & 4) {
						rc = a->free(a, &o);
						if (rc == VMRES_E_NOMEM &&
						    atomic_load(&hook_fail_count) != f0)
							break;
						if (rc)
							FAIL("callback free = %s", en(rc));
						give(&Mo, &o);
						refresh_held();
					}
				}
				if (a->allocate(NULL, &q, &o) != VMRES_E_INVALID_ARGUMENT ||
				    a->allocate(a, NULL, &o) != VMRES_E_INVALID_ARGUMENT ||
				    a->free(NULL, &o) != VMRES_E_INVALID_ARGUMENT ||
				    a->free(a, NULL) != VMRES_E_INVALID_ARGUMENT)
					FAIL("callback NULL");
			}
			break;
		}
		}
	}
	hook_inject = 0;
	full_check(sys);
done_nocheck:
	hook_inject = 0;
	if (getenv("FUZZ_DEBUG")) {
		struct vmres_system_counters c;
		vmres_system_counters(sys, &c);
		fprintf(stderr, "inject %d nops %d rollbacks %llu fallbacks %llu leaks %llu\n",
			inject, nops, (unsigned long long)c.rollbacks,
			(unsigned long long)c.reserve_fallbacks,
			(unsigned long long)c.rollback_leaks);
	}
	FUZZ_DESTROY(vmres_system_destroy, sys, hc);
	return 0;
}
