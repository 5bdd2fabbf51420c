<?php
/*
 * The todo page. Server-rendered; /api/sync/client.js keeps a copy in IndexedDB, refreshes
 * the list when anyone changes a todo, and takes the forms' writes into its queue, online
 * or not, so each reaches the database exactly once through /api/sync/todos (sync-push)
 * rather than add.php, toggle.php or delete.php; the list is rendered from
 * <template id="todo-item"> until the server has them, then refreshed from list.php.
 */
require __DIR__ . '/lib.php';
$db = todo_db();
header('Content-Type: text/html; charset=utf-8');
header('Cache-Control: no-store');
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Todos · rhtmx-sync</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/style.css">
  <script src="/vendor/htmx.min.js"></script>
  <script src="/api/sync/client.js"
          data-sync-entities="todos"
          data-conflict-strategy="last-write-wins"
<?php if (getenv('TODO_OFFLINE') === 'true'): ?>
          data-sync-offline="true" data-sync-precache="/"
<?php elseif (getenv('TODO_OFFLINE')): ?>
          data-sync-offline="<?= htmlspecialchars(getenv('TODO_OFFLINE')) ?>"
<?php endif ?>
          data-debug="<?= getenv('TODO_DEBUG') ? 'true' : 'false' ?>"></script>
</head>
<body>
  <main>
    <header>
      <h1>Todos</h1>
      <rhtmx-sync-status></rhtmx-sync-status>
    </header>

    <form id="add-form" hx-post="/add.php" hx-target="#todo-list"
          data-sync-entity="todos" data-sync-action="create">
      <input name="title" required maxlength="200" placeholder="What needs doing?" autocomplete="off">
      <input type="hidden" name="done" value="0">
      <button>Add</button>
    </form>

    <ul id="todo-list"
        hx-get="/list.php" hx-trigger="rhtmx:todos:changed from:body"
        data-sync-render="todos" data-sync-template="#todo-item" data-sync-sort="id">
<?= todo_items($db) ?>
    </ul>

    <p class="hint">Works offline: changes are kept in this browser and sent when the network returns.</p>
  </main>

  <!-- How a todo looks when the page renders it from IndexedDB (offline or with changes not
       sent yet). Same markup as todo_item() in lib.php. data-sync-title: the field that
       names a todo in messages ("Your change to "buy milk" was overwritten ..."). -->
  <template id="todo-item" data-sync-title="title">
    <li class="todo" data-sync-id="{{id}}" data-done="{{done}}">
      <form class="toggle" hx-post="/toggle.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="update" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <input type="hidden" name="done" value="{{!done}}">
        <button class="check" aria-label="Toggle done"></button>
      </form>
      <span class="title">{{title}}</span>
      <form class="delete" hx-post="/delete.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="delete" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <button class="remove" aria-label="Delete">&times;</button>
      </form>
    </li>
  </template>
</body>
</html>
