<?php
// The pull endpoint as a PHP developer on shared hosting would write it: PDO
// SQLite, the same query as sync-pull (the newest change of each row after the
// cursor), json_decode of each stored row and one json_encode of the answer.
// It answers the same JSON as GET /api/sync/{entity}?since=V&limit=N, and runs the
// same SQL as sync-pull (lib/db.c, STMT_PULL), so the database work is equal.
//
//   GET /bench/pull.php?entity=items&since=0&limit=500
//
// The database comes from BENCH_DB (the benchmark's lighttpd sets it).

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
    $db = new PDO('sqlite:' . getenv('BENCH_DB'));
    $db->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    $db->exec('PRAGMA busy_timeout = 5000');
    $db->beginTransaction();

    $head = (int)$db->query("SELECT value FROM _rhtmx_sync_state WHERE key = 'head'")->fetchColumn();
    $horizon = (int)$db->query("SELECT value FROM _rhtmx_sync_state WHERE key = 'horizon'")->fetchColumn();
    if ($since > 0 && $since < $horizon) {
        http_response_code(410);
        echo json_encode(['error' => ['code' => 'resync_required', 'message' => 'pull from since=0'],
                          'version' => $head]);
        exit;
    }

    $st = $db->prepare(
        "SELECT l.entity_id, l.action, l.data, l.version, l.client_id
           FROM _rhtmx_sync_log AS l
           LEFT JOIN _rhtmx_sync_log AS m INDEXED BY idx_sync_row_version
             ON m.entity = l.entity AND m.entity_id = l.entity_id AND m.version > l.version
          WHERE l.entity = :entity AND l.version > :since
            AND (:since > 0 OR l.action <> 'delete')
            AND m.version IS NULL
          ORDER BY l.version LIMIT :lim");
    $st->bindValue(':entity', $entity);
    $st->bindValue(':since', $since, PDO::PARAM_INT);
    $st->bindValue(':lim', $limit + 1, PDO::PARAM_INT);
    $st->execute();
    $rows = $st->fetchAll(PDO::FETCH_ASSOC);
    // The entity's schema fingerprint, as sync-pull computes it (lib/schema.c):
    // SHA-256 over the key column's name and each column's name and declared
    // type, each followed by a NUL; the first 8 bytes in hex.
    $shape = "id\0";
    foreach ($db->query('PRAGMA table_xinfo(items)') as $col) {
        $shape .= $col['name'] . "\0" . $col['type'] . "\0";
    }
    $schema = substr(hash('sha256', $shape), 0, 16);
    $db->commit();
} catch (PDOException $e) {
    error_log('pull.php: ' . $e->getMessage());
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
    $c = ['id' => $r['entity_id'], 'action' => $since == 0 ? 'create' : $r['action']];
    if ($r['data'] !== null) {
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
