/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Smoke program until the VMM demo (issue 5) replaces it. */
#include <stdio.h>

#include <vmres/vmres.h>

int main(void)
{
	vmres_thread_register();
	printf("libvmres %s, RCU flavor %s\n", vmres_version(), vmres_rcu_flavor());
	vmres_thread_unregister();
	return 0;
}
