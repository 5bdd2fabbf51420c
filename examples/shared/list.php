<?php
/* GET ?entity=lists|todos: the signed-in user's items, for the regions' hx-get refreshes
 * (hx-trigger="rhtmx:lists:changed from:body" and the like); ?entity=members: the panel;
 * ?entity=options: the add form's lists. */
require __DIR__ . '/lib.php';
$user = current_user();
if ($user === null) {
    reply('sign in first', 403);
    exit;
}
$db = shared_db();
switch ($_GET['entity'] ?? '') {
    case 'lists': reply(list_items($db, $user)); break;
    case 'todos': reply(todo_items($db, $user)); break;
    case 'members': reply(members_panel($db, $user)); break;
    case 'options': reply(list_options($db, $user)); break;
    default: reply('unknown entity', 404);
}
