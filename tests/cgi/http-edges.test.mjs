// The edges of the HTTP contract, run as plain CGI: which methods a URL takes
// (Allow, OPTIONS), a cursor above the head, one Cache-Control per answer, and
// the CORS headers for auth.allowed_origins (the browser side is in
// tests/browser/cors.test.mjs). Every case runs on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const ENTITY_ALLOW = 'GET, HEAD, POST, OPTIONS';
const LISTED = 'http://app.example:8080';

const pull = (app, query = '', opts = {}) => runCgi('sync-pull', { config: app.config, path: '/todos', query, ...opts });
const push = (app, body, opts = {}) => runCgi('sync-push', {
  config: app.config, method: 'POST', path: '/todos', body: JSON.stringify(body), ...opts,
  headers: { 'Content-Type': 'application/json', ...(opts.headers ?? {}) },
});
const CORS_NAMES = ['access-control-allow-origin', 'access-control-allow-credentials',
  'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age',
  'access-control-expose-headers'];
const corsOf = (r) => Object.fromEntries(CORS_NAMES.filter((n) => n in r.headers).map((n) => [n, r.headers[n]]));

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`Allow names every method of the URL, from both programs that serve it (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      for (const r of [pull(app, '', { method }), runCgi('sync-push', { config: app.config, method, path: '/todos' })]) {
        assert.equal(r.status, 405);
        assert.equal(r.headers.allow, ENTITY_ALLOW);
        assert.equal(r.json().error.code, 'method_not_allowed');
      }
    }
    // OPTIONS is answered (it is the browser's preflight), by either program.
    for (const prog of ['sync-pull', 'sync-push']) {
      const r = runCgi(prog, { config: app.config, method: 'OPTIONS', path: '/todos' });
      assert.equal(r.status, 204, r.text());
      assert.equal(r.headers.allow, ENTITY_ALLOW);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers['content-length'], undefined);
    }
    const ev = runCgi('sync-events', { config: app.config, method: 'PUT' });
    assert.equal(ev.status, 405);
    assert.equal(ev.headers.allow, 'GET, OPTIONS');
    assert.equal(runCgi('sync-events', { config: app.config, method: 'OPTIONS' }).status, 204);
  });

  test(`a cursor above the head is 410 resync_required with the head, like the event stream (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);
                                   INSERT INTO todos (title) VALUES ('a'), ('b');` });
    assert.equal(pull(app, 'since=2').status, 200);
    for (const query of ['since=3', 'since=1000&full=1']) {
      const r = pull(app, query);
      assert.equal(r.status, 410, query);
      assert.deepEqual(Object.keys(r.json().error), ['code', 'message', 'version']);
      assert.equal(r.json().error.code, 'resync_required');
      assert.equal(r.json().error.version, 2);
      assert.equal(r.headers['cache-control'], 'no-store', 'Cache-Control once');
    }
    // An empty log (a fresh database under an old client): the head 0 is said too.
    const empty = await on.app(backend);
    const r = pull(empty, 'since=5');
    assert.equal(r.status, 410);
    assert.equal(r.json().error.version, 0);
  });

  test(`the 410 of a cursor below the horizon sends Cache-Control once (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT);
                                   INSERT INTO todos (title) VALUES ('a'), ('b'), ('c');` });
    assert.equal(pull(app).status, 200);
    app.exec("UPDATE _rhtmx_sync_state SET value = 2 WHERE key = 'horizon';");
    const r = pull(app, 'since=1');
    assert.equal(r.status, 410);
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  test(`CORS: a listed origin gets credentials-allowed answers, errors included; others get nothing (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true, config: { auth: { allowed_origins: ['https://other.example', `${LISTED}/`] } } });
    const bearer = { Authorization: `Bearer ${app.token('u1')}` };
    const listed = {
      'access-control-allow-origin': LISTED, 'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'Retry-After, X-Rhtmx-Sync',
    };
    // The origin is compared as an origin: case and the default port do not matter.
    for (const origin of [LISTED, 'HTTP://APP.example:8080']) {
      const r = pull(app, '', { headers: { Origin: origin, ...bearer } });
      assert.equal(r.status, 200);
      assert.deepEqual(corsOf(r), listed);
      assert.match(r.headers.vary, /(^|, )Origin(,|$)/);
    }
    const https = pull(app, '', { headers: { Origin: 'https://other.example:443', ...bearer } });
    assert.equal(https.headers['access-control-allow-origin'], 'https://other.example');
    // An error answer carries them too, so the page can read why.
    const unauth = pull(app, '', { headers: { Origin: LISTED } });
    assert.equal(unauth.status, 401);
    assert.deepEqual(corsOf(unauth), listed);
    const pushed = push(app, { client_id: 'c', changes: [] }, { headers: { Origin: LISTED, ...bearer } });
    assert.equal(pushed.status, 200, pushed.text());
    assert.deepEqual(corsOf(pushed), listed);
    // Unlisted, malformed, "null", another port or scheme: not a single CORS header.
    for (const origin of ['http://evil.example', 'http://app.example:8081', 'https://app.example:8080', 'null',
      `${LISTED}/path`, 'http://app.example:8080@evil.example']) {
      for (const r of [pull(app, '', { headers: { Origin: origin, ...bearer } }),
        runCgi('sync-pull', { config: app.config, method: 'OPTIONS', path: '/todos',
          headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } })]) {
        assert.deepEqual(corsOf(r), {}, origin);
        assert.doesNotMatch(r.headers.vary ?? '', /Origin/, origin);
      }
    }
  });

  test(`CORS preflight: methods and request headers for a listed origin, nothing for other methods (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true, config: { auth: { allowed_origins: [LISTED] } } });
    const pre = (method, extra = {}) => runCgi('sync-pull', { config: app.config, method: 'OPTIONS', path: '/todos',
      headers: { Origin: LISTED, 'Access-Control-Request-Method': method, ...extra } });
    const r = pre('POST', { 'Access-Control-Request-Headers': 'content-type,authorization' });
    assert.equal(r.status, 204);
    assert.deepEqual(corsOf(r), {
      'access-control-allow-origin': LISTED, 'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'Retry-After, X-Rhtmx-Sync', 'access-control-allow-methods': 'GET, HEAD, POST',
      'access-control-allow-headers': 'Authorization, Content-Type', 'access-control-max-age': '600',
    });
    assert.equal(r.headers.allow, ENTITY_ALLOW);
    // No token is needed for a preflight (browsers never send credentials with one).
    assert.equal(pre('GET').headers['access-control-allow-methods'], 'GET, HEAD, POST');
    for (const m of ['PUT', 'DELETE', 'post', '']) assert.deepEqual(corsOf(pre(m)), {}, m);
    // The event stream's preflight allows GET only.
    const ev = runCgi('sync-events', { config: app.config, method: 'OPTIONS',
      headers: { Origin: LISTED, 'Access-Control-Request-Method': 'GET' } });
    assert.equal(ev.status, 204);
    assert.equal(ev.headers['access-control-allow-methods'], 'GET');
    assert.equal(ev.headers['access-control-allow-origin'], LISTED);
  });
}
