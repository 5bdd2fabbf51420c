// What a web server reads from the programs' FastCGI answers, seen through libfcgi's own
// cgi-fcgi client (what nginx or any FastCGI gateway receives, header by header): one
// correct Content-Length (none on 304, the GET's length on HEAD), no body on HEAD, one
// ETag per encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import zlib from 'node:zlib';
import { makeApp, sql, tmpdir } from '../harness/rhtmx.mjs';
import { startFcgi } from '../harness/fcgi.mjs';

/** One request to the FastCGI socket through cgi-fcgi: { status, lines: [[name, value]...], all(n), header(n), body }. */
function cgiFcgi(sock, { method = 'GET', path = '', query = '', headers = {} } = {}) {
  const env = { REQUEST_METHOD: method, PATH_INFO: path, QUERY_STRING: query, SCRIPT_NAME: '/api/sync',
    REQUEST_URI: `/api/sync${path}${query ? `?${query}` : ''}`, SERVER_PROTOCOL: 'HTTP/1.1', PATH: process.env.PATH };
  for (const [k, v] of Object.entries(headers)) env[`HTTP_${k.toUpperCase().replace(/-/g, '_')}`] = v;
  const r = spawnSync('cgi-fcgi', ['-bind', '-connect', sock], { env, input: '', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `cgi-fcgi: ${r.stderr}`);
  const out = r.stdout;
  const end = out.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no header block in ${out.toString().slice(0, 200)}`);
  const lines = out.subarray(0, end).toString().split('\r\n').map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
  });
  const all = (n) => lines.filter(([k]) => k === n).map(([, v]) => v);
  const status = Number(all('status')[0]?.split(' ')[0] ?? 200);
  return { status, lines, all, header: (n) => all(n)[0], body: out.subarray(end + 4) };
}

test('client-js over FastCGI: one Content-Length, the GET\'s headers on HEAD, an ETag per encoding', async (t) => {
  const dir = tmpdir('framing');
  const prog = await startFcgi('client-js', dir);
  try {
    const plain = cgiFcgi(prog.sock);
    const gz = cgiFcgi(prog.sock, { headers: { 'accept-encoding': 'gzip' } });
    for (const [what, r] of [['plain', plain], ['gzip', gz]]) {
      assert.equal(r.status, 200, what);
      assert.deepEqual(r.all('content-length'), [String(r.body.length)], `${what}: exactly one, the body's length`);
    }
    assert.equal(gz.header('content-encoding'), 'gzip');
    assert.ok(zlib.gunzipSync(gz.body).equals(plain.body));
    assert.notEqual(gz.header('etag'), plain.header('etag'), 'the gzip body is another representation');
    assert.match(plain.header('etag'), /^"[0-9a-f]{16}"$/);

    for (const [what, get, headers] of [['plain', plain, {}], ['gzip', gz, { 'accept-encoding': 'gzip' }]]) {
      const head = cgiFcgi(prog.sock, { method: 'HEAD', headers });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0, `${what}: no body on HEAD`);
      assert.deepEqual(head.all('content-length'), [String(get.body.length)], `${what}: the GET's length on HEAD`);
      assert.equal(head.header('etag'), get.header('etag'));
    }

    // Revalidation: each representation by its own validator; 304 carries no length.
    const again = cgiFcgi(prog.sock, { headers: { 'accept-encoding': 'gzip', 'if-none-match': gz.header('etag') } });
    assert.equal(again.status, 304);
    assert.deepEqual(again.all('content-length'), []);
    assert.equal(again.body.length, 0);
    const crossed = cgiFcgi(prog.sock, { headers: { 'accept-encoding': 'gzip', 'if-none-match': plain.header('etag') } });
    assert.equal(crossed.status, 200, 'the plain validator does not validate the gzip body');
  } finally {
    await prog.stop();
  }
});

test('sync-pull over FastCGI: HEAD sends no body and the GET\'s length', async () => {
  const app = makeApp();
  sql(app.db, "INSERT INTO todos (title) VALUES ('one'), ('two');");
  const dir = tmpdir('framing');
  const prog = await startFcgi('sync-pull', dir, { RHTMX_SYNC_CONFIG: app.config });
  try {
    const get = cgiFcgi(prog.sock, { path: '/todos', query: 'since=0' });
    assert.equal(get.status, 200, get.body.toString());
    assert.equal(JSON.parse(get.body).changes.length, 2);
    assert.deepEqual(get.all('content-length'), [String(get.body.length)]);
    const head = cgiFcgi(prog.sock, { method: 'HEAD', path: '/todos', query: 'since=0' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0, `no body on HEAD, got ${head.body.toString().slice(0, 80)}`);
    assert.deepEqual(head.all('content-length'), [String(get.body.length)]);
    assert.equal(head.header('content-type'), get.header('content-type'));

    // A bigger page is compressed; HEAD still gets the compressed GET's headers.
    sql(app.db, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
                 INSERT INTO todos (title) SELECT 'row number ' || i FROM n;`);
    const gz = cgiFcgi(prog.sock, { path: '/todos', query: 'since=0', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.header('content-encoding'), 'gzip');
    const gzHead = cgiFcgi(prog.sock, { method: 'HEAD', path: '/todos', query: 'since=0', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gzHead.body.length, 0);
    assert.equal(gzHead.header('content-encoding'), 'gzip');
    assert.deepEqual(gzHead.all('content-length'), gz.all('content-length'));

    const put = cgiFcgi(prog.sock, { method: 'PUT', path: '/todos' });
    assert.equal(put.status, 405);
    assert.deepEqual(put.all('allow'), ['GET, HEAD, POST, OPTIONS']);
    assert.deepEqual(put.all('content-length'), [String(put.body.length)]);
  } finally {
    await prog.stop();
  }
});
