/*
 * push: applying one batch of client changes to an entity, exactly once.
 *
 * A batch (the body of POST /api/sync/{entity}, docs/PROTOCOL.md) is checked
 * whole before anything is touched: a body that is not JSON, not the shape,
 * or has more changes than allowed is refused and nothing changes. Then the
 * batch runs in one write transaction (BEGIN IMMEDIATE with the busy timeout):
 *
 *   - the pushing client's id goes into _rhtmx_sync_context, so the capture
 *     triggers stamp it on every log row the batch causes (and it is cleared
 *     again before COMMIT, so no other writer ever sees it);
 *   - each change runs inside its own SAVEPOINT: a change that can never apply
 *     (unknown column, constraint failure, unknown id) is rolled back alone
 *     and answered in "rejected"; the rest of the batch still applies;
 *   - a change whose row changed on the server after its client_version is a
 *     conflict, decided by the entity's strategy (conflict.h);
 *   - each change's outcome is stored in _rhtmx_sync_mutations under
 *     (client_id, mutation_id), in the same transaction, so a retried batch
 *     writes nothing again and gets the same answer (with a signed-in user,
 *     the stored client_id is "user/client_id": one user cannot replay or
 *     read another's mutations by picking the same client_id);
 *   - for an entity with owner_column, a change may only touch the caller's
 *     rows: a create gets the owner filled in, anything else that would
 *     touch or hand over another owner's row is rejected as "forbidden";
 *   - for an entity with a scope (owner_column included), a change to a row
 *     outside the caller's scope, and a change that would leave the row
 *     outside it, is rejected as "forbidden" and undone.
 *
 * The writes are ordinary INSERT/UPDATE/DELETE statements on the entity's
 * table; the change log is filled by the same triggers as any other writer's.
 */
#ifndef RHTMX_PUSH_H
#define RHTMX_PUSH_H

#include <stddef.h>

#include <json-c/json.h>

#include "buf.h"
#include "db.h"
#include "err.h"
#include "push_body.h"
#include "resolver.h"
#include "schema.h"
#include "scope.h"

struct push_opts {
    int max_changes;                 /* more changes than this: 413 */
    const struct resolver *resolver; /* for strategy "custom"; NULL: none available */
    long long now_ms;                /* when the push arrived, server clock (ms since
                                        1970); 0: read the clock now */
    const char *user;                /* the authenticated user (token "sub"), or NULL
                                        when anonymous: mutation ids and temporary
                                        ids are kept apart per user */
    const char *owner;               /* for an entity with owner_column: the value every
                                        row it touches must have (auth_owner()), as
                                        text; NULL: rows are shared */
    const struct scope_who *scope;   /* scope hook (lib/scope.h): who the rows must be
                                        visible to before and after each change, for an
                                        entity with a scope; NULL: none */
};

/*
 * Apply the batch in body (n bytes) to table t and write the JSON answer
 *   {"version":V,"applied":[...],"ids":{...},"conflicts":[...],"rejected":[...]}
 * to out (appended). Returns 0, or -1 with e set and nothing changed: 400
 * bad_request (malformed), 413 too_large (too many changes), 500 config
 * (custom strategy without a resolver), 500 internal (the resolver failed),
 * 503 busy, 500 database.
 */
int push_batch(struct db *d, const struct table *t, const struct push_opts *o, const char *body,
               size_t n, struct buf *out, struct err *e);

/* Milliseconds since 1970 by the server's clock. */
long long push_now_ms(void);

/*
 * The rules and records of one change that hold whatever the database, shared
 * with the PostgreSQL backend (pg_push.c). An outcome record is
 *   {"id": K, "applied": B, "tmp": "tmp-..", "conflict": {...}, "rejected": {...}}
 * and the answer folds the records together in request order.
 */
struct push_change;
/* A record for id (new reference; id is not taken). */
struct json_object *push_rec_new(struct json_object *id, int applied);
/* A rejection record of change c: code and the formatted reason (new reference). */
struct json_object *push_rec_rejected(const struct push_change *c, const char *code,
                                      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* scope hook: the rejection of change c, applied, whose row would then be
 * outside the caller's scope (new reference; the caller rolls c back). */
struct json_object *push_rec_out_of_scope(const struct push_change *c, const struct table *t);
/* An applied create's temporary id -> its key, into tmpmap, for later changes. */
void push_note_tmp(struct json_object *tmpmap, struct json_object *rec);
/* The answer of records recs[0..n) at version, appended to out. */
void push_answer_write(struct json_object **recs, size_t n, long long version, struct buf *out);
/* 1 if id is a temporary id ("tmp-..."). */
int push_is_tmp(struct json_object *id);
/* 1 if v, a column value, is the owner value as text (42 and "42" are "42"). */
int push_owner_is(struct json_object *v, const char *owner);
/* 1 if every field already has that value in row. */
int push_same_as_row(struct json_object *fields, struct json_object *row);
/* 1 if base is known and every column in both base and row holds the same value in
 * each (a column the app added or dropped since is no change a client could have
 * conflicted with). */
int push_same_where_both(struct json_object *base, struct json_object *row);
/* Check what a custom resolver asked to write (w) on t: known columns, storable
 * values, and, when ocol (the owner column, or NULL) is set, no handing the row to
 * another owner than owner. 0, or -1 with e set to 500 "internal". */
int push_check_write(const struct table *t, const char *ocol, const char *owner,
                     struct json_object *w, struct err *e);

/*
 * The decision flow of one change, the same on every store: each step returns a
 * rejection record (new reference) or NULL to go on. The store is reached through
 * the operations of a struct push_run's store, each called with its ctx.
 */
struct conflict_result;
/* The newest change-log entry of a row after a client's version. */
struct push_newest {
    int found;         /* 0: none after that version */
    long long version; /* its version */
    long long time_ms; /* when it was written, server clock */
};
/* 1 if col, not a column of t, was one until the app changed its schema. */
typedef int (*push_gone_fn)(void *ctx, const struct table *t, const char *col);
/* The key a temporary id was given by an earlier batch of the client (this
 * batch's are in struct push_run's tmpmap): new reference in *key, or NULL if
 * never created. 0, or -1 with e set. */
typedef int (*push_tmp_fn)(void *ctx, const char *tmp, struct json_object **key, struct err *e);
/* Outcome of a write: 0 done, 1 the change can never apply (code and reason
 * filled), -1 the batch must stop (e set). */
struct push_refusal {
    const char *code;
    char reason[300];
};
/* The steps of one change's savepoint. */
enum push_savepoint {
    PUSH_SAVEPOINT_OPEN,     /* SAVEPOINT: the change starts */
    PUSH_SAVEPOINT_ROLLBACK, /* ROLLBACK TO it: the change was rejected */
    PUSH_SAVEPOINT_RELEASE,  /* RELEASE it: the change is done either way */
};
/*
 * A store's rows, change log and stored outcomes, as the batch and the decision
 * flow of a change reach them: one static const table of operations per backend
 * (push.c's SQLite store, pg_push.c's PostgreSQL one), each called with the
 * store's own batch (ctx, struct push_run). A row found is known by a handle h
 * of the store's own (released by handle_free) and by its key as JSON. Each
 * write returns as struct push_refusal says; each read 0, or -1 with e set.
 */
struct push_store {
    push_tmp_fn tmp_lookup;
    push_gone_fn column_gone;
    /* What a key column of declared type must hold: 'I' an integer, 'T' a
     * string, anything else: any value the column takes. */
    char (*key_affinity)(const char *type);
    /* The row with key: *row (new reference, NULL if none) and, when h is not
     * NULL, its handle; like a write when the key cannot be read. */
    int (*row_load)(void *ctx, struct json_object *key, struct json_object **row, void **h,
                    struct push_refusal *r, struct err *e);
    /* 1 if row h is visible to the caller's scope, 0 if not, -1 with e set;
     * NULL: the store has no scopes. */
    int (*row_visible)(void *ctx, void *h, struct err *e);
    int (*log_newest)(void *ctx, void *h, long long client_version, struct push_newest *out,
                      struct err *e);
    /* The row as the client last saw it at client_version: *base, new reference
     * or NULL when unknown. */
    int (*log_base)(void *ctx, void *h, long long client_version, struct json_object **base,
                    struct err *e);
    /* Insert fields (key NULL: the store assigns it); *stored the key, new reference. */
    int (*row_insert)(void *ctx, struct json_object *key, struct json_object *fields,
                      struct json_object **stored, struct push_refusal *r, struct err *e);
    int (*row_update)(void *ctx, void *h, struct json_object *stored, struct json_object *fields,
                      struct push_refusal *r, struct err *e);
    int (*row_delete)(void *ctx, void *h, struct json_object *stored, struct push_refusal *r,
                      struct err *e);
    void (*handle_free)(void *h); /* h may be NULL */
    /* The stored outcome of c: *rec (new reference) and the version it was
     * answered with, or *rec = NULL when c is new. 0, or -1 with e set. */
    int (*mutation_get)(void *ctx, const struct push_change *c, struct json_object **rec,
                        long long *version, struct err *e);
    /* Store c's outcome rec at version. 0, or -1 with e set. */
    int (*mutation_put)(void *ctx, const struct push_change *c, struct json_object *rec,
                        long long version, struct err *e);
    /* The change log's head version, or -1 with e set. */
    long long (*head)(void *ctx, struct err *e);
    /* Run one step of a change's savepoint. 0, or -1 with e set. */
    int (*savepoint)(void *ctx, enum push_savepoint step, struct err *e);
};
/* One batch on a store, from push_batch_open() to push_batch_close(): what
 * every change of it is run with, and what it answers. */
struct push_run {
    const struct push_store *store; /* the backend's operations (borrowed) */
    void *ctx;                      /* the store's batch, passed to every operation (borrowed) */
    const struct table *t;          /* borrowed */
    const struct push_opts *o;      /* borrowed */
    struct push_body b;             /* the checked body (owned) */
    long long now_ms;               /* when the push arrived, server clock */
    struct json_object *tmpmap;     /* temporary id -> real key, for this batch (owned) */
    char *mkey;                     /* the client's key in _rhtmx_sync_mutations (owned) */
    struct json_object **recs;      /* b.n outcome records, each NULL until its
                                       change is run or answered (owned) */
};
/* Run change c on run's store (inside its savepoint): its outcome record (new
 * reference), or NULL with e set when the batch must stop. */
struct json_object *push_change_run(const struct push_run *run, const struct push_change *c,
                                    struct err *e);
/* A rejection when t takes no writes from clients (offline_writes false). */
struct json_object *push_rec_writes_off(const struct table *t, const struct push_change *c);
/* The key change c names: *key (new reference; NULL: the server assigns it), *tmp
 * (borrowed from c) the temporary id of a create; NULL with e set and *fatal when
 * the batch must stop. The key's type is the caller's to check. */
struct json_object *push_change_key(const struct push_run *run, const struct push_change *c,
                                    struct json_object **key, const char **tmp, int *fatal,
                                    struct err *e);
/* The columns of data to write, without the key: *fields (new reference, set even
 * when a rejection is returned). */
struct json_object *push_change_fields(const struct push_run *run, const struct push_change *c,
                                       struct json_object **fields);
/* A rejection when the change touches another owner's row (server, the stored row
 * or NULL) or hands one over (fields); ocol NULL: rows are shared. */
struct json_object *push_owner_refusal(const struct table *t, const struct push_change *c,
                                       const char *ocol, const char *owner,
                                       struct json_object *server, struct json_object *fields);
/* Decide a conflict of change c on the row stored (its key), server (the row),
 * base (what the client saw, or NULL) and nw (the newest entry), by t's strategy,
 * into res (res->write a new reference). 0, or -1 with e set. */
int push_conflict_decide(const struct table *t, const struct push_opts *o, const char *client_id,
                         long long now_ms, const struct push_change *c, struct json_object *stored,
                         struct json_object *server, struct json_object *fields,
                         struct json_object *base, const struct push_newest *nw,
                         struct conflict_result *res, struct err *e);
/* The record of a decided conflict (new reference); takes after (the row as it is
 * now), not stored. */
struct json_object *push_rec_conflict(const struct table *t, const struct push_change *c,
                                      struct json_object *stored, const struct conflict_result *res,
                                      struct json_object *after, long long version);
/* The key mutations are stored under: "user/client_id", or client_id when
 * anonymous (new string, caller frees; NULL: out of memory). */
char *push_mutation_key(const struct push_opts *o, const char *client_id);
/* -1 with e set to 500 "config" when t's strategy is "custom" and no resolver is
 * there; else 0. */
int push_resolver_missing(const struct table *t, const struct push_opts *o, struct err *e);

/*
 * The batch around the changes, the same on every store: the body checked, each
 * change run once (or answered from its stored outcome) in order, each new one
 * in a savepoint of its own and rolled back when rejected, the new outcomes
 * stored at the log's head.
 */
/* Open run, a batch of body (n bytes) for t on store (its batch ctx): the body
 * parsed and checked, t checked able to take a push. 0, or -1 with e set; run is
 * for push_batch_close either way. */
int push_batch_open(struct push_run *run, const struct push_store *store, void *ctx,
                    const struct table *t, const struct push_opts *o, const char *body, size_t n,
                    struct err *e);
/* Run every change of run into run->recs (new references), noting applied
 * temporary ids in run->tmpmap, and store the new outcomes. *version: the
 * version to answer with; *any_new: 1 if a change ran now. 0, or -1 with e set
 * (roll back). */
int push_batch_changes(struct push_run *run, long long *version, int *any_new, struct err *e);
/* Free what push_batch_open gave (run as it left it is fine). */
void push_batch_close(struct push_run *run);

#endif
