// How sync-pull ends a FastCGI connection (lib/runtime.c, close_early), seen from the
// web server's side of the socket: at once when the request's input was read to its end,
// so the single process can take the next request; with libfcgi's careful close (shut
// down, keep reading until the server closes) when input was left unread, so the server
// never gets a reset for bytes it sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, sql } from '../harness/rhtmx.mjs';
import { startFcgi, fcgiRequest, writeLater } from '../harness/fcgi.mjs';

const params = (app, extra = {}) => ({
  GATEWAY_INTERFACE: 'CGI/1.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '/api/sync',
  PATH_INFO: '/todos', QUERY_STRING: 'since=0', SERVER_PROTOCOL: 'HTTP/1.1', ...extra,
});

test('a GET is answered and the connection closed by the program, not left for the server to close', async () => {
  const app = makeApp({ tag: 'fcgi-close' });
  sql(app.db, "INSERT INTO todos (title) VALUES ('one');");
  const fcgi = await startFcgi('sync-pull', app.dir, { RHTMX_SYNC_CONFIG: app.config });
  try {
    for (let i = 0; i < 3; i++) {
      const r = await fcgiRequest(fcgi.sock, params(app));
      assert.match(r.stdout.toString(), /^Status: 200 OK\r\n/);
      assert.match(r.stdout.toString(), /"title":"one"/);
      // Sent whole, so with its length (the web server need not chunk it).
      const [head, body] = r.stdout.toString().split('\r\n\r\n');
      assert.equal(Number(/\r\nContent-Length: (\d+)\r\n/.exec(`\r\n${head}\r\n`)?.[1]), Buffer.byteLength(body));
      await r.ended;
      // Closed, not merely shut down for writing: nothing more can be sent to it.
      assert.notEqual(await writeLater(r.conn, 50), 'ok');
      r.conn.destroy();
    }
  } finally {
    await fcgi.stop();
  }
});

test('input left unread (a body sent to sync-pull): the program keeps reading until the server closes', async () => {
  const app = makeApp({ tag: 'fcgi-linger' });
  const fcgi = await startFcgi('sync-pull', app.dir, { RHTMX_SYNC_CONFIG: app.config });
  try {
    const body = Buffer.alloc(200_000, 'x');
    const r = await fcgiRequest(fcgi.sock, params(app, { REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(body.length) }), body);
    assert.match(r.stdout.toString(), /^Status: 405 /);
    await r.ended; // its side is shut down for writing...
    assert.equal(await writeLater(r.conn, 50), 'ok'); // ...and it still takes what we send
    r.conn.end();
    // Then it serves the next request as usual.
    const next = await fcgiRequest(fcgi.sock, params(app));
    assert.match(next.stdout.toString(), /^Status: 200 OK\r\n/);
    next.conn.destroy();
  } finally {
    await fcgi.stop();
  }
});
