// Push: one batch of creates through lighttpd + sync-push (FastCGI) against the sqlite3
// shell inserting the same rows into the same kind of table, triggers installed, in one
// transaction. Each push is a new client with new mutation ids, so every batch is applied
// (not answered from the idempotency table); both sides write into the same growing file.
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import {
  P, makeDataset, startServers, post, median, now, since, fmt, result, rowValues,
} from './common.mjs';

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

function batchBody(rep, n) {
  return JSON.stringify({
    client_id: `bench-${rep}`,
    changes: Array.from({ length: n }, (_, i) => {
      const [title, done, note] = rowValues(rep * n + i);
      return { mutation_id: `m-${i}`, id: `tmp-${i}`, action: 'create', data: { title, done, note }, client_version: 0 };
    }),
  });
}

function shellScript(rep, n) {
  const lines = ['.timeout 10000', 'BEGIN IMMEDIATE;'];
  for (let i = 0; i < n; i++) {
    const [title, done, note] = rowValues(1e6 + rep * n + i);
    lines.push(`INSERT INTO items (title, done, note) VALUES (${quote(title)}, ${done}, ${quote(note)});`);
  }
  lines.push('COMMIT;');
  return `${lines.join('\n')}\n`;
}

export async function benchPush() {
  const n = P.pushBatch;
  const app = makeDataset({ rows: 1000, updates: 0, tag: 'bench-push' });
  const srv = await startServers(app);
  try {
    const url = `${srv.url}/api/sync/items`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const probe = await post(url, { client_id: 'probe', changes: [] }, { agent });
    if (probe.status === 501) {
      return [result(`push of ${n} creates in one batch vs sqlite3 shell, rows/s`, {
        ratio: null, goal: 0.5, note: 'not run: sync-push answers 501 in this build',
      })];
    }
    assert.equal(probe.status, 200, String(probe.body));

    const tp = [], ts = [];
    for (let rep = 0; rep < P.reps + 1; rep++) {
      const body = batchBody(rep, n);
      const script = shellScript(rep, n);
      let t0 = now();
      const r = await post(url, body, { agent });
      const tPush = since(t0);
      assert.equal(r.status, 200, String(r.body).slice(0, 300));
      const answer = JSON.parse(r.body);
      assert.equal(answer.applied.length, n, 'every create applied');
      assert.equal(answer.rejected.length, 0);

      t0 = now();
      const s = spawnSync('sqlite3', ['-batch', app.db], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
      const tShell = since(t0);
      assert.equal(s.status, 0, String(s.stderr));
      if (rep > 0) { tp.push(tPush); ts.push(tShell); } // the first round warms both up
    }
    agent.destroy();
    // Both sides' rows reached the change log (the triggers ran for the shell too).
    const logged = Number(String(spawnSync('sqlite3', [app.db,
      "SELECT count(*) FROM _rhtmx_sync_log WHERE entity = 'items'"]).stdout).trim());
    assert.equal(logged, 1000 + 2 * n * (P.reps + 1));

    const push = n / median(tp), shell = n / median(ts);
    return [result(`push of ${fmt(n)} creates in one batch vs sqlite3 shell (triggers on), rows/s`, {
      ratio: push / shell, goal: 0.5,
      figures: `sync-push ${fmt(push)} rows/s (${fmt(median(tp) * 1000, 1)} ms a batch), sqlite3 shell ${fmt(shell)} rows/s (${fmt(median(ts) * 1000, 1)} ms)`,
    })];
  } finally {
    await srv.stop();
  }
}
