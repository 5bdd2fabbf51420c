<?php
/*
 * The todo page. Server-rendered: a window of the newest todos (lib.php, todo_window), however
 * many there are. /api/sync/client.js keeps a copy of every todo in IndexedDB, says which
 * todos changed when anyone changes one (rhtmx:todos:changed, with their ids), and takes the
 * forms' writes into its queue, online or not, so each reaches the database exactly once
 * through /api/sync/todos (sync-push) rather than add.php, toggle.php or delete.php. While
 * writes wait in the queue (or the server cannot be reached) the library renders the list
 * from <template id="todo-item">, in the same window (data-sync-limit, data-sync-window),
 * row by row for the writes; otherwise todo.js asks list.php for the changed rows only
 * and puts each in its place, so a change costs one row, not the whole list.
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
  <script src="/todo.js" defer></script>
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
      <h1 id="todos-heading">Todos</h1>
      <rhtmx-sync-status></rhtmx-sync-status>
    </header>

    <form id="add-form" hx-post="/add.php" hx-target="#todo-list"
          data-sync-entity="todos" data-sync-action="create">
      <label class="visually-hidden" for="new-title">New todo</label>
      <input id="new-title" name="title" required maxlength="200" placeholder="What needs doing?" autocomplete="off">
      <input type="hidden" name="done" value="0">
      <button>Add</button>
    </form>

    <!-- No hx-get on the list: todo.js refreshes the rows a change names (list.php?ids=...).
         tabindex="-1": where focus goes when the row that had it is gone.
         data-sync-limit / data-sync-window: when the library renders the list from IndexedDB,
         it shows the same window as lib.php, the newest TODO_WINDOW todos (more when the page
         showed earlier ones), never every todo. -->
    <ul id="todo-list" aria-labelledby="todos-heading" tabindex="-1"
        data-sync-render="todos" data-sync-template="#todo-item" data-sync-sort="id"
        data-sync-limit="<?= TODO_WINDOW ?>" data-sync-window="last">
<?= todo_window($db) ?>
    </ul>

    <p class="hint">Works offline: changes are kept in this browser and sent when the network returns.</p>
  </main>

  <!-- How a todo looks when the page renders it from IndexedDB (offline or with changes not
       sent yet). Same markup as todo_item() in lib.php (the toggle is written twice, one
       kept when done, the other when not, for its aria-pressed). data-sync-title: the field
       that names a todo in messages ("Could not save 'Buy milk': storage is full"). -->
  <template id="todo-item" data-sync-title="title">
    <li class="todo" data-sync-id="{{id}}" data-done="{{done}}">
      <form class="toggle" hx-post="/toggle.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="update" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <input type="hidden" name="done" value="{{!done}}">
        <button class="check" aria-pressed="true" aria-label="Mark '{{title}}' done" data-sync-if="done"></button>
        <button class="check" aria-pressed="false" aria-label="Mark '{{title}}' done" data-sync-unless="done"></button>
      </form>
      <span class="title">{{title}}</span>
      <span class="pending-note"><span class="visually-hidden">, </span>not sent yet</span>
      <form class="delete" hx-post="/delete.php" hx-target="#todo-list"
            data-sync-entity="todos" data-sync-action="delete" data-sync-id="{{id}}">
        <input type="hidden" name="id" value="{{id}}">
        <button class="remove" aria-label="Delete '{{title}}'">&times;</button>
      </form>
    </li>
  </template>
</body>
</html>
