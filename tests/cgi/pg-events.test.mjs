// sync-events under CGI (a poll) gives the same answers on PostgreSQL as on SQLite: the
// same steps on both backends, with token auth and an owner column, compared block by block
// (the retry: spread aside).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi } from '../harness/rhtmx.mjs';
import { startPostgres, pgSkipReason } from '../harness/postgres.mjs';
import { backendApp } from '../harness/backends.mjs';
import { mintToken, claims } from '../harness/token.mjs';

const skip = pgSkipReason() ?? false;
let pg;
before(async () => { if (!skip) pg = await startPostgres(); });
after(async () => { if (pg) await pg.stop(); });

const secret = crypto.randomBytes(32).toString('base64');
const auth = (sub, extra = {}) => ({ Authorization: `Bearer ${mintToken(secret, claims(sub, extra))}` });
const events = (app, query, headers = {}) => runCgi('sync-events', { config: app.config, query, headers });
/** The SSE blocks of an answer without the retry: field (spread per answer on purpose), and
 * with each schema fingerprint as "*": it is of the column types as each database names
 * them, so it differs between backends by design (the entities it lists must not). */
const blocks = (r) => r.text().split('\n\n').filter(Boolean).map((b) => b.split('\n')
  .filter((l) => !l.startsWith('retry:'))
  .map((l) => (b.startsWith('event: schema\n') && l.startsWith('data: ') ? l.replace(/"[0-9a-f]{16}"/g, '"*"') : l))
  .join('\n'));

test('a poll with token auth and an owner column: the same blocks on both backends', { skip }, async () => {
  const schemas = {
    sqlite: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id INTEGER);
             CREATE TABLE tags (id TEXT PRIMARY KEY, name TEXT);`,
    postgres: `CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, user_id integer);
               CREATE TABLE tags (id text PRIMARY KEY, name text);`,
  };
  const config = {
    entities: [{ name: 'todos', owner_column: 'user_id' }, 'tags'],
    auth: { mode: 'token', secret_file: 'sync.secret' }, events: { poll_wait: 0 },
  };
  const got = {};
  for (const backend of ['sqlite', pg]) {
    const app = await backendApp(backend, { ...schemas, config });
    fs.writeFileSync(path.join(app.dir, 'sync.secret'), `${secret}\n`, { mode: 0o600 });
    const answers = [];
    answers.push(events(app, 'since=0').status);
    answers.push(events(app, 'since=0', auth('1')).status); // installs the triggers
    app.exec(`INSERT INTO todos (title, user_id) VALUES ('mine', 1), ('theirs', 2), ('nobody', NULL);
              INSERT INTO tags (id, name) VALUES ('t-1', 'first');
              UPDATE todos SET title = 'still mine' WHERE id = 1;`);
    answers.push(blocks(events(app, 'since=0', auth('1'))));
    answers.push(blocks(events(app, 'since=2&entities=tags', auth('2'))));
    answers.push(events(app, 'since=0&entities=todos', auth('1', { entities: ['tags'] })).status);
    answers.push(blocks(events(app, 'since=99', auth('1'))));
    got[app.backend] = answers;
  }
  assert.deepEqual(got.postgres, got.sqlite);
  const [anon, first, mine, tags, forbidden, newer] = got.sqlite;
  assert.equal(anon, 401);
  assert.equal(first, 200);
  assert.equal(forbidden, 403);
  const data = (bs) => bs.filter((b) => /^id: \d+\ndata: /.test(b)).map((b) => JSON.parse(b.split('data: ')[1]));
  assert.deepEqual(data(mine).map((d) => [d.entity, d.id, d.action, d.version]),
    [['todos', 1, 'create', 1], ['tags', 't-1', 'create', 4], ['todos', 1, 'update', 5]]);
  assert.deepEqual(data(tags).map((d) => [d.entity, d.id]), [['tags', 't-1']]);
  assert.ok(newer.some((b) => b.startsWith('event: resync')), JSON.stringify(newer));
});
