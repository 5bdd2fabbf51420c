/*
 * todo.js: keeps the todo list current one row at a time, and keeps the keyboard focus on
 * the list when rows are replaced.
 *
 * /api/sync/client.js fires rhtmx:todos:changed on document.body with the ids of the todos
 * that changed (event.detail.ids). Reloading the whole list on each event costs the whole
 * list (3.3 MB at 5,000 todos) per change; this asks list.php for the named rows only, those
 * in the page's window (lib.php: the newest 200, and more after "Show earlier todos"), and
 * puts each in its place: replaced, inserted in id order, or removed when list.php no
 * longer has it. One request at a time; ids that arrive meanwhile go in the next one.
 *
 * While writes wait in the queue, or the server cannot be reached, the library renders the
 * list from IndexedDB itself (data-sync-render on the list), and this stands aside: the
 * server's rows would not show those writes yet. That render is the same window
 * (data-sync-limit / data-sync-window in index.php) without the "Show earlier todos"
 * button; the next change after it brings the server's window back (list.php?from=: the
 * same first id). An event that cannot name every changed row (detail.source "resync": a
 * full pull, or a tab that did not run for a while) reloads the window.
 */
(function () {
  'use strict';

  var WINDOW = 200;            /* rows list.php shows at once (TODO_WINDOW in lib.php) */
  var list = document.getElementById('todo-list');
  if (!list) return;

  var want = new Set();        /* ids to ask list.php for */
  var drop = new Set();        /* temporary ids (tmp-...) named by a change: rows to remove */
  var reload = false;          /* ask for the whole window instead */
  var running = false;
  var failures = 0;
  var local = false;           /* the library rendered the list (its window) since */
  var shown = 0;               /* the first id of the window the server last rendered (0: all) */

  /* The library renders the list from IndexedDB now (docs/CLIENT.md, "Regions rendered
   * from IndexedDB"): offline, the server unreachable, or writes not sent yet. */
  function localView() {
    if (!window.RhtmxSync) return true;
    var s = window.RhtmxSync.status();
    return !s.online || s.pending > 0;
  }

  function rowOf(id) {
    return list.querySelector('li.todo[data-sync-id="' + CSS.escape(String(id)) + '"]');
  }

  /* The oldest id the window shows: 0 when it shows every todo (no "Show earlier" button;
   * also while the library's render, which has no button, is on screen). */
  function windowStart() {
    if (!list.querySelector('li.earlier')) return 0;
    var first = list.querySelector('li.todo');
    return first ? Number(first.getAttribute('data-sync-id')) || 0 : 0;
  }

  shown = windowStart();

  /* Whether a change to `id` can show in the window: a row shown now, or an id at or after
   * its start (a todo added since). */
  function matters(id, start) {
    return id >= start || !!rowOf(id);
  }

  document.body.addEventListener('rhtmx:todos:changed', function (e) {
    var d = e.detail || {};
    var ids = Array.isArray(d.ids) ? d.ids : [];
    if (d.source === 'resync' || !ids.length) {
      reload = true;
    } else {
      var start = windowStart();
      ids.forEach(function (id) {
        /* A temporary id is a todo created on this device: once its push is answered, the
         * library has given its row the real id (named in the same event), or the server
         * refused it and it is gone. A row still showing it is stale. */
        if (typeof id !== 'number') drop.add(String(id));
        else if (matters(id, start)) want.add(id);
      });
    }
    if (want.size > WINDOW) { reload = true; }
    run();
  });

  /* ------------------------------------------------------------------ focus */

  /* Where the keyboard focus was in the list: the row, which of its buttons, and its
   * neighbours (where focus goes when the row is gone). Cleared when focus moves out of the
   * list; a row removed from under it moves focus nowhere, so that is kept. */
  var focus = null;
  document.addEventListener('focusin', function (e) {
    var t = e.target;
    if (!list.contains(t)) { focus = null; return; }
    var li = t.closest('li');
    if (!li || t === list) { focus = { list: true }; return; }
    var todo = function (el) {
      while (el && !(el.matches && el.matches('li.todo'))) el = el.nextElementSibling;
      return el ? el.getAttribute('data-sync-id') : null;
    };
    var before = li.previousElementSibling;
    while (before && !before.matches('li.todo')) before = before.previousElementSibling;
    focus = {
      id: li.getAttribute('data-sync-id'),
      control: t.classList.contains('remove') ? 'button.remove' : t.classList.contains('check') ? 'button.check' : null,
      earlier: li.classList.contains('earlier'),
      next: todo(li.nextElementSibling),
      prev: before ? before.getAttribute('data-sync-id') : null
    };
  });

  /* Puts the focus back on the list after its rows were replaced, if it was there and is
   * now nowhere (on <body>): the same button of the same row, else of the row after it,
   * else of the row before it, else the list itself. */
  function restoreFocus() {
    if (!focus) return;
    var active = document.activeElement;
    if (active && active !== document.body && document.contains(active)) return;
    var target = null;
    /* "Show earlier todos": its next button, else the first of the rows it brought. */
    if (focus.earlier) target = list.querySelector('li.earlier button, li.todo button');
    [focus.id, focus.next, focus.prev].some(function (id) {
      var li = !target && id ? rowOf(id) : null;
      if (li) target = (focus.control && li.querySelector(focus.control)) || li.querySelector('button');
      return !!target;
    });
    (target || list).focus();
  }
  list.addEventListener('rhtmx:rendered', function () { local = true; restoreFocus(); });
  list.addEventListener('htmx:afterSettle', function () { shown = windowStart(); restoreFocus(); });

  /* ------------------------------------------------------------------ rows */

  /* Inserts a row after the last row with a smaller id (temporary ids sort last). */
  function insertInOrder(li) {
    var id = Number(li.getAttribute('data-sync-id'));
    var rows = list.querySelectorAll('li.todo');
    for (var i = rows.length - 1; i >= 0; i--) {
      var n = Number(rows[i].getAttribute('data-sync-id'));
      if (isFinite(n) && n < id) { rows[i].after(li); return; }
    }
    var earlier = list.querySelector('li.earlier');
    if (earlier) earlier.after(li); else list.prepend(li);
  }

  function apply(ids, html) {
    var tpl = document.createElement('template');
    tpl.innerHTML = html;
    if (!ids) {
      list.replaceChildren(tpl.content);
      window.htmx.process(list);
      shown = windowStart();
    } else {
      var got = {};
      tpl.content.querySelectorAll('li.todo').forEach(function (li) { got[li.getAttribute('data-sync-id')] = li; });
      ids.forEach(function (id) {
        var li = got[String(id)];
        var old = rowOf(id);
        if (li) {
          if (old) old.replaceWith(li); else insertInOrder(li);
          window.htmx.process(li);
        } else if (old) {
          old.remove();
        }
      });
    }
    restoreFocus();
  }

  function fetchRows(ids) {
    /* The whole window: from the same first id (one that showed earlier todos keeps them). */
    var url = ids ? '/list.php?ids=' + ids.join(',') + '&from=' + windowStart() : '/list.php?from=' + shown;
    return fetch(url, { cache: 'no-store', headers: { Accept: 'text/html' } }).then(function (res) {
      if (!res.ok) throw new Error('list.php: HTTP ' + res.status);
      return res.text();
    });
  }

  async function run() {
    if (running) return;
    running = true;
    try {
      while (reload || want.size || drop.size) {
        if (localView()) break;
        /* The library rendered the list while it had to (without the "Show earlier"
         * button): the server's window again (when it was not every todo already). */
        if (local && shown > 0) reload = true;
        local = false;
        drop.forEach(function (id) { var li = rowOf(id); if (li) li.remove(); });
        if (drop.size) { drop.clear(); restoreFocus(); }
        if (!reload && !want.size) continue;
        var ids = reload ? null : Array.from(want);
        reload = false;
        want.clear();
        var html;
        try {
          html = await fetchRows(ids);
          failures = 0;
        } catch (err) {
          /* Asked again, later: the library notices an unreachable server by itself and
           * then renders the list from IndexedDB. */
          if (ids) ids.forEach(function (id) { want.add(id); }); else reload = true;
          await new Promise(function (r) { setTimeout(r, Math.min(30000, 1000 * Math.pow(2, failures++))); });
          continue;
        }
        if (localView()) break;
        apply(ids, html);
      }
      if (localView()) { want.clear(); drop.clear(); reload = false; }
    } finally {
      running = false;
    }
  }
})();
