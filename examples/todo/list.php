<?php
/*
 * GET, list items for todo.js and the "Show earlier todos" button:
 *   ?ids=3,17,42&from=F  the todos among those ids that exist and are in the page's window
 *                        (id >= F), oldest first: the rows a change event named
 *   ?before=ID           the window before ID (todo_window)
 *   ?from=F              the todos from F on (at most 5 windows, else the newest window):
 *                        the page's window again, after it showed something else
 *   (nothing)            the newest window, as index.php shows it
 * Ids are at most 500 integers; anything else in the list is a 400.
 */
require __DIR__ . '/lib.php';
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
$db = todo_db();
if (isset($_GET['ids'])) {
    $ids = [];
    foreach (explode(',', (string)$_GET['ids']) as $s) {
        $id = filter_var($s, FILTER_VALIDATE_INT);
        if ($id === false || count($ids) >= 500) {
            todo_reply($db, 400, 'ids must be at most 500 integers');
            exit;
        }
        $ids[] = $id;
    }
    $from = filter_var($_GET['from'] ?? '0', FILTER_VALIDATE_INT);
    echo todo_rows($db, $ids, $from === false ? 0 : $from);
} elseif (isset($_GET['from'])) {
    $from = filter_var($_GET['from'], FILTER_VALIDATE_INT);
    echo todo_window($db, null, $from === false ? null : $from);
} elseif (isset($_GET['before'])) {
    $before = filter_var($_GET['before'], FILTER_VALIDATE_INT);
    echo todo_window($db, $before === false ? null : $before);
} else {
    echo todo_window($db);
}
