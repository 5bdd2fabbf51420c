<?php
/*
 * Shared by the todo pages: the database handle, the markup of one todo, and the window of
 * todos a page shows.
 *
 * The app is a plain server-rendered htmx app. Nothing in it knows about sync except the
 * data-sync-* attributes on its forms and list (read by /api/sync/client.js), the
 * <template> in index.php, which must render a todo exactly like todo_item() does, and
 * todo.js, which keeps the list current one row at a time.
 *
 * A page shows a window of the todos, never all of them: the newest TODO_WINDOW, oldest
 * first, and a "Show earlier todos" button that adds the TODO_WINDOW before them. A list of
 * 50,000 todos is then a page of 200 rows, not 33 MB of HTML.
 */
declare(strict_types=1);

const TODO_WINDOW = 200;

/* Opens the app's SQLite file: TODO_DB from the server environment, else todo.db here. */
function todo_db(): SQLite3
{
    $path = getenv('TODO_DB') ?: __DIR__ . '/todo.db';
    $db = new SQLite3($path);
    $db->enableExceptions(true);
    $db->busyTimeout(5000);
    return $db;
}

function h($s): string
{
    return htmlspecialchars((string)$s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

/* One <li>; keep in step with <template id="todo-item"> in index.php. The buttons are named
 * with the todo's title, so a screen reader says which todo they act on; the toggle's
 * aria-pressed says whether it is done. "not sent yet" is its own element (shown while
 * the row has changes the server does not have yet: data-sync-pending), after a comma only
 * screen readers see, so it is read as a phrase of its own and not run into the title. */
function todo_item(array $t): string
{
    $id = h($t['id']);
    $done = (int)$t['done'];
    $next = $done ? 0 : 1;
    $pressed = $done ? 'true' : 'false';
    $title = h($t['title']);
    return <<<HTML
<li class="todo" data-sync-id="$id" data-done="$done">
  <form class="toggle" hx-post="/toggle.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="update" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <input type="hidden" name="done" value="$next">
    <button class="check" aria-pressed="$pressed" aria-label="Mark '$title' done"></button>
  </form>
  <span class="title">$title</span>
  <span class="pending-note"><span class="visually-hidden">, </span>not sent yet</span>
  <form class="delete" hx-post="/delete.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="delete" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <button class="remove" aria-label="Delete '$title'">&times;</button>
  </form>
</li>

HTML;
}

/* The button that adds the TODO_WINDOW todos before `$before` to the list. */
function todo_earlier(int $before, int $count): string
{
    $n = min($count, TODO_WINDOW);
    return <<<HTML
<li class="earlier"><button hx-get="/list.php?before=$before" hx-target="closest li" hx-swap="outerHTML">Show $n earlier todos</button></li>

HTML;
}

/* The newest TODO_WINDOW todos with an id below `$before` (all ids when null), oldest
 * first, as list items, after a "Show earlier todos" button when there are older ones.
 * With `$from`: the todos from that id on instead, when they are at most 5 windows (a page
 * that showed earlier todos keeps them), else the newest window. */
function todo_window(SQLite3 $db, ?int $before = null, ?int $from = null): string
{
    $limit = TODO_WINDOW;
    if ($from !== null) {
        $n = $db->prepare('SELECT count(*) FROM todos WHERE id >= :from');
        $n->bindValue(':from', $from, SQLITE3_INTEGER);
        $count = (int)$n->execute()->fetchArray(SQLITE3_NUM)[0];
        if ($count <= 5 * TODO_WINDOW) {
            $limit = max($count, TODO_WINDOW);
        }
    }
    $st = $db->prepare('SELECT id, title, done FROM todos WHERE id < :before ORDER BY id DESC LIMIT :n');
    $st->bindValue(':before', $before ?? PHP_INT_MAX, SQLITE3_INTEGER);
    $st->bindValue(':n', $limit, SQLITE3_INTEGER);
    $res = $st->execute();
    $rows = [];
    while ($row = $res->fetchArray(SQLITE3_ASSOC)) {
        $rows[] = $row;
    }
    $out = '';
    if ($rows) {
        $first = (int)end($rows)['id'];
        $older = $db->prepare('SELECT count(*) FROM todos WHERE id < :first');
        $older->bindValue(':first', $first, SQLITE3_INTEGER);
        $count = (int)$older->execute()->fetchArray(SQLITE3_NUM)[0];
        if ($count > 0) {
            $out .= todo_earlier($first, $count);
        }
    }
    foreach (array_reverse($rows) as $row) {
        $out .= todo_item($row);
    }
    return $out;
}

/* The todos among `$ids` that exist and have an id of at least `$from` (the oldest the
 * page shows), oldest first, as list items. A requested id without an item is gone (or
 * outside the page's window): the page removes its row, if it has one. */
function todo_rows(SQLite3 $db, array $ids, int $from): string
{
    $out = '';
    if (!$ids) {
        return $out;
    }
    $st = $db->prepare('SELECT id, title, done FROM todos WHERE id IN (SELECT value FROM json_each(:ids)) AND id >= :from ORDER BY id');
    $st->bindValue(':ids', json_encode(array_values($ids)), SQLITE3_TEXT);
    $st->bindValue(':from', $from, SQLITE3_INTEGER);
    $res = $st->execute();
    while ($row = $res->fetchArray(SQLITE3_ASSOC)) {
        $out .= todo_item($row);
    }
    return $out;
}

/* Answers a write with the page's window of the list, or a plain-text error with the given
 * status. */
function todo_reply(SQLite3 $db, int $status = 200, string $error = ''): void
{
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    if ($status !== 200) {
        http_response_code($status);
        echo h($error);
        return;
    }
    echo todo_window($db);
}

function todo_require_post(): void
{
    if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
        http_response_code(405);
        header('Allow: POST');
        exit;
    }
}

function todo_post_id(): ?int
{
    $id = filter_var($_POST['id'] ?? '', FILTER_VALIDATE_INT);
    return $id === false ? null : $id;
}
