// Regenerates the hand-written seeds of tests/fuzz/corpus/*/ (run from that folder:
// node make-seeds.mjs). Tokens are signed with the key fuzz-token.c uses.
import fs from 'node:fs';
import crypto from 'node:crypto';
const KEY = 'fuzz-secret-fuzz-secret-fuzz-secret!!';
const b64u = (b) => Buffer.from(b).toString('base64url');
const mint = (h, p, key = KEY) => { const hp = `${b64u(h)}.${b64u(p)}`; return `${hp}.${crypto.createHmac('sha256', key).update(hp).digest('base64url')}`; };
const H = '{"alg":"HS256","typ":"JWT"}';
const w = (dir, name, text) => fs.writeFileSync(`${dir}/${name}`, text);

// query: "QUERY_STRING\nPATH_INFO\nREQUEST_URI\nheader"
const q = [
  ['plain', 'since=0&limit=500\n/todos\n/api/sync/todos?since=0&limit=500\n'],
  ['no-path-info', 'since=12\n\n/api/sync/todos?since=12\n'],
  ['trailing-slash', '\n\n/api/sync/todos/\n'],
  ['extra-segment', 'since=1\n/todos/1\n/api/sync/todos/1\n'],
  ['percent', 'entities=todos%2Ctags&since=%34%32\n/events\n/api/sync/events\n'],
  ['bad-percent', 'since=%4\n/todos\n\n'],
  ['percent-nul', 'entities=a%00b\n/todos\n\n'],
  ['plus', 'mode=a+b&s=+\n//todos//\n\n'],
  ['repeated', 'since=1&since=2\n/todos\n\n'],
  ['empty-values', 'since=&limit&=&&a=\n/\n/\n'],
  ['negative', 'since=-1&limit=+5\n/todos\n\n'],
  ['overflow', 'since=99999999999999999999999&limit=1001\n/todos\n\n'],
  ['cache-buster', '_=1700000000&since=0\n/todos\n\n'],
  ['long-query', 'x=' + 'y'.repeat(1100) + '\n/todos\n\n'],
  ['long-header', 'since=0\n/todos\n\n' + 'h'.repeat(9000)],
  ['long-value', 'entities=' + 'a,'.repeat(40) + '\n/todos\n\n'],
  ['uri-only-slashes', '\n\n////\n'],
  ['uri-query-slash', '\n\n/api/sync/todos?x=/y\n'],
];
for (const [n, t] of q) w('query', n, t);

// config
const c = {
  minimal: { database: 'app.db', entities: ['todos'], auth: { mode: 'none' } },
  scope: { database: 'a', entities: [{ name: 'todos', scope: 'list_id IN (SELECT list_id FROM m WHERE u = :user AND t = :claim.team)' }, { name: 'x', scope: 'a', owner_column: 'b' }],
    auth: { mode: 'token', secret_file: 's' } },
  full: { database: '/srv/app.db', entities: ['users', { name: 'todos', table: 'todos', key: 'id', strategy: 'merge', offline_writes: false, owner_column: 'user_id' }],
    auth: { mode: 'token', secret_file: '../private/sync.secret', cookie: 'app_sync', allowed_origins: ['https://app.example'] },
    pull: { default_limit: 100, max_limit: 10000, gzip_min_bytes: 0 }, push: { max_body_bytes: 1024, max_changes: 1, resolver: 'r.so', resolver_symbol: 'resolve' },
    events: { mode: 'poll', heartbeat: 1, lifetime: 1, poll_wait: 0, max_streams: 1, retry_ms: 100 }, retention: { days: 0 } },
  'token-no-secret': { database: 'app.db', entities: ['todos'], auth: { mode: 'token' } },
  'no-auth': { database: 'app.db', entities: ['todos'] },
  'unknown-key': { database: 'app.db', entities: ['todos'], auth: { mode: 'none' }, extra: 1 },
  'bad-name': { database: 'app.db', entities: ['1todos', 'a b'], auth: { mode: 'none' } },
  'reserved': { database: 'app.db', entities: ['events', { name: 'x', table: '_rhtmx_sync_log' }], auth: { mode: 'none' } },
  'dup': { database: 'app.db', entities: ['todos', 'todos'], auth: { mode: 'none' } },
  'types': { database: 1, entities: {}, auth: [] },
  'limits': { database: 'app.db', entities: ['t'], auth: { mode: 'none' }, pull: { default_limit: 5000, max_limit: 10 }, push: { max_body_bytes: 1e99 } },
  'origins': { database: 'app.db', entities: ['t'], auth: { mode: 'none', allowed_origins: ['a', 1] } },
};
for (const [n, v] of Object.entries(c)) w('config', n + '.json', JSON.stringify(v));
w('config', 'deep.json', '{"database":"a","entities":["t"],"auth":{"mode":"none"},"pull":' + '['.repeat(40) + ']'.repeat(40) + '}');
w('config', 'trailing.json', '{"database":"a","entities":["t"],"auth":{"mode":"none"}} x');
w('config', 'nul.json', '{"database":"a\u0000b","entities":["t"],"auth":{"mode":"none"}}');

// token: valid ones (signed with KEY), forgeries, cookies and origins.
const exp = 4102444800; // 2100: the seeds stay valid tokens
const t = {
  valid: mint(H, JSON.stringify({ sub: '42', exp })),
  'valid-entities': mint(H, JSON.stringify({ sub: 'alice', exp, entities: ['todos', 'tags'] })),
  'valid-nbf': mint('{"alg":"HS256"}', JSON.stringify({ sub: 'a', exp, nbf: 1600000000, iat: 1600000000 })),
  expired: mint(H, JSON.stringify({ sub: '42', exp: 1000 })),
  'alg-none': mint('{"alg":"none"}', JSON.stringify({ sub: '42', exp })).replace(/\.[^.]*$/, '.'),
  'alg-hs512': mint('{"alg":"HS512"}', JSON.stringify({ sub: '42', exp })),
  'wrong-key': mint(H, JSON.stringify({ sub: '42', exp }), 'other'),
  'padded': mint(H, JSON.stringify({ sub: '42', exp })) + '=',
  'two-dots': 'eyJhbGciOiJIUzI1NiJ9.e30',
  'four-parts': 'a.b.c.d',
  'cookie': `theme=dark; rhtmx_sync=${mint(H, JSON.stringify({ sub: '7', exp }))}; lang=en`,
  'cookie-quoted': `rhtmx_sync="${mint(H, JSON.stringify({ sub: '7', exp }))}"`,
  'bearer': `Bearer ${mint(H, JSON.stringify({ sub: 'b', exp }))}`,
  'bearer-lower': `bearer   ${mint(H, JSON.stringify({ sub: 'b', exp }))}  `,
  'basic': 'Basic YWxpY2U6cHc=',
  'origin-same': 'https://sync.example\n\nsync.example',
  'origin-allowed': 'https://app.example\n\nsync.example:443',
  'origin-evil': 'https://evil.example\n\nsync.example',
  'origin-null': 'null\n\nsync.example',
  'referer': '\nhttps://sync.example/page?x=1\nsync.example',
  'referer-userinfo': '\nhttps://sync.example@evil.example/\nsync.example',
};
for (const [n, v] of Object.entries(t)) w('token', n, v);
w('token', 'payload.json', JSON.stringify({ sub: '42', exp, entities: ['todos'] }));
w('token', 'payload-bad.json', JSON.stringify({ sub: 42, exp: '1' }));
w('token', 'header.json', '{"typ":"JWT","alg":"HS256"}');
w('token', 'header-kid.json', '{"alg":"HS256","kid":"x"}');

// push
const p = {
  'protocol-example': { client_id: 'c-7f3a', changes: [
    { mutation_id: 'm-0001', id: 'tmp-1a2b', action: 'create', data: { title: 'milk' }, client_version: 42 },
    { mutation_id: 'm-0002', id: 7, action: 'update', data: { done: 1 }, client_version: 42 },
    { mutation_id: 'm-0003', id: 8, action: 'delete', client_version: 42 }] },
  'create-update-delete': { client_id: 'c1', changes: [
    { mutation_id: 'a', id: 1, action: 'create', data: { title: 'x', score: 1.5 }, client_version: 0 },
    { mutation_id: 'b', id: 1, action: 'update', data: { title: 'y', done: 1 }, client_version: 1 },
    { mutation_id: 'c', id: 1, action: 'delete', client_version: 2 }] },
  'text-key': { client_id: 'c2', changes: [
    { mutation_id: 'a', id: 'red', action: 'create', data: { label: 'Red', n: 1 }, client_version: 0 },
    { mutation_id: 'b', id: 'red', action: 'update', data: { n: 2 }, client_version: 0 }] },
  'unknown-column': { client_id: 'c3', changes: [{ mutation_id: 'a', id: 5, action: 'create', data: { nope: 1 }, client_version: 0 }] },
  'constraint': { client_id: 'c3', changes: [{ mutation_id: 'b', id: 6, action: 'create', data: { title: null, done: 7 }, client_version: 0 }] },
  'bad-action': { client_id: 'c3', changes: [{ mutation_id: 'c', id: 6, action: 'upsert', client_version: 0 }] },
  'bad-ids': { client_id: 'bad id!', changes: [{ mutation_id: '', id: {}, action: 'create', client_version: -1 }] },
  'empty': { client_id: 'c4', changes: [] },
  'extra-key': { client_id: 'c4', changes: [], x: 1 },
  'nested-data': { client_id: 'c5', changes: [{ mutation_id: 'a', id: 9, action: 'create', data: { title: { a: [1, 2] } }, client_version: 0 }] },
  'big-numbers': { client_id: 'c6', changes: [{ mutation_id: 'a', id: 9223372036854775807, action: 'create', data: { title: 't', score: 1e308 }, client_version: 9223372036854775807 }] },
};
for (const [n, v] of Object.entries(p)) w('push', n + '.json', JSON.stringify(v));
w('push', 'replay-twice.json', JSON.stringify(p['create-update-delete']));
w('push', 'too-many.json', JSON.stringify({ client_id: 'c7', changes: Array.from({ length: 60 }, (_, i) => ({ mutation_id: `m${i}`, id: i + 100, action: 'create', data: { title: 't' }, client_version: 0 })) }));
w('push', 'not-json', 'client_id=c1&changes=1');
