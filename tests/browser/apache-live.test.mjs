// Every SSE client is live behind Apache. At mod_fcgid's defaults (FcgidOutputBufferSize
// 65536 holds a stream back) and as plain CGI, sync-events answers "auto" requests in poll
// mode, with a short retry:, so a plain EventSource and htmx's SSE extension (htmx-ext-sse)
// get every change, in order, once; the test prints how long each change took from the
// commit (printed, not asserted: no timed assertions). Our own library is told by the
// server that it polls, so it polls from its first request (no 5 s detection) and its
// status says `poll`; with apache/fcgid.conf it streams, unless the config says poll.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as h from './harness.mjs';

const skip = h.prerequisites();

const PLAIN = `<!doctype html><meta charset="utf-8"><title>plain EventSource</title><script>
window.got = []; window.errors = 0;
const es = new EventSource('/api/sync/events?entities=todos&since=' + new URLSearchParams(location.search).get('since'));
es.onmessage = (e) => got.push({ at: Date.now(), id: JSON.parse(e.data).id, v: Number(e.lastEventId) });
es.onerror = () => { errors++; };
</script>`;

const HTMX = `<!doctype html><meta charset="utf-8"><title>htmx-ext-sse</title>
<script src="/vendor/htmx.min.js"></script><script src="/vendor/sse.js"></script>
<body><div id="live" hx-ext="sse"></div><script>
window.got = []; window.errors = 0;
document.body.addEventListener('htmx:sseMessage', (e) => got.push({ at: Date.now(), id: JSON.parse(e.detail.data).id, v: Number(e.detail.lastEventId) }));
document.body.addEventListener('htmx:sseError', () => { errors++; });
const div = document.getElementById('live');
div.setAttribute('sse-connect', '/api/sync/events?entities=todos&since=' + new URLSearchParams(location.search).get('since'));
div.setAttribute('sse-swap', 'message');
htmx.process(div);
</script></body>`;

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

test('behind Apache + mod_fcgid at its defaults, outside SSE clients get every change', { skip, timeout: 180000 }, async (t) => {
  const srv = await h.startApacheApp({ fcgid: 'default', pages: { 'plain.html': PLAIN, 'htmx.html': HTMX } });
  const browser = await h.launchBrowser();
  t.after(async () => { await browser.close(); await srv.stop(); });
  srv.sql("INSERT INTO todos (title) VALUES ('before')"); /* the log's triggers exist once a program ran */
  const ctx = await browser.newContext();
  const first = await (await fetch(`${srv.url}/api/sync/todos?since=0`)).json();
  const since = first.version;
  const clients = { 'plain EventSource': await ctx.newPage(), 'htmx-ext-sse': await ctx.newPage() };
  await clients['plain EventSource'].goto(`${srv.url}/plain.html?since=${since}`);
  await clients['htmx-ext-sse'].goto(`${srv.url}/htmx.html?since=${since}`);
  await new Promise((r) => setTimeout(r, 1500)); /* both are waiting in a poll */

  const N = 30;
  const committed = new Map();
  for (let i = 0; i < N; i++) {
    await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 250)));
    const at = Date.now();
    const [{ id }] = srv.sql(`INSERT INTO todos (title) VALUES ('change ${i}') RETURNING id`);
    committed.set(id, at);
  }
  for (const [name, page] of Object.entries(clients)) {
    await page.waitForFunction((n) => window.got.length >= n, N, { timeout: 20000 });
    await new Promise((r) => setTimeout(r, 300)); /* nothing more may come */
    const { got, errors } = await page.evaluate(() => ({ got: window.got, errors: window.errors }));
    assert.deepEqual(got.map((g) => g.id), [...committed.keys()], `${name}: every change once, in order`);
    const lat = got.map((g) => g.at - committed.get(g.id));
    console.log(`# ${name} through Apache + mod_fcgid defaults (poll mode): commit-to-receipt over ${N} changes ` +
      `p50 ${pct(lat, 0.5)} ms, p90 ${pct(lat, 0.9)} ms, max ${Math.max(...lat)} ms; ${errors} error events (one per poll end)`);
  }
});

const SETUPS = [
  { fcgid: 'default', config: {}, live: 'poll', what: 'mod_fcgid at its defaults' },
  /* poll_wait 1: a plain CGI poll outlives the browser by up to poll_wait, and stop() wants none left */
  { fcgid: false, config: { events: { poll_wait: 1 } }, live: 'poll', what: 'plain CGI' },
  { fcgid: 'recommended', config: { events: { mode: 'poll' } }, live: 'poll', what: 'apache/fcgid.conf with "events": {"mode": "poll"}' },
  { fcgid: 'recommended', config: {}, live: 'stream', what: 'apache/fcgid.conf' },
];

for (const s of SETUPS) {
  test(`our library behind Apache, ${s.what}: status().live is ${s.live} from the first request`, { skip, timeout: 60000 }, async (t) => {
    const srv = await h.startApacheApp({ fcgid: s.fcgid, config: s.config, pages: { 'index.html': h.libraryPage() } });
    const browser = await h.launchBrowser();
    t.after(async () => {
      await browser.close();
      if (s.fcgid === false) await new Promise((r) => setTimeout(r, 1500));
      await srv.stop();
    });
    const ctx = await browser.newContext();
    const streams = h.recordRequests(ctx, '/api/sync/events');
    const page = await ctx.newPage();
    await page.goto(`${srv.url}/`);
    await h.appReady(page);
    await page.waitForFunction((live) => RhtmxSync.status().live === live, s.live, { timeout: 4000 });
    await h.eventually(() => streams.length >= 1, { what: 'an events request' });
    assert.equal(/mode=poll/.test(streams[0].search), s.live === 'poll', `first events request: ${streams[0].search}`);
    srv.sql("INSERT INTO todos (title) VALUES ('live')");
    await page.waitForFunction(() => RhtmxSync.list('todos').then((r) => r.some((x) => x.title === 'live')), null, { timeout: 10000 });
    assert.equal(await page.evaluate(() => RhtmxSync.status().live), s.live);
  });
}
