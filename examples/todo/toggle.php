<?php
/* POST id, done: marks a todo done (1) or not (0), answers with the list (its window). Not
 * called by index.php while /api/sync/client.js takes the form (its default): the write then
 * goes through the sync queue to sync-push. Kept for data-sync-offline-forms="false". */
require __DIR__ . '/lib.php';
todo_require_post();
$db = todo_db();
$id = todo_post_id();
$done = ($_POST['done'] ?? '') === '1' ? 1 : 0;
if ($id === null) {
    todo_reply($db, 400, 'bad id');
    exit;
}
$st = $db->prepare('UPDATE todos SET done = :done WHERE id = :id');
$st->bindValue(':done', $done, SQLITE3_INTEGER);
$st->bindValue(':id', $id, SQLITE3_INTEGER);
$st->execute();
todo_reply($db);
