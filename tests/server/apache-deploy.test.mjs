// docs/DEPLOY.md, followed literally: a home folder laid out as its cPanel steps
// say (the programs, the .htaccess and the example config in public_html/api/sync/;
// the database and the secret in sync-data/, outside the web root), served by a
// real Apache with mod_fcgid at its defaults in token mode; then the operator tool
// as the doc runs it, and the doc's check block (openssl-made token, one curl per
// program), run as it is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SOURCE, BIN, tmpdir, bin, assertSanitizerClean } from '../harness/rhtmx.mjs';
import { startApache, sql, PROGRAMS } from '../harness/apache.mjs';

function deployCheckBlock() {
  const doc = fs.readFileSync(path.join(SOURCE, 'docs/DEPLOY.md'), 'utf8');
  const m = doc.match(/<!-- deploy-check -->\s*```sh\n([\s\S]*?)```\s*<!-- \/deploy-check -->/);
  assert.ok(m, 'docs/DEPLOY.md has a deploy-check block');
  return m[1];
}

/** public_html/ and sync-data/ under a fresh home, as DEPLOY.md's steps 1-4 make them. */
function layoutHome() {
  const home = tmpdir('home');
  const www = path.join(home, 'public_html');
  const folder = path.join(www, 'api/sync');
  const data = path.join(home, 'sync-data');
  fs.mkdirSync(folder, { recursive: true });
  fs.mkdirSync(data, { mode: 0o700 });
  fs.writeFileSync(path.join(www, 'index.html'), '<!doctype html><title>my app</title>\n');
  // Step 1: the app's database.
  const db = path.join(data, 'app.db');
  sql(db, `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
           INSERT INTO todos (title) VALUES ('Buy milk'), ('Write docs');`);
  fs.chmodSync(db, 0o600);
  // Step 2: the secret (head -c 32 /dev/urandom | base64 > sync.secret; chmod 600).
  const secret = path.join(data, 'sync.secret');
  fs.writeFileSync(secret, `${Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString('base64')}\n`, { mode: 0o600 });
  // Step 3: the programs and the .htaccess, 755/644.
  for (const p of PROGRAMS) fs.copyFileSync(path.join(BIN, p), path.join(folder, p));
  for (const p of PROGRAMS) fs.chmodSync(path.join(folder, p), 0o755);
  fs.copyFileSync(path.join(SOURCE, 'apache/.htaccess'), path.join(folder, '.htaccess'));
  fs.chmodSync(path.join(folder, '.htaccess'), 0o644);
  // Step 4, without a shell: the example config renamed in place, as shipped (plus a
  // short poll_wait so the events check does not wait 25 s).
  const config = path.join(folder, 'rhtmx-sync.json');
  const example = JSON.parse(fs.readFileSync(path.join(SOURCE, 'apache/rhtmx-sync.json.example'), 'utf8'));
  fs.writeFileSync(config, JSON.stringify({ ...example, events: { poll_wait: 2 } }, null, 2));
  return { home, www, folder, data, db, secret, config, app: { dir: home, db, config } };
}

function tool(...args) {
  const r = spawnSync(bin('rhtmx-sync'), args, { encoding: 'utf8', env: { ...process.env, RHTMX_SYNC_CONFIG: '' } });
  assertSanitizerClean(r.stderr, 'rhtmx-sync');
  return r;
}

test('DEPLOY.md on a cPanel-style host: layout, operator tool, and the check block as written', async (t) => {
  const h = layoutHome();
  // Step 5: init as the database's owner (here the test; the server gets the files next).
  const init = tool('init', '--config', h.config);
  assert.equal(init.status, 0, init.stderr);
  assert.match(init.stdout, /^auth\s+token$/m);
  assert.match(init.stdout, /^todos\s+todos\s+2\s+2\s+ok$/m);

  const srv = await startApache(h.app, { fcgid: 'default', docroot: h.www });
  try {
    const script = deployCheckBlock()
      .replace(/^SITE=.*$/m, `SITE=${srv.url}`)
      .replace(/^SECRET=.*$/m, `SECRET=${h.secret}`);
    const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `the check block failed:\n${r.stderr}`);
    const out = r.stdout;
    t.diagnostic(out);
    const lines = out.split('\n');
    assert.equal(lines[0], 'client-js:   200 text/javascript; charset=utf-8');
    assert.equal(lines[1], 'no token:    401');
    const pull = JSON.parse(lines[2]);
    assert.equal(pull.entity, 'todos');
    assert.deepEqual(pull.changes.map((c) => c.data.title), ['Buy milk']);
    assert.equal(pull.has_more, true);
    assert.equal(lines[3], 'sync-pull:   200');
    await t.test('the push line', (st) => {
      assert.equal(lines[5], 'sync-push:   200', out);
      assert.deepEqual(JSON.parse(lines[4]).applied, []);
    });
    await t.test('the events line', (st) => {
      assert.match(out, /^retry: \d+\n\n: rhtmx-sync poll\n\nevent: schema\ndata: \{"todos":"[0-9a-f]{16}"\}\n\nevent: bye\nid: \d+\ndata: \{"version":\d+\}\n\nsync-events: 200$/m);
    });
    // The config beside the programs and the data outside the web root are out of reach.
    for (const p of ['/api/sync/rhtmx-sync.json', '/sync-data/sync.secret', '/sync-data/app.db']) {
      const x = await fetch(`${srv.url}${p}`);
      assert.ok([403, 404].includes(x.status), `${p}: ${x.status}`);
    }
  } finally {
    await srv.stop();
  }
  // The check the doc gives for the host itself.
  const status = tool('status', '--config', h.config);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /^database\s+\S+\/public_html\/api\/sync\/\.\.\/\.\.\/\.\.\/sync-data\/app\.db$/m);
  assert.match(status.stdout, /^horizon\s+0$/m);
});
