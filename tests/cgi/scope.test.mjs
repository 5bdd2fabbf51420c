// Sync rules (an entity's "scope"), through the real sync-pull and sync-push as plain
// CGI, on both backends (SQLite, and PostgreSQL when its server binaries are here): hostile
// expressions refused when the config loads, pulls that list exactly the rows in a user's
// scope, and rows that leave or enter the scope (a membership changed or deleted, a row
// moved between lists, an owner changed, a user added to a list) arriving as deletes and
// creates on the next incremental pull; every push case. The same assertions hold for
// both; only the SQL the app itself runs, and what each database calls a hostile
// expression, differ.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { BACKENDS, backendTokenApp, pgDdl } from '../harness/backends.mjs';

const pgSkip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!pgSkip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const SQLITE_SCHEMA = `
CREATE TABLE lists (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE list_members (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (list_id, user_id));
CREATE TABLE todos (id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
CREATE TABLE notes (id INTEGER PRIMARY KEY, owner TEXT, body TEXT);
INSERT INTO lists (id, name) VALUES (1, 'home'), (2, 'work'), (3, 'secret');
INSERT INTO list_members VALUES (1, 'alice'), (1, 'bob'), (2, 'alice'), (3, 'carol');
INSERT INTO todos (id, list_id, title) VALUES (10, 1, 'milk'), (11, 1, 'bread'), (20, 2, 'report'), (30, 3, 'gift');
`;
// The same tables on PostgreSQL (pgDdl: the keys are serials there; the rows' ids are given).
const SCHEMA = { sqlite: SQLITE_SCHEMA, postgres: pgDdl(SQLITE_SCHEMA) };
const MEMBER = 'list_id IN (SELECT list_id FROM list_members WHERE user_id = :user)';

const pull = (app, user, since = 0, { entity = 'todos', token } = {}) => runCgi('sync-pull', {
  config: app.config, path: `/${entity}`, query: `since=${since}`,
  headers: { Authorization: `Bearer ${token ?? app.token(user)}` },
});
const pullOk = (app, user, since, opts) => {
  const r = pull(app, user, since, opts);
  assert.equal(r.status, 200, r.text());
  return r.json();
};
const ids = (answer) => answer.changes.map((c) => [c.id, c.action]);
const push = (app, user, changes, { entity = 'todos' } = {}) => {
  const r = runCgi('sync-push', {
    config: app.config, method: 'POST', path: `/${entity}`,
    body: JSON.stringify({ client_id: `c-${user}`, changes }),
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${app.token(user)}` },
  });
  assert.equal(r.status, 200, r.text());
  return r.json();
};
const count = (app, query) => Number(app.rows(query)[0].n);

for (const backend of BACKENDS) {
  const skip = backend === 'postgres' ? pgSkip : false;
  const on = () => (backend === 'sqlite' ? 'sqlite' : pg);
  const makeShared = (entities = [{ name: 'todos', scope: MEMBER }], extra = {}) =>
    backendTokenApp(on(), { ...SCHEMA, config: { entities, ...extra } });
  // The test, named for its backend; PostgreSQL's skip only when its binaries are absent.
  const test_ = (name, fn) => test(`${backend}: ${name}`, { skip }, fn);

  test_('a full sync lists exactly the rows in the user\'s scope', async () => {
    const app = await makeShared();
    assert.deepEqual(ids(pullOk(app, 'alice')), [[10, 'create'], [11, 'create'], [20, 'create']]);
    assert.deepEqual(ids(pullOk(app, 'bob')), [[10, 'create'], [11, 'create']]);
    assert.deepEqual(ids(pullOk(app, 'carol')), [[30, 'create']]);
    assert.deepEqual(ids(pullOk(app, 'mallory')), []);
    const a = pullOk(app, 'alice');
    assert.deepEqual(a.changes[0].data, { id: 10, list_id: 1, title: 'milk', done: 0 });
  });

  test_('a member removed from a list (membership updated): its rows arrive as deletes', async () => {
    const app = await makeShared();
    const first = pullOk(app, 'bob');
    app.exec("UPDATE list_members SET user_id = 'dave' WHERE list_id = 1 AND user_id = 'bob';");
    const next = pullOk(app, 'bob', first.version);
    assert.deepEqual(ids(next).sort(), [[10, 'delete'], [11, 'delete']]);
    assert.equal(next.changes[0].data, undefined);
    // Told once: the pull after that has nothing.
    assert.deepEqual(ids(pullOk(app, 'bob', next.version)), []);
    // Alice, still a member, is told nothing about it.
    const a = pullOk(app, 'alice');
    app.exec("DELETE FROM list_members WHERE user_id = 'dave';");
    assert.deepEqual(ids(pullOk(app, 'alice', a.version)), []);
  });

  test_('a deleted membership row: the list\'s rows arrive as deletes, other lists stay', async () => {
    const app = await makeShared();
    const first = pullOk(app, 'alice');
    app.exec("DELETE FROM list_members WHERE list_id = 2 AND user_id = 'alice';");
    const next = pullOk(app, 'alice', first.version);
    assert.deepEqual(ids(next), [[20, 'delete']]);
    assert.deepEqual(ids(pullOk(app, 'alice')), [[10, 'create'], [11, 'create']]);
  });

  test_('a user added to a list: its rows arrive as creates, with their data', async () => {
    const app = await makeShared();
    const first = pullOk(app, 'bob');
    app.exec("INSERT INTO list_members VALUES (2, 'bob');");
    const next = pullOk(app, 'bob', first.version);
    assert.deepEqual(ids(next), [[20, 'create']]);
    assert.deepEqual(next.changes[0].data, { id: 20, list_id: 2, title: 'report', done: 0 });
  });

  test_('a row moved between lists: a delete for who lost it, a create for who gained it, an update for who kept it', async () => {
    const app = await makeShared();
    const b = pullOk(app, 'bob');
    const c = pullOk(app, 'carol');
    const a = pullOk(app, 'alice');
    app.exec('UPDATE todos SET list_id = 3 WHERE id = 10;');
    assert.deepEqual(ids(pullOk(app, 'bob', b.version)), [[10, 'delete']]);
    const cn = pullOk(app, 'carol', c.version);
    assert.deepEqual(ids(cn), [[10, 'create']]);
    assert.equal(cn.changes[0].data.list_id, 3);
    assert.deepEqual(ids(pullOk(app, 'alice', a.version)), [[10, 'delete']]);
    // Moved from list 3 to list 2: alice (member of 2) gets it back.
    const a2 = pullOk(app, 'alice', a.version);
    app.exec('UPDATE todos SET list_id = 2 WHERE id = 10;');
    assert.deepEqual(ids(pullOk(app, 'alice', a2.version)), [[10, 'create']]);
    // An edit inside the scope is an update.
    const a3 = pullOk(app, 'alice', a2.version);
    app.exec("UPDATE todos SET title = 'oat milk' WHERE id = 10;");
    const a4 = pullOk(app, 'alice', a3.version);
    assert.deepEqual(ids(a4), [[10, 'update']]);
    assert.equal(a4.changes[0].data.title, 'oat milk');
  });

  test_('the app writing through PHP (PDO): a membership it deletes and a row it adds reach the next pull', async (t) => {
    const driver = backend === 'sqlite' ? 'pdo_sqlite' : 'pdo_pgsql';
    const mods = spawnSync('php', ['-m'], { encoding: 'utf8' });
    if (mods.status !== 0 || !new RegExp(`^${driver}$`, 'm').test(mods.stdout)) {
      t.skip(`php-cli has no ${driver}`);
      return;
    }
    const app = await makeShared();
    const dsn = backend === 'sqlite' ? `sqlite:${app.db}` : `pgsql:host=${pg.socketDir};dbname=${app.dbname};user=${pg.role}`;
    const first = pullOk(app, 'alice');
    const php = spawnSync('php', ['-r', `
      $db = new PDO(getenv('DSN'), null, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
      $db->prepare('DELETE FROM list_members WHERE list_id = ? AND user_id = ?')->execute([2, 'alice']);
      $db->prepare('INSERT INTO todos (id, list_id, title) VALUES (?, ?, ?)')->execute([12, 1, 'jam']);
    `], { encoding: 'utf8', env: { ...process.env, DSN: dsn } });
    assert.equal(php.status, 0, php.stderr + php.stdout);
    const next = pullOk(app, 'alice', first.version);
    assert.deepEqual(ids(next).sort(), [[12, 'create'], [20, 'delete']]);
    assert.deepEqual(next.changes.find((c) => c.id === 12).data, { id: 12, list_id: 1, title: 'jam', done: 0 });
  });

  test_('a deleted row arrives as a delete only for users who could see it', async () => {
    const app = await makeShared();
    const a = pullOk(app, 'alice');
    const c = pullOk(app, 'carol');
    app.exec('DELETE FROM todos WHERE id = 20;');
    assert.deepEqual(ids(pullOk(app, 'alice', a.version)), [[20, 'delete']]);
    assert.deepEqual(ids(pullOk(app, 'carol', c.version)), []);
  });

  test_('owner_column: a row handed to another owner arrives as a delete for the old one (the known limit is gone)', async () => {
    const app = await makeShared([{ name: 'notes', owner_column: 'owner' }]);
    app.exec("INSERT INTO notes (id, owner, body) VALUES (1, 'alice', 'a'), (2, 'bob', 'b');");
    const a = pullOk(app, 'alice', 0, { entity: 'notes' });
    const b = pullOk(app, 'bob', 0, { entity: 'notes' });
    assert.deepEqual(ids(a), [[1, 'create']]);
    app.exec("UPDATE notes SET owner = 'bob' WHERE id = 1;");
    assert.deepEqual(ids(pullOk(app, 'alice', a.version, { entity: 'notes' })), [[1, 'delete']]);
    const bn = pullOk(app, 'bob', b.version, { entity: 'notes' });
    assert.deepEqual(ids(bn), [[1, 'create']]);
    assert.equal(bn.changes[0].data.owner, 'bob');
  });

  test_('a scope reading a claim of the token: :claim.NAME', async () => {
    const app = await makeShared([{ name: 'lists', scope: 'name = :claim.team' }]);
    const r = pull(app, 'x', 0, { entity: 'lists', token: app.token('x', { team: 'work' }) });
    assert.equal(r.status, 200, r.text());
    assert.deepEqual(ids(r.json()), [[2, 'create']]);
    const none = pull(app, 'x', 0, { entity: 'lists', token: app.token('y') });
    assert.deepEqual(ids(none.json()), []);
    // Other claims for the same user: the view is rebuilt, and an old cursor resyncs.
    const again = pull(app, 'x', r.json().version, { entity: 'lists', token: app.token('x', { team: 'home' }) });
    assert.equal(again.status, 410, again.text());
    assert.equal(again.json().error.code, 'resync_required');
  });

  test_('hostile or broken scopes are refused when the config loads, with one log line naming the entity', async () => {
    const cases = [
      ['DELETE', "DELETE FROM lists", /scope does not compile/],
      ['DELETE in a subquery', "1 AND (SELECT count(*) FROM (DELETE FROM lists RETURNING 1))", /scope (refused|does not compile)/],
      ['; DROP', "1); DROP TABLE lists; SELECT (1", /scope refused: .*(parentheses|second statement)/],
      ['; DROP inside', "list_id = 1; DROP TABLE lists", /scope does not compile/],
      ['ATTACH', "1); ATTACH DATABASE 'attached.db' AS other; SELECT (1", /scope refused: it contains unbalanced parentheses/],
      ['ATTACH inside', "list_id = 1; ATTACH DATABASE 'attached.db' AS other", /scope does not compile/],
      ['unknown column', "no_such_column = :user", backend === 'sqlite'
        ? /scope does not compile: no such column: no_such_column/
        : /scope does not compile: column "no_such_column" does not exist/],
      ['a comment', "1 /* ) OR (1 */", /scope refused: it contains a comment/],
      ['our own tables', "EXISTS (SELECT 1 FROM _rhtmx_sync_log)", /scope refused: it reads '_rhtmx_sync_log'/],
      ['another parameter', "list_id = :list", /unknown parameter :list/],
      ...(backend === 'sqlite' ? [
        ['another database', "EXISTS (SELECT 1 FROM temp.sqlite_temp_master)", /scope refused: it reads 'sqlite_temp_master'/],
        ['load_extension', "load_extension('/tmp/x.so') IS NULL", /load_extension\(\), which may have side effects/],
        ['a pragma', "EXISTS (SELECT 1 FROM pragma_table_info('lists'))", /scope refused/],
      ] : [
        ['the catalog', "EXISTS (SELECT 1 FROM pg_catalog.pg_class)", /scope refused: it reads 'pg_class', which is not the app's/],
        ['a catalog view', "EXISTS (SELECT 1 FROM pg_stat_activity)", /scope refused: it reads 'pg_stat_activity'/],
        ['nextval', "nextval('todos_id_seq') > 0", /nextval\(\), which may have side effects/],
        ['pg_sleep', "pg_sleep(1) IS NOT NULL", /pg_sleep\(\), which may have side effects/],
        ['set_config', "set_config('a.b', 'c', false) IS NOT NULL", /set_config\(\), which may have side effects/],
        ['a writing WITH', "EXISTS (WITH d AS (DELETE FROM lists RETURNING 1) SELECT 1 FROM d)", /scope does not compile/],
        ['a view of the app', "list_id IN (SELECT list_id FROM member_view)", /scope refused: it reads 'member_view', which is not a table/],
        ['a STABLE function of the app', "list_id IN (SELECT my_lists(:user))", /my_lists\(\), a STABLE function of the app's/],
        ['a dollar quote', "title = $$x$$", /scope refused: it contains '\$'/],
        ['an escape string', "title = E'\\''", /scope refused: it contains '\\'/],
      ]),
    ];
    for (const [what, scope, re] of cases) {
      const app = await makeShared([{ name: 'todos', scope }]);
      if (backend === 'postgres') {
        app.exec(`CREATE VIEW member_view AS SELECT * FROM list_members;
          CREATE FUNCTION my_lists(u text) RETURNS SETOF integer STABLE LANGUAGE sql
            AS 'SELECT list_id FROM list_members WHERE user_id = u';`);
      }
      const r = pull(app, 'alice');
      assert.equal(r.status, 500, `${what}: ${r.text()}`);
      assert.equal(r.json().error.code, 'config', what);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0], /entity 'todos'/, what);
      assert.match(lines[0], re, what);
      // Nothing of it ran.
      assert.equal(count(app, 'SELECT count(*) AS n FROM lists'), 3, what);
      assert.ok(!fs.existsSync(path.join(app.dir, 'attached.db')), what);
    }
  });

  test_('a scope needs auth mode "token"', async () => {
    const app = await backendTokenApp(on(), { ...SCHEMA, config: { entities: [{ name: 'todos', scope: MEMBER }] }, auth: { mode: 'none' } });
    const r = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' });
    assert.equal(r.status, 500);
    assert.match(r.stderr, /entity 'todos' has a "scope", which needs auth mode "token"/);
  });

  test_('push: outside the scope, or moving a row out of it, is rejected as forbidden; the rest of the batch applies', async () => {
    const app = await makeShared();
    const seen = pullOk(app, 'bob').version; // as a client would: what it pulled last
    const c = (mutation_id, action, id, data) => ({ mutation_id, action, id, ...(data ? { data } : {}), client_version: seen });
    const r = push(app, 'bob', [
      c('m1', 'create', 40, { list_id: 3, title: 'not my list' }),      // create outside
      c('m2', 'update', 30, { title: 'peek' }),                          // update of a row outside
      c('m3', 'delete', 30),                                             // delete of a row outside
      c('m4', 'update', 10, { list_id: 3 }),                             // moves a row out
      c('m5', 'create', 30, { list_id: 1, title: 'steal' }),             // create over a row outside
      c('m6', 'update', 11, { title: 'rye bread' }),                     // fine
      c('m7', 'create', 41, { list_id: 1, title: 'eggs' }),              // fine
      c('m8', 'delete', 10),                                             // fine
    ]);
    assert.deepEqual(r.applied, [11, 41, 10]);
    assert.deepEqual(r.rejected.map((x) => [x.mutation_id, x.code]),
      [['m1', 'forbidden'], ['m2', 'forbidden'], ['m3', 'forbidden'], ['m4', 'forbidden'], ['m5', 'forbidden']]);
    assert.deepEqual(app.rows('SELECT id, list_id, title FROM todos ORDER BY id'), [
      { id: 11, list_id: 1, title: 'rye bread' }, { id: 20, list_id: 2, title: 'report' },
      { id: 30, list_id: 3, title: 'gift' }, { id: 41, list_id: 1, title: 'eggs' },
    ]);
    // A create without an id (the server assigns it) outside the scope is refused too.
    const t = push(app, 'bob', [c('m9', 'create', 'tmp-1', { list_id: 2, title: 'x' })]);
    assert.deepEqual(t.rejected.map((x) => x.code), ['forbidden']);
    assert.equal(count(app, "SELECT count(*) AS n FROM todos WHERE title = 'x'"), 0);
  });

  test_('a table with text keys (with SQLite, WITHOUT ROWID): the view is numbered all the same', async () => {
    const cards = "INSERT INTO cards VALUES ('b', 1, 'x'), ('a', 1, 'y'), ('z', 2, 'z'), ('q', 3, 'w');";
    const app = await backendTokenApp(on(), {
      sqlite: `${SCHEMA.sqlite}
        CREATE TABLE cards (code TEXT PRIMARY KEY, list_id INTEGER NOT NULL, body TEXT) WITHOUT ROWID; ${cards}`,
      postgres: `${SCHEMA.postgres}
        CREATE TABLE cards (code text PRIMARY KEY, list_id integer NOT NULL, body text); ${cards}`,
      config: { entities: [{ name: 'cards', key: 'code', scope: MEMBER }] },
    });
    const first = pullOk(app, 'alice', 0, { entity: 'cards' });
    assert.deepEqual(ids(first).sort(), [['a', 'create'], ['b', 'create'], ['z', 'create']]);
    assert.equal(new Set(first.changes.map((c) => c.version)).size, 3, 'one version each');
    app.exec("DELETE FROM list_members WHERE list_id = 1 AND user_id = 'alice';");
    assert.deepEqual(ids(pullOk(app, 'alice', first.version, { entity: 'cards' })).sort(), [['a', 'delete'], ['b', 'delete']]);
  });

  test_('compaction: entries of rows that left a view go with the horizon, a user away for the retention loses the view and resyncs', async () => {
    const app = await makeShared([{ name: 'todos', scope: MEMBER }], { retention: { days: 1 } });
    const a = pullOk(app, 'alice');
    const b = pullOk(app, 'bob');
    app.exec('UPDATE todos SET list_id = 3 WHERE id = 20;');
    const a1 = pullOk(app, 'alice', a.version);
    assert.deepEqual(ids(a1), [[20, 'delete']]);
    const left = () => count(app, 'SELECT count(*) AS n FROM _rhtmx_sync_view WHERE NOT visible');
    assert.equal(left(), 1);
    // A tombstone after that, old enough to go; and bob has not pulled for two days.
    const now = backend === 'sqlite' ? "strftime('%s', 'now')" : 'extract(epoch FROM now())::bigint';
    app.exec(`DELETE FROM todos WHERE id = 30;
              UPDATE _rhtmx_sync_log SET created_at = '2000-01-01T00:00:00.000Z';
              UPDATE _rhtmx_sync_viewers SET seen = ${now} - 2 * 86400 WHERE viewer = 'bob';`);
    const r = spawnSync(bin('rhtmx-sync'), ['compact', '--config', app.config], { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
    assertSanitizerClean(r.stderr, 'rhtmx-sync');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(left(), 0, 'the delete alice was told of is forgotten');
    assert.deepEqual(app.rows('SELECT viewer FROM _rhtmx_sync_viewers ORDER BY viewer').map((x) => x.viewer), ['alice']);
    // Bob's device comes back: its cursor is below his rebuilt view, so it resyncs, and the
    // full sync lists exactly his rows.
    const again = pull(app, 'bob', b.version);
    assert.equal(again.status, 410, again.text());
    assert.equal(again.json().error.code, 'resync_required');
    assert.deepEqual(ids(pullOk(app, 'bob')), [[10, 'create'], [11, 'create']]);
  });

  test_('a table the scope reads, rebuilt by the app (its triggers gone with it): they are made again, and a membership change still arrives', async () => {
    const app = await makeShared();
    const a = pullOk(app, 'alice');
    // SQLite: one trigger per statement kind; PostgreSQL: one statement trigger.
    const deps = () => (backend === 'sqlite'
      ? count(app, "SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger' AND name LIKE '_rhtmx_sync_todos_dep_%'")
      : count(app, "SELECT count(*) AS n FROM pg_trigger WHERE tgname = '_rhtmx_sync_todos_dep'"));
    const made = backend === 'sqlite' ? 3 : 1;
    assert.equal(deps(), made);
    // The 12-step rebuild of SQLite's ALTER TABLE documentation: new table, copy, drop, rename.
    app.exec(`BEGIN;
      CREATE TABLE list_members_new (list_id INTEGER NOT NULL, user_id TEXT NOT NULL, since TEXT, PRIMARY KEY (list_id, user_id));
      INSERT INTO list_members_new (list_id, user_id) SELECT list_id, user_id FROM list_members;
      DROP TABLE list_members;
      ALTER TABLE list_members_new RENAME TO list_members;
      COMMIT;`);
    assert.equal(deps(), 0);
    const a1 = pullOk(app, 'alice', a.version); // notices, and makes them again
    assert.equal(deps(), made);
    app.exec("DELETE FROM list_members WHERE list_id = 2 AND user_id = 'alice';");
    assert.deepEqual(ids(pullOk(app, 'alice', a1.version)).filter(([, act]) => act === 'delete'), [[20, 'delete']]);
  });
}
