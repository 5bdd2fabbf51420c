<?php
/* POST op=add|remove, list_id, user: a member of a list adds or removes a member (themselves
 * included), answers with the members panel. A plain write to list_members: rhtmx-sync's
 * triggers on that table (installed because the scopes read it) tell every open page, and
 * the next pull of the removed member deletes the list and its todos from their device. */
require __DIR__ . '/lib.php';
$me = current_user();
if ($me === null || ($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    reply('sign in and POST', 403);
    exit;
}
$db = shared_db();
$list = filter_var($_POST['list_id'] ?? '', FILTER_VALIDATE_INT);
$user = (string)($_POST['user'] ?? '');
if ($list === false || !valid_user($user) || !is_member($db, $list, $me)) {
    reply('not a list of yours, or not a user name', 400);
    exit;
}
$sql = ($_POST['op'] ?? '') === 'add'
    ? 'INSERT OR IGNORE INTO list_members (list_id, user_id) VALUES (:l, :u)'
    : 'DELETE FROM list_members WHERE list_id = :l AND user_id = :u';
$st = $db->prepare($sql);
$st->bindValue(':l', $list, SQLITE3_INTEGER);
$st->bindValue(':u', $user, SQLITE3_TEXT);
$st->execute();
reply(members_panel($db, $me));
