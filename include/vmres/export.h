/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * VMRES_API marks the public entry points. The library is built with
 * -fvisibility=hidden, so anything without it stays internal to libvmres.
 */
#ifndef VMRES_EXPORT_H
#define VMRES_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define VMRES_API __attribute__((visibility("default")))
#else
#define VMRES_API
#endif

#endif /* VMRES_EXPORT_H */
