// Methods and CORS through each shipped web server configuration: whatever the web server
// routes where, the answer to a method a URL does not take names every method it does
// (Allow), and the browser's preflight (OPTIONS) reaches our programs and is answered for
// listed origins only. lighttpd with lighttpd/rhtmx-sync.conf; Apache with apache/.htaccess,
// under mod_fcgid and under plain CGI. On SQLite and on PostgreSQL (the push in the middle
// writes to the database).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApache, startLighttpdConf, request } from '../harness/apache.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();

const LISTED = 'http://pages.example:8080';

async function check(srv) {
  const api = `${srv.url}/api/sync`;
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    const r = await request(`${api}/todos`, { method, body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 405, `${method}: ${r.text()}`);
    assert.equal(r.headers.allow, 'GET, HEAD, POST, OPTIONS', method);
    assert.equal(r.json().error.code, 'method_not_allowed');
  }
  const ev = await request(`${api}/events`, { method: 'PUT', body: '{}' });
  assert.equal(ev.status, 405);
  assert.equal(ev.headers.allow, 'GET, OPTIONS');

  // The preflight of a push from a listed origin.
  const pre = await request(`${api}/todos`, { method: 'OPTIONS', headers: {
    origin: LISTED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  assert.equal(pre.status, 204, pre.text());
  assert.equal(pre.headers.allow, 'GET, HEAD, POST, OPTIONS');
  assert.equal(pre.headers['access-control-allow-origin'], LISTED);
  assert.equal(pre.headers['access-control-allow-credentials'], 'true');
  assert.equal(pre.headers['access-control-allow-methods'], 'GET, HEAD, POST');
  assert.equal(pre.headers['access-control-allow-headers'], 'Authorization, Content-Type');
  // The push itself, and a refused read, carry the headers too.
  const pushed = await request(`${api}/todos`, { method: 'POST', body: JSON.stringify({ client_id: 'c', changes: [] }),
    headers: { origin: LISTED, 'content-type': 'application/json', authorization: `Bearer ${srv.token}` } });
  assert.equal(pushed.status, 200, pushed.text());
  assert.equal(pushed.headers['access-control-allow-origin'], LISTED);
  const unauth = await request(`${api}/todos`, { headers: { origin: LISTED } });
  assert.equal(unauth.status, 401);
  assert.equal(unauth.headers['access-control-allow-origin'], LISTED);
  // An unlisted origin: not one Access-Control header.
  for (const r of [
    await request(`${api}/todos`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } }),
    await request(`${api}/todos`, { headers: { origin: 'http://evil.example', authorization: `Bearer ${srv.token}` } }),
  ]) {
    assert.deepEqual(Object.keys(r.headers).filter((k) => k.startsWith('access-control-')), []);
  }
}

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);
  const app = () => backends.tokenApp(backend, { ...TODOS, auth: { allowed_origins: [LISTED] } });

  test(`lighttpd with the shipped config (${backend})`, { skip }, async () => {
    const a = await app();
    const srv = await startLighttpdConf(a);
    try {
      await check({ ...srv, token: a.token('u1') });
    } finally {
      await srv.stop();
    }
  });

  for (const fcgid of ['recommended', false]) {
    test(`Apache with apache/.htaccess, ${fcgid ? 'mod_fcgid' : 'plain CGI'} (${backend})`, { skip }, async () => {
      const a = await app();
      const srv = await startApache(a, { fcgid });
      try {
        await check({ ...srv, token: a.token('u1') });
      } finally {
        await srv.stop();
      }
    });
  }
}
