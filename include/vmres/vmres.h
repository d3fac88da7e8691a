/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* libvmres: resource allocators for virtual machine monitors. One include for all of it. */
#ifndef VMRES_VMRES_H
#define VMRES_VMRES_H

#include <vmres/export.h>
#include <vmres/version.h>
#include <vmres/error.h>
#include <vmres/mem.h>
#include <vmres/thread.h>
#include <vmres/id.h>
#include <vmres/addr.h>
#include <vmres/resource.h>
#include <vmres/system.h>

#endif /* VMRES_VMRES_H */
