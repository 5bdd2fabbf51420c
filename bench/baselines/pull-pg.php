<?php
// The pull endpoint as a PHP developer would write it against PostgreSQL: PDO pgsql, the
// same query as sync-pull runs there (lib/pg_pull.c: the newest change of each row after
// the cursor, the row read from the table in the same snapshot), row_to_json of each row,
// json_decode of it and one json_encode of the answer. It answers the same JSON as
// GET /api/sync/{entity}?since=V&limit=N with "database" naming PostgreSQL.
//
//   GET /bench/pull-pg.php?entity=items&since=0&limit=500
//
// The connection comes from BENCH_PG_DSN (a PDO pgsql DSN; the benchmark's lighttpd sets it).

header('Content-Type: application/json');
header('Cache-Control: no-store');

$entity = $_GET['entity'] ?? '';
$since = filter_var($_GET['since'] ?? '0', FILTER_VALIDATE_INT, ['options' => ['min_range' => 0]]);
$limit = filter_var($_GET['limit'] ?? '500', FILTER_VALIDATE_INT,
                    ['options' => ['min_range' => 1, 'max_range' => 1000]]);
if (!in_array($entity, ['items'], true) || $since === false || $limit === false) {
    http_response_code(400);
    echo json_encode(['error' => ['code' => 'bad_request', 'message' => 'bad parameters']]);
    exit;
}

try {
    $db = new PDO(getenv('BENCH_PG_DSN'), null, null, [PDO::ATTR_PERSISTENT => true]);
    $db->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    $db->exec('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');

    $state = $db->query("SELECT (SELECT value FROM _rhtmx_sync_state WHERE key = 'head'),
                                (SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon')")->fetch(PDO::FETCH_NUM);
    $head = (int)$state[0];
    $horizon = (int)$state[1];
    if ($since > 0 && $since < $horizon) {
        $db->exec('ROLLBACK');
        http_response_code(410);
        echo json_encode(['error' => ['code' => 'resync_required', 'message' => 'pull from since=0'],
                          'version' => $head]);
        exit;
    }

    $st = $db->prepare(
        "SELECT l.id_json, CASE WHEN :full THEN 'create' ELSE l.action END AS action,
                l.version, l.client_id, row_to_json(r.*)::text AS data
           FROM _rhtmx_sync_log AS l
           LEFT JOIN items AS r ON l.action <> 'delete' AND r.id = l.entity_id::integer
          WHERE l.entity = :entity AND l.version > :since
            AND (NOT :full OR l.action <> 'delete')
            AND NOT EXISTS (SELECT 1 FROM _rhtmx_sync_log AS m WHERE m.entity = l.entity
                              AND m.entity_id = l.entity_id AND m.version > l.version)
          ORDER BY l.version LIMIT :lim");
    $st->bindValue(':entity', $entity);
    $st->bindValue(':since', $since, PDO::PARAM_INT);
    $st->bindValue(':full', $since == 0, PDO::PARAM_BOOL);
    $st->bindValue(':lim', $limit + 1, PDO::PARAM_INT);
    $st->execute();
    $rows = $st->fetchAll(PDO::FETCH_ASSOC);
    // The entity's schema fingerprint, as sync-pull computes it (lib/schema.c):
    // SHA-256 over the key column's name and each column's name and declared
    // type (format_type), each followed by a NUL; the first 8 bytes in hex.
    $shape = "id\0";
    foreach ($db->query("SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
                          WHERE attrelid = 'items'::regclass AND attnum > 0 AND NOT attisdropped
                          ORDER BY attnum") as $col) {
        $shape .= $col['attname'] . "\0" . $col['type'] . "\0";
    }
    $schema = substr(hash('sha256', $shape), 0, 16);
    $db->exec('COMMIT');
} catch (PDOException $e) {
    error_log('pull-pg.php: ' . $e->getMessage());
    http_response_code(500);
    echo json_encode(['error' => ['code' => 'database', 'message' => 'server error']]);
    exit;
}

$hasMore = count($rows) > $limit;
if ($hasMore) {
    array_pop($rows);
}
$changes = [];
foreach ($rows as $r) {
    $c = ['id' => json_decode($r['id_json']), 'action' => $r['action']];
    if ($r['action'] !== 'delete') {
        $c['data'] = json_decode($r['data']);
    }
    $c['version'] = (int)$r['version'];
    if ($r['client_id'] !== null) {
        $c['client_id'] = $r['client_id'];
    }
    $changes[] = $c;
}
$last = $changes ? end($changes)['version'] : $head;
echo json_encode([
    'entity' => $entity,
    'changes' => $changes,
    'has_more' => $hasMore,
    'version' => $hasMore ? $last : $head,
    'schema' => $schema,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
