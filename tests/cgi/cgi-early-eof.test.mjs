// Under plain CGI the answer ends when the program closes its stdout: the web server
// then completes the HTTP response. The programs close it as soon as the answer is
// whole, before closing the database (a checkpoint attempt, the parsed schema freed),
// so a client does not wait for that tidying up. Checked on the system calls, in order
// (strace): stdout's close comes before the database file's, and the answer is whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeApp, runCgi, UNDER_VALGRIND } from '../harness/rhtmx.mjs';

const skip = UNDER_VALGRIND ? 'strace and valgrind do not stack' : false;

/** Run prog as CGI under strace; the answer and the system calls it made, in order. */
function traced(app, prog, opts) {
  const log = path.join(app.dir, `${prog}.strace`);
  // LeakSanitizer cannot run under ptrace; every other test checks for leaks.
  const env = { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'detect_leaks=0'].filter(Boolean).join(':') };
  const r = runCgi(prog, { config: app.config, ...opts, env, wrapper: ['strace', '-qq', '-e', 'trace=openat,close', '-o', log] });
  return { r, calls: fs.readFileSync(log, 'utf8').split('\n') };
}

/** Index of the close of the database file's descriptor, and of stdout's. */
function closes(calls, db) {
  const open = calls.findIndex((l) => l.startsWith('openat(') && l.includes(`"${db}"`));
  assert.ok(open >= 0, `the database was opened:\n${calls.join('\n')}`);
  const fd = calls[open].match(/= (\d+)$/)[1];
  return {
    db: calls.findIndex((l, i) => i > open && l.startsWith(`close(${fd})`)),
    stdout: calls.findIndex((l) => l.startsWith('close(1)')),
  };
}

test('sync-pull as CGI ends its answer before it closes the database', { skip }, () => {
  const app = makeApp();
  const { r, calls } = traced(app, 'sync-pull', { path: '/todos', query: 'since=0' });
  assert.equal(r.status, 200);
  assert.ok(Array.isArray(r.json().changes));
  const c = closes(calls, app.db);
  assert.ok(c.stdout >= 0 && c.db > c.stdout, `stdout closed at ${c.stdout}, the database at ${c.db}:\n${calls.join('\n')}`);
});

test('sync-push as CGI ends its answer before it closes the database', { skip }, () => {
  const app = makeApp();
  const body = JSON.stringify({ client_id: 'eof-client', changes: [{ mutation_id: 'm1', action: 'create', data: { title: 'early' }, client_version: 0 }] });
  const { r, calls } = traced(app, 'sync-push', {
    method: 'POST', path: '/todos', body, headers: { 'Content-Type': 'application/json' },
  });
  assert.equal(r.status, 200, r.text());
  const c = closes(calls, app.db);
  assert.ok(c.stdout >= 0 && c.db > c.stdout, `stdout closed at ${c.stdout}, the database at ${c.db}:\n${calls.join('\n')}`);
});

test('sync-events as CGI ends its answer before it closes the database', { skip }, () => {
  const app = makeApp({ config: { events: { poll_wait: 0 } } });
  const { r, calls } = traced(app, 'sync-events', { query: 'entities=todos&since=0&mode=poll' });
  assert.equal(r.status, 200, r.text());
  assert.match(r.text(), /event: bye/, 'the poll ended on purpose');
  const c = closes(calls, app.db);
  assert.ok(c.stdout >= 0 && c.db > c.stdout, `stdout closed at ${c.stdout}, the database at ${c.db}:\n${calls.join('\n')}`);
});
