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
