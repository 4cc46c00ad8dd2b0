/* SPDX-License-Identifier: MIT */
/* Canonical JSON: the one serialization qun hashes (compact, keys sorted), so a
 * digest of the same value is the same wherever it is taken — a confirmation token
 * bound to a request's parameters, a ledger entry's params, a QR challenge. */
#ifndef QUN_JSON_H
#define QUN_JSON_H

#include <jansson.h>
#include <stdbool.h>

/* Hex SHA-256 of v's canonical text (compact, sorted keys) into out[65]; v is
 * borrowed.  False, with out set to "" (which matches no digest), when the text could
 * not be encoded for want of memory. */
bool qun_json_digest(json_t *v, char out[65]);

#endif
