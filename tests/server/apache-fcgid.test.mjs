// The real programs uploaded into a document root with apache/.htaccess, behind a
// real Apache + mod_fcgid: first exactly as the module comes (a shared host), then
// with apache/fcgid.conf (a server you control). A browser's whole conversation:
// client.js, pull, push, and live updates (poll mode at the defaults, where
// mod_fcgid buffers output; a stream with the recommended settings). On SQLite and on
// PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';
import {
  startApache, checkPull, checkUnreadBody, checkClientJs, checkServiceWorkerJs, checkPush, checkEventsPoll, checkEventsStream, request,
} from '../harness/apache.mjs';

const backends = useBackends();

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`Apache + mod_fcgid at its defaults (a shared host) (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 3 } } });
    const srv = await startApache(app, { fcgid: 'default' });
    try {
      await t.test('client.js', () => checkClientJs(srv.url));
      await t.test('sw.js', () => checkServiceWorkerJs(srv.url));
      await t.test('pull', () => checkPull(srv.url, app));
      await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
      await t.test('push', () => checkPush(srv.url, app));
      await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
      await t.test('one long-lived process per program serves request after request', async () => {
        for (let i = 0; i < 20; i++) assert.equal((await request(`${srv.url}/api/sync/todos?since=0&limit=1`)).status, 200);
        assert.ok(srv.processes('sync-pull').length >= 1);
        assert.ok(srv.processes('sync-pull').length <= 3, `${srv.processes('sync-pull').length} sync-pull processes`);
      });
    } finally {
      await srv.stop();
    }
  });

  test(`Apache + mod_fcgid with apache/fcgid.conf (streaming live updates) (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 3 } } });
    const srv = await startApache(app, { fcgid: 'recommended' });
    try {
      await t.test('client.js', () => checkClientJs(srv.url));
      await t.test('pull', () => checkPull(srv.url, app));
      await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
      await t.test('push', () => checkPush(srv.url, app));
      await t.test('push bodies up to push.max_body_bytes get through', async (st) => {
        const changes = [];
        for (let i = 0; i < 900; i++) {
          changes.push({ mutation_id: `big-${i}`, id: `tmp-${i}`, action: 'create',
            data: { title: `a long enough title for a big offline queue, number ${i} `.repeat(4) }, client_version: 0 });
        }
        const body = JSON.stringify({ client_id: 'c-big', changes });
        assert.ok(body.length > 131072 && body.length < 1048576, `${body.length} bytes`);
        const r = await request(`${srv.url}/api/sync/todos`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
        assert.equal(r.status, 200, r.text().slice(0, 300));
        assert.equal(r.json().applied.length, 900);
      });
      await t.test('events, streaming', () => checkEventsStream(srv.url, app));
      await t.test('events, poll mode still works', () => checkEventsPoll(srv.url, app));
    } finally {
      await srv.stop();
    }
  });
}
