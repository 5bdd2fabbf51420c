// One app on either backend, for tests that must hold for SQLite and PostgreSQL alike.
//
//   const app = await backendApp(backend, { sqlite: DDL, postgres: DDL, config })
//   app.exec(sql)          run SQL the way the app's own code would (sqlite3 shell / psql)
//   app.rows(sql)          the rows of a query, as objects
//   app.config             the config file's path (for runCgi and the web servers)
//
// backend is 'sqlite' or a cluster from startPostgres() (a fresh database per app).
import { before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, sql, tmpdir, DEFAULT_SCHEMA } from './rhtmx.mjs';
import { startPostgres, pgSkipReason } from './postgres.mjs';
import { mintToken, claims } from './token.mjs';

let serial = 0;

export async function backendApp(backend, { sqlite, postgres, config = {}, tag = 'app' } = {}) {
  if (backend === 'sqlite') {
    const app = makeApp({ schema: sqlite, config, tag });
    return {
      ...app, backend: 'sqlite',
      exec: (text) => sql(app.db, text),
      rows: (text) => sql(app.db, text, { json: true }),
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
  };
}

/** The backends to run a shared test on: SQLite always, PostgreSQL when it can run here. */
export const BACKENDS = ['sqlite', 'postgres'];

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
 * The cases of a test file on each backend, with one PostgreSQL cluster for the whole file
 * (started in before(), stopped by its pid in after(); not started when it cannot run here).
 *
 *   const on = backendsForFile();
 *   for (const backend of BACKENDS)
 *     test(`... (${backend})`, { skip: on.skip(backend) }, async () => {
 *       const app = await on.app(backend, { schema: SQLITE_DDL, config });
 *     });
 *
 * on.app(backend, opts) is backendApp with a fresh database per call; opts.schema (SQLite
 * DDL) stands for both when no sqlite/postgres pair is given (pgDdl translates it). The app
 * it returns also has:
 *   dump()     the whole database as text (sqlite3 .dump, pg_dump): "this changed nothing"
 *   shell      { argv, prelude }: the app's SQL shell (sqlite3, psql), fed on its stdin
 *   pdo        { dsn, user }: how the app's PHP connects with PDO
 *   token(sub, extra)   with opts.token: the app is in auth mode "token", a fresh secret in
 *              sync.secret (secret, secretFile), and this mints a token for sub
 */
export function backendsForFile() {
  const reason = pgSkipReason();
  let pg = null;
  before(async () => { if (!reason) pg = await startPostgres(); });
  after(async () => { if (pg) await pg.stop(); });
  return {
    skip: (backend) => (backend === 'postgres' ? reason ?? false : false),
    get pg() { return pg; },
    async app(backend, { schema = DEFAULT_SCHEMA, sqlite, postgres, token = false, config = {}, ...rest } = {}) {
      const cfg = token ? { ...config, auth: { mode: 'token', secret_file: 'sync.secret', ...(config.auth ?? {}) } } : config;
      const app = await backendApp(backend === 'postgres' ? pg : 'sqlite',
        { sqlite: sqlite ?? schema, postgres: postgres ?? pgDdl(schema), config: cfg, ...rest });
      app.dump = app.backend === 'sqlite'
        ? () => sql(app.db, '.dump')
        // pg_dump's \restrict lines carry a random key per run: not the database's content.
        : () => execFileSync(path.join(pg.bindir, 'pg_dump'), ['-h', pg.socketDir, '-U', pg.role, '-d', app.dbname],
          { encoding: 'utf8' }).replace(/^\\(un)?restrict .*$/gm, '');
      // The app's SQL shell as a command line (statements on its standard input), for a
      // test that runs it in the background: sqlite3 waits out locks as an app does.
      app.shell = app.backend === 'sqlite'
        ? { argv: ['sqlite3', '-batch', app.db], prelude: '.timeout 30000\n' }
        : { argv: [path.join(pg.bindir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pg.socketDir, '-U', pg.role, '-d', app.dbname], prelude: '' };
      // The app's own PHP reaches the database through PDO with this data source name.
      app.pdo = app.backend === 'sqlite'
        ? { dsn: `sqlite:${app.db}`, user: null }
        : { dsn: `pgsql:host=${pg.socketDir};dbname=${app.dbname}`, user: pg.role };
      if (token) {
        const secret = crypto.randomBytes(32).toString('base64');
        app.secret = secret;
        app.secretFile = path.join(app.dir, 'sync.secret');
        fs.writeFileSync(app.secretFile, `${secret}\n`, { mode: 0o600 });
        app.token = (sub, extra = {}) => mintToken(secret, claims(sub, extra));
      }
      return app;
    },
  };
}
