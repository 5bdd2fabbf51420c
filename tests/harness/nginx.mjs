// Real nginx on a loopback port in front of the four programs, for the server tests and the
// events benchmark: the shipped nginx/rhtmx-sync.conf with the programs under spawn-fcgi
// (nginx/rhtmx-sync-fcgi.sh), or one fcgiwrap running them as CGI.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpdir, freePort, waitForPort, stopPid, systemUser, assertSanitizerClean, SOURCE, BIN } from './rhtmx.mjs';
import { PROGRAMS } from './apache.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/**
 * Real nginx on a loopback port in front of the programs, as docs/DEPLOY.md says.
 * fcgiwrap: false: each program its own FastCGI server (nginx/rhtmx-sync-fcgi.sh), and
 * nginx/rhtmx-sync.conf included. fcgiwrap: true: one fcgiwrap that runs each program
 * as CGI per request, and the locations docs/DEPLOY.md gives for it.
 * workers, connections: nginx's worker_processes and worker_connections (each stream
 * takes two: the client's and the one to sync-events); the descriptor limit is raised to
 * match where the hard limit allows. Returns { url, port, pid, pids, run, log(), stop() }:
 * pid is nginx's master, pids the programs' (in PROGRAMS order).
 */
export async function startNginx(app, { fcgiwrap = false, workers = 1, connections = 512 } = {}) {
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
worker_processes ${workers};
worker_rlimit_nofile ${connections + 1024};
user www-data www-data;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections ${connections}; multi_accept on; }
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
    listen 127.0.0.1:${port} backlog=8192;
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
    url: `http://127.0.0.1:${port}`, port, pid: proc.pid, pids, run, log,
    async stop() {
      const stuck = await stopPid(proc.pid);
      await stopPrograms();
      assert.deepEqual(stuck, [], 'nginx did not stop on SIGTERM');
      assert.deepEqual(pids.filter(alive), [], 'programs still running after they were stopped');
      assertSanitizerClean(log(), 'programs behind nginx');
    },
  };
}

