// One app on either backend, for tests that must hold for SQLite and PostgreSQL alike.
//
//   const app = await backendApp(backend, { sqlite: DDL, postgres: DDL, config })
//   app.exec(sql)          run SQL the way the app's own code would (sqlite3 shell / psql)
//   app.rows(sql)          the rows of a query, as objects
//   app.config             the config file's path (for runCgi and the web servers)
//
// backend is 'sqlite' or a cluster from startPostgres() (a fresh database per app).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, sql, tmpdir } from './rhtmx.mjs';
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
