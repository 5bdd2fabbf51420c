// lighttpd/rhtmx-sync.conf as a customer uses it: included from a lighttpd.conf
// that only sets the three variables its header names. The same checks as behind
// Apache: client.js, pull, push, live updates streaming (and poll mode). On SQLite and on
// PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';
import {
  startLighttpdConf, checkPull, checkUnreadBody, checkClientJs, checkServiceWorkerJs, checkPush, checkEventsPoll, checkEventsStream,
  request, openStream, sleep,
} from '../harness/apache.mjs';

const backends = useBackends();

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`lighttpd with lighttpd/rhtmx-sync.conf included (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 3 } } });
    const srv = await startLighttpdConf(app);
    try {
      await t.test('client.js', () => checkClientJs(srv.url));
      await t.test('sw.js', () => checkServiceWorkerJs(srv.url));
      await t.test('pull', () => checkPull(srv.url, app));
      await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
      await t.test('push', () => checkPush(srv.url, app));
      await t.test('events, streaming', () => checkEventsStream(srv.url, app));
      await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
      await t.test('URLs outside the four routes are left to the site', async () => {
        assert.equal((await request(`${srv.url}/index.html`)).status, 200);
        assert.equal((await request(`${srv.url}/api/sync/not-an-entity`)).status, 404);
        assert.equal((await request(`${srv.url}/api/sync/todos/extra`)).status, 404);
        assert.equal((await request(`${srv.url}/api/other`)).status, 404);
      });
      await t.test('one sync-events process serves every stream', async () => {
        const probe = await request(`${srv.url}/api/sync/events?entities=todos&since=0&mode=poll`);
        assert.equal(probe.status, 200, probe.text());
        const streams = [];
        for (let i = 0; i < 8; i++) streams.push(openStream(`${srv.url}/api/sync/events?entities=todos&since=0`));
        try {
          await Promise.all(streams.map((s) => s.waitFor(/retry: \d+/, 5_000)));
          await sleep(100);
          assert.equal(srv.processes('sync-events').length, 1);
        } finally {
          for (const s of streams) s.close();
        }
      });
    } finally {
      await srv.stop();
    }
  });

  test(`the conf can be included where mod_fastcgi is already loaded (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, TODOS);
    const srv = await startLighttpdConf(app, { before: 'server.modules += ( "mod_fastcgi" )' });
    try {
      const r = await request(`${srv.url}/api/sync/todos?since=0`);
      assert.equal(r.status, 200, r.text());
    } finally {
      await srv.stop();
    }
  });
}
