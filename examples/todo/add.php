<?php
/* POST title: adds a todo, answers with the list (its window). Not called by index.php while
 * /api/sync/client.js takes the form (its default): the write then goes through the sync
 * queue to sync-push. Kept for data-sync-offline-forms="false". */
require __DIR__ . '/lib.php';
todo_require_post();
$db = todo_db();
$title = trim((string)($_POST['title'] ?? ''));
if (!preg_match('/^.{1,200}$/us', $title)) {
    todo_reply($db, 400, 'title must be 1 to 200 characters');
    exit;
}
$st = $db->prepare('INSERT INTO todos (title, done) VALUES (:title, 0)');
$st->bindValue(':title', $title, SQLITE3_TEXT);
$st->execute();
todo_reply($db);
