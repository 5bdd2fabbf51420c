// client-js: the browser library served from memory with ETag/304, caching and gzip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { runCgi, SOURCE } from '../harness/rhtmx.mjs';

const source = fs.readFileSync(path.join(SOURCE, 'js/rhtmx-sync.js'));
const get = (headers = {}, method = 'GET') => runCgi('client-js', { method, headers, path: '' });

test('serves exactly js/rhtmx-sync.js with type, validator and cache lifetime', () => {
  const r = get();
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.match(r.headers.etag, /^"[0-9a-f]{16}"$/);
  assert.equal(r.headers['cache-control'], 'public, max-age=300');
  assert.equal(r.headers.vary, 'Accept-Encoding');
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(Number(r.headers['content-length']), source.length);
  assert.ok(r.body.equals(source), 'body differs from js/rhtmx-sync.js (rebuild?)');
});

test('answers 304 without a body when the ETag matches', () => {
  const { etag } = get().headers;
  for (const inm of [etag, `"nope", ${etag}`, `W/${etag}`, '*']) {
    const r = get({ 'If-None-Match': inm });
    assert.equal(r.status, 304, inm);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers.etag, etag);
  }
  assert.equal(get({ 'If-None-Match': '"0000000000000000"' }).status, 200);
});

test('gzip when accepted, and only then', () => {
  const r = get({ 'Accept-Encoding': 'br, gzip, deflate' });
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.ok(r.body.length < source.length / 2, `gzip body ${r.body.length} of ${source.length}`);
  assert.equal(Number(r.headers['content-length']), r.body.length);
  assert.ok(zlib.gunzipSync(r.body).equals(source));
  for (const ae of ['gzip;q=0', 'gzip; q=0.0', 'deflate', 'x-gzipped', '']) {
    assert.equal(get({ 'Accept-Encoding': ae }).headers['content-encoding'], undefined, ae);
  }
  assert.equal(get({ 'Accept-Encoding': 'gzip;q=0.5' }).headers['content-encoding'], 'gzip');
});

test('HEAD has headers only; other methods are 405', () => {
  const head = get({}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  const post = get({}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.json().error.code, 'method_not_allowed');
  assert.match(post.headers.allow, /GET/);
});

// The service worker (js/rhtmx-sync-sw.js), answered by the same program at /api/sync/sw.js.
const worker = fs.readFileSync(path.join(SOURCE, 'js/rhtmx-sync-sw.js'));
const getSw = (headers = {}, env = {}, p = '/sw.js') => runCgi('client-js', { headers, path: p, env });

test('serves js/rhtmx-sync-sw.js for sw.js, revalidated on every use and allowed the whole site', () => {
  const r = getSw();
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.equal(r.headers['service-worker-allowed'], '/');
  assert.match(r.headers.etag, /^"[0-9a-f]{16}"$/);
  assert.notEqual(r.headers.etag, get().headers.etag, 'its own validator');
  assert.ok(r.body.equals(worker), 'body differs from js/rhtmx-sync-sw.js (rebuild?)');
  const again = getSw({ 'If-None-Match': r.headers.etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  const gz = getSw({ 'Accept-Encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.ok(zlib.gunzipSync(gz.body).equals(worker));
  assert.equal(gz.headers['service-worker-allowed'], '/');
});

test('picks the file by the last segment of PATH_INFO, REQUEST_URI or SCRIPT_NAME', () => {
  // lighttpd (prefix /api/sync): PATH_INFO; Apache (rewritten to client-js): REQUEST_URI;
  // nginx or a server that sets neither: SCRIPT_NAME.
  assert.ok(getSw({}, { REQUEST_URI: '/api/sync/sw.js' }, '').body.equals(worker));
  assert.ok(getSw({}, { REQUEST_URI: '/api/sync/sw.js?precache=%2F' }, '').body.equals(worker));
  assert.ok(getSw({}, { SCRIPT_NAME: '/api/sync/sw.js' }, '').body.equals(worker));
  for (const [p, env] of [['/client.js', {}], ['', { REQUEST_URI: '/api/sync/client.js' }],
    ['', { SCRIPT_NAME: '/api/sync/client.js' }], ['', {}]]) {
    const r = getSw({}, env, p);
    assert.ok(r.body.equals(source), `library for ${p} ${JSON.stringify(env)}`);
    assert.equal(r.headers['service-worker-allowed'], undefined);
  }
});

test('RHTMX_SYNC_SW=off: sw.js is the kill switch, the library is unchanged', () => {
  const off = fs.readFileSync(path.join(SOURCE, 'js/rhtmx-sync-sw-off.js'));
  const r = getSw({}, { RHTMX_SYNC_SW: 'off' });
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(off), 'body differs from js/rhtmx-sync-sw-off.js');
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.equal(r.headers['service-worker-allowed'], '/');
  assert.notEqual(r.headers.etag, getSw().headers.etag, 'a validator of its own: the browser sees a new worker');
  assert.ok(getSw({}, { RHTMX_SYNC_SW: 'off' }, '/client.js').body.equals(source));
  assert.ok(getSw({}, { RHTMX_SYNC_SW: 'on' }).body.equals(worker));
});
