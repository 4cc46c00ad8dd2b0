/* SPDX-License-Identifier: MIT */
/* Canonical JSON: the one serialization qun hashes (compact, keys sorted), so a
 * digest of the same value is the same wherever it is taken — a confirmation token
 * bound to a request's parameters, a ledger entry's params, a QR challenge. */
#ifndef QUN_JSON_H
#define QUN_JSON_H

#include <jansson.h>

/* Hex SHA-256 of v's canonical text (compact, sorted keys) into out[65].  v is
 * borrowed.  Aborts when the text cannot be allocated, like qun_xmalloc: a wrong
 * digest must never stand in for a right one. */
void qun_json_digest(json_t *v, char out[65]);

#endif
