// Plain CGI: sync-pull run by lighttpd's mod_cgi, a process per request, against a minimal
// C CGI program printing the same answer through the same server. What sync-pull adds
// over the floor (fork + exec) is its start-up: dynamic libraries, reading the config,
// opening the database, checking the schema, preparing the statement.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCgi } from '../tests/harness/rhtmx.mjs';
import { P, makeDataset, startServers, get, wrkSideBySide, fmt, result } from './common.mjs';

export async function benchCgi() {
  const app = makeDataset({ rows: Math.min(P.rows, 10_000), tag: 'bench-cgi' });
  const query = `since=${app.head - 10}`;
  const answer = runCgi('sync-pull', { config: app.config, path: '/items', query });
  assert.equal(answer.status, 200);
  const bodyFile = path.join(app.dir, 'small.json');
  fs.writeFileSync(bodyFile, answer.body);

  const srv = await startServers(app, { cgi: true, bodyFile });
  try {
    const u = { pull: `${srv.url}/api/sync/items?${query}`, fixed: `${srv.url}/bench/fixed` };
    const a = await get(u.pull);
    assert.equal(a.status, 200, String(a.body));
    assert.deepEqual(a.body, answer.body);
    assert.deepEqual((await get(u.fixed)).body, answer.body);
    const r = await wrkSideBySide(u, { connections: 4 });
    return [result('plain CGI: sync-pull (10 changes) vs minimal C CGI program', {
      ratio: r.pull / r.fixed, goal: 0.5,
      figures: `sync-pull ${fmt(r.pull)} req/s, minimal CGI ${fmt(r.fixed)} req/s`,
    })];
  } finally {
    await srv.stop();
  }
}
