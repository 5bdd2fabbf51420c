// Which mode sync-events answers in when the client asks for none ("auto"), behind each
// Apache set-up, and what the browser library is told about it: at mod_fcgid's defaults
// (FcgidOutputBufferSize 65536 would hold a stream back) and as plain CGI the answer is a
// poll with a short retry:, so a plain EventSource stays live; with apache/fcgid.conf
// (which unbuffers the output and says so with RHTMX_SYNC_STREAMING) it streams. Pull and
// push answers carry the same decision and the push size limit in X-Rhtmx-Sync. On SQLite
// and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApache, request, openStream } from '../harness/apache.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();

const SETUPS = [
  { fcgid: 'default', what: 'mod_fcgid at its defaults', mode: 'poll' },
  { fcgid: false, what: 'plain CGI (mod_cgid)', mode: 'poll' },
  { fcgid: 'recommended', what: 'mod_fcgid with apache/fcgid.conf', mode: 'stream' },
];

for (const backend of BACKENDS) for (const s of SETUPS) {
  test(`behind Apache, ${s.what}, "auto" answers ${s.mode} (${backend})`, { skip: backends.skip(backend) }, async (t) => {
    const app = await backends.app(backend, { ...TODOS, config: { events: { poll_wait: 1 }, push: { max_body_bytes: 200000 } } });
    const srv = await startApache(app, { fcgid: s.fcgid });
    try {
      await t.test('pull and push answers tell the client the mode and the push limit', async () => {
        const pull = await request(`${srv.url}/api/sync/todos?since=0`);
        assert.equal(pull.status, 200, pull.text());
        assert.equal(pull.headers['x-rhtmx-sync'], `events=${s.mode}; max-body=200000; max-changes=1000`);
        const push = await request(`${srv.url}/api/sync/todos`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_id: 'c-h', changes: [{ mutation_id: 'm1', id: 'tmp-1', action: 'create', client_version: 0, data: { title: 'x' } }] }),
        });
        assert.equal(push.status, 200, push.text());
        assert.equal(push.headers['x-rhtmx-sync'], `events=${s.mode}; max-body=200000; max-changes=1000`);
      });
      await t.test(`an events request without mode= is answered in ${s.mode} mode`, async () => {
        if (s.mode === 'poll') {
          const r = await request(`${srv.url}/api/sync/events?entities=todos&since=0`, { timeout: 30_000 });
          assert.equal(r.status, 200);
          assert.match(r.text(), /^retry: (1[0-4]\d|150)\n\n: rhtmx-sync poll\n/); // 100 plus a spread of up to 50
          assert.match(r.text(), /event: bye\n/);
        } else {
          const st = openStream(`${srv.url}/api/sync/events?entities=todos&since=0`);
          try {
            const text = await st.waitFor(/: rhtmx-sync stream\n/, 10_000);
            assert.match(text, /^retry: (2\d{3}|3000)\n/); // events.retry_ms plus a spread of up to half
          } finally {
            st.close();
          }
        }
      });
    } finally {
      await srv.stop();
    }
  });
}
