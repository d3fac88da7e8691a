/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Uses the installed library the way an embedder would; exits 0 on success. */
#include <stdio.h>
#include <string.h>

#include <vmres/vmres.h>

int main(void)
{
	struct vmres_id_allocator *ids;
	uint32_t id = 0;
	int err;

	if (strcmp(vmres_version(), VMRES_VERSION_STRING) != 0) {
		fprintf(stderr, "header %s, library %s\n", VMRES_VERSION_STRING, vmres_version());
		return 1;
	}
	vmres_thread_register();
	err = vmres_id_allocator_create(5, 23, &ids);
	if (!err)
		err = vmres_id_alloc(ids, &id);
	if (err || id != 5) {
		fprintf(stderr, "vmres: %s\n", vmres_strerror(err));
		return 1;
	}
	vmres_id_allocator_destroy(ids);
	vmres_thread_unregister();
	printf("consumer: libvmres %s (%s), first IRQ %u\n", vmres_version(), vmres_rcu_flavor(),
	       id);
	return 0;
}
