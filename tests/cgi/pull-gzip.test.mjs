// sync-pull compresses its answer with gzip when the client accepts it and the answer is
// longer than pull.gzip_min_bytes (default 1024); smaller answers go out as they are.
// Every case runs on both backends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { runCgi } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const ROWS = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
              INSERT INTO todos (title) SELECT 'todo number ' || i FROM n;`;

const pull = (app, query, headers = {}) =>
  runCgi('sync-pull', { config: app.config, path: '/todos', query, headers });

function setThreshold(app, bytes) {
  fs.writeFileSync(app.config, JSON.stringify({ ...app.cfg, pull: { gzip_min_bytes: bytes } }));
}

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`a page longer than the threshold is gzip-compressed for a client that accepts it (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec(ROWS);
    const plain = pull(app, 'since=0');
    const gz = pull(app, 'since=0', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers.vary, 'Accept-Encoding');
    assert.ok(plain.body.length > 1024, `the page is ${plain.body.length} bytes`);

    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    assert.equal(gz.headers['content-type'], 'application/json');
    assert.equal(gz.headers['cache-control'], 'no-store');
    assert.ok(gz.body.length < plain.body.length / 4, `${gz.body.length} compressed vs ${plain.body.length}`);
    assert.deepEqual(zlib.gunzipSync(gz.body), plain.body);
    assert.equal(JSON.parse(zlib.gunzipSync(gz.body)).changes.length, 200);
  });

  test(`a small answer goes out uncompressed even when gzip is accepted (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec("INSERT INTO todos (title) VALUES ('one');");
    const r = pull(app, 'since=0', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(r.json().changes[0].data.title, 'one');
  });

  test(`no gzip for clients that do not accept it, or refuse it with q=0 (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec(ROWS);
    for (const ae of [undefined, 'identity', 'br', 'x-gzip', 'gzip;q=0', 'gzip; q=0.000, br']) {
      const r = pull(app, 'since=0', ae === undefined ? {} : { 'Accept-Encoding': ae });
      assert.equal(r.headers['content-encoding'], undefined, `Accept-Encoding: ${ae}`);
      assert.equal(r.json().changes.length, 200, `Accept-Encoding: ${ae}`);
    }
    assert.equal(pull(app, 'since=0', { 'Accept-Encoding': 'gzip;q=0.5' }).headers['content-encoding'], 'gzip');
  });

  test(`pull.gzip_min_bytes: compressed only when the answer is longer than it (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    app.exec(ROWS);
    const size = pull(app, 'since=0&limit=10').body.length;
    const ae = { 'Accept-Encoding': 'gzip' };

    setThreshold(app, size);
    let r = pull(app, 'since=0&limit=10', ae);
    assert.equal(r.headers['content-encoding'], undefined, `an answer of exactly ${size} bytes`);
    assert.equal(r.body.length, size);

    setThreshold(app, size - 1);
    r = pull(app, 'since=0&limit=10', ae);
    assert.equal(r.headers['content-encoding'], 'gzip', `an answer of ${size} bytes over ${size - 1}`);
    assert.equal(JSON.parse(zlib.gunzipSync(r.body)).changes.length, 10);

    setThreshold(app, 0);
    r = pull(app, 'since=200', ae); // the head: an empty page (above it is a 410)
    assert.equal(r.headers['content-encoding'], 'gzip', 'threshold 0 compresses every answer');
    assert.deepEqual(JSON.parse(zlib.gunzipSync(r.body)).changes, []);

    setThreshold(app, 10 * 1024 * 1024);
    r = pull(app, 'since=0', ae);
    assert.equal(r.headers['content-encoding'], undefined, 'a page under a 10 MB threshold');
    assert.equal(r.json().changes.length, 200);
  });

  test(`error answers keep their shape and status with gzip accepted (${backend})`, { skip }, async () => {
    const app = await on.app(backend);
    const ae = { 'Accept-Encoding': 'gzip' };
    const missing = runCgi('sync-pull', { config: app.config, path: '/nope', headers: ae });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['content-encoding'], undefined);
    assert.equal(missing.json().error.code, 'not_found');
    const bad = pull(app, 'since=abc', ae);
    assert.equal(bad.status, 400);
    assert.equal(bad.json().error.code, 'bad_request');
    app.exec("UPDATE _rhtmx_sync_state SET value = 50 WHERE key = 'horizon';");
    const gone = pull(app, 'since=3', ae);
    assert.equal(gone.status, 410);
    assert.equal(gone.headers['content-encoding'], undefined);
    assert.equal(gone.json().error.code, 'resync_required');
  });
}
