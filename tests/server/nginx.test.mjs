// nginx/rhtmx-sync.conf as a customer uses it: real nginx on a loopback port, the four
// programs started as FastCGI servers by nginx/rhtmx-sync-fcgi.sh (spawn-fcgi), the
// config included in a server block that sets only $rhtmx_run. The same checks as
// behind lighttpd and Apache (client.js, pull, push, streaming and poll events), plus
// resuming a stream with Last-Event-ID, and nothing left running after stop. On SQLite and
// on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { childrenOf, logShows } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';
import { startNginx, alive } from '../harness/nginx.mjs';
import {
  PROGRAMS, checkPull, checkUnreadBody, checkClientJs, checkServiceWorkerJs, checkPush, checkEventsPoll, checkEventsStream,
  request, openStream, parseSse, sleep,
} from '../harness/apache.mjs';

const backends = useBackends();

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`nginx with nginx/rhtmx-sync.conf and the programs under spawn-fcgi (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 3 } } });
    const srv = await startNginx(app);
    try {
      await t.test('each program runs as its own FastCGI server', () => {
        assert.equal(srv.pids.filter(alive).length, 4);
        for (const p of PROGRAMS) assert.ok(fs.statSync(path.join(srv.run, `${p}.sock`)).isSocket(), p);
        for (const [i, p] of PROGRAMS.entries()) {
          assert.ok(fs.readlinkSync(`/proc/${srv.pids[i]}/exe`).endsWith(`/${p}`), `the pid file of ${p} names ${p}`);
        }
      });
      await t.test('client.js', () => checkClientJs(srv.url));
      await t.test('sw.js', () => checkServiceWorkerJs(srv.url));
      await t.test('what the programs say reaches the log', async () => {
        await request(`${srv.url}/api/sync/todos?since=0`);
        await logShows(srv.log, /sync-pull: warning: .* sets auth mode "none"/);
      });
      await t.test('pull', () => checkPull(srv.url, app));
      await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
      await t.test('push', () => checkPush(srv.url, app));
      await t.test('a push from the page\'s own origin passes the cross-site check', async () => {
        const r = await request(`${srv.url}/api/sync/todos`, {
          method: 'POST', headers: { 'content-type': 'application/json', origin: srv.url },
          body: JSON.stringify({ client_id: 'c-origin', changes: [] }),
        });
        assert.equal(r.status, 200, r.text());
        const other = await request(`${srv.url}/api/sync/todos`, {
          method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:1' },
          body: JSON.stringify({ client_id: 'c-origin', changes: [] }),
        });
        assert.equal(other.status, 403, other.text());
      });
      await t.test('events, streaming', () => checkEventsStream(srv.url, app));
      await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
      await t.test('a stream resumes after Last-Event-ID: each missed change once, in order', async () => {
        const head = app.head();
        app.exec("INSERT INTO todos (title) VALUES ('missed 1'), ('missed 2'), ('missed 3');");
        const s = openStream(`${srv.url}/api/sync/events?entities=todos`, { headers: { 'last-event-id': String(head) } });
        try {
          assert.equal((await s.response).status, 200);
          await s.waitFor(new RegExp(`(^|\\n)id: ${head + 3}\\n`), 5_000);
          app.exec("INSERT INTO todos (title) VALUES ('live');");
          await s.waitFor(new RegExp(`(^|\\n)id: ${head + 4}\\n`), 5_000);
          const ids = parseSse(s.text()).filter((e) => e.event === 'message').map((e) => Number(e.id));
          assert.deepEqual(ids, [head + 1, head + 2, head + 3, head + 4]);
        } finally {
          s.close();
        }
      });
      await t.test('URLs outside the four routes are left to the site', async () => {
        assert.equal((await request(`${srv.url}/index.html`)).status, 200);
        assert.equal((await request(`${srv.url}/api/sync/not-an-entity`)).status, 404);
        assert.equal((await request(`${srv.url}/api/sync/todos/extra`)).status, 404);
        assert.equal((await request(`${srv.url}/api/other`)).status, 404);
      });
      await t.test('HEAD gets the GET\'s headers and no body; an ETag per encoding; 304 without a length', async () => {
        for (const [url, headers] of [[`${srv.url}/api/sync/client.js`, {}],
          [`${srv.url}/api/sync/client.js`, { 'accept-encoding': 'gzip' }],
          [`${srv.url}/api/sync/todos?since=0`, {}]]) {
          const get = await request(url, { headers });
          const head = await request(url, { method: 'HEAD', headers });
          assert.equal(head.status, 200);
          assert.equal(head.body.length, 0);
          assert.equal(get.headers['content-length'], String(get.body.length), `${url}: the GET's length is its body's`);
          assert.equal(head.headers['content-length'], get.headers['content-length'], `${url} ${JSON.stringify(headers)}: HEAD's length`);
          assert.equal(head.headers['content-encoding'], get.headers['content-encoding']);
        }
        const plain = await request(`${srv.url}/api/sync/client.js`);
        const gz = await request(`${srv.url}/api/sync/client.js`, { headers: { 'accept-encoding': 'gzip' } });
        assert.notEqual(plain.headers.etag, gz.headers.etag);
        const again = await request(`${srv.url}/api/sync/client.js`, { headers: { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag } });
        assert.equal(again.status, 304);
        assert.equal(again.headers['content-length'], undefined);
      });
      await t.test('one sync-events process serves every stream', async () => {
        const streams = [];
        for (let i = 0; i < 8; i++) streams.push(openStream(`${srv.url}/api/sync/events?entities=todos&since=0`));
        try {
          await Promise.all(streams.map((s) => s.waitFor(/retry: \d+/, 5_000)));
          assert.ok(alive(srv.pids[PROGRAMS.indexOf('sync-events')]));
          assert.deepEqual(childrenOf(srv.pids[PROGRAMS.indexOf('sync-events')]), [], 'sync-events forks no children');
        } finally {
          for (const s of streams) s.close();
        }
        await sleep(100);
      });
    } finally {
      await srv.stop();
    }
  });

  // fcgiwrap runs each program as plain CGI per request: everything works, and live updates
  // use poll mode (each answer ends as soon as it has news), which the programs choose
  // by themselves under CGI.
  test(`nginx with fcgiwrap: every program as CGI, live updates by polling (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 3 } } });
    const srv = await startNginx(app, { fcgiwrap: true });
    try {
      await t.test('client.js', () => checkClientJs(srv.url));
      await t.test('pull', () => checkPull(srv.url, app));
      await t.test('push', () => checkPush(srv.url, app));
      await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
      await t.test('events without mode=poll poll too', async () => {
        const r = await request(`${srv.url}/api/sync/events?entities=todos`);
        assert.equal(r.status, 200);
        assert.match(r.text(), /: rhtmx-sync poll/);
        assert.match(r.text(), /event: bye/);
      });
    } finally {
      await srv.stop();
    }
  });
}
