/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Error strings, version, memory-hook and thread-registration basics. */
#include "vmres_test.h"

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

	snprintf(expect, sizeof(expect), "%d.%d.%d", VMRES_VERSION_MAJOR, VMRES_VERSION_MINOR,
		 VMRES_VERSION_PATCH);
	assert_string_equal(vmres_version(), expect);
	assert_string_equal(VMRES_VERSION_STRING, expect);
	assert_int_equal(VMRES_VERSION_HEX, (VMRES_VERSION_MAJOR << 16) |
						    (VMRES_VERSION_MINOR << 8) |
						    VMRES_VERSION_PATCH);
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
	struct vmres_mem_ops good = { dummy_alloc, dummy_free, &before };

	assert_int_equal(vmres_mem_get_default(NULL), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_mem_get_default(&before), VMRES_OK);
	assert_non_null(before.alloc);
	assert_non_null(before.free);

	assert_int_equal(vmres_mem_set_default(&bad), VMRES_E_INVALID_ARGUMENT);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, before.alloc); /* a refused hook changes nothing */

	assert_int_equal(vmres_mem_set_default(&good), VMRES_OK);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, dummy_alloc);
	assert_ptr_equal(now.ctx, &before);

	assert_int_equal(vmres_mem_set_default(NULL), VMRES_OK);
	assert_int_equal(vmres_mem_get_default(&now), VMRES_OK);
	assert_ptr_equal(now.alloc, before.alloc);
	assert_ptr_equal(now.free, before.free);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_every_code_has_name_and_sentence),
		cmocka_unit_test(test_error_unknown_values_are_defined),
		cmocka_unit_test(test_error_version_matches_header),
		cmocka_unit_test(test_error_rcu_flavor_is_named),
		cmocka_unit_test(test_error_mem_default_set_get_reset),
	};

	return cmocka_run_group_tests(tests, vmres_test_group_setup, vmres_test_group_teardown);
}
