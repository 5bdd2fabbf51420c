// Selecting PostgreSQL in the config, and the throwaway cluster the PostgreSQL tests use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCgi, bin, tmpdir, assertSanitizerClean, cgiCommand } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => {
  if (!skip) pg = await startPostgres({ hba: ['local all pwuser scram-sha-256'] });
});
after(async () => { if (pg) await pg.stop(); });

const TODOS = 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);';
const pull = (config, query = 'since=0') => runCgi('sync-pull', { config, path: '/todos', query });
function writeConfig(dir, database, extra = {}) {
  const p = path.join(dir, 'rhtmx-sync.json');
  fs.writeFileSync(p, JSON.stringify({ database, entities: ['todos'], auth: { mode: 'none' }, ...extra }));
  return p;
}
function tool(args) {
  const argv = cgiCommand('rhtmx-sync');
  const r = spawnSync(argv[0], [...argv.slice(1), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS ?? '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
}

test('the test cluster runs unprivileged, on a Unix socket only, and stops by its pid', { skip }, async () => {
  const own = await startPostgres();
  try {
    const status = fs.readFileSync(`/proc/${own.pid}/status`, 'utf8');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)[1]);
    if (process.getuid() === 0) assert.equal(uid, 65534, 'runs as nobody when the tests run as root');
    else assert.equal(uid, process.getuid());
    assert.equal(own.psql('postgres', 'SHOW listen_addresses').trim(), '', 'no TCP listener');
    assert.equal(own.psql('postgres', 'SHOW data_directory').trim(), path.join(own.dir, 'data'));
    assert.ok(fs.existsSync(path.join(own.socketDir, '.s.PGSQL.5432')));
  } finally {
    await own.stop();
  }
  assert.throws(() => process.kill(own.pid, 0), 'the postmaster is gone');
});

test('a postgresql:// database selects PostgreSQL; the first request installs the trigger', { skip }, async () => {
  const app = await backendApp(pg, { postgres: `${TODOS} INSERT INTO todos (title) VALUES ('old 1'), ('old 2');` });
  const r = pull(app.config);
  assert.equal(r.status, 200);
  assert.match(r.stderr, /installed change-capture triggers on 1 table\(s\) of postgresql:\/\/rhtmx@\//);
  assert.deepEqual(r.json().changes.map((c) => [c.id, c.action, c.data.title]), [[1, 'create', 'old 1'], [2, 'create', 'old 2']]);
  assert.deepEqual(app.rows("SELECT tgname FROM pg_trigger WHERE tgrelid = 'todos'::regclass"), [{ tgname: '_rhtmx_sync_todos' }]);
  const again = pull(app.config);
  assert.doesNotMatch(again.stderr, /installed/, 'the second request finds it in place');
});

test('the object form reads the password from its file; a wrong one is a 503 and is never shown', { skip }, async () => {
  const app = await backendApp(pg, { postgres: `${TODOS} CREATE ROLE pwuser LOGIN PASSWORD 'pw-secret-1'; GRANT ALL ON SCHEMA public TO pwuser; ALTER TABLE todos OWNER TO pwuser;` });
  pg.psql(app.dbname, `ALTER DATABASE ${app.dbname} OWNER TO pwuser;`);
  const dir = tmpdir('pgpw');
  const url = app.url.replace('rhtmx@', 'pwuser@');
  fs.writeFileSync(path.join(dir, 'pg-password'), 'pw-secret-1\n');
  const config = writeConfig(dir, { postgresql: url, password_file: 'pg-password' });
  const ok = pull(config);
  assert.equal(ok.status, 200, ok.stderr);

  fs.writeFileSync(path.join(dir, 'pg-password'), 'wrong-secret\n');
  const bad = pull(config);
  assert.equal(bad.status, 503);
  assert.match(bad.stderr, /cannot connect to PostgreSQL at postgresql:\/\/pwuser@\/.*password authentication failed/);
  assert.doesNotMatch(bad.stderr + bad.text(), /wrong-secret|pw-secret/);

  // A password in the URL itself works too, and messages show it as ***.
  const inUrl = writeConfig(tmpdir('pgpw'), url.replace('pwuser@', 'pwuser:not-it@'));
  const r = pull(inUrl);
  assert.equal(r.status, 503);
  assert.match(r.stderr, /postgresql:\/\/pwuser:\*\*\*@\//);
  assert.doesNotMatch(r.stderr, /not-it/);
});

test('a malformed PostgreSQL "database" is a configuration error naming the problem', { skip }, () => {
  const dir = tmpdir('pgcfg');
  const cases = [
    [{ postgresql: 'postgresql://x@/y', password: 'p' }, /unknown key 'password' in "database"/],
    [{ password_file: 'p' }, /"postgresql" must be a postgresql:\/\/ URL/],
    [{ postgresql: '/var/db/app.db' }, /"postgresql" must be a postgresql:\/\/ URL/],
    [{ postgresql: 'postgresql://x@/y', password_file: '' }, /"password_file" must be a non-empty string/],
  ];
  for (const [database, re] of cases) {
    const r = pull(writeConfig(dir, database));
    assert.equal(r.status, 500, JSON.stringify(database));
    assert.equal(r.json().error.code, 'config');
    assert.match(r.stderr, re);
  }
});

test('moving an app from SQLite to PostgreSQL as docs/DEPLOY.md says: every client starts over, nothing is missed', { skip }, async () => {
  // The app on SQLite, and a client that synced it.
  const old = await backendApp('sqlite', { sqlite: "CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0); INSERT INTO todos (title) VALUES ('a'), ('b'), ('c');" });
  const first = pull(old.config).json();
  old.exec("UPDATE todos SET done = 1 WHERE id = 1; DELETE FROM todos WHERE id = 2; INSERT INTO todos (title) VALUES ('d');");
  const synced = pull(old.config, `since=${first.version}`).json();
  const H = Number(old.exec("SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
  assert.equal(synced.version, H);

  // The same rows in PostgreSQL (the app's own tables only), then init and the one UPDATE.
  const rows = old.rows('SELECT id, title, done FROM todos ORDER BY id');
  const app = await backendApp(pg, { postgres: `${TODOS} INSERT INTO todos (id, title, done) VALUES ${rows.map((r) => `(${r.id}, '${r.title}', ${r.done})`).join(', ')};
    SELECT setval(pg_get_serial_sequence('todos', 'id'), (SELECT max(id) FROM todos));` });
  assert.equal(tool(['init', '--config', app.config]).status, 0);
  app.exec(`UPDATE _rhtmx_sync_state SET value = greatest(value, ${H} + 1) WHERE key IN ('head', 'horizon');`);

  // The client's cursor from the SQLite days answers 410: it pulls from 0 and has every row.
  const r = pull(app.config, `since=${H}`);
  assert.equal(r.status, 410);
  assert.equal(r.json().error.code, 'resync_required');
  assert.deepEqual(pull(app.config, 'since=0').json().changes.map((c) => c.data), rows);
  // New writes come after the horizon, and incremental pulls work from there.
  const v = pull(app.config, 'since=0').json().version;
  assert.equal(v, H + 1);
  app.exec("INSERT INTO todos (title) VALUES ('e');");
  assert.deepEqual(pull(app.config, `since=${v}`).json().changes.map((c) => [c.data.title, c.version]), [['e', H + 2]]);
});
