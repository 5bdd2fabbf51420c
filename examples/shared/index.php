<?php
/*
 * The shared-lists page. /?as=NAME signs in as NAME (a demo: no password). The page shows the
 * lists the user is a member of and their todos, kept in IndexedDB by /api/sync/client.js and
 * refreshed live: a todo someone else adds to a shared list appears here; when someone removes
 * this user from a list, the list and its todos disappear from the page and from the browser.
 * The members panel is plain server-rendered htmx (members.php).
 */
require __DIR__ . '/lib.php';
if (isset($_GET['as']) && valid_user((string)$_GET['as'])) {
    sign_in((string)$_GET['as']);
    header('Location: /', true, 303);
    exit;
}
$user = current_user();
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
if ($user === null) {
    echo '<!doctype html><html lang="en"><meta charset="utf-8"><title>Shared lists</title>'
        . '<link rel="stylesheet" href="/style.css"><main><h1>Shared lists</h1><p>Sign in as '
        . '<a href="/?as=alice">alice</a>, <a href="/?as=bob">bob</a> or <a href="/?as=carol">carol</a>'
        . ' (one per browser; a private window is another browser).</p></main></html>';
    exit;
}
$db = shared_db();
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Shared lists · rhtmx-sync</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/style.css">
  <script src="/vendor/htmx.min.js"></script>
  <!-- data-sync-db: one IndexedDB per user, so switching users in one browser never mixes rows. -->
  <script src="/api/sync/client.js" data-sync-entities="lists,todos"
          data-sync-db="shared-<?= h($user) ?>"></script>
</head>
<body>
  <main>
    <header>
      <h1>Shared lists</h1>
      <p>Signed in as <b id="me"><?= h($user) ?></b>. <rhtmx-sync-status></rhtmx-sync-status></p>
    </header>

    <h2>Your lists</h2>
    <ul id="lists" hx-get="/list.php?entity=lists" hx-trigger="rhtmx:lists:changed from:body"
        data-sync-render="lists" data-sync-template="#list-item" data-sync-sort="id">
<?= list_items($db, $user) ?>
    </ul>

    <h2>Todos</h2>
    <!-- Refreshes the add form's lists. Outside the form: inside it, the library would take
         this request for one of the form's writes. -->
    <div hidden hx-get="/list.php?entity=options" hx-trigger="rhtmx:lists:changed from:body"
         hx-target="#add-list"></div>
    <form id="add-form" hx-post="/todo.php" hx-target="#todo-list"
          data-sync-entity="todos" data-sync-action="create">
      <select id="add-list" name="list_id" aria-label="List">
<?= list_options($db, $user) ?>
      </select>
      <input name="title" required maxlength="200" placeholder="What needs doing?" autocomplete="off">
      <input type="hidden" name="done" value="0">
      <button>Add</button>
    </form>
    <ul id="todo-list" hx-get="/list.php?entity=todos" hx-trigger="rhtmx:todos:changed from:body"
        data-sync-render="todos" data-sync-template="#todo-item" data-sync-sort="id">
<?= todo_items($db, $user) ?>
    </ul>

    <h2>Members</h2>
    <div id="members" hx-get="/list.php?entity=members" hx-trigger="rhtmx:lists:changed from:body">
<?= members_panel($db, $user) ?>
    </div>
  </main>

  <!-- Rendered from IndexedDB while the server cannot (offline, or writes not sent yet);
       the same markup as list_item() and todo_item() in lib.php. -->
  <template id="list-item">
    <li class="list" data-sync-id="{{id}}"><span class="tag">#{{id}}</span> <span class="name">{{name}}</span></li>
  </template>
  <template id="todo-item" data-sync-title="title">
    <li class="todo" data-sync-id="{{id}}" data-done="{{done}}" data-list="{{list_id}}">
      <form class="toggle" hx-post="/todo.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="update" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <input type="hidden" name="done" value="{{!done}}">
        <button class="check" aria-label="Toggle done"></button>
      </form>
      <span class="tag">#{{list_id}}</span> <span class="title">{{title}}</span>
      <form class="delete" hx-post="/todo.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="delete" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <button class="remove" aria-label="Delete">&times;</button>
      </form>
    </li>
  </template>
</body>
</html>
