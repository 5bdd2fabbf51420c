// Plain CGI, no FastCGI anywhere: every endpoint behind Apache's mod_cgid (the same
// apache/.htaccess, which falls back to cgi-script when mod_fcgid is missing) and
// behind lighttpd's mod_cgi. Each request starts a program that answers once and
// exits; live updates run in poll mode. On SQLite and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLighttpd, runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';
import {
  startApache, checkPull, checkUnreadBody, checkClientJs, checkServiceWorkerJs, checkPush, checkEventsPoll, request, sleep,
} from '../harness/apache.mjs';

const backends = useBackends();
const config = { events: { poll_wait: 3 } };

async function everyEndpoint(t, srv, app) {
  await t.test('client.js', () => checkClientJs(srv.url));
  await t.test('sw.js', () => checkServiceWorkerJs(srv.url));
  await t.test('pull', () => checkPull(srv.url, app));
  await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
  await t.test('push', () => checkPush(srv.url, app));
  await t.test('events (poll mode)', () => checkEventsPoll(srv.url, app));
  await t.test('events without mode=poll also poll under CGI', async () => {
    const t0 = Date.now();
    const r = await request(`${srv.url}/api/sync/events?entities=todos`);
    assert.equal(r.status, 200);
    assert.match(r.text(), /: rhtmx-sync poll/);
    assert.match(r.text(), /event: bye/);
    assert.ok(Date.now() - t0 < 15_000);
  });
  await t.test('no program outlives its request', async () => {
    await sleep(200);
    assert.deepEqual(srv.processes ? srv.processes('sync-pull') : [], []);
  });
}

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`Apache + mod_cgid (no mod_fcgid) with apache/.htaccess (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config });
    const srv = await startApache(app, { fcgid: false });
    try {
      await everyEndpoint(t, srv, app);
    } finally {
      await srv.stop();
    }
  });

  test(`lighttpd + mod_cgi (${backend})`, { skip }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config });
    const srv = await startLighttpd(app, { cgi: true });
    try {
      await everyEndpoint(t, srv, app);
    } finally {
      await srv.stop();
    }
  });

  test(`each program run directly as CGI, as a web server would (${backend})`, { skip }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 1 } } });
    const js = runCgi('client-js', { path: '' });
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    const pull = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' });
    assert.equal(pull.status, 200, pull.text());
    const push = runCgi('sync-push', { config: app.config, method: 'POST', path: '/todos',
      headers: { 'Content-Type': 'application/json' }, body: '{"client_id":"c-cgi","changes":[]}' });
    assert.equal(push.status, 200, push.text());
    const events = runCgi('sync-events', { config: app.config, query: 'entities=todos' });
    assert.equal(events.status, 200, events.text());
    assert.match(events.text(), /event: bye/);
  });
}
