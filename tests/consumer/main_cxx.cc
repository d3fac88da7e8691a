// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
// The public headers from C++ with strict warnings; exits 0 on success.
#include <cstdio>

#include <vmres/vmres.h>

int main()
{
	struct vmres_addr_allocator *a = nullptr;
	struct vmres_addr_stats st = {};
	int err;

	vmres_thread_register();
	err = vmres_addr_allocator_create(0x1000, 0x1fff, &a);
	if (!err)
		err = vmres_addr_stats(a, &st);
	vmres_addr_allocator_destroy(a);
	vmres_thread_unregister();
	if (err || st.largest_free != 0x1000) {
		std::fprintf(stderr, "vmres: %s\n", vmres_strerror(err));
		return 1;
	}
	std::printf("consumer (C++): largest free block 0x%llx\n",
		    (unsigned long long)st.largest_free);
	return 0;
}
