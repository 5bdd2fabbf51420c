// What every fault test checks at its end (tests/fault/): the database is intact
// (PRAGMA integrity_check), the change log agrees with the table (the newest log
// entry of each row, replayed, is the table, and the other way round), and every
// write a client was told was applied is there.
import assert from 'node:assert/strict';
import { sql } from './rhtmx.mjs';

/**
 * db: the database file; acknowledged: titles of todos whose push was answered
 * 200 (each must be in the table exactly once). table/titleColumn: another
 * synced table than the harness's todos.
 */
export function assertIntact(db, acknowledged = [], { table = 'todos', key = 'id', title = 'title' } = {}) {
  assert.equal(sql(db, 'PRAGMA integrity_check;').trim(), 'ok', `${db}: integrity_check`);
  const replayed = `SELECT entity_id, json_extract(data, '$.${title}') FROM _rhtmx_sync_log AS l
    WHERE entity = '${table}' AND action <> 'delete'
      AND version = (SELECT max(version) FROM _rhtmx_sync_log WHERE entity = l.entity AND entity_id = l.entity_id)`;
  const diff = sql(db, `SELECT count(*) FROM (SELECT ${key}, ${title} FROM ${table} EXCEPT ${replayed});
    SELECT count(*) FROM (${replayed} EXCEPT SELECT ${key}, ${title} FROM ${table});`);
  assert.equal(diff, '0\n0\n', `${db}: the change log and the table differ (rows not logged as they are; logged rows not in the table)`);
  for (const t of acknowledged) {
    const n = sql(db, `SELECT count(*) FROM ${table} WHERE ${title} = '${t.replace(/'/g, "''")}';`).trim();
    assert.equal(n, '1', `${db}: acknowledged write '${t}' found ${n} times`);
  }
}
