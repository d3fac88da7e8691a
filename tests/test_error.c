/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Error strings, version, memory-hook and thread-registration basics. */
#include "vmres_test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void test_error_every_code_has_name_and_sentence(void **state)
{
	(void)state;
	static const struct {
		int code;
		const char *name;
	} codes[] = {
		{ VMRES_OK, "VMRES_OK" },
		{ VMRES_E_INVALID_ARGUMENT, "VMRES_E_INVALID_ARGUMENT" },
		{ VMRES_E_INVALID_RANGE, "VMRES_E_INVALID_RANGE" },
		{ VMRES_E_INVALID_SIZE, "VMRES_E_INVALID_SIZE" },
		{ VMRES_E_INVALID_ALIGNMENT, "VMRES_E_INVALID_ALIGNMENT" },
		{ VMRES_E_UNALIGNED_ADDRESS, "VMRES_E_UNALIGNED_ADDRESS" },
		{ VMRES_E_OUT_OF_RANGE, "VMRES_E_OUT_OF_RANGE" },
		{ VMRES_E_EXHAUSTED, "VMRES_E_EXHAUSTED" },
		{ VMRES_E_IN_USE, "VMRES_E_IN_USE" },
		{ VMRES_E_NEVER_ALLOCATED, "VMRES_E_NEVER_ALLOCATED" },
		{ VMRES_E_ALREADY_FREED, "VMRES_E_ALREADY_FREED" },
		{ VMRES_E_NOT_FOUND, "VMRES_E_NOT_FOUND" },
		{ VMRES_E_NOMEM, "VMRES_E_NOMEM" },
	};
	const char *unknown = vmres_strerror(12345);

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = vmres_strerror(codes[i].code);

		assert_string_equal(vmres_error_name(codes[i].code), codes[i].name);
		assert_non_null(s);
		assert_true(strlen(s) > 5);
		assert_string_not_equal(s, unknown);
		/* A sentence: ends with a full stop, and no two codes share one. */
		assert_int_equal(s[strlen(s) - 1], '.');
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(s, vmres_strerror(codes[j].code));
	}
}

static void test_error_unknown_values_are_defined(void **state)
{
	(void)state;
	const int odd[] = { 1, 42, VMRES_E_LAST - 1, -1000, -2147483647 - 1, 2147483647 };

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		assert_string_equal(vmres_strerror(odd[i]), "Unknown libvmres error.");
		assert_string_equal(vmres_error_name(odd[i]), "VMRES_E_UNKNOWN");
	}
}

static void test_error_version_matches_header(void **state)
{
	(void)state;
	char expect[32];

	unsigned major, minor, patch;
	char tail;

	snprintf(expect, sizeof(expect), "%d.%d.%d", VMRES_VERSION_MAJOR, VMRES_VERSION_MINOR,
		 VMRES_VERSION_PATCH);
	assert_string_equal(vmres_version(), expect);
	assert_string_equal(VMRES_VERSION_STRING, expect);
	/* The hex form packs the numbers of the library's own string, one byte each. */
	assert_int_equal(sscanf(vmres_version(), "%u.%u.%u%c", &major, &minor, &patch, &tail), 3);
	assert_true(major < 256 && minor < 256 && patch < 256);
	assert_int_equal(VMRES_VERSION_HEX, (major << 16) | (minor << 8) | patch);
	/* What the hex form is for: a newer version compares greater. */
	assert_true(VMRES_VERSION_HEX < ((major << 16) | ((minor + 1) << 8)));
	assert_true(VMRES_VERSION_HEX >= ((major << 16) | (minor << 8)));
}

static void test_error_rcu_flavor_is_named(void **state)
{
	(void)state;
	const char *f = vmres_rcu_flavor();

	assert_true(!strcmp(f, "memb") || !strcmp(f, "qsbr") || !strcmp(f, "mb") ||
		    !strcmp(f, "bp"));
}

static void *dummy_alloc(void *ctx, size_t size)
{
	(void)ctx;
	(void)size;
	return NULL;
}

static void dummy_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)p;
	(void)size;
}

static void test_error_mem_default_set_get_reset(void **state)
{
	(void)state;
	struct vmres_mem_ops before, now;
	struct vmres_mem_ops bad = { NULL, dummy_free, NULL };
	struct vmres_mem_ops bad_free = { dummy_alloc, NULL, NULL };
	struct vmres_mem_ops good = { dummy_alloc, dummy_free, &before };

	assert_int_equal(vmres_mem_get_default(NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_mem_get_default(&before), VMRES_OK);
	assert_non_null(before.alloc);
	assert_non_null(before.free);

	assert_int_equal(vmres_mem_set_default(&bad), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_mem_set_default(&bad_free), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, before.alloc); /* a refused hook changes nothing */
	assert_ptr_equal(now.free, before.free);

	assert_int_equal(vmres_mem_set_default(&good), VMRES_OK);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, dummy_alloc);
	assert_ptr_equal(now.ctx, &before);

	assert_int_equal(vmres_mem_set_default(NULL), VMRES_OK);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, before.alloc);
	assert_ptr_equal(now.free, before.free);
}

/* Every create_ex refuses a hook that lacks either function, and writes nothing. */
static void test_error_half_hooks_refused_by_every_create(void **state)
{
	(void)state;
	const struct vmres_mem_ops halves[] = {
		{ NULL, dummy_free, NULL },
		{ dummy_alloc, NULL, NULL },
		{ NULL, NULL, NULL },
	};
	struct vmres_layout layout;

	vmres_layout_x86_64_default(&layout);
	for (size_t i = 0; i < sizeof(halves) / sizeof(halves[0]); i++) {
		struct vmres_id_allocator *ids = (void *)&layout;
		struct vmres_addr_allocator *addr = (void *)&layout;
		struct vmres_system *sys = (void *)&layout;

		assert_int_equal(vmres_id_allocator_create_ex(0, 10, &halves[i], &ids),
				 VMRES_E_INVALID_ARGUMENT);
		assert_int_equal(vmres_addr_allocator_create_ex(0, 4095, &halves[i], &addr),
				 VMRES_E_INVALID_ARGUMENT);
		assert_int_equal(vmres_system_create_ex(&layout, &halves[i], &sys),
				 VMRES_E_INVALID_ARGUMENT);
		assert_ptr_equal(ids, (void *)&layout);
		assert_ptr_equal(addr, (void *)&layout);
		assert_ptr_equal(sys, (void *)&layout);
	}
}

/*
 * Registration basics on a thread of its own: register, use an allocator
 * across the qsbr calls (no-ops in the other flavors), unregister. After
 * destroy and a barrier the hook has every block back.
 */
struct reg_thread_result {
	int reg;
	int alloc;
	int free;
	uint32_t id;
};

static void *reg_thread(void *arg)
{
	struct reg_thread_result *r = arg;
	struct vmres_id_allocator *ids = NULL;

	r->reg = vmres_thread_register();
	r->alloc = vmres_id_allocator_create(5, 9, &ids);
	if (!r->alloc)
		r->alloc = vmres_id_alloc(ids, &r->id);
	vmres_thread_quiescent();
	vmres_thread_offline();
	vmres_thread_online();
	r->free = ids ? vmres_id_free(ids, r->id) : -1;
	vmres_id_allocator_destroy(ids);
	vmres_rcu_barrier();
	vmres_thread_unregister();
	return NULL;
}

static void test_error_thread_registration_basics(void **state)
{
	(void)state;
	struct reg_thread_result r = { -1, -1, -1, 0 };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, reg_thread, &r), 0);
	/* Offline (qsbr): reg_thread's destroy and barrier wait for grace periods. */
	assert_int_equal(vmres_test_join(t), 0);
	assert_int_equal(r.reg, 0);
	assert_int_equal(r.alloc, VMRES_OK);
	assert_int_equal(r.id, 5);
	assert_int_equal(r.free, VMRES_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_every_code_has_name_and_sentence),
		cmocka_unit_test(test_error_unknown_values_are_defined),
		cmocka_unit_test(test_error_version_matches_header),
		cmocka_unit_test(test_error_rcu_flavor_is_named),
		cmocka_unit_test(test_error_mem_default_set_get_reset),
		cmocka_unit_test(test_error_half_hooks_refused_by_every_create),
		cmocka_unit_test(test_error_thread_registration_basics),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
