/* SPDX-License-Identifier: MIT */
/* The risk engine: evaluates a destructive request (a dissolution) against explainable
 * rules and answers a level, a score and the reasons, each naming its rule.  Every
 * evaluation is stored in `risk_evaluations`; the caller ledgers it.
 *
 * Rules (thresholds in qun_risk_cfg):
 *   frequency  more than freq_max dissolutions requested by the user in freq_window,
 *              counting this one                                          -> verify
 *              (more than freq_deny_max                                   -> deny)
 *   new_device the request's device was first seen less than new_device_age ago
 *              while the account was already used from another device     -> verify
 *   linked     dissolutions in linked_window by accounts linked to the user (same
 *              device id, same /24 IPv4 or /64 IPv6 network, same org, or an
 *              admin-declared link), counting this one, exceed linked_max -> review
 *   anomaly    the request falls in an hour of day (UTC) holding less than
 *              anomaly_share of the user's own messages, with at least
 *              anomaly_min_history messages of history                   -> warn
 * The level is the highest any rule reached; a total score of deny_score or more
 * denies. */
#ifndef QUN_RISK_H
#define QUN_RISK_H

#include <jansson.h>
#include <stdint.h>

#include "qun/core.h"
#include "qun/errors.h"
#include "qun/store.h"

typedef enum {
    QUN_RISK_ALLOW = 0,
    QUN_RISK_WARN,
    QUN_RISK_VERIFY,
    QUN_RISK_REVIEW,
    QUN_RISK_DENY,
} qun_risk_level_t;

enum {
    QUN_RISK_RULE_FREQUENCY = 1 << 0,
    QUN_RISK_RULE_NEW_DEVICE = 1 << 1,
    QUN_RISK_RULE_LINKED = 1 << 2,
    QUN_RISK_RULE_ANOMALY = 1 << 3,
    QUN_RISK_RULES_ALL = 15,
};

/* Thresholds and points of the rules.  Defaults in qun_risk_cfg; config keys may set them. */
typedef struct {
    int freq_max;            /* 3: a 4th dissolution in the window needs verification */
    int freq_deny_max;       /* 20: beyond this many in the window, deny */
    int64_t freq_window;     /* 24 h */
    int freq_points;         /* 30 */
    int64_t new_device_age;  /* 7 days */
    int new_device_points;   /* 30 */
    int linked_max;          /* 4: the 5th dissolution across linked accounts goes to review */
    int64_t linked_window;   /* 1 h */
    int linked_points;       /* 50 */
    int linked_candidates;   /* 500: most recent requesters examined for links */
    double anomaly_share;    /* 0.02: an hour with less than 2% of the user's activity */
    int anomaly_min_history; /* 50 messages */
    int anomaly_history;     /* 10000: the profile uses at most this many recent messages */
    int anomaly_points;      /* 20 */
    int deny_score;          /* 150 */
    int rules;               /* QUN_RISK_RULE_* bits of the rules that run (all); an evaluation
                              * with none is still stored, at level allow */
} qun_risk_cfg_t;
extern qun_risk_cfg_t qun_risk_cfg;

/* The result of one evaluation.  reasons is owned: release with qun_risk_clear. */
typedef struct {
    char id[QUN_ID_MAX]; /* "r_..." the stored evaluation's public id */
    qun_risk_level_t level;
    int score;
    json_t *reasons; /* [{rule, level, detail, points}] */
} qun_risk_t;

/* Evaluate a dissolution of group group_id (row id; 0 when none) requested by actor
 * from ip (text form of the peer address, may be "" or NULL: the session's address is
 * used).  Stores the evaluation (a write: call on the writer) and fills *out, which
 * the caller releases with qun_risk_clear. */
qun_rc qun_risk_evaluate(qun_db_t *db, const qun_actor_t *a, int64_t group_id, const char *ip,
                         qun_risk_t *out, qun_err_t *err);
/* Release what an evaluation holds.  Accepts a zeroed or already cleared struct. */
void qun_risk_clear(qun_risk_t *r);
/* "allow", "warn", "verify", "review" or "deny". */
const char *qun_risk_level_name(qun_risk_level_t level);
/* {id, level, score, reasons} as a new JSON object the caller owns. */
json_t *qun_risk_json(const qun_risk_t *r);
/* A stored evaluation of the actor's (server admins: anyone's) by public id, as
 * {id, level, score, reasons, group, device_id, created_at}. */
qun_rc qun_risk_get(qun_db_t *db, const qun_actor_t *a, const char *rid, json_t **out, qun_err_t *err);

#endif
