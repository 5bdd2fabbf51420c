// One app on either backend, for tests that must hold for SQLite and PostgreSQL alike.
//
//   const app = await backendApp(backend, { sqlite: DDL, postgres: DDL, config })
//   app.exec(sql)          run SQL the way the app's own code would (sqlite3 shell / psql)
//   app.rows(sql)          the rows of a query, as objects
//   app.config             the config file's path (for runCgi and the web servers)
//   app.head()             the log's head version (_rhtmx_sync_state)
//   app.dump()             the whole database as text (sqlite3 .dump / pg_dump), to show
//                          that something wrote nothing
//   await app.execAsync(sql)  the same in a process of its own, without blocking the test
//                          (a writer racing a stream)
//
// backend is 'sqlite' or a cluster from startPostgres() (a fresh database per app).
import { before, after } from 'node:test';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeApp, sql, tmpdir, DEFAULT_SCHEMA, UNDER_VALGRIND } from './rhtmx.mjs';
import { startPostgres, pgSkipReason } from './postgres.mjs';
import { mintToken, claims } from './token.mjs';

const run = promisify(execFile);

let serial = 0;
const VALGRIND_SAMPLE = 'the valgrind pass runs this file on SQLite only; its PostgreSQL cases ran in the sanitized pass';
const HEAD = "SELECT value FROM _rhtmx_sync_state WHERE key = 'head';";

/** The default todos table of makeApp, on each backend. */
export const TODOS = {
  sqlite: DEFAULT_SCHEMA,
  postgres: 'CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done integer NOT NULL DEFAULT 0);',
};

export async function backendApp(backend, { sqlite, postgres, config = {}, tag = 'app' } = {}) {
  if (backend === 'sqlite') {
    const app = makeApp({ schema: sqlite, config, tag });
    return {
      ...app, backend: 'sqlite',
      exec: (text) => sql(app.db, text),
      rows: (text) => sql(app.db, text, { json: true }),
      execAsync: async (text) => (await run('sqlite3', ['-cmd', '.timeout 10000', '-batch', app.db, text])).stdout,
      head: () => Number(sql(app.db, HEAD).trim()),
      dump: () => sql(app.db, '.dump'),
    };
  }
  const pg = backend;
  const name = `${tag}_${process.pid}_${++serial}`.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
  const url = pg.createDb(name);
  if (postgres) pg.psql(name, postgres);
  const dir = tmpdir(tag);
  const cfg = { database: url, entities: ['todos'], auth: { mode: 'none' }, ...config };
  const configPath = path.join(dir, 'rhtmx-sync.json');
  fs.writeFileSync(configPath, JSON.stringify(cfg, null, 2));
  return {
    dir, config: configPath, cfg, backend: 'postgres', dbname: name, url,
    exec: (text) => pg.psql(name, text),
    rows: (text) => pg.psql(name, text, { json: true }),
    execAsync: async (text) => (await run(path.join(pg.bindir, 'psql'),
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.socketDir, '-U', pg.role, '-d', name, '-A', '-t', '-c', text])).stdout,
    head: () => Number(pg.psql(name, HEAD).trim()),
    // Without pg_dump's \restrict lines: they carry a random key per run.
    dump: () => execFileSync(path.join(pg.bindir, 'pg_dump'), ['-h', pg.socketDir, '-U', pg.role, '-d', name], { encoding: 'utf8' })
      .split('\n').filter((l) => !/^\\(un)?restrict /.test(l)).join('\n'),
  };
}

/** The backends to run a shared test on: SQLite always, PostgreSQL when it can run here. */
export const BACKENDS = ['sqlite', 'postgres'];

/**
 * backendApp in auth mode "token" with a fresh secret in sync.secret (mode 600), as
 * token.mjs's makeTokenApp does for SQLite. Returns the app plus { secret, token(sub, extra) }.
 */
export async function backendTokenApp(backend, { auth = {}, config = {}, ...rest } = {}) {
  const app = await backendApp(backend, {
    ...rest, config: { ...config, auth: { mode: 'token', secret_file: 'sync.secret', ...auth } },
  });
  const secret = crypto.randomBytes(32).toString('base64');
  fs.writeFileSync(path.join(app.dir, 'sync.secret'), `${secret}\n`, { mode: 0o600 });
  return { ...app, secret, token: (sub, extra = {}) => mintToken(secret, claims(sub, extra)) };
}

/**
 * The backends of a test file that runs its cases on both: one PostgreSQL cluster for
 * the whole file, started in before() when PostgreSQL can run here and stopped by pid
 * in after(). Returns { skip(backend), app(backend, opts), tokenApp(backend, opts),
 * pg() }: skip is the test option (false, or pgSkipReason()'s reason for 'postgres');
 * app is backendApp on that backend; tokenApp adds auth mode "token" with a fresh
 * secret file and token(sub, extra), as makeTokenApp does.
 *
 * underValgrind false: in the valgrind pass (scripts/test.sh) the file's PostgreSQL cases
 * are skipped, saying so; they ran in the sanitized pass, and the valgrind pass keeps them
 * for the files that cover the PostgreSQL code itself (pull, push, events, compact, scope, pg-*),
 * as it samples the corpus-heavy tests.
 */
export function useBackends(settings = {}, { underValgrind = true } = {}) {
  const reason = pgSkipReason()
    ?? (UNDER_VALGRIND && !underValgrind ? VALGRIND_SAMPLE : false);
  let pg = null;
  before(async () => { if (!reason) pg = await startPostgres(settings); });
  after(async () => { if (pg) await pg.stop(); });
  const on = (backend) => (backend === 'sqlite' ? 'sqlite' : pg);
  const app = (backend, opts = {}) => backendApp(on(backend), opts);
  async function tokenApp(backend, opts = {}) {
    const a = await backendTokenApp(on(backend), opts);
    return { ...a, secretFile: path.join(a.dir, 'sync.secret') };
  }
  return { skip: (backend) => (backend === 'sqlite' ? false : reason), app, tokenApp, pg: () => pg };
}

/**
 * SQLite DDL as PostgreSQL takes it, for the tests' small schemas: an INTEGER PRIMARY KEY
 * is a serial (the server assigns keys on both), REAL is double precision, BLOB bytea;
 * everything else (TEXT, INTEGER, NOT NULL, DEFAULT, UNIQUE, WITH RECURSIVE inserts) is
 * written the same in both.
 */
export function pgDdl(text) {
  return text
    .replace(/\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?/gi, 'serial PRIMARY KEY')
    .replace(/\bREAL\b/g, 'double precision')
    .replace(/\bBLOB\b/g, 'bytea');
}

/**
 * useBackends for files written in SQLite's DDL (one cluster per file, as there):
 *
 *   const on = backendsForFile();
 *   for (const backend of BACKENDS)
 *     test(`... (${backend})`, { skip: on.skip(backend) }, async () => {
 *       const app = await on.app(backend, { schema: SQLITE_DDL, config });
 *     });
 *
 * underValgrind true keeps the PostgreSQL cases in the valgrind pass (see useBackends).
 * on.app(backend, opts): opts.schema (SQLite DDL) stands for both when no sqlite/postgres
 * pair is given (pgDdl translates it); opts.token puts the app in auth mode "token" (as
 * tokenApp). Besides backendApp's, the app has:
 *   shell      { argv, prelude }: the app's SQL shell (sqlite3, psql), fed on its stdin
 *   pdo        { dsn, user }: how the app's PHP connects with PDO
 */
export function backendsForFile({ underValgrind = false } = {}) {
  const b = useBackends({}, { underValgrind });
  return {
    skip: b.skip,
    get pg() { return b.pg(); },
    async app(backend, { schema = DEFAULT_SCHEMA, sqlite, postgres, token = false, ...rest } = {}) {
      const opts = { sqlite: sqlite ?? schema, postgres: postgres ?? pgDdl(schema), ...rest };
      if (token) opts.auth = rest.config?.auth ?? {};
      const app = await (token ? b.tokenApp(backend, opts) : b.app(backend, opts));
      const pg = b.pg();
      // The app's SQL shell as a command line (statements on its standard input), for a
      // test that runs it in the background: sqlite3 waits out locks as an app does.
      app.shell = app.backend === 'sqlite'
        ? { argv: ['sqlite3', '-batch', app.db], prelude: '.timeout 30000\n' }
        : { argv: [path.join(pg.bindir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.socketDir, '-U', pg.role, '-d', app.dbname], prelude: '' };
      // The app's own PHP reaches the database through PDO with this data source name.
      app.pdo = app.backend === 'sqlite'
        ? { dsn: `sqlite:${app.db}`, user: null }
        : { dsn: `pgsql:host=${pg.socketDir};dbname=${app.dbname}`, user: pg.role };
      return app;
    },
  };
}
