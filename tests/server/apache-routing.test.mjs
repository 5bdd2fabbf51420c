// apache/.htaccess on its own: which program each URL and method reaches, with
// what PATH_INFO and Authorization, what compression and buffering the event
// stream gets, and what the folder refuses to hand out. A tiny stand-in program
// (compiled here against libfcgi) replaces the four programs and reports what it
// was given, so these checks do not depend on what the real programs do.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { makeApp, tmpdir } from '../harness/rhtmx.mjs';
import { startApache, request, openStream, PROGRAMS } from '../harness/apache.mjs';

// Answers as FastCGI or, run as plain CGI, once. sync-events streams two chunks
// 1.5 s apart; the others describe their request as JSON.
const STANDIN = String.raw`
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcgiapp.h>

static const char *vars[] = {"REQUEST_METHOD", "PATH_INFO", "SCRIPT_NAME", "QUERY_STRING",
    "HTTP_AUTHORIZATION", "CONTENT_TYPE", "CONTENT_LENGTH", NULL};
static FCGX_Request req;
static int cgi;

static const char *param(const char *n) { return cgi ? getenv(n) : FCGX_GetParam(n, req.envp); }
static int getbyte(void) { return cgi ? getchar() : FCGX_GetChar(req.in); }
static void flush(void) { if (cgi) fflush(stdout); else FCGX_FFlush(req.out); }
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (cgi) vprintf(fmt, ap); else FCGX_VFPrintF(req.out, fmt, ap);
    va_end(ap);
}

static void handle(const char *name) {
    int i;
    long body = 0;
    const char *cl = param("CONTENT_LENGTH");
    long len = cl ? atol(cl) : 0;
    while (body < len && getbyte() != EOF) body++;
    if (strcmp(name, "sync-events") == 0) {
        out("Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        for (i = 0; i < 40; i++) out(": padding so a compressor would bother %d\n", i);
        out("retry: 2000\n\n");
        flush();
        usleep(1500000);
        out("data: late\n\n");
        return;
    }
    out("Status: 200 OK\r\nContent-Type: application/json\r\n\r\n{\"program\":\"%s\",\"body\":%ld", name, body);
    for (i = 0; vars[i]; i++) {
        const char *v = param(vars[i]);
        if (v) out(",\"%s\":\"%s\"", vars[i], v);
    }
    out(",\"pad\":\"");
    for (i = 0; i < 200; i++) out("padding ");
    out("\"}\n");
}

int main(void) {
    char exe[4096], *name;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = '\0';
    name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    cgi = FCGX_IsCGI();
    if (cgi) {
        handle(name);
        fflush(stdout);
        return 0;
    }
    FCGX_Init();
    FCGX_InitRequest(&req, 0, 0);
    while (FCGX_Accept_r(&req) >= 0) {
        handle(name);
        FCGX_Finish_r(&req);
    }
    return 0;
}
`;

let standin;
before(() => {
  const dir = tmpdir('standin');
  fs.writeFileSync(path.join(dir, 'standin.c'), STANDIN);
  standin = path.join(dir, 'standin');
  execFileSync('cc', ['-O1', '-o', standin, path.join(dir, 'standin.c'), '-lfcgi']);
});

const programs = () => Object.fromEntries(PROGRAMS.map((p) => [p, standin]));

async function routes(srv) {
  const seen = async (url, opts) => {
    const r = await request(url, opts);
    assert.equal(r.status, 200, `${url}: ${r.status} ${r.text()}`);
    return r.json();
  };
  const base = `${srv.url}/api/sync`;
  let r = await seen(`${base}/todos?since=4&limit=2`);
  assert.equal(r.program, 'sync-pull');
  assert.equal(r.REQUEST_METHOD, 'GET');
  assert.equal(r.PATH_INFO, '/todos');
  assert.equal(r.QUERY_STRING, 'since=4&limit=2');

  r = await seen(`${base}/todos`, { method: 'POST', body: '{"changes":[]}',
    headers: { 'content-type': 'application/json', authorization: 'Bearer tok-123' } });
  assert.equal(r.program, 'sync-push');
  assert.equal(r.PATH_INFO, '/todos');
  assert.equal(r.CONTENT_TYPE, 'application/json');
  assert.equal(r.body, 14);
  assert.equal(r.HTTP_AUTHORIZATION, 'Bearer tok-123', 'Authorization reaches the program');

  r = await seen(`${base}/todos`, { headers: { authorization: 'Bearer tok-456' } });
  assert.equal(r.HTTP_AUTHORIZATION, 'Bearer tok-456');

  r = await seen(`${base}/client.js`);
  assert.equal(r.program, 'client-js');

  // Other methods go to sync-pull, which answers 405 itself.
  r = await seen(`${base}/todos`, { method: 'DELETE' });
  assert.equal(r.program, 'sync-pull');
  assert.equal(r.REQUEST_METHOD, 'DELETE');

  // Names that are not entities are not routed.
  for (const p of ['sync-pull.c', 'a-b', 'todos/extra', '9abc']) {
    const x = await request(`${base}/${p}`);
    assert.equal(x.status, 404, `${p}: ${x.status}`);
  }
  // The config beside the programs, the folder listing and .htaccess are refused.
  for (const p of ['rhtmx-sync.json', '.htaccess', '']) {
    const x = await request(`${base}/${p}`);
    assert.ok([403, 404].includes(x.status), `${p || '(folder)'}: ${x.status} ${x.text().slice(0, 200)}`);
    assert.doesNotMatch(x.text(), /"database"/);
  }
  // The host compresses JSON; the program's answers may be compressed...
  const gz = await request(`${base}/todos`, { headers: { 'accept-encoding': 'gzip' } });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(JSON.parse(zlib.gunzipSync(gz.body)).program, 'sync-pull');
}

/** The event stream is never compressed; with streaming, its first bytes come at once. */
async function events(srv, { streams }) {
  const s = openStream(`${srv.url}/api/sync/events?since=0`, { headers: { 'accept-encoding': 'gzip' } });
  const res = await s.response;
  try {
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], undefined, 'the event stream is not compressed');
    assert.match(res.headers['content-type'], /^text\/event-stream/);
    await s.waitFor(/data: late/, 10_000);
    const first = s.chunks.find((c) => c.text.includes('retry:'));
    const late = s.chunks.find((c) => c.text.includes('data: late'));
    if (streams) assert.ok(late.t - first.t >= 1000, `bytes were held back: first at ${first.t} ms, late at ${late.t} ms`);
    else assert.ok(late.t - first.t < 1000, 'mod_fcgid\'s default output buffer holds a stream back (why poll mode exists)');
  } finally {
    s.close();
  }
}

test('mod_fcgid at its defaults: routes, Authorization, protected files, no compression on events', async () => {
  const app = makeApp();
  const srv = await startApache(app, { fcgid: 'default', programs: programs() });
  try {
    await routes(srv);
    await events(srv, { streams: false });
  } finally {
    await srv.stop();
  }
});

test('with apache/fcgid.conf: the same, and the event stream is not held back', async () => {
  const app = makeApp();
  const srv = await startApache(app, { fcgid: 'recommended', programs: programs() });
  try {
    await routes(srv);
    await events(srv, { streams: true });
  } finally {
    await srv.stop();
  }
});

test('without mod_fcgid (plain CGI through mod_cgid): the same .htaccess routes the same way', async () => {
  const app = makeApp();
  const srv = await startApache(app, { fcgid: false, programs: programs() });
  try {
    await routes(srv);
    await events(srv, { streams: true });
  } finally {
    await srv.stop();
  }
});
