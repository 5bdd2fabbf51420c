<?php
/*
 * Shared by the todo pages: the database handle and the markup of one todo.
 *
 * The app is a plain server-rendered htmx app. Nothing in it knows about sync except the
 * data-sync-* attributes on its forms and list (read by /api/sync/client.js) and the
 * <template> in index.php, which must render a todo exactly like todo_item() does.
 */
declare(strict_types=1);

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

/* One <li>; keep in step with <template id="todo-item"> in index.php. */
function todo_item(array $t): string
{
    $id = h($t['id']);
    $done = (int)$t['done'];
    $next = $done ? 0 : 1;
    $title = h($t['title']);
    return <<<HTML
<li class="todo" data-sync-id="$id" data-done="$done">
  <form class="toggle" hx-post="/toggle.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="update" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <input type="hidden" name="done" value="$next">
    <button class="check" aria-label="Toggle done"></button>
  </form>
  <span class="title">$title</span>
  <form class="delete" hx-post="/delete.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="delete" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <button class="remove" aria-label="Delete">&times;</button>
  </form>
</li>

HTML;
}

/* All todos, oldest first, as list items. */
function todo_items(SQLite3 $db): string
{
    $out = '';
    $res = $db->query('SELECT id, title, done FROM todos ORDER BY id');
    while ($row = $res->fetchArray(SQLITE3_ASSOC)) {
        $out .= todo_item($row);
    }
    return $out;
}

/* Answers a write with the fresh list, or a plain-text error with the given status. */
function todo_reply(SQLite3 $db, int $status = 200, string $error = ''): void
{
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    if ($status !== 200) {
        http_response_code($status);
        echo h($error);
        return;
    }
    echo todo_items($db);
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
