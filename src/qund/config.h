/* SPDX-License-Identifier: MIT */
/* qund's configuration: a `key = value` file, then command-line flags on top. */
#ifndef QUND_CONFIG_H
#define QUND_CONFIG_H

#include "qun/errors.h"

/* Apply one setting; err names the key and the problem. */
qun_rc qund_config_set(const char *key, const char *value, qun_err_t *err);
/* Read a config file (a missing file is an error only when required). */
qun_rc qund_config_load(const char *path, bool required, qun_err_t *err);

/* Log, once at startup, every setting that differs from its default (secrets masked). */
void qund_config_log(void);

#endif
