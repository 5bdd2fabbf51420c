// A long-lived (FastCGI) sync-pull notices a config change on the very next request,
// whether the file is rewritten in place or a new file is renamed over it (how editors
// and deploy tools save), without a stat() per request (lib/app.c: an inotify watch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeApp } from '../harness/rhtmx.mjs';
import { startFcgi, fcgiRequest } from '../harness/fcgi.mjs';

const SCHEMA = `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
                CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);`;

async function status(fcgi, entity) {
  const r = await fcgiRequest(fcgi.sock, {
    GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', PATH_INFO: `/${entity}`, QUERY_STRING: 'since=0',
  });
  r.conn.destroy();
  return Number(/^Status: (\d+)/.exec(r.stdout.toString())[1]);
}

test('a config rewritten in place, then replaced by rename, applies to the next request', async () => {
  const app = makeApp({ tag: 'fcgi-config', schema: SCHEMA, config: { entities: ['todos'] } });
  const fcgi = await startFcgi('sync-pull', app.dir, { RHTMX_SYNC_CONFIG: app.config });
  const cfg = JSON.parse(fs.readFileSync(app.config, 'utf8'));
  try {
    assert.equal(await status(fcgi, 'todos'), 200);
    assert.equal(await status(fcgi, 'notes'), 404);

    fs.writeFileSync(app.config, JSON.stringify({ ...cfg, entities: ['notes'] }));
    assert.equal(await status(fcgi, 'notes'), 200);
    assert.equal(await status(fcgi, 'todos'), 404);

    const next = `${app.config}.new`;
    fs.writeFileSync(next, JSON.stringify({ ...cfg, entities: ['todos', 'notes'] }));
    fs.renameSync(next, app.config);
    assert.equal(await status(fcgi, 'todos'), 200);
    assert.equal(await status(fcgi, 'notes'), 200);

    // And once more in place: the watch follows the file that is there now.
    fs.writeFileSync(app.config, JSON.stringify({ ...cfg, entities: ['todos'] }));
    assert.equal(await status(fcgi, 'notes'), 404);
  } finally {
    await fcgi.stop();
  }
});
