// Big pull answers through lighttpd + FastCGI: sync-pull sends them in records of up to
// 64 KB straight to the connection (lib/http_output.c), plain or gzip-compressed; they must
// arrive whole and in order, and the small answers around them must not suffer. On SQLite
// and on PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { startLighttpd } from '../harness/rhtmx.mjs';
import { BACKENDS, TODOS, useBackends } from '../harness/backends.mjs';

const backends = useBackends();
// 6,000 rows, titles 'todo <id> ' and then up to 299 x.
const ROWS = {
  sqlite: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)
           INSERT INTO todos (title) SELECT printf('todo %d %.*c', i, i % 300, 'x') FROM n;`,
  postgres: "INSERT INTO todos (title) SELECT 'todo ' || i || ' ' || repeat('x', i % 300) FROM generate_series(1, 6000) AS i;",
};

for (const backend of BACKENDS) {
  test(`pages of 200 KB to 2 MB arrive whole, plain and gzip, between small answers (${backend})`, { skip: backends.skip(backend) }, async () => {
    const app = await backends.app(backend, { ...TODOS, config: { pull: { max_limit: 10000 } } });
    app.exec(ROWS[backend]);
    const srv = await startLighttpd(app);
    try {
      const expected = app.rows('SELECT id, length(title) AS n FROM todos ORDER BY id;');
      for (const [limit, gzip] of [[1000, false], [6000, false], [1000, true], [6000, true], [1, false]]) {
        const r = await fetch(`${srv.url}/api/sync/todos?since=0&limit=${limit}`,
          { headers: gzip ? { 'Accept-Encoding': 'gzip' } : { 'Accept-Encoding': 'identity' } });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-encoding'), gzip && limit > 1 ? 'gzip' : null, `limit ${limit}, gzip ${gzip}`);
        const text = await r.text(); // fetch undoes the gzip
        const body = JSON.parse(text);
        assert.equal(body.changes.length, limit);
        assert.deepEqual(body.changes.map((c) => [c.id, c.data.title.length, c.data.title.startsWith(`todo ${c.id} `)]),
          expected.slice(0, limit).map((row) => [row.id, row.n, true]));
        assert.equal(body.has_more, limit < 6000);
        if (limit === 6000) assert.ok(text.length > 1_000_000, `${text.length} bytes`);
      }
      // The same big page read raw: the gzip stream itself is complete.
      const raw = await new Promise((resolve, reject) => {
        import('node:http').then(({ default: http }) => {
          http.get(`${srv.url}/api/sync/todos?since=0&limit=6000`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve(Buffer.concat(chunks)));
            res.on('error', reject);
          }).on('error', reject);
        });
      });
      assert.equal(JSON.parse(zlib.gunzipSync(raw)).changes.length, 6000);
    } finally {
      await srv.stop();
    }
  });
}
