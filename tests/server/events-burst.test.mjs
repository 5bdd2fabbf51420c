// A burst of event streams through the shipped lighttpd config: every open page reconnecting
// at once after a restart. Each connection must get either its stream (200) or our JSON
// `503 busy` with Retry-After, never lighttpd's own HTML error page: the FastCGI socket's
// listen backlog ("listen-backlog" in lighttpd/rhtmx-sync.conf) has to hold the burst
// while sync-events starts its threads. On SQLite and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { startLighttpdConf } from '../harness/apache.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();

const BURST = 3000;
const STREAMS = 1000; // events.max_streams: the rest are refused, by sync-events, with 503

/* Open one stream; resolve with its status, headers and (for a refusal) its body, keeping
 * a 200 open until release() so the streams really are held at once. A request that gets
 * no answer within 30 s resolves as status 'none'. */
function open(url, release) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { resolve({ status: 'none' }); req.destroy(); }, 30_000);
    release.then(() => clearTimeout(timer));
    const req = http.get(url, { agent: false }, (res) => {
      clearTimeout(timer);
      if (res.statusCode === 200) {
        resolve({ status: 200, headers: res.headers });
        release.then(() => req.destroy());
        res.on('data', () => {});
        res.on('error', () => {});
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', (e) => resolve({ status: res.statusCode, error: e.message, body }));
    });
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
  });
}

for (const backend of BACKENDS) {
  const skip = backends.skip(backend);

  test(`${BURST} event streams at once get 200 or JSON 503 busy, never an HTML error (${backend})`, { skip, timeout: 180_000 }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { max_streams: STREAMS, mode: 'stream' } } });
    // As lighttpd/rhtmx-sync.conf's comments ask, for this many open pages. In the sanitized
    // build LeakSanitizer's scan at exit of a process that ran a thousand threads can take
    // longer than the half second the harness allows children after lighttpd is gone; leaks
    // of sync-events are checked by server/events, so not here.
    const srv = await startLighttpdConf(app, {
      before: 'server.max-fds = 16384\nserver.max-connections = 8192\n',
      env: { ASAN_OPTIONS: `${process.env.ASAN_OPTIONS ?? ''}:detect_leaks=0` },
    });
    let let_go;
    const release = new Promise((r) => { let_go = r; });
    let answers;
    let stopped;
    try {
      const url = `${srv.url}/api/sync/events?entities=todos`;
      answers = await Promise.all(Array.from({ length: BURST }, () => open(url, release)));
    } finally {
      let_go();
      stopped = await srv.stop().then(() => null, (e) => e);
    }
    const by = {};
    for (const a of answers) by[a.status] = (by[a.status] ?? 0) + 1;
    console.log(`statuses: ${JSON.stringify(by)}`);
    const other = answers.filter((a) => a.status !== 200 && a.status !== 503);
    assert.deepEqual(other.slice(0, 3), [], `statuses: ${JSON.stringify(by)}`);
    for (const a of answers.filter((x) => x.status === 200)) {
      assert.equal(a.headers['content-type'], 'text/event-stream');
    }
    const refused = answers.filter((a) => a.status === 503);
    for (const a of refused) {
      assert.equal(a.headers['content-type'], 'application/json', a.body);
      assert.equal(JSON.parse(a.body).error.code, 'busy');
      assert.match(a.headers['retry-after'] ?? '', /^\d+$/);
    }
    // The cap holds, and everything above it was refused by us, not lost.
    assert.ok(by[200] >= 1 && by[200] <= STREAMS, JSON.stringify(by));
    assert.equal(by[200] + refused.length, BURST, JSON.stringify(by));
    if (stopped) throw stopped;
  });

  test(`a stream cap changed while sync-events runs applies at once: open streams hold no thread (${backend})`, { skip, timeout: 120_000 }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { max_streams: 4, mode: 'stream' } } });
    const srv = await startLighttpdConf(app);
    let let_go;
    const release = new Promise((r) => { let_go = r; });
    let answers;
    let stopped;
    try {
      const url = `${srv.url}/api/sync/events?entities=todos`;
      const first = await open(url, release); // the process is up
      assert.equal(first.status, 200);
      fs.writeFileSync(app.config, JSON.stringify({ ...app.cfg, events: { max_streams: 30, mode: 'stream' } }));
      await new Promise((r) => setTimeout(r, 1100)); // past the config watch's one-second stat
      // More than the accepting threads (32) and the new cap at once: the cap of the new
      // config counts, and every connection is answered (a stream, or the JSON 503).
      answers = await Promise.all(Array.from({ length: 40 }, () => open(url, release)));
    } finally {
      let_go();
      stopped = await srv.stop().then(() => null, (e) => e);
    }
    const by = {};
    for (const a of answers) by[a.status] = (by[a.status] ?? 0) + 1;
    assert.deepEqual(by, { 200: 29, 503: 11 });
    for (const a of answers.filter((x) => x.status === 503)) {
      assert.equal(JSON.parse(a.body).error.code, 'busy');
      assert.match(a.headers['retry-after'], /^\d+$/);
    }
    if (stopped) throw stopped;
  });
}
