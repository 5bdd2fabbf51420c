<?php
/*
 * Shared by the pages of the shared-lists example: the database, who is signed in, the token
 * rhtmx-sync reads, and the markup of a list, a todo and the members panel.
 *
 * Sign-in is a demo: /?as=NAME sets a cookie, no password. A real app checks a password and
 * then mints the same token (docs/SECURITY.md, "Minting the token in PHP"). Which rows a
 * user's browser receives is not decided here but by the scopes in rhtmx-sync.json; the
 * server-rendered parts below apply the same rule in SQL (member_of()).
 */
declare(strict_types=1);

function shared_db(): SQLite3
{
    $db = new SQLite3(getenv('SHARED_DB') ?: __DIR__ . '/shared.db');
    $db->enableExceptions(true);
    $db->busyTimeout(5000);
    $db->exec('PRAGMA foreign_keys = ON');
    return $db;
}

function h($s): string
{
    return htmlspecialchars((string)$s, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
}

function valid_user(string $u): bool
{
    return (bool)preg_match('/^[a-z][a-z0-9_]{0,31}$/', $u);
}

/* The signed-in user, or null. */
function current_user(): ?string
{
    $u = (string)($_COOKIE['shared_user'] ?? '');
    return valid_user($u) ? $u : null;
}

/* Signs $user in: the app's own cookie, and the rhtmx-sync token (an hour), as cookies. */
function sign_in(string $user): void
{
    $b64 = fn(string $s): string => rtrim(strtr(base64_encode($s), '+/', '-_'), '=');
    $key = rtrim((string)file_get_contents(getenv('SHARED_SECRET') ?: __DIR__ . '/sync.secret'));
    $jwt = $b64('{"alg":"HS256","typ":"JWT"}') . '.' . $b64(json_encode(['sub' => $user, 'exp' => time() + 3600]));
    $jwt .= '.' . $b64(hash_hmac('sha256', $jwt, $key, true));
    // secure => false: the demo runs on http://127.0.0.1; over HTTPS, set it to true.
    setcookie('rhtmx_sync', $jwt, ['expires' => time() + 3600, 'path' => '/api/sync/', 'secure' => false, 'httponly' => true, 'samesite' => 'Strict']);
    setcookie('shared_user', $user, ['expires' => time() + 3600, 'path' => '/', 'httponly' => true, 'samesite' => 'Strict']);
}

/* The lists $user is a member of (the rule of both scopes), as SQL over a list id. */
function member_of(string $col): string
{
    return "$col IN (SELECT list_id FROM list_members WHERE user_id = :user)";
}

function rows(SQLite3 $db, string $sql, array $bind): array
{
    $st = $db->prepare($sql);
    foreach ($bind as $k => $v) {
        $st->bindValue($k, $v, is_int($v) ? SQLITE3_INTEGER : SQLITE3_TEXT);
    }
    $res = $st->execute();
    $out = [];
    while ($row = $res->fetchArray(SQLITE3_ASSOC)) {
        $out[] = $row;
    }
    return $out;
}

/* One list; keep in step with <template id="list-item"> in index.php. */
function list_item(array $l): string
{
    return '<li class="list" data-sync-id="' . h($l['id']) . '"><span class="tag">#' . h($l['id'])
        . '</span> <span class="name">' . h($l['name']) . "</span></li>\n";
}

/* One todo; keep in step with <template id="todo-item"> in index.php. */
function todo_item(array $t): string
{
    $id = h($t['id']);
    $list = h($t['list_id']);
    $done = (int)$t['done'];
    $next = $done ? 0 : 1;
    $title = h($t['title']);
    return <<<HTML
<li class="todo" data-sync-id="$id" data-done="$done" data-list="$list">
  <form class="toggle" hx-post="/todo.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="update" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <input type="hidden" name="done" value="$next">
    <button class="check" aria-label="Toggle done"></button>
  </form>
  <span class="tag">#$list</span> <span class="title">$title</span>
  <form class="delete" hx-post="/todo.php" hx-target="#todo-list"
        data-sync-entity="todos" data-sync-action="delete" data-sync-id="$id">
    <input type="hidden" name="id" value="$id">
    <button class="remove" aria-label="Delete">&times;</button>
  </form>
</li>

HTML;
}

function list_items(SQLite3 $db, string $user): string
{
    $out = '';
    foreach (rows($db, 'SELECT id, name FROM lists WHERE ' . member_of('id') . ' ORDER BY id', [':user' => $user]) as $l) {
        $out .= list_item($l);
    }
    return $out;
}

/* The add form's choice of list. */
function list_options(SQLite3 $db, string $user): string
{
    $out = '';
    foreach (rows($db, 'SELECT id, name FROM lists WHERE ' . member_of('id') . ' ORDER BY id', [':user' => $user]) as $l) {
        $out .= '<option value="' . h($l['id']) . '">' . h($l['name']) . "</option>\n";
    }
    return $out;
}

function todo_items(SQLite3 $db, string $user): string
{
    $out = '';
    foreach (rows($db, 'SELECT id, list_id, title, done FROM todos WHERE ' . member_of('list_id') . ' ORDER BY id', [':user' => $user]) as $t) {
        $out .= todo_item($t);
    }
    return $out;
}

/* The members of each of $user's lists, each with a remove button, and a form to add one. */
function members_panel(SQLite3 $db, string $user): string
{
    $out = '';
    foreach (rows($db, 'SELECT id, name FROM lists WHERE ' . member_of('id') . ' ORDER BY id', [':user' => $user]) as $l) {
        $id = h($l['id']);
        $out .= '<div class="members" data-list="' . $id . '"><h3>#' . $id . ' ' . h($l['name']) . "</h3>\n<ul>";
        foreach (rows($db, 'SELECT user_id FROM list_members WHERE list_id = :id ORDER BY user_id', [':id' => (int)$l['id']]) as $m) {
            $u = h($m['user_id']);
            $out .= "<li>$u <button hx-post=\"/members.php\" hx-target=\"#members\" hx-vals='{\"op\":\"remove\",\"list_id\":\"$id\",\"user\":\"$u\"}'"
                . " aria-label=\"Remove $u\">remove</button></li>";
        }
        $out .= "</ul>\n<form hx-post=\"/members.php\" hx-target=\"#members\"><input type=\"hidden\" name=\"op\" value=\"add\">"
            . "<input type=\"hidden\" name=\"list_id\" value=\"$id\"><input name=\"user\" placeholder=\"user name\" required"
            . " pattern=\"[a-z][a-z0-9_]{0,31}\"> <button>Add member</button></form></div>\n";
    }
    return $out;
}

function is_member(SQLite3 $db, int $list, string $user): bool
{
    return count(rows($db, 'SELECT 1 FROM list_members WHERE list_id = :l AND user_id = :u', [':l' => $list, ':u' => $user])) > 0;
}

function reply(string $html, int $status = 200): void
{
    header('Content-Type: text/html; charset=utf-8');
    header('Cache-Control: no-store');
    http_response_code($status);
    echo $html;
}
