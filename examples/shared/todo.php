<?php
/* POST: a todo write without the sync library (data-sync-offline-forms="false"): title and
 * list_id add one, id and done toggle one, id alone deletes one; only in the user's lists.
 * With the library (the default) the forms' writes go to sync-push instead, where the
 * todos scope applies the same rule. Answers with the user's todos. */
require __DIR__ . '/lib.php';
$user = current_user();
if ($user === null || ($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    reply('sign in and POST', 403);
    exit;
}
$db = shared_db();
$id = filter_var($_POST['id'] ?? '', FILTER_VALIDATE_INT);
$list = $id !== false
    ? (rows($db, 'SELECT list_id FROM todos WHERE id = :id', [':id' => $id])[0]['list_id'] ?? null)
    : filter_var($_POST['list_id'] ?? '', FILTER_VALIDATE_INT);
if ($list === null || $list === false || !is_member($db, (int)$list, $user)) {
    reply('not a list of yours', 403);
    exit;
}
if ($id === false) {
    $st = $db->prepare('INSERT INTO todos (list_id, title) VALUES (:l, :t)');
    $st->bindValue(':l', (int)$list, SQLITE3_INTEGER);
    $st->bindValue(':t', trim((string)($_POST['title'] ?? '')), SQLITE3_TEXT);
} elseif (isset($_POST['done'])) {
    $st = $db->prepare('UPDATE todos SET done = :d WHERE id = :id');
    $st->bindValue(':d', $_POST['done'] === '1' ? 1 : 0, SQLITE3_INTEGER);
    $st->bindValue(':id', $id, SQLITE3_INTEGER);
} else {
    $st = $db->prepare('DELETE FROM todos WHERE id = :id');
    $st->bindValue(':id', $id, SQLITE3_INTEGER);
}
$st->execute();
reply(todo_items($db, $user));
