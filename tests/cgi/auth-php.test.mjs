// The five lines of PHP in docs/SECURITY.md, run for real: the token they make
// (php-cli) and the cookie they set (php-cgi) are accepted by sync-pull, and
// the user sees their own rows only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runCgi, sql, SOURCE } from '../harness/rhtmx.mjs';
import { makeTokenApp } from '../harness/token.mjs';

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

test('the PHP snippet mints a token and a cookie that sync-pull accepts', () => {
  const app = makeTokenApp({
    schema: 'CREATE TABLE todos (id INTEGER PRIMARY KEY, title TEXT NOT NULL, user_id TEXT);',
    config: { entities: [{ name: 'todos', owner_column: 'user_id' }] },
  });
  sql(app.db, "INSERT INTO todos (title, user_id) VALUES ('mine', '42'), ('theirs', '7');");
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
