// The PHP app, run for real on both backends: the five lines of PHP in docs/SECURITY.md
// make a token (php-cli) and a cookie (php-cgi) that sync-pull accepts, and the user sees
// their own rows only; the app's own writes through PDO (pdo_sqlite, pdo_pgsql) reach the
// next pull and an event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCgi, SOURCE } from '../harness/rhtmx.mjs';
import { BACKENDS, backendsForFile } from '../harness/backends.mjs';

const on = backendsForFile();

const SECRET_PATH = '/home/me/private/sync.secret';

/** The snippet from docs/SECURITY.md, reading the secret at secretFile. */
function snippet(secretFile) {
  const doc = fs.readFileSync(path.join(SOURCE, 'docs/SECURITY.md'), 'utf8');
  const block = doc.split('<!-- security-example:php -->')[1]?.split('<!-- /security-example -->')[0];
  assert.ok(block, 'docs/SECURITY.md has no security-example:php block');
  const readme = fs.readFileSync(path.join(SOURCE, 'README.md'), 'utf8');
  assert.equal(readme.split('<!-- security-example:php -->')[1]?.split('<!-- /security-example -->')[0], block,
    'README.md shows the same five lines as docs/SECURITY.md');
  const code = block.replace(/^\s*```php\n/, '').replace(/```\s*$/, '');
  assert.equal(code.trim().split('\n').length, 5, 'the snippet is five lines');
  assert.equal(code.split(SECRET_PATH).length, 2, `the snippet reads ${SECRET_PATH} once`);
  return code.replace(SECRET_PATH, secretFile);
}

function php(bin, file) {
  try {
    return execFileSync(bin, [file], { encoding: 'latin1', env: { PATH: process.env.PATH } });
  } catch (e) {
    if (e.code === 'ENOENT') assert.fail(`${bin} not found: apt-get install php-cli php-cgi (scripts/test.sh does)`);
    throw e;
  }
}

for (const backend of BACKENDS) {
  const skip = on.skip(backend);

  test(`the PHP snippet mints a token and a cookie that sync-pull accepts (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { token: true,
      schema: 'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id TEXT);',
      config: { entities: [{ name: 'todos', owner_column: 'user_id' }] },
    });
    app.exec("INSERT INTO todos (title, user_id) VALUES ('mine', '42'), ('theirs', '7');");
    const file = path.join(app.dir, 'login.php');
    fs.writeFileSync(file, `<?php\n$_SESSION = ['user_id' => 42];\n${snippet(app.secretFile)}\necho $jwt;\n`);

    // php-cli: the token itself, sent as a Bearer token.
    const jwt = php('php', file).trim();
    assert.match(jwt, /^[\w-]+\.[\w-]+\.[\w-]{43}$/);
    const byHeader = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0', headers: { Authorization: `Bearer ${jwt}` } });
    assert.equal(byHeader.status, 200, byHeader.text());
    assert.deepEqual(byHeader.json().changes.map((c) => c.data.title), ['mine']);

    // php-cgi: the Set-Cookie header, sent back the way a browser would.
    const out = php('php-cgi', file);
    const setCookie = out.split('\r\n').find((l) => /^Set-Cookie: rhtmx_sync=/i.test(l));
    assert.ok(setCookie, out);
    assert.match(setCookie, /; path=\/api\/sync\/(;|$)/);
    assert.match(setCookie, /; secure(;|$)/);
    assert.match(setCookie, /; HttpOnly(;|$)/);
    assert.match(setCookie, /; SameSite=Strict(;|$)/);
    const cookie = setCookie.slice('Set-Cookie: '.length).split(';')[0];
    const byCookie = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0', headers: { Cookie: cookie } });
    assert.equal(byCookie.status, 200, byCookie.text());
    assert.deepEqual(byCookie.json().changes.map((c) => c.data.title), ['mine']);

    // The same snippet with another secret file does not get in.
    const other = path.join(app.dir, 'other.secret');
    fs.writeFileSync(other, 'another-secret-another-secret-another-secret\n', { mode: 0o600 });
    fs.writeFileSync(file, `<?php\n$_SESSION = ['user_id' => 42];\n${snippet(other)}\necho $jwt;\n`);
    const forged = php('php', file).trim();
    const refused = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0', headers: { Authorization: `Bearer ${forged}` } });
    assert.equal(refused.status, 401);
  });

  test(`the app's writes through PDO reach the next pull and an event (${backend})`, { skip }, async () => {
    const app = await on.app(backend, { config: { events: { poll_wait: 0 } } });
    const first = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }); // installs the triggers
    assert.equal(first.status, 200, first.text());
    // What a PHP page does: prepared statements over PDO, in a transaction.
    const file = path.join(app.dir, 'save.php');
    fs.writeFileSync(file, `<?php
$db = new PDO(${JSON.stringify(app.pdo.dsn)}, ${JSON.stringify(app.pdo.user)}, null, [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$db->beginTransaction();
$ins = $db->prepare('INSERT INTO todos (title) VALUES (?)');
foreach (['from PHP', 'done in PHP', 'gone in PHP'] as $t) $ins->execute([$t]);
$db->prepare('UPDATE todos SET done = 1 WHERE title = ?')->execute(['done in PHP']);
$db->prepare('DELETE FROM todos WHERE title = ?')->execute(['gone in PHP']);
$db->commit();
echo "saved\\n";
`);
    assert.equal(php('php', file), 'saved\n');
    const pulled = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=0' }).json();
    assert.deepEqual(pulled.changes.map((c) => c.data), [{ id: 1, title: 'from PHP', done: 0 }, { id: 2, title: 'done in PHP', done: 1 }]);
    assert.equal(pulled.version, 5);
    const since3 = runCgi('sync-pull', { config: app.config, path: '/todos', query: 'since=3' }).json();
    assert.deepEqual(since3.changes.map((c) => [c.action, c.id, c.version]), [['update', 2, 4], ['delete', 3, 5]]);
    const events = runCgi('sync-events', { config: app.config, query: 'since=0&mode=poll' });
    assert.equal(events.status, 200, events.text());
    const data = [...events.text().matchAll(/^id: (\d+)\ndata: (.*)$/gm)].map((m) => JSON.parse(m[2])).filter((d) => d.action);
    assert.match(events.text(), /^event: bye\nid: 5\n/m);
    assert.deepEqual(data.map((d) => [d.action, d.id, d.version]),
      [['create', 1, 1], ['create', 2, 2], ['create', 3, 3], ['update', 2, 4], ['delete', 3, 5]]);
  });
}
