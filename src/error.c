/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <vmres/error.h>

struct error_text {
	const char *name;
	const char *sentence;
};

/* Indexed by -err; keep in the order of enum vmres_error. */
static const struct error_text error_texts[] = {
	{ "VMRES_OK", "Success." },
	{ "VMRES_E_INVALID_ARGUMENT",
	  "Invalid argument: a required pointer is NULL or an enum value is unknown." },
	{ "VMRES_E_INVALID_RANGE", "Invalid range: the start lies after the end." },
	{ "VMRES_E_INVALID_SIZE", "Invalid size: zero, or not allowed for this resource kind." },
	{ "VMRES_E_INVALID_ALIGNMENT", "Invalid alignment: zero or not a power of two." },
	{ "VMRES_E_UNALIGNED_ADDRESS",
	  "The requested address is not a multiple of the requested alignment." },
	{ "VMRES_E_OUT_OF_RANGE", "The value or range lies outside the allocator's span." },
	{ "VMRES_E_EXHAUSTED", "No free space or ID satisfies the request." },
	{ "VMRES_E_IN_USE", "The requested ID or range is already allocated." },
	{ "VMRES_E_NEVER_ALLOCATED", "The ID was never handed out by this allocator." },
	{ "VMRES_E_ALREADY_FREED", "The ID was already freed." },
	{ "VMRES_E_NOT_FOUND", "No such allocation, address owner or resource kind." },
	{ "VMRES_E_NOMEM", "Out of memory: the memory hook could not provide a node." },
};

_Static_assert(sizeof(error_texts) / sizeof(error_texts[0]) == (unsigned)-VMRES_E_LAST + 1,
	       "error_texts must cover every enum vmres_error value");

static const struct error_text *error_lookup(int err)
{
	if (err > 0 || err < VMRES_E_LAST)
		return 0;
	return &error_texts[-err];
}

const char *vmres_strerror(int err)
{
	const struct error_text *t = error_lookup(err);

	return t ? t->sentence : "Unknown libvmres error.";
}

const char *vmres_error_name(int err)
{
	const struct error_text *t = error_lookup(err);

	return t ? t->name : "VMRES_E_UNKNOWN";
}
