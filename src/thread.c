/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
#include <vmres/thread.h>

#include "internal/rcu.h"

#ifdef VMRES__TSAN
/* Only its address matters: the TSAN stand-in for "a grace period passed". */
char vmres__rcu_gp_token;
/* Likewise for "rcu_barrier() waited for every queued callback". */
char vmres__rcu_barrier_token;
#endif

int vmres_thread_register(void)
{
	VMRES__URCU(register_thread)();
	return 0;
}

void vmres_thread_unregister(void)
{
	VMRES__URCU(unregister_thread)();
}

void vmres_thread_quiescent(void)
{
	VMRES__URCU(quiescent_state)();
}

void vmres_thread_offline(void)
{
	VMRES__URCU(thread_offline)();
}

void vmres_thread_online(void)
{
	VMRES__URCU(thread_online)();
}

void vmres_rcu_barrier(void)
{
	vmres__rcu_barrier();
}

const char *vmres_rcu_flavor(void)
{
	return VMRES_RCU_FLAVOR_NAME;
}
