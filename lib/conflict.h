/*
 * conflict: deciding what happens when a pushed change meets a row that
 * changed on the server after the version the client based its edit on.
 *
 * This module only decides; it reads nothing and writes nothing (push.c finds
 * the rows and applies the outcome), so every strategy is a pure function of
 * the server row, the client change, the base row and two times.
 *
 * The tie rule. Times are the server's clock only: the client's change counts
 * as made when the push reached the server (client_time_ms), the server's
 * change when its change-log entry was written (server_time_ms). The later
 * one wins; on equal times the server's row stays, so two writes stamped
 * the same millisecond settle the same way whatever order they are looked
 * at in. last-write-wins applies the tie rule to the whole change; merge
 * applies it to each field both sides changed, and to every field when the
 * base row is unknown.
 *
 * Strategies, for an update or a create that met an existing row:
 *   last-write-wins  client later: CLIENT (its fields written); else SERVER.
 *   server-wins      SERVER.
 *   client-wins      CLIENT.
 *   merge            per field the client sent, against the base row: a
 *                    field only the client changed is written; a field only
 *                    the server changed keeps the server's value; a field
 *                    both changed (to different values) follows the tie
 *                    rule. Decision: MERGED when the result holds edits of
 *                    both sides, CLIENT when it is just the client's change
 *                    applied, SERVER when nothing of the client's is written.
 *   custom           the resolver's decision (resolver.h).
 * For a delete: last-write-wins and merge use the tie rule on the whole row
 * (a delete touches every field), server-wins keeps the row, client-wins
 * deletes it, custom decides (MERGED keeps the row with the given columns).
 */
#ifndef RHTMX_CONFLICT_H
#define RHTMX_CONFLICT_H

#include <json-c/json.h>

#include "config.h"
#include "err.h"
#include "resolver.h"

enum conflict_decision {
    CONFLICT_SERVER = 0, /* the client's change is dropped; the server's row stays */
    CONFLICT_CLIENT,     /* the client's change is applied */
    CONFLICT_MERGED,     /* a mix of both is written */
};

struct conflict_result {
    enum conflict_decision decision;
    int delete_row;            /* 1: delete the row (a client delete that won) */
    struct json_object *write; /* new reference, caller puts: the columns to set on the
                                  row (never the key); NULL: set nothing */
};

/*
 * Decide conflict c under strategy s. custom is the resolver for
 * STRATEGY_CUSTOM (ignored otherwise). Returns 0 with out filled, or -1 with e
 * set (500: custom strategy without a resolver, a failing resolver, a merged
 * row that changes the key); out->write is then NULL.
 */
int conflict_resolve(enum strategy s, const struct rhtmx_conflict *c, const struct resolver *custom,
                     struct conflict_result *out, struct err *e);

/* The tie rule: 1 if the client's change is the later one by the server's clock. */
int conflict_client_later(const struct rhtmx_conflict *c);

/* 1 if two column values are the same: numbers compare by value (1 == 1.0),
 * true/false equal 1/0 (SQLite stores booleans as integers), NULL is JSON null. */
int conflict_value_equal(struct json_object *a, struct json_object *b);

/* "server", "client" or "merged". */
const char *conflict_decision_name(enum conflict_decision d);

#endif
