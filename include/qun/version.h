/* SPDX-License-Identifier: MIT */
/* The version of qun's binaries. */
#ifndef QUN_VERSION_H
#define QUN_VERSION_H
#define QUN_VERSION "0.1.0"
#endif
