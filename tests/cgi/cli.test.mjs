// rhtmx-sync, the operator's tool: init installs, status verifies and changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { makeApp, sql, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';

function cli(...args) {
  const r = spawnSync(bin('rhtmx-sync'), args, { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
}

test('status before init says what to do; init installs; status then reports counts', () => {
  const app = makeApp({ schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);
                                 INSERT INTO todos (title) VALUES ('a'), ('b');` });
  let r = cli('status', '--config', app.config);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the sync tables are missing or old: run 'rhtmx-sync init'/);
  assert.equal(sql(app.db, "SELECT count(*) FROM sqlite_master WHERE name LIKE '_rhtmx%';").trim(), '0',
    'status must not change the database');

  r = cli('init', '--config', app.config);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^head\s+2$/m);
  assert.match(r.stdout, /^todos\s+todos\s+2\s+2\s+ok$/m);

  sql(app.db, "INSERT INTO todos (title) VALUES ('c');");
  r = cli('status', `--config=${app.config}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^head\s+3$/m);
  assert.match(r.stdout, /^todos\s+todos\s+3\s+3\s+ok$/m);

  // A dropped trigger is reported, and init repairs it.
  sql(app.db, 'DROP TRIGGER _rhtmx_sync_todos_delete;');
  r = cli('status', '--config', app.config);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /missing or out of date/);
  assert.equal(cli('init', '--config', app.config).status, 0);
  assert.equal(cli('status', '--config', app.config).status, 0);
});

test('status prints the same one line as the web programs for a config mistake', () => {
  const app = makeApp();
  fs.writeFileSync(app.config, '{"database": "app.db", "entities": ["todos"], "auth": {"mode": "none"}, "typo": true}');
  const r = cli('status', '--config', app.config);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /rhtmx-sync\.json: unknown key 'typo' in the top level/);
  const init = cli('init', '--config', app.config);
  assert.equal(init.status, 1);
  assert.match(init.stderr, /unknown key 'typo'/);
});

test('bad usage exits 2 with help', () => {
  const r = cli('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: rhtmx-sync/);
  assert.equal(cli().status, 2);
});
