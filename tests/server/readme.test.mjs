// The README's pull example, run for real: every "$ curl" line in the
// readme-example:pull block must print exactly what the README shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { makeApp, startLighttpd, sql, SOURCE } from '../harness/rhtmx.mjs';

test('README pull example matches the real output', async () => {
  const readme = fs.readFileSync(path.join(SOURCE, 'README.md'), 'utf8');
  const block = readme.split('<!-- readme-example:pull -->')[1].split('<!-- /readme-example -->')[0];
  const steps = [...block.matchAll(/^\$ curl -s '([^']+)'\n(.*)$/gm)].map((m) => [m[1], m[2]]);
  assert.equal(steps.length, 4);

  const app = makeApp({
    schema: `CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0);
             INSERT INTO todos (title) VALUES ('Buy milk'), ('Write docs');`,
  });
  const srv = await startLighttpd(app);
  try {
    await (await fetch(`${srv.url}/api/sync/todos`)).text(); // installs the triggers
    sql(app.db, 'UPDATE todos SET done = 1 WHERE id = 1; DELETE FROM todos WHERE id = 2;');
    for (const [url, want] of steps) {
      const real = url.replace('http://127.0.0.1:8080', srv.url);
      const got = execFileSync('curl', ['-s', real], { encoding: 'utf8' }).trim();
      assert.equal(got, want, url);
    }
  } finally {
    await srv.stop();
  }
});
