// Per-user rows, end to end: a real lighttpd running the FastCGI programs in auth
// mode "token". User A's token can neither see nor change user B's rows through
// pull, push or events, and the other way round; what each user does to their own
// rows works and reaches their own streams. One entity has a TEXT owner column
// (todos.user_id), the other an INTEGER one with a TEXT key (notes.owner), so
// both of the owner comparisons and both key kinds are crossed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startLighttpd, openEvents } from '../harness/rhtmx.mjs';
import { makeTokenApp } from '../harness/token.mjs';

const SCHEMA = `
CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id TEXT);
CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT, owner INTEGER);
`;
const A = '101', B = '202';

const change = (mutation_id, action, id, data, client_version = 0) => (
  { mutation_id, action, ...(id === undefined ? {} : { id }), ...(data ? { data } : {}), client_version });

test('isolation under lighttpd in token mode: pull, push and events keep each user to their own rows', async () => {
  const app = makeTokenApp({
    schema: SCHEMA,
    config: {
      entities: [{ name: 'todos', owner_column: 'user_id' }, { name: 'notes', owner_column: 'owner' }],
      events: { heartbeat: 1 },
    },
  });
  const tok = { [A]: app.token(A), [B]: app.token(B) };
  const srv = await startLighttpd(app);
  const bearer = (who) => ({ Authorization: `Bearer ${tok[who]}` });
  const pull = async (who, entity, query = 'since=0') => {
    const r = await fetch(`${srv.url}/api/sync/${entity}?${query}`, { headers: bearer(who) });
    assert.equal(r.status, 200, await r.clone().text());
    return r.json();
  };
  /** Every change of entity after since for who, following has_more pages of `limit`. */
  const pullAll = async (who, entity, since = 0, limit = 2) => {
    const all = [];
    for (;;) {
      const p = await pull(who, entity, `since=${since}&limit=${limit}`);
      all.push(...p.changes);
      since = p.version;
      if (!p.has_more) return { changes: all, version: since };
    }
  };
  const push = async (who, entity, body) => {
    const r = await fetch(`${srv.url}/api/sync/${entity}`, {
      method: 'POST', body: JSON.stringify(body), headers: { ...bearer(who), 'Content-Type': 'application/json' },
    });
    const text = await r.text();
    assert.equal(r.status, 200, text);
    return JSON.parse(text);
  };
  const rowsOf = (owner) => sql(app.db, `SELECT 'todos' AS t, id, title AS v FROM todos WHERE user_id = '${owner}'
                                         UNION ALL SELECT 'notes', id, body FROM notes WHERE owner = ${owner} ORDER BY 1, 2;`, { json: true });
  const streams = [];
  const stream = async (headers, query) => {
    const s = await openEvents(`${srv.url}/api/sync/events${query ? `?${query}` : ''}`, { headers });
    assert.equal(s.status, 200);
    await s.take((i) => i.comments.length > 0); // the opening comment
    streams.push(s);
    return s;
  };

  try {
    // Without a token nothing answers but client.js.
    assert.equal((await fetch(`${srv.url}/api/sync/todos?since=0`)).status, 401);
    assert.equal((await fetch(`${srv.url}/api/sync/events`)).status, 401);
    assert.equal((await fetch(`${srv.url}/api/sync/todos`, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })).status, 401);

    await pull(A, 'todos'); // installs the triggers
    sql(app.db, `INSERT INTO todos (id, title, user_id) VALUES (1, 'a: milk', '${A}'), (2, 'b: secret', '${B}'),
                   (3, 'b: diary', '${B}'), (4, 'nobody''s', NULL);
                 INSERT INTO notes (id, body, owner) VALUES ('n-a', 'a note', ${A}), ('n-b', 'b note', ${B});`);
    const bBefore = rowsOf(B);

    // Streams: A from the start of the log (header) and live (cookie); B from the start.
    const sA = await stream(bearer(A), 'since=0');
    const sAlive = await stream({ Cookie: `rhtmx_sync=${tok[A]}` }, 'entities=todos');
    const sB = await stream(bearer(B), 'since=0');

    // Pull: each sees only their own rows, on every page.
    const ids = (changes) => changes.map((c) => c.id);
    assert.deepEqual(ids((await pullAll(A, 'todos')).changes), [1]);
    assert.deepEqual(ids((await pullAll(B, 'todos')).changes), [2, 3]);
    assert.deepEqual(ids((await pullAll(A, 'notes')).changes), ['n-a']);
    assert.deepEqual(ids((await pullAll(B, 'notes')).changes), ['n-b']);
    const vA = (await pull(A, 'todos')).version;

    // Push as A at B's rows: every change refused, nothing of B's touched.
    const attack = await push(A, 'todos', { client_id: 'shared', changes: [
      change('m1', 'update', 2, { title: 'owned' }, vA),
      change('m2', 'delete', 3, null, vA),
      change('m3', 'create', 2, { title: 'b: secret, replaced' }), // a create of an existing id is an update
      change('m4', 'update', 1, { user_id: B }, vA), // handing A's row to B
      change('m5', 'update', 1, { title: 'a: oat milk' }, vA), // A's own row: fine
    ] });
    assert.deepEqual(attack.applied, [1]);
    assert.deepEqual(attack.rejected.map((r) => [r.mutation_id, r.code]),
      [['m1', 'forbidden'], ['m2', 'forbidden'], ['m3', 'forbidden'], ['m4', 'forbidden']]);
    assert.ok(!JSON.stringify(attack).includes('secret') && !JSON.stringify(attack).includes('diary'),
      `the answer leaks B's row: ${JSON.stringify(attack)}`);
    const notesAttack = await push(A, 'notes', { client_id: 'shared', changes: [
      change('n1', 'update', 'n-b', { body: 'owned' }, vA),
      change('n2', 'delete', 'n-b', null, vA),
      change('n3', 'create', 'n-b', { body: 'replaced' }),
    ] });
    assert.deepEqual(notesAttack.applied, []);
    assert.deepEqual(notesAttack.rejected.map((r) => r.code), ['forbidden', 'forbidden', 'forbidden']);
    assert.deepEqual(rowsOf(B), bBefore, "A's push changed B's rows");

    // A create names B as the owner: the row is A's, whatever the body said.
    const made = await push(A, 'todos', { client_id: 'shared', changes: [
      change('m6', 'create', 'tmp-x', { title: 'a: planted', user_id: B }),
      change('m7', 'create', 'tmp-y', { title: 'a: plain' }),
    ] });
    assert.deepEqual(made.rejected, []);
    const [planted, plain] = made.applied;
    const madeNote = await push(A, 'notes', { client_id: 'shared', changes: [
      change('n4', 'create', 'n-a2', { body: 'a: planted note', owner: Number(B) }),
    ] });
    assert.deepEqual(madeNote.applied, ['n-a2']);
    assert.deepEqual(sql(app.db, `SELECT id, user_id FROM todos WHERE id IN (${planted}, ${plain}) ORDER BY id;`, { json: true }),
      [{ id: planted, user_id: A }, { id: plain, user_id: A }]);
    assert.deepEqual(sql(app.db, "SELECT owner FROM notes WHERE id = 'n-a2';", { json: true }), [{ owner: Number(A) }]);
    assert.deepEqual(rowsOf(B), bBefore);

    // B with the same client_id and mutation ids: B's own outcomes, never A's
    // stored answers; A's temporary ids mean nothing to B.
    const bPush = await push(B, 'todos', { client_id: 'shared', changes: [
      change('m6', 'create', 'tmp-x', { title: 'b: new' }),
      change('m8', 'update', 'tmp-y', { title: 'b: via a tmp id of A' }),
      change('m9', 'update', 2, { title: 'b: secret v2' }, vA),
    ] });
    assert.equal(bPush.applied.length, 2);
    assert.notEqual(bPush.applied[0], planted);
    assert.deepEqual(bPush.rejected.map((r) => [r.mutation_id, r.code]), [['m8', 'not_found']]);
    assert.equal(sql(app.db, `SELECT title FROM todos WHERE id = ${plain};`).trim(), 'a: plain');
    // And B cannot touch A's rows either.
    const bAttack = await push(B, 'todos', { client_id: 'b', changes: [
      change('x1', 'update', 1, { title: 'b was here' }, 999), change('x2', 'delete', planted, null, 999)] });
    assert.deepEqual(bAttack.rejected.map((r) => r.code), ['forbidden', 'forbidden']);

    // The PHP app writes rows of both users; then one last write each, B's first.
    sql(app.db, `UPDATE todos SET title = 'b: diary v2' WHERE id = 3; UPDATE todos SET title = 'a: milk!' WHERE id = 1;
                 DELETE FROM todos WHERE id = 2; DELETE FROM notes WHERE id = 'n-b';
                 UPDATE todos SET title = 'nobody''s v2' WHERE id = 4;`);
    sql(app.db, `UPDATE todos SET title = 'b: last' WHERE id = 3;`);
    const lastB = Number(sql(app.db, "SELECT max(version) FROM _rhtmx_sync_log;").trim());
    sql(app.db, `UPDATE todos SET title = 'a: last' WHERE id = 1;`);
    const lastA = lastB + 1;

    // Pull afterwards: A's incremental pull holds A's changes only (B's delete included: not there).
    const incA = await pullAll(A, 'todos', vA);
    assert.ok(incA.changes.every((c) => c.data === undefined || c.data.user_id === A), JSON.stringify(incA));
    assert.deepEqual(ids(incA.changes).sort(), [1, planted, plain].sort());
    const incB = await pullAll(B, 'todos', vA);
    assert.deepEqual(incB.changes.map((c) => [c.id, c.action]).sort(), [[2, 'delete'], [3, 'update'], [bPush.applied[0], 'create']].sort());

    // Events: each stream holds exactly its user's versions, in order, once.
    const log = sql(app.db, 'SELECT version, entity, entity_id, owner FROM _rhtmx_sync_log ORDER BY version;', { json: true });
    const events = (s) => s.items.filter((i) => i.event === 'message').map((i) => ({ id: Number(i.id), ...JSON.parse(i.data) }));
    const expect = (owner, from, to, entities = ['todos', 'notes']) => log
      .filter((l) => l.owner === owner && l.version > from && l.version <= to && entities.includes(l.entity))
      .map((l) => [l.version, l.entity, l.entity_id]);
    const got = (s) => events(s).map((e) => [e.version, e.entity, e.id]);
    await sA.take((i) => Number(i.id) === lastA);
    await sAlive.take((i) => Number(i.id) === lastA);
    await sB.take((i) => Number(i.id) === lastB);
    assert.deepEqual(got(sA), expect(A, 0, lastA));
    const liveFrom = Math.min(...events(sAlive).map((e) => e.version)) - 1;
    assert.ok(liveFrom >= vA, 'the live stream started at the head when it connected');
    assert.deepEqual(got(sAlive), expect(A, liveFrom, lastA, ['todos']));
    assert.deepEqual(got(sB), expect(B, 0, lastB));
    // Every event is the row's own: no id of the other user's rows, no row without an owner.
    const bIds = new Set(log.filter((l) => l.owner !== A).map((l) => `${l.entity}/${l.entity_id}`));
    for (const e of [...events(sA), ...events(sAlive)]) assert.ok(!bIds.has(`${e.entity}/${e.id}`), `A saw ${JSON.stringify(e)}`);
    // ... and A's stream did get A's own changes: the seeded row and note, the pushes
    // (the create that named B among them) and the PHP app's edits.
    const seenA = new Set(events(sA).map((e) => `${e.entity}/${e.id}`));
    for (const k of ['todos/1', `todos/${planted}`, `todos/${plain}`, 'notes/n-a', 'notes/n-a2']) assert.ok(seenA.has(k), `A's stream lacks ${k}`);
    assert.ok(events(sAlive).some((e) => e.id === 1 && e.version === lastA), "the cookie stream lacks A's last write");
    assert.ok(events(sB).some((e) => e.entity === 'notes' && e.id === 'n-b' && e.action === 'delete'), "B's stream lacks B's delete");
    // A heartbeat later, B's stream has still seen nothing of A's last write.
    await sB.take((i) => i.comments.includes('keep-alive'), 5000);
    assert.deepEqual(got(sB), expect(B, 0, lastA));
  } finally {
    for (const s of streams) s.close();
    await srv.stop();
  }
});
