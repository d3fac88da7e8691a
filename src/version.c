/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <vmres/version.h>

const char *vmres_version(void)
{
	return VMRES_VERSION_STRING;
}
