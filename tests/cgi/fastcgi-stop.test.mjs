// How a FastCGI program stops (lib/fcgi_pool.c, runtime.h): on SIGTERM every thread of the
// pool is woken (one blocked in accept, one waiting for the next request of a kept
// connection), the request being answered is finished, every thread is joined, and the
// process exits 0. Under scripts/test.sh's valgrind pass a thread still running at exit
// shows as "possibly lost" memory (its stack and thread-local block), which fails the
// test through fcgi.stop()'s report check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeApp, sql } from '../harness/rhtmx.mjs';
import { startFcgi, fcgiRequest } from '../harness/fcgi.mjs';

const base = { GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REMOTE_ADDR: '127.0.0.1', SCRIPT_NAME: '/api/sync' };
const statusOf = (r) => Number(/^Status: (\d+)/.exec(r.stdout.toString())?.[1]);

test('sync-pull stopped while it answers: the answer is finished, then the process exits 0', { timeout: 120_000 }, async () => {
  const app = makeApp({ tag: 'fcgi-stop-pull' });
  // An answer far bigger than the socket's buffers: its handler is still writing when
  // the signal comes, for as long as this side reads nothing.
  sql(app.db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
               INSERT INTO todos (title) SELECT printf('%.4000c', 'x') || i FROM n;`);
  const fcgi = await startFcgi('sync-pull', app.dir, { RHTMX_SYNC_CONFIG: app.config });
  try {
    let conn;
    const begun = new Promise((resolve) => {
      const answer = fcgiRequest(fcgi.sock, { ...base, REQUEST_METHOD: 'GET', PATH_INFO: '/todos', QUERY_STRING: 'since=0' },
        undefined, {
          keepConn: true, // after the answer its thread would wait for the connection's next request
          onStdout: (c, socket) => {
            if (conn) return;
            conn = socket;
            socket.pause();
            resolve({ answer }); // wrapped: resolving with the promise itself would wait for it
          },
        });
    });
    const { answer } = await begun;
    process.kill(fcgi.pid, 'SIGTERM');
    // Let the signal be taken before the handler can finish (the outcome must not depend on it).
    await new Promise((r) => setTimeout(r, 300));
    let whole = false;
    answer.then(() => { whole = true; }, () => {});
    await new Promise((r) => setImmediate(r));
    assert.equal(whole, false, 'nothing read yet: the answer is still being written');
    conn.resume();
    const r = await answer;
    assert.equal(statusOf(r), 200);
    const body = r.stdout.toString().split('\r\n\r\n')[1];
    assert.equal(JSON.parse(body).changes.length, 600, 'the whole answer, after the stop signal');
    // This side keeps the connection open until the process has ended: the thread lets
    // go of it with libfcgi's careful close, waiting up to 2 s for the web server to
    // close first, and is joined only after that (a process that exited during the wait
    // would leave the thread running at exit).
    assert.deepEqual(await fcgi.exited, { code: 0, signal: null });
    r.conn.destroy();
  } finally {
    await fcgi.stop();
  }
});

// Each program's quick requests, several at once (sync-events serves them on several
// threads and an acceptor), and one connection kept open after its answer, whose thread
// waits for a next request that never comes; sync-events also holds open streams.
const programs = [
  ['client-js', { REQUEST_METHOD: 'GET', PATH_INFO: '/client.js' }, 200],
  ['sync-push', { REQUEST_METHOD: 'GET', PATH_INFO: '/todos' }, 405],
  ['sync-pull', { REQUEST_METHOD: 'GET', PATH_INFO: '/todos', QUERY_STRING: 'since=0' }, 200],
  ['sync-events', { REQUEST_METHOD: 'GET', SCRIPT_NAME: '/api/sync/events', QUERY_STRING: 'entities=nope&since=0' }, 404],
];

for (const [prog, params, status] of programs) {
  test(`${prog}: a stop signal with a kept connection idle ends every thread and exits 0`, { timeout: 120_000 }, async () => {
    const app = makeApp({ tag: `fcgi-stop-${prog}` });
    const fcgi = await startFcgi(prog, app.dir, { RHTMX_SYNC_CONFIG: app.config });
    try {
      const answers = await Promise.all(Array.from({ length: 6 }, () => fcgiRequest(fcgi.sock, { ...base, ...params })));
      for (const r of answers) {
        assert.equal(statusOf(r), status);
        r.conn.destroy();
      }
      const streams = [];
      if (prog === 'sync-events') {
        for (let i = 0; i < 3; i++) {
          let opened, text = '';
          const open = new Promise((resolve) => { opened = resolve; });
          const ended = fcgiRequest(fcgi.sock, { ...base, ...params, QUERY_STRING: 'entities=todos&since=0&mode=stream' },
            undefined, { onStdout: (c) => { text += c; if (text.includes('event: schema')) opened(); } });
          await open;
          streams.push(ended);
        }
      }
      const kept = await fcgiRequest(fcgi.sock, { ...base, ...params }, undefined, { keepConn: true });
      assert.equal(statusOf(kept), status);

      process.kill(fcgi.pid, 'SIGTERM');
      for (const s of streams) {
        const r = await s;
        assert.match(r.stdout.toString(), /event: bye\n/, 'each stream ends with bye');
        r.conn.destroy();
      }
      await kept.ended; // the program let go of the kept connection by itself
      assert.deepEqual(await fcgi.exited, { code: 0, signal: null });
      kept.conn.destroy();
    } finally {
      await fcgi.stop();
    }
  });
}
