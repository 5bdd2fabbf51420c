// nginx/rhtmx-sync.conf as a customer uses it: real nginx on a loopback port, the four
// programs started as FastCGI servers by nginx/rhtmx-sync-fcgi.sh (spawn-fcgi), the
// config included in a server block that sets only $rhtmx_run. The same checks as
// behind lighttpd and Apache (client.js, pull, push, streaming and poll events), plus
// resuming a stream with Last-Event-ID, and nothing left running after stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, sql, tmpdir, freePort, waitForPort, stopPid, systemUser, childrenOf, logShows, assertSanitizerClean, SOURCE, BIN } from '../harness/rhtmx.mjs';
import {
  PROGRAMS, checkPull, checkUnreadBody, checkClientJs, checkServiceWorkerJs, checkPush, checkEventsPoll, checkEventsStream,
  request, openStream, parseSse, sleep,
} from '../harness/apache.mjs';

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * Real nginx on a loopback port in front of the programs, as docs/DEPLOY.md says.
 * fcgiwrap: false: each program its own FastCGI server (nginx/rhtmx-sync-fcgi.sh), and
 * nginx/rhtmx-sync.conf included. fcgiwrap: true: one fcgiwrap that runs each program
 * as CGI per request, and the locations docs/DEPLOY.md gives for it.
 * Returns { url, pids, run, log(), stop() }.
 */
async function startNginx(app, { fcgiwrap = false } = {}) {
  const dir = tmpdir(fcgiwrap ? 'nginx-fcgiwrap' : 'nginx');
  const www = path.join(dir, 'www');
  const cgiBin = path.join(dir, 'cgi-bin');
  const run = path.join(dir, 'run');
  for (const d of [www, cgiBin, run, path.join(dir, 'tmp')]) fs.mkdirSync(d, { recursive: true });
  for (const p of PROGRAMS) {
    fs.copyFileSync(path.join(BIN, p), path.join(cgiBin, p));
    fs.chmodSync(path.join(cgiBin, p), 0o755);
  }
  fs.writeFileSync(path.join(www, 'index.html'), '<!doctype html><title>app</title>\n');
  // The web server's user runs everything and owns the database, as on a real host.
  const user = systemUser();
  assert.ok(user, 'the www-data user exists');
  execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, dir, app.dir]);

  let pids, stopPrograms, wrapper = null;
  if (fcgiwrap) {
    wrapper = spawn('/usr/sbin/fcgiwrap', ['-s', `unix:${run}/fcgiwrap.sock`],
      { stdio: ['ignore', 'ignore', fs.openSync(path.join(run, 'rhtmx-sync.log'), 'a')], uid: user.uid, gid: user.gid });
    pids = [wrapper.pid];
    stopPrograms = async () => stopPid(wrapper.pid);
    const until = Date.now() + 5000;
    while (!fs.existsSync(`${run}/fcgiwrap.sock`) && Date.now() < until) await sleep(20);
  } else {
    const env = { ...process.env, RHTMX_BIN: cgiBin, RHTMX_SYNC_CONFIG: app.config, RHTMX_RUN: run,
      RHTMX_USER: 'www-data', RHTMX_SOCKET_GROUP: 'www-data' };
    const script = path.join(SOURCE, 'nginx/rhtmx-sync-fcgi.sh');
    execFileSync(script, ['start'], { env });
    pids = PROGRAMS.map((p) => Number(fs.readFileSync(path.join(run, `${p}.pid`), 'utf8')));
    stopPrograms = async () => execFileSync(script, ['stop'], { env });
  }

  // Under fcgiwrap, every route is one program run as CGI with its path and config.
  const cgi = (prog, script, pathInfo) => `
    fastcgi_param REQUEST_METHOD $request_method;
    fastcgi_param QUERY_STRING $query_string;
    fastcgi_param CONTENT_TYPE $content_type;
    fastcgi_param CONTENT_LENGTH $content_length;
    fastcgi_param SCRIPT_NAME ${script};
    fastcgi_param PATH_INFO ${pathInfo};
    fastcgi_param SCRIPT_FILENAME ${cgiBin}/${prog};
    fastcgi_param RHTMX_SYNC_CONFIG ${app.config};
    fastcgi_buffering off;
    fastcgi_pass unix:${run}/fcgiwrap.sock;`;
  const routes = fcgiwrap ? `
    location = /api/sync/client.js { ${cgi('client-js', '/api/sync/client.js', '""')} }
    location = /api/sync/events { ${cgi('sync-events', '/api/sync/events', '""')} }
    location ~ ^/api/sync/([A-Za-z_][A-Za-z0-9_]*)/?$ { ${cgi('$rhtmx_entity_program', '/api/sync', '/$1')} }` : `
    set $rhtmx_run ${run};
    include ${path.join(SOURCE, 'nginx/rhtmx-sync.conf')};`;
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, `daemon off;
worker_processes 1;
user www-data www-data;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  proxy_temp_path ${dir}/tmp/proxy;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  types { text/html html; }
  ${fcgiwrap ? 'map $request_method $rhtmx_entity_program { POST sync-push; default sync-pull; }' : ''}
  server {
    listen 127.0.0.1:${port};
    root ${www};
    ${routes}
  }
}
`);
  const proc = spawn('/usr/sbin/nginx', ['-p', dir, '-c', conf, '-e', path.join(dir, 'error.log')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  const log = () => {
    const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
    return `${output}${read(path.join(dir, 'error.log'))}${read(path.join(run, 'rhtmx-sync.log'))}`;
  };
  try {
    const up = await Promise.race([waitForPort(port).then(() => true), exited.then(() => false)]);
    if (!up) throw new Error('nginx exited at start');
  } catch (e) {
    proc.kill('SIGKILL');
    await stopPrograms();
    throw new Error(`${e.message}\n${log()}`);
  }
  return {
    url: `http://127.0.0.1:${port}`, pids, run, log,
    async stop() {
      const stuck = await stopPid(proc.pid);
      await stopPrograms();
      assert.deepEqual(stuck, [], 'nginx did not stop on SIGTERM');
      assert.deepEqual(pids.filter(alive), [], 'programs still running after they were stopped');
      assertSanitizerClean(log(), 'programs behind nginx');
    },
  };
}

test('nginx with nginx/rhtmx-sync.conf and the programs under spawn-fcgi', async (t) => {
  const app = makeApp({ config: { events: { poll_wait: 3 } } });
  const srv = await startNginx(app);
  try {
    await t.test('each program runs as its own FastCGI server', () => {
      assert.equal(srv.pids.filter(alive).length, 4);
      for (const p of PROGRAMS) assert.ok(fs.statSync(path.join(srv.run, `${p}.sock`)).isSocket(), p);
      for (const [i, p] of PROGRAMS.entries()) {
        assert.ok(fs.readlinkSync(`/proc/${srv.pids[i]}/exe`).endsWith(`/${p}`), `the pid file of ${p} names ${p}`);
      }
    });
    await t.test('client.js', () => checkClientJs(srv.url));
    await t.test('sw.js', () => checkServiceWorkerJs(srv.url));
    await t.test('what the programs say reaches the log', async () => {
      await request(`${srv.url}/api/sync/todos?since=0`);
      await logShows(srv.log, /sync-pull: warning: .* sets auth mode "none"/);
    });
    await t.test('pull', () => checkPull(srv.url, app));
    await t.test('answers given without reading the request body arrive', () => checkUnreadBody(srv.url));
    await t.test('push', () => checkPush(srv.url, app));
    await t.test('a push from the page\'s own origin passes the cross-site check', async () => {
      const r = await request(`${srv.url}/api/sync/todos`, {
        method: 'POST', headers: { 'content-type': 'application/json', origin: srv.url },
        body: JSON.stringify({ client_id: 'c-origin', changes: [] }),
      });
      assert.equal(r.status, 200, r.text());
      const other = await request(`${srv.url}/api/sync/todos`, {
        method: 'POST', headers: { 'content-type': 'application/json', origin: 'http://127.0.0.1:1' },
        body: JSON.stringify({ client_id: 'c-origin', changes: [] }),
      });
      assert.equal(other.status, 403, other.text());
    });
    await t.test('events, streaming', () => checkEventsStream(srv.url, app));
    await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
    await t.test('a stream resumes after Last-Event-ID: each missed change once, in order', async () => {
      const head = Number(sql(app.db, "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';").trim());
      sql(app.db, "INSERT INTO todos (title) VALUES ('missed 1'), ('missed 2'), ('missed 3');");
      const s = openStream(`${srv.url}/api/sync/events?entities=todos`, { headers: { 'last-event-id': String(head) } });
      try {
        assert.equal((await s.response).status, 200);
        await s.waitFor(new RegExp(`(^|\\n)id: ${head + 3}\\n`), 5_000);
        sql(app.db, "INSERT INTO todos (title) VALUES ('live');");
        await s.waitFor(new RegExp(`(^|\\n)id: ${head + 4}\\n`), 5_000);
        const ids = parseSse(s.text()).filter((e) => e.event === 'message').map((e) => Number(e.id));
        assert.deepEqual(ids, [head + 1, head + 2, head + 3, head + 4]);
      } finally {
        s.close();
      }
    });
    await t.test('URLs outside the four routes are left to the site', async () => {
      assert.equal((await request(`${srv.url}/index.html`)).status, 200);
      assert.equal((await request(`${srv.url}/api/sync/not-an-entity`)).status, 404);
      assert.equal((await request(`${srv.url}/api/sync/todos/extra`)).status, 404);
      assert.equal((await request(`${srv.url}/api/other`)).status, 404);
    });
    await t.test('HEAD gets the GET\'s headers and no body; an ETag per encoding; 304 without a length', async () => {
      for (const [url, headers] of [[`${srv.url}/api/sync/client.js`, {}],
        [`${srv.url}/api/sync/client.js`, { 'accept-encoding': 'gzip' }],
        [`${srv.url}/api/sync/todos?since=0`, {}]]) {
        const get = await request(url, { headers });
        const head = await request(url, { method: 'HEAD', headers });
        assert.equal(head.status, 200);
        assert.equal(head.body.length, 0);
        assert.equal(get.headers['content-length'], String(get.body.length), `${url}: the GET's length is its body's`);
        assert.equal(head.headers['content-length'], get.headers['content-length'], `${url} ${JSON.stringify(headers)}: HEAD's length`);
        assert.equal(head.headers['content-encoding'], get.headers['content-encoding']);
      }
      const plain = await request(`${srv.url}/api/sync/client.js`);
      const gz = await request(`${srv.url}/api/sync/client.js`, { headers: { 'accept-encoding': 'gzip' } });
      assert.notEqual(plain.headers.etag, gz.headers.etag);
      const again = await request(`${srv.url}/api/sync/client.js`, { headers: { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag } });
      assert.equal(again.status, 304);
      assert.equal(again.headers['content-length'], undefined);
    });
    await t.test('one sync-events process serves every stream', async () => {
      const streams = [];
      for (let i = 0; i < 8; i++) streams.push(openStream(`${srv.url}/api/sync/events?entities=todos&since=0`));
      try {
        await Promise.all(streams.map((s) => s.waitFor(/retry: \d+/, 5_000)));
        assert.ok(alive(srv.pids[PROGRAMS.indexOf('sync-events')]));
        assert.deepEqual(childrenOf(srv.pids[PROGRAMS.indexOf('sync-events')]), [], 'sync-events forks no children');
      } finally {
        for (const s of streams) s.close();
      }
      await sleep(100);
    });
  } finally {
    await srv.stop();
  }
});

// fcgiwrap runs each program as plain CGI per request: everything works, and live updates
// use poll mode (each answer ends as soon as it has news), which the programs choose
// by themselves under CGI.
test('nginx with fcgiwrap: every program as CGI, live updates by polling', async (t) => {
  const app = makeApp({ config: { events: { poll_wait: 3 } } });
  const srv = await startNginx(app, { fcgiwrap: true });
  try {
    await t.test('client.js', () => checkClientJs(srv.url));
    await t.test('pull', () => checkPull(srv.url, app));
    await t.test('push', () => checkPush(srv.url, app));
    await t.test('events, poll mode', () => checkEventsPoll(srv.url, app));
    await t.test('events without mode=poll poll too', async () => {
      const r = await request(`${srv.url}/api/sync/events?entities=todos`);
      assert.equal(r.status, 200);
      assert.match(r.text(), /: rhtmx-sync poll/);
      assert.match(r.text(), /event: bye/);
    });
  } finally {
    await srv.stop();
  }
});
