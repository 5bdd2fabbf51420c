// Every file of JSONTestSuite's test_parsing as a push body: no crash, no 5xx, and
// nothing changes. None of them has the push shape, so even the valid ones (y_) are 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, runCgi, sql, CORPORA, UNDER_VALGRIND } from '../harness/rhtmx.mjs';

const DIR = path.join(CORPORA, 'jsontestsuite/test_parsing');
const all = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
// Under valgrind (scripts/test.sh's second pass) every process costs over a
// second of CPU: every 16th file (i_, n_ and y_ files alike), about 20 per test.
// The sanitized pass runs them all.
const files = UNDER_VALGRIND ? all.filter((_, i) => i % 16 === 0) : all;

const push = (app, body) => runCgi('sync-push', {
  config: app.config, method: 'POST', path: '/todos', body, headers: { 'Content-Type': 'application/json' },
});
const dump = (app) => sql(app.db, '.dump');

test('the corpus is there', () => {
  assert.ok(all.length >= 300, `${all.length} files in ${DIR}`);
  assert.ok(files.some((f) => f.startsWith('y_')) && files.some((f) => f.startsWith('n_')) && files.some((f) => f.startsWith('i_')));
});

test('each file as the whole body: 400, database unchanged', () => {
  const app = makeApp();
  sql(app.db, "INSERT INTO todos (title) VALUES ('keep me');");
  assert.equal(push(app, '{"client_id":"warm","changes":[]}').status, 200); // installs the triggers
  const before = dump(app);
  for (const f of files) {
    const r = push(app, fs.readFileSync(path.join(DIR, f)));
    assert.equal(r.status, 400, `${f}: ${r.status} ${r.text()}`);
    assert.equal(r.json().error.code, 'bad_request', f);
    assert.equal(dump(app), before, `${f} changed the database`);
  }
});

test('each file as the data of a create: never a 5xx; invalid JSON changes nothing', () => {
  const app = makeApp();
  assert.equal(push(app, '{"client_id":"warm","changes":[]}').status, 200);
  let n = 0;
  for (const f of files) {
    const data = fs.readFileSync(path.join(DIR, f));
    const body = Buffer.concat([
      Buffer.from(`{"client_id":"c","changes":[{"mutation_id":"m-${n++}","action":"create","client_version":0,"data":`),
      data, Buffer.from('}]}')]);
    const before = dump(app);
    const r = push(app, body);
    assert.ok(r.status === 200 || r.status === 400, `${f}: ${r.status} ${r.text()}`);
    if (f.startsWith('n_')) {
      assert.equal(r.status, 400, `${f} was accepted`);
    }
    if (r.status === 400) {
      assert.equal(dump(app), before, `${f} changed the database`);
    } else {
      // A valid object: rejected (its members are not columns of todos, or it lacks
      // the title) and nothing written, or, if it happens to be a todo, written as sent.
      const a = r.json();
      assert.equal(a.applied.length + a.rejected.length, 1, `${f}: ${r.text()}`);
      if (a.applied.length === 1) {
        const row = sql(app.db, `SELECT * FROM todos WHERE id = ${a.applied[0]};`, { json: true })[0];
        for (const [k, v] of Object.entries(JSON.parse(data.toString()))) assert.equal(row[k], v, `${f}: ${k}`);
        sql(app.db, `DELETE FROM todos WHERE id = ${a.applied[0]};`);
      } else {
        assert.equal(dump(app).replace(/INSERT INTO _rhtmx_sync_mutations[^\n]*\n/g, ''),
          before.replace(/INSERT INTO _rhtmx_sync_mutations[^\n]*\n/g, ''), `${f}: a rejected change wrote`);
      }
    }
  }
});
