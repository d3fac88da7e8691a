/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The shared vocabulary of libvmres: error codes and address/ID ranges.
 *
 * Every fallible function returns 0 (VMRES_OK) or a negative enum vmres_error;
 * results travel through out-parameters. A call that fails leaves the object it
 * was given exactly as it was before the call, except where its documentation
 * says otherwise (vmres_system_free_ex() and a rolled-back batch, see
 * vmres/system.h and vmres/resource.h).
 */
#ifndef VMRES_ERROR_H
#define VMRES_ERROR_H

#include <stdint.h>

#include <vmres/export.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct vmres_range - an inclusive range of addresses or IDs
 * @start: first unit of the range
 * @end:   last unit of the range (inclusive, so [0, UINT64_MAX] is expressible)
 *
 * A range with start > end is invalid everywhere it is accepted.
 */
struct vmres_range {
	uint64_t start;
	uint64_t end;
};

/**
 * enum vmres_error - result codes of every libvmres call
 *
 * Values are stable: they are part of the ABI.
 */
enum vmres_error {
	VMRES_OK = 0,
	VMRES_E_INVALID_ARGUMENT = -1,	/* NULL pointer, unknown enum value */
	VMRES_E_INVALID_RANGE = -2,	/* start > end */
	VMRES_E_INVALID_SIZE = -3,	/* size 0, or a size the kind does not allow */
	VMRES_E_INVALID_ALIGNMENT = -4, /* alignment 0 or not a power of two */
	VMRES_E_UNALIGNED_ADDRESS = -5, /* a fixed address that is not aligned */
	VMRES_E_OUT_OF_RANGE = -6,	/* outside the allocator's span */
	VMRES_E_EXHAUSTED = -7,		/* nothing free that fits */
	VMRES_E_IN_USE = -8,		/* already allocated */
	VMRES_E_NEVER_ALLOCATED = -9,	/* freeing what was never handed out */
	VMRES_E_ALREADY_FREED = -10,	/* freeing what is already free */
	VMRES_E_NOT_FOUND = -11,	/* no such allocation or resource kind */
	VMRES_E_NOMEM = -12,		/* the memory hook returned NULL */
};

/* The lowest (most negative) defined code; anything below is unknown. */
#define VMRES_E_LAST VMRES_E_NOMEM

/**
 * vmres_strerror() - describe an error code in one sentence
 * @err: a value returned by a libvmres call
 *
 * Return: a static, NUL-terminated English sentence. Any value that is not an
 * enum vmres_error (positive values included) gives "Unknown libvmres error.";
 * never NULL.
 *
 * Context: any thread; no registration needed.
 */
VMRES_API const char *vmres_strerror(int err);

/**
 * vmres_error_name() - the enumerator's name of an error code
 * @err: a value returned by a libvmres call
 *
 * Return: a static string such as "VMRES_E_EXHAUSTED", or "VMRES_E_UNKNOWN"
 * for any other value; never NULL.
 *
 * Context: any thread; no registration needed.
 */
VMRES_API const char *vmres_error_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* VMRES_ERROR_H */
