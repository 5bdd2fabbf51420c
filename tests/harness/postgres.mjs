// A throwaway PostgreSQL cluster for one test file: made with initdb in a fresh
// temporary folder, served by a postgres process this harness spawns itself on a
// Unix socket in that folder (no TCP listener: listen_addresses is empty), and
// stopped by its pid. It never looks at, starts or stops a system cluster: it
// runs the server binaries directly, not pg_ctlcluster or a service.
//
// PostgreSQL refuses to run as root. When the tests run as root (as scripts/test.sh
// does on a fresh machine), the cluster's folder is handed to the unprivileged
// system user `nobody` and initdb and postgres run as that user; otherwise they run
// as the calling user. Either way the cluster's superuser is the role `rhtmx`
// (initdb -U), reached by local "trust" authentication over the socket, so clients
// running as any OS user (the tests, the CGI programs, lighttpd's children as
// www-data) connect as `rhtmx` without a password. The socket folder is made
// world-searchable for them.
//
// The binaries come from RHTMX_PG_BIN, else the newest /usr/lib/postgresql/N/bin
// (Debian's postgresql-N package; scripts/deps.sh installs it).
import { spawn, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpdir, systemUser, stopPid } from './rhtmx.mjs';

/** The folder holding initdb, postgres and psql, or null when PostgreSQL is not installed. */
export function pgBin() {
  if (process.env.RHTMX_PG_BIN) return process.env.RHTMX_PG_BIN;
  let versions = [];
  try {
    versions = fs.readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).map(Number);
  } catch { return null; }
  versions.sort((a, b) => b - a);
  for (const v of versions) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (fs.existsSync(path.join(dir, 'postgres')) && fs.existsSync(path.join(dir, 'initdb'))) return dir;
  }
  return null;
}

/** True when the test build has the PostgreSQL backend (cmake -DRHTMX_POSTGRES=ON). */
export function backendBuilt() {
  const cache = process.env.RHTMX_BUILD ? path.join(process.env.RHTMX_BUILD, 'CMakeCache.txt') : null;
  if (!cache || !fs.existsSync(cache)) return false;
  return /^RHTMX_POSTGRES:BOOL=ON$/m.test(fs.readFileSync(cache, 'utf8'));
}

/** Why PostgreSQL tests cannot run here, or null when they can (for test's skip option). */
export function pgSkipReason() {
  if (!pgBin()) return 'PostgreSQL server binaries not installed (scripts/deps.sh installs postgresql)';
  if (!backendBuilt()) return 'built without -DRHTMX_POSTGRES=ON';
  return null;
}

const ROLE = 'rhtmx';

/**
 * Start a cluster. Returns { dir, socketDir, pid, url(db), psql(db, sql, opts), createDb(name),
 * session(db, name), activity(db, name), log(), restart(), stop() }. stop() stops the server by pid (SIGINT: a fast
 * shutdown) and fails if it is still there afterwards; the folder is left for post-mortems
 * under the test's temporary folder.
 */
export async function startPostgres({ settings = {}, hba = [] } = {}) {
  const bindir = pgBin();
  if (!bindir) throw new Error('PostgreSQL server binaries not found');
  let dir = tmpdir('pg');
  // A Unix socket path holds at most 107 bytes; a deep build folder gets a short one in /tmp.
  let socketDir = dir;
  if (path.join(dir, '.s.PGSQL.5432').length > 100) socketDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rhtmx-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  const asUser = process.getuid() === 0 ? systemUser('nobody') : null;
  if (process.getuid() === 0 && !asUser) throw new Error('running as root and there is no user nobody to run PostgreSQL as');
  fs.writeFileSync(logFile, '');
  if (asUser) {
    for (const d of new Set([dir, socketDir])) fs.chownSync(d, asUser.uid, asUser.gid);
    fs.chownSync(logFile, asUser.uid, asUser.gid);
  }
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(socketDir, 0o755);
  const ids = asUser ? { uid: asUser.uid, gid: asUser.gid } : {};
  const init = spawnSync(path.join(bindir, 'initdb'),
    ['-D', data, '-U', ROLE, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
    { ...ids, encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH, LC_ALL: 'C' } });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status}):\n${init.stdout}\n${init.stderr}`);
  // hba: pg_hba.conf lines that come before the catch-all "trust" (a role that must give
  // a password, say).
  if (hba.length) {
    const f = path.join(data, 'pg_hba.conf');
    fs.writeFileSync(f, hba.join('\n') + '\n' + fs.readFileSync(f, 'utf8'));
  }
  const conf = {
    listen_addresses: "''",
    unix_socket_directories: `'${socketDir}'`,
    unix_socket_permissions: '0777',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: 200,
    shared_buffers: "'16MB'",
    log_min_messages: 'warning',
    ...settings,
  };
  fs.appendFileSync(path.join(data, 'postgresql.conf'),
    '\n# tests/harness/postgres.mjs\n' + Object.entries(conf).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  const psqlPath = path.join(bindir, 'psql');
  const base = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-U', ROLE];
  let proc;
  /** Start the server on the cluster and wait until it answers. */
  async function serve() {
    const out = fs.openSync(logFile, 'a');
    proc = spawn(path.join(bindir, 'postgres'), ['-D', data],
      { ...ids, cwd: dir, stdio: ['ignore', out, out], env: { PATH: process.env.PATH, LC_ALL: 'C' } });
    fs.closeSync(out);
    let exited = null;
    proc.on('exit', (code, signal) => { exited = { code, signal }; });
    // Ready when a query answers (pg_isready would do too; this also proves we can log in).
    for (let i = 0; ; i++) {
      if (exited) throw new Error(`postgres exited (${JSON.stringify(exited)}):\n${fs.readFileSync(logFile, 'utf8')}`);
      const r = spawnSync(psqlPath, [...base, '-d', 'postgres', '-c', 'SELECT 1'], { encoding: 'utf8' });
      if (r.status === 0) break;
      if (i > 600) {
        await stopPid(proc.pid);
        throw new Error(`postgres did not accept connections:\n${r.stderr}\n${fs.readFileSync(logFile, 'utf8')}`);
      }
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  await serve();

  const pg = {
    dir, socketDir, bindir, role: ROLE,
    get pid() { return proc.pid; },
    /** Stop the server by pid (a fast shutdown: every client's connection breaks) and start
     *  it again on the same cluster, as a restart of the database server does. */
    async restart() {
      const stuck = await stopPid(proc.pid, { ms: 10_000, signal: 'SIGINT' });
      if (stuck.length) throw new Error(`postgres (pid ${proc.pid}) did not stop`);
      await serve();
    },
    /** A libpq URL for database db over the socket (the form a config's "database" takes). */
    url: (db) => `postgresql://${ROLE}@/${db}?host=${encodeURIComponent(socketDir)}`,
    /** Run SQL with psql (unaligned, tuples only); returns stdout. Throws on error. */
    psql(db, sql, { json = false } = {}) {
      const text = json ? `SELECT coalesce(json_agg(q), '[]') FROM (${sql.trim().replace(/;\s*$/, '')}) AS q` : sql;
      const r = execFileSync(psqlPath, [...base, '-d', db, '-A', '-t'], { input: text, encoding: 'utf8' });
      return json ? JSON.parse(r) : r;
    },
    /** Create database name (from template0) and return its URL. */
    createDb(name) {
      execFileSync(psqlPath, [...base, '-d', 'postgres', '-c', `CREATE DATABASE "${name}" TEMPLATE template0`]);
      return pg.url(name);
    },
    /**
     * A psql process kept open on db, fed statements one by one: { send(sql), close() }.
     * Its application_name is name, so another connection can see in pg_stat_activity
     * what it is doing (idle in transaction, waiting for a lock) without any timing.
     */
    session(db, name) {
      const p = spawn(psqlPath, [...base, '-d', db], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, PGAPPNAME: name },
      });
      let stderr = '';
      p.stderr.on('data', (d) => { stderr += d; });
      p.stdout.resume();
      const done = new Promise((res) => p.on('exit', (code) => res(code)));
      return {
        pid: p.pid,
        send(sql) { p.stdin.write(sql.endsWith('\n') ? sql : `${sql}\n`); },
        async close() {
          p.stdin.end();
          const code = await done;
          if (code !== 0) throw new Error(`psql session ${name} exited with ${code}: ${stderr}`);
        },
        stderr: () => stderr,
      };
    },
    /** The state of the sessions named name in pg_stat_activity: [{ state, wait_event_type }]. */
    activity(db, name) {
      return pg.psql(db, `SELECT state, wait_event_type FROM pg_stat_activity WHERE application_name = '${name}'`, { json: true });
    },
    log: () => fs.readFileSync(logFile, 'utf8'),
    async stop() {
      const stuck = await stopPid(proc.pid, { ms: 10_000, signal: 'SIGINT' });
      if (socketDir !== dir) fs.rmSync(socketDir, { recursive: true, force: true });
      if (stuck.length) throw new Error(`postgres (pid ${proc.pid}) did not stop`);
    },
  };
  return pg;
}

/** Wait until pred() holds, checking every 20 ms (up to ms; then throw with what). No timing
 *  is asserted: this waits for a state another process reaches in its own time. */
export async function until(pred, what, ms = 20_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`waited ${ms} ms for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
