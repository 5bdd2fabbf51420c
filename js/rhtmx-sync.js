/*
 * rhtmx-sync.js: offline-first sync between an htmx page and the rhtmx-sync server.
 *
 * One <script src="/api/sync/client.js" data-sync-entities="todos"> tag is the whole set-up.
 * The library keeps one IndexedDB database (a store per entity, `_meta` for cursors and
 * identity, `_pending` for queued offline mutations), pulls changes in pages, listens to one
 * event stream per browser (the tab holding the leader lock opens it, the others hear about
 * changes over a BroadcastChannel), fires `rhtmx:{entity}:changed` on document.body, turns
 * every htmx form post to a synced entity into a queued mutation (online or not: the queue's
 * mutation ids are what make each write exactly-once), renders the affected regions from
 * IndexedDB through a page-provided <template>, and pushes the queue in order, exactly once,
 * whenever the server can be reached. docs/CLIENT.md is the user's manual; the wire details
 * are docs/PROTOCOL.md.
 *
 * Plain ES2018, no dependencies. Everything lives in this closure; the only globals are
 * window.RhtmxSync and the <rhtmx-sync-status> custom element.
 */
(function () {
  'use strict';

  if (window.RhtmxSync && window.RhtmxSync.version) return; /* loaded twice: keep the first */

  var VERSION = '0.1.0';
  var script = document.currentScript || document.querySelector('script[data-sync-entities]');

  /* ------------------------------------------------------------------ configuration */

  /* Reads the configuration from the script tag's data-* attributes; see docs/CLIENT.md. */
  function readConfig(el) {
    var d = (el && el.dataset) || {};
    var entities = String(d.syncEntities || '').split(',').map(function (s) {
      var parts = s.trim().split(':');
      return { name: parts[0].trim(), key: (parts[1] || 'id').trim() };
    }).filter(function (e) { return /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(e.name); });
    var base = d.syncBase;
    if (!base && el && el.src) {
      var u = new URL(el.src, location.href);
      base = u.pathname.replace(/\/client\.js$/, '');
      if (u.origin !== location.origin) base = u.origin + base;
    }
    return {
      entities: entities,
      base: (base || '/api/sync').replace(/\/$/, ''),
      strategy: d.conflictStrategy || 'last-write-wins',
      debug: d.debug === '' || d.debug === 'true',
      dbName: d.syncDb || 'rhtmx-sync',
      /* 0: no limit in the URL, the server's pull.default_limit decides (1000 unless set). */
      pageSize: clampInt(d.syncPageSize, 0, 1, 10000),
      eventsMode: /^(auto|stream|poll|off)$/.test(d.syncEvents || '') ? d.syncEvents : 'auto',
      streamTimeout: clampInt(d.syncStreamTimeout, 5000, 500, 120000),
      offlineForms: d.syncOfflineForms !== 'false',
      persist: d.syncPersist === 'true',
      token: d.syncToken || null,
      style: d.syncStyle !== 'false',
      quotaWarn: 0.9
    };
  }

  function clampInt(v, dflt, lo, hi) {
    var n = parseInt(v, 10);
    if (!isFinite(n)) return dflt;
    return Math.min(hi, Math.max(lo, n));
  }

  var cfg = readConfig(script);
  var offline = readOffline(script, cfg); /* may make cfg.dbName the user's own (offline page loads) */
  var entityByName = {};
  cfg.entities.forEach(function (e) { entityByName[e.name] = e; });

  function log() {
    if (!cfg.debug) return;
    var a = ['[rhtmx-sync]'].concat([].slice.call(arguments));
    console.debug.apply(console, a);
  }
  function warn() {
    var a = ['[rhtmx-sync]'].concat([].slice.call(arguments));
    console.warn.apply(console, a);
  }

  /* ------------------------------------------------------------------ small helpers */

  function rand(n) {
    var a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  var seqCounter = 0;
  /* Sortable unique ids: time in base 36, a per-tab counter, randomness. */
  function uid(prefix) {
    seqCounter = (seqCounter + 1) % 1296;
    return prefix + Date.now().toString(36) + ('0' + seqCounter.toString(36)).slice(-2) + '-' + rand(3);
  }
  function isTmp(id) { return typeof id === 'string' && id.indexOf('tmp-') === 0; }
  /* Keys from the DOM are strings; integer-looking ones are the integer keys they name. */
  function normId(v) {
    if (typeof v === 'string' && /^-?(0|[1-9][0-9]{0,14})$/.test(v)) return Number(v);
    return v;
  }
  function idKey(id) { return typeof id + ':' + String(id); }
  function truthy(v) { return !(v === undefined || v === null || v === false || v === 0 || v === '' || v === '0' || v === 'false'); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function backoffDelay(n) {
    var ms = Math.min(30000, 1000 * Math.pow(2, Math.max(0, n)));
    return Math.round(ms * (0.5 + Math.random() * 0.5));
  }
  function whenBody(fn) {
    if (document.body) fn();
    else document.addEventListener('DOMContentLoaded', fn, { once: true });
  }

  /* ------------------------------------------------------------------ locks with a lease */

  /* A Web Lock held by a tab that stopped running JavaScript (paused in a debugger, frozen by
   * the browser, hung) is never released, and every other tab would wait on it for good. So
   * each lock of this library carries a lease in localStorage ({ id, until }, renewed every
   * LEASE_BEAT_MS while the holder runs, good for LEASE_MS): a tab that waits longer than the
   * lease says takes the lock over (Web Locks `steal`), and the tab it was taken from, once it
   * runs again, sees that the lease names someone else and stops before it sends or applies
   * anything more. The browser hands a released lock to the next waiting tab as usual; a
   * lease only matters when the holder stopped. */
  var LEASE_MS = 3000;
  var LEASE_BEAT_MS = 1000;
  /* A hidden page's timers may run only once a minute (Chrome's intensive throttling), so a
   * hidden leader's lease lasts longer; a visible tab takes the lead from it at once anyway. */
  var LEASE_HIDDEN_MS = 65000;
  function leaderLease(id) {
    writeLease('leader', id, { visible: !document.hidden }, document.hidden ? LEASE_HIDDEN_MS : LEASE_MS);
  }

  function leaseKey(name) { return 'rhtmx-sync:' + cfg.dbName + ':' + name + ':lease'; }
  var storageOk = (function () {
    try { localStorage.setItem('rhtmx-sync:probe', '1'); localStorage.removeItem('rhtmx-sync:probe'); return true; } catch (e) { return false; }
  })();
  function readLease(name) {
    try { return JSON.parse(localStorage.getItem(leaseKey(name)) || 'null'); } catch (e) { return null; }
  }
  function writeLease(name, id, extra, ms) {
    try { localStorage.setItem(leaseKey(name), JSON.stringify(Object.assign({ id: id, until: Date.now() + (ms || LEASE_MS) }, extra || {}))); } catch (e) { /* no storage: no lease */ }
  }
  function dropLease(name, id) {
    var l = readLease(name);
    if (l && l.id === id) { try { localStorage.removeItem(leaseKey(name)); } catch (e) { /* gone */ } }
  }
  function leaseIsMine(name, id) {
    if (!storageOk) return true;
    var l = readLease(name);
    return !!l && l.id === id;
  }

  /* Watches a lease on behalf of a tab waiting for its lock; calls takeOver() once when the
   * holder has stopped: its lease ran out, or no lease was written for LEASE_MS (a lock
   * granted to a tab that cannot run its callback). Returns a function that stops watching. */
  function watchLease(name, takeOver, alsoWhen) {
    var missingSince = null;
    var timer = setInterval(function () {
      var l = readLease(name);
      var now = Date.now();
      if (l) missingSince = null;
      else if (missingSince === null) missingSince = now;
      if ((l && l.until < now) || (!l && now - missingSince > LEASE_MS) || (l && alsoWhen && alsoWhen(l))) {
        clearInterval(timer);
        takeOver();
      }
    }, LEASE_BEAT_MS + Math.floor(Math.random() * 200));
    return function () { clearInterval(timer); };
  }

  function lockLost(name) {
    var e = new Error('the ' + name + ' lock was taken over by another tab');
    e.lockLost = true;
    return e;
  }

  /* Runs fn(held) under a lock shared by the tabs of this browser (Web Locks), or by this tab
   * only where the browser has none (or no localStorage for the lease). fn must call
   * held.check() before each request it sends and each answer it applies: it throws once
   * another tab took the lock over (see above). Resolves with fn's result; rejects with its
   * error, or with err.lockLost when the lock was taken from this tab. */
  var localLocks = {};
  function withLock(name, fn) {
    var full = 'rhtmx-sync:' + cfg.dbName + ':' + name;
    var id = uid('k-');
    var held = { check: function () { if (!leaseIsMine(name, id)) throw lockLost(name); } };
    if (!(navigator.locks && navigator.locks.request) || !storageOk) {
      held.check = function () {};
      var prev = localLocks[full] || Promise.resolve();
      var next = prev.then(function () { return fn(held); }, function () { return fn(held); });
      localLocks[full] = next.catch(function () {});
      return next;
    }
    return new Promise(function (resolve, reject) {
      var granted = false;
      var ctl = new AbortController();
      var stopWatch = function () {};
      function run() {
        granted = true;
        stopWatch();
        writeLease(name, id);
        var beat = setInterval(function () { if (leaseIsMine(name, id)) writeLease(name, id); }, LEASE_BEAT_MS);
        return Promise.resolve().then(function () { return fn(held); }).then(function (v) {
          clearInterval(beat);
          dropLease(name, id);
          resolve(v);
        }, function (err) {
          clearInterval(beat);
          dropLease(name, id);
          reject(err);
        });
      }
      function request(opts) {
        navigator.locks.request(full, opts, run).catch(function (err) {
          if (granted) { reject(lockLost(name)); return; } /* taken from us while fn runs */
          if (opts.signal && opts.signal.aborted) return;   /* replaced by the take-over */
          reject(err);
        });
      }
      stopWatch = watchLease(name, function () {
        if (granted) return;
        log('the', name, 'lock is held by a tab that stopped running: taking it over');
        ctl.abort();
        request({ steal: true });
      });
      request({ signal: ctl.signal });
    });
  }

  /* ------------------------------------------------------------------ IndexedDB */

  function reqP(req) {
    return new Promise(function (resolve, reject) {
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function txDone(tx) {
    return new Promise(function (resolve, reject) {
      tx.oncomplete = function () { resolve(); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () { reject(tx.error || new DOMException('transaction aborted', 'AbortError')); };
    });
  }

  var dbPromise = null;

  function schemaMatches(db) {
    var names = db.objectStoreNames;
    if (!names.contains('_meta') || !names.contains('_pending')) return false;
    var tx = null;
    try {
      for (var i = 0; i < cfg.entities.length; i++) {
        var e = cfg.entities[i];
        if (!names.contains(e.name)) return false;
        tx = tx || db.transaction(cfg.entities.map(function (x) { return x.name; }), 'readonly');
        if (tx.objectStore(e.name).keyPath !== e.key) return false;
      }
    } catch (err) { return false; }
    return true;
  }

  /* The library's own IndexedDB layout, numbered apart from the database's version (which
   * also moves when the entity list changes). _meta 'layout' holds the number; a database
   * without it was written by layout 1 (client.js before schema fingerprints). Each
   * migration takes the layout from n-1 to n inside the upgrade transaction, after the
   * stores the entity list needs exist. No migration may drop or rewrite _pending: queued
   * writes outlive every upgrade. */
  var LAYOUT = 2;
  var layoutMigrations = {
    /* 1 -> 2: each entity's server schema fingerprint is kept under 'shape:{entity}'. Rows
     * written by layout 1 have none: the first pull records the server's without a
     * re-sync, since layout 1 stored whole rows from pulls as they came. The old 'schema'
     * key (the entity list and keys) stays as it was. */
    2: function (db, tx, meta) {
      cfg.entities.forEach(function (e) { meta.delete('shape:' + e.name); });
    }
  };

  function layoutMigrate(db, tx) {
    var meta = tx.objectStore('_meta');
    var req = meta.get('layout');
    req.onsuccess = function () {
      var from = req.result ? Number(req.result.value) || 1 : 1;
      for (var v = from + 1; v <= LAYOUT; v++) if (layoutMigrations[v]) layoutMigrations[v](db, tx, meta);
      if (from < LAYOUT) meta.put({ key: 'layout', value: LAYOUT });
    };
  }

  /* 1 if the database's layout is this library's (read in its own transaction). */
  function layoutCurrent(db) {
    return new Promise(function (resolve) {
      try {
        var req = db.transaction(['_meta'], 'readonly').objectStore('_meta').get('layout');
        req.onsuccess = function () { resolve(!!req.result && req.result.value === LAYOUT); };
        req.onerror = function () { resolve(false); };
      } catch (err) { resolve(false); }
    });
  }

  function rawOpen(version) {
    return new Promise(function (resolve, reject) {
      var req = version ? indexedDB.open(cfg.dbName, version) : indexedDB.open(cfg.dbName);
      req.onupgradeneeded = function () { upgrade(req.result, req.transaction); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
      req.onblocked = function () { log('database upgrade waits for other tabs to close it'); };
    });
  }

  /* Creates what the configured entity list needs. Stores of entities no longer listed are
   * kept: another page of the same origin may still list them. A store whose key changed is
   * rebuilt and its cursor dropped, so it is pulled again from 0; the writes queued for it
   * until then name rows by the old key, so 'rekeyed:{entity}' keeps the newest of their
   * queue numbers (see oldKeyed). */
  function upgrade(db, tx) {
    if (!db.objectStoreNames.contains('_meta')) db.createObjectStore('_meta', { keyPath: 'key' });
    if (!db.objectStoreNames.contains('_pending')) db.createObjectStore('_pending', { keyPath: 'seq', autoIncrement: true });
    var meta = tx.objectStore('_meta');
    cfg.entities.forEach(function (e) {
      if (db.objectStoreNames.contains(e.name) && tx.objectStore(e.name).keyPath !== e.key) {
        db.deleteObjectStore(e.name);
        meta.delete('cursor:' + e.name);
        meta.delete('synced:' + e.name);
        var last = tx.objectStore('_pending').openCursor(null, 'prev');
        last.onsuccess = function () {
          if (last.result) meta.put({ key: 'rekeyed:' + e.name, value: last.result.key });
        };
      }
      if (!db.objectStoreNames.contains(e.name)) db.createObjectStore(e.name, { keyPath: e.key });
    });
    meta.put({ key: 'schema', value: cfg.entities.map(function (e) { return e.name + ':' + e.key; }).sort().join(',') });
    layoutMigrate(db, tx);
  }

  /* Opens the database, upgrading it when the entity list differs from its stores. */
  function getDb() {
    if (dbPromise) return dbPromise;
    dbPromise = (async function () {
      for (var attempt = 0; attempt < 5; attempt++) {
        var db = await rawOpen();
        if (!schemaMatches(db) || !(await layoutCurrent(db))) {
          var v = db.version + 1;
          db.close();
          try { db = await rawOpen(v); } catch (err) {
            if (err && err.name === 'VersionError') continue; /* another tab upgraded first */
            throw err;
          }
          if (!schemaMatches(db) || !(await layoutCurrent(db))) { db.close(); continue; }
        }
        db.onversionchange = function () {
          /* Another tab needs a newer schema: step aside and reopen on next use. */
          db.close();
          dbPromise = null;
        };
        return db;
      }
      throw new Error('could not open IndexedDB database ' + cfg.dbName);
    })();
    dbPromise.catch(function () { dbPromise = null; });
    return dbPromise;
  }

  /* Runs fn(tx) in one transaction; resolves with fn's result once the transaction commits.
   * fn may await IndexedDB requests only. A full disk is reported, then rethrown. options
   * (may be omitted) go to db.transaction(): { durability: 'relaxed' } for what the server
   * can send again. */
  async function withTx(stores, mode, fn, options) {
    var db = await getDb();
    var tx;
    try {
      tx = db.transaction(stores, mode, options);
    } catch (err) {
      if (err.name !== 'InvalidStateError') throw err;
      dbPromise = null; /* closed under us by a schema upgrade in another tab */
      db = await getDb();
      tx = db.transaction(stores, mode, options);
    }
    var done = txDone(tx);
    var result;
    try {
      result = await fn(tx);
    } catch (err) {
      try { tx.abort(); } catch (e) { /* already finished */ }
      done.catch(function () {});
      if (isQuotaError(err)) quotaExceeded(err);
      throw err;
    }
    try { await done; } catch (err) {
      if (isQuotaError(err)) quotaExceeded(err);
      throw err;
    }
    if (mode === 'readwrite' && st.quota && st.quota.full) {
      /* Space is back: the "storage is full" entry goes by itself, and a queue that was
       * waiting for it (an answer it could not store) goes on now. */
      st.quota = Object.assign({}, st.quota, { full: false });
      dismissProblem(null, 'quota-full');
      if (st.ready && !flushState.running) scheduleFlush(0);
    }
    return result;
  }

  function metaGet(tx, key) {
    return reqP(tx.objectStore('_meta').get(key)).then(function (r) { return r ? r.value : undefined; });
  }
  function metaPut(tx, key, value) { return reqP(tx.objectStore('_meta').put({ key: key, value: value })); }

  /* ------------------------------------------------------------------ state */

  var st = {
    clientId: null,
    ready: false,
    leader: false,
    reachable: true,          /* false after a failed request until one succeeds */
    answers: 0,               /* answers from the server so far (counts, see handlePushError) */
    hints: { seen: false, events: null, maxBody: 0, maxChanges: 0 }, /* X-Rhtmx-Sync */
    cursors: {},              /* entity -> pull cursor (mirror of _meta) */
    synced: {},               /* entity -> true once a full pull has finished (this load or before) */
    pendingBy: {},            /* entity -> queued mutation count (mirror of _pending) */
    tmpIds: {},               /* idKey of tmp ids with queued mutations */
    idMap: {},                /* tmp id -> real id, for stale DOM */
    busy: 0,                  /* pulls/pushes in flight */
    progress: null,           /* { entity, loaded, fraction } */
    live: 'off',              /* stream | poll | connecting | off (this browser's event stream) */
    error: null,              /* last failure message, cleared by the next success */
    problems: [],             /* what the person must hear about, oldest first (mirror of _meta) */
    conflicts: 0,
    rejected: 0,
    quota: null               /* { usage, quota, low, full } */
  };
  var listeners = {};
  var channel = null;

  function emit(type, detail) {
    (listeners[type] || []).slice().forEach(function (fn) {
      try { fn(detail); } catch (err) { warn('listener for', type, 'failed:', err); }
    });
  }
  function broadcast(msg) {
    if (!channel) return;
    try { channel.postMessage(msg); } catch (err) { log('broadcast failed', err); }
  }
  function netOnline() { return navigator.onLine !== false && st.reachable; }
  function pendingTotal() {
    var n = 0;
    Object.keys(st.pendingBy).forEach(function (k) { n += st.pendingBy[k]; });
    return n;
  }

  function statusSnapshot() {
    var state;
    if (navigator.onLine === false) state = 'offline';
    else if (!st.reachable) state = 'unreachable';
    else if (st.busy > 0 || st.progress) state = 'syncing';
    else if (st.error) state = 'error';
    else state = 'online';
    return {
      state: state,
      online: netOnline(),
      live: st.live,
      leader: st.leader,
      pending: pendingTotal(),
      progress: st.progress,
      error: st.error,
      problem: st.problems.length ? st.problems[st.problems.length - 1] : null,
      problems: st.problems.slice(),
      conflicts: st.conflicts,
      rejected: st.rejected,
      quota: st.quota,
      clientId: st.clientId
    };
  }

  var statusQueued = false;
  function statusChanged() {
    if (statusQueued) return;
    statusQueued = true;
    Promise.resolve().then(function () {
      statusQueued = false;
      var s = statusSnapshot();
      var els = document.querySelectorAll('rhtmx-sync-status');
      for (var i = 0; i < els.length; i++) if (els[i].update) els[i].update(s);
      emit('status', s);
    });
  }

  /* ------------------------------------------------------------------ problems */

  /* What the person must hear about (conflicts, rejected or overwritten changes, storage and
   * sign-in trouble) is a list, oldest first, that stays until the person dismisses each
   * entry: kept in _meta (a reload keeps it) and shared with the other tabs. An entry is
   * { pid, kind, message, at[, key, entity, id] }; a new entry with the key of an older one
   * replaces it (a storage warning given again). */
  var PROBLEMS_MAX = 50;
  var MINE_MAX = 500;          /* own kept changes remembered per entity (_meta mine:{entity}) */

  /* opts.share: tell the other tabs (false when the entry came from one); opts.save: keep it
   * in _meta (only the tab it happened in saves). */
  function addProblem(entry, opts) {
    entry.pid = entry.pid || uid('p-');
    entry.at = entry.at || Date.now();
    st.problems = st.problems.filter(function (q) { return q.pid !== entry.pid && !(entry.key && q.key === entry.key); });
    st.problems.push(entry);
    if (st.problems.length > PROBLEMS_MAX) st.problems = st.problems.slice(-PROBLEMS_MAX);
    statusChanged();
    if (opts.save) saveProblems();
    if (opts.share) broadcast({ type: 'notice', entry: entry });
  }

  /* A problem that is not about one record (storage, sign-in, a change not stored). */
  function notice(kind, message, key) {
    addProblem({ kind: kind, message: message, key: key || null }, { save: true, share: true });
  }

  /* Removes entries: one pid, those with a key, or (neither) all of them. */
  function dismissProblem(pid, key, fromTab) {
    var before = st.problems.length;
    st.problems = st.problems.filter(function (q) {
      if (pid) return q.pid !== pid;
      if (key) return q.key !== key;
      return false;
    });
    if (st.problems.length === before) return;
    statusChanged();
    if (!fromTab) { saveProblems(); broadcast({ type: 'dismiss', pid: pid || null, key: key || null }); }
  }

  /* Writes the list to _meta. Straight to IndexedDB, not through withTx: a full disk is
   * itself one of the problems, and must not report itself again. */
  async function saveProblems() {
    try {
      var db = await getDb();
      var tx = db.transaction(['_meta'], 'readwrite');
      var done = txDone(tx);
      tx.objectStore('_meta').put({ key: 'problems', value: st.problems });
      await done;
    } catch (err) { log('could not keep the problem list:', err); }
  }

  /* ------------------------------------------------------------------ messages */

  /* Everything the library says to a person, in one table: plain words about the person's
   * own records ("Could not save 'Buy milk': storage is full"), never the library's or the
   * database's (mutations, QuotaExceededError, CHECK constraint failed); those go to the
   * console and to the events' detail. {name} is replaced by a value. A page in another
   * language replaces entries: window.RhtmxSyncMessages = { ... } before the script tag,
   * or RhtmxSync.messages.key = '...' later (docs/CLIENT.md, "Messages"). */
  var MESSAGES = {
    online: 'Online',
    offline: 'Offline',
    unreachable: 'Server unreachable',
    syncing: 'Syncing',
    error: 'Sync error',
    polling: '{label} (polling)',
    progress: 'Syncing {entity}\u2026 {rows} rows',
    pending: '{n} pending',
    progress_name: 'Sync progress',
    problems_name: 'Sync messages',
    dismiss: 'Dismiss: {message}',
    dismiss_tip: 'Dismiss',
    /* Said by the status element's live region: the start and end of a sync and changes
     * of connection, not every page of rows. */
    say_offline: 'Offline. Changes are kept on this device and sent when the connection returns.',
    say_unreachable: 'Server unreachable. Changes are kept on this device and sent when it answers again.',
    say_online: 'Back online.',
    say_sync_start: 'Syncing {entity}\u2026',
    say_sync_end: 'Sync complete.',
    record: 'a record of {entity} (#{id})',
    record_new: 'a new record of {entity}',
    conflict_client: 'Your change to {label} was kept; it replaced a change made elsewhere at the same time',
    conflict_merged: 'Your change to {label} was merged with a change made elsewhere at the same time',
    conflict_server: 'Your change to {label} was not kept: a change made elsewhere at the same time won',
    overwritten: 'Your change to {label} was overwritten by a change made elsewhere',
    rejected: 'Could not save {label}: {reason}',
    rejected_delete: 'Could not delete {label}: {reason}',
    /* Why the server refused a change, by its code (docs/PUSH.md); reason_other for the rest. */
    reason_constraint: 'the server did not accept its values',
    reason_not_found: 'it was deleted elsewhere',
    reason_forbidden: 'you are not allowed to change it',
    reason_schema_changed: 'the app has changed since; please make the change again',
    reason_unknown_column: 'the app has changed since; please make the change again',
    reason_too_large: 'it is too large to send',
    reason_not_accepted: 'the server would not take it',
    reason_other: 'the server refused it',
    save_failed_full: 'Could not save {label}: storage is full',
    save_failed: 'Could not save {label} on this device',
    storage_full: 'Storage is full: changes cannot be saved on this device',
    storage_low: 'Storage is almost full ({percent}% used)',
    signed_out: 'You are signed out: sign in again so your changes can be sent',
    not_allowed: 'You are not allowed to sync these changes'
  };
  if (window.RhtmxSyncMessages && typeof window.RhtmxSyncMessages === 'object') Object.assign(MESSAGES, window.RhtmxSyncMessages);

  /* MESSAGES[key] with its {name}s filled from vars (a missing key says the key). */
  function say(key, vars) {
    var text = typeof MESSAGES[key] === 'string' ? MESSAGES[key] : key;
    return text.replace(/\{([a-z_]+)\}/g, function (m, name) {
      return vars && vars[name] !== undefined && vars[name] !== null ? String(vars[name]) : m;
    });
  }

  /* The field that names a record to a person: data-sync-title on the entity's region or on
   * its <template>, else null (then `title` or `name`, when the record has one). */
  function titleField(entity) {
    var els = document.querySelectorAll('[data-sync-render]');
    for (var i = 0; i < els.length; i++) {
      if (els[i].getAttribute('data-sync-render') !== entity) continue;
      var f = els[i].getAttribute('data-sync-title');
      if (f) return f;
      var sel = els[i].getAttribute('data-sync-template');
      var tpl = sel ? document.querySelector(sel) : els[i].querySelector('template');
      if (tpl && tpl.getAttribute('data-sync-title')) return tpl.getAttribute('data-sync-title');
    }
    return null;
  }

  /* A record as a person knows it: its title in quotes, taken from the first of `rows` (row
   * objects or null) that has one; else 'a record of todos (#3)' (MESSAGES.record). */
  function recordLabel(entity, id, rows) {
    var f = titleField(entity);
    var fields = f ? [f] : ['title', 'name'];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (!r || typeof r !== 'object') continue;
      for (var j = 0; j < fields.length; j++) {
        var v = r[fields[j]];
        if ((typeof v === 'string' && v.trim()) || typeof v === 'number') {
          v = String(v).trim();
          return "'" + (v.length > 60 ? v.slice(0, 59) + '\u2026' : v) + "'";
        }
      }
    }
    return say(id === undefined || id === null || isTmp(id) ? 'record_new' : 'record', { entity: entity, id: id });
  }

  /* ------------------------------------------------------------------ DOM events + regions */

  /* Tells the page that records of `entity` changed: a bubbling CustomEvent on document.body,
   * listeners registered with RhtmxSync.on('changed'), the other tabs (unless this message
   * came from one), and the regions rendered from IndexedDB. */
  function notifyChanged(entity, ids, source, fromTab, force) {
    if (!ids || (!ids.length && !force)) return;
    var detail = { entity: entity, ids: ids, source: source };
    whenBody(function () {
      document.body.dispatchEvent(new CustomEvent('rhtmx:' + entity + ':changed', { bubbles: true, detail: detail }));
      document.body.dispatchEvent(new CustomEvent('rhtmx:changed', { bubbles: true, detail: detail }));
      if (shouldRenderLocal(entity)) renderRegions(entity, source === 'resync' ? null : ids);
      else staleRegions(entity);
    });
    emit('changed', detail);
    if (!fromTab) broadcast({ type: 'changed', entity: entity, ids: ids, source: source, force: !!force });
  }

  /* Regions are rendered from IndexedDB while the server cannot render them correctly: when
   * offline, and while the entity has queued mutations the server has not seen yet. */
  function shouldRenderLocal(entity) {
    return !netOnline() || (st.pendingBy[entity] || 0) > 0;
  }

  /* ------------------------------------------------------------------ regions: a window */

  /* A region (data-sync-render) shows a window of its entity's records, never all of them:
   * at most data-sync-limit of them (RENDER_LIMIT when unset) in data-sync-sort order, the
   * first ones, or the last ones with data-sync-window="last" (a list sorted oldest first
   * that shows the newest, like the example's). A region already showing rows from further
   * back (the page showed earlier records) keeps them, up to RENDER_SPAN windows. So a list
   * of 50,000 records costs a window of elements, whatever the entity holds.
   *
   * A full render reads the window only (a cursor in key order when the sort is the key;
   * any other sort reads every record and sorts them in memory, not in the DOM), and keeps
   * each row element that would come out the same, so the focus stays where it was. A change
   * that names its ids updates those rows only (replaced, inserted in order, or removed),
   * when every row on screen is one the library rendered and the sort is the key; else the
   * window is rendered again. One render at a time per region; what is asked for meanwhile
   * is merged into the next one. */
  var RENDER_LIMIT = 500;
  var RENDER_SPAN = 5;
  var rowKeys = new WeakMap();       /* top-level node the library rendered -> its row: { key } (one
                                      * object per row, shared by the row's nodes) */
  var regionStates = new WeakMap();  /* region -> { want, running, local, complete, gen } */

  var renderQueued = {};             /* entity -> { ids: Map | null (the whole window) } */

  /* A change the library did not render (the page shows the server's rows meanwhile): the
   * next render of the entity's regions is a whole window. */
  function staleRegions(entity) {
    var els = document.querySelectorAll('[data-sync-render]');
    for (var i = 0; i < els.length; i++) {
      var rs = els[i].getAttribute('data-sync-render') === entity && regionStates.get(els[i]);
      if (rs) { rs.local = false; rs.gen++; }
    }
  }

  /* Renders the entity's regions after the current task: the rows of `ids`, or (ids
   * omitted or empty) the whole window. Calls in the same task are merged. */
  function renderRegions(entity, ids) {
    var q = renderQueued[entity];
    if (!q) {
      q = renderQueued[entity] = { ids: new Map() };
      setTimeout(function () {
        delete renderQueued[entity];
        var els = document.querySelectorAll('[data-sync-render]');
        for (var i = 0; i < els.length; i++) {
          if (els[i].getAttribute('data-sync-render') !== entity) continue;
          renderRegion(els[i], q.ids ? Array.from(q.ids.values()) : null).catch(function (err) { warn('render failed:', err); });
        }
      }, 0);
    }
    if (!ids || !ids.length) q.ids = null;
    else if (q.ids) ids.forEach(function (id) { q.ids.set(idKey(id), id); });
  }

  /* Renders one region from IndexedDB: the rows of `ids`, or (null) the whole window.
   * Resolves once the region shows at least what was asked (renders are serialised). */
  function renderRegion(el, ids) {
    var rs = regionStates.get(el);
    if (!rs) { rs = { want: null, running: null, local: false, complete: false, gen: 0 }; regionStates.set(el, rs); }
    if (!rs.want) rs.want = { ids: new Map() };
    if (!ids) rs.want.ids = null;
    else if (rs.want.ids) ids.forEach(function (id) { rs.want.ids.set(idKey(id), id); });
    if (!rs.running) {
      rs.running = (async function () {
        try {
          while (rs.want) {
            var w = rs.want;
            rs.want = null;
            await renderOnce(el, rs, w.ids ? Array.from(w.ids.values()) : null);
          }
        } finally {
          rs.running = null;
        }
      })();
    }
    return rs.running;
  }

  /* How a region renders, from its attributes; null (and a warning) without a template. */
  function regionOptions(el) {
    var entity = el.getAttribute('data-sync-render');
    var ent = entityByName[entity];
    if (!ent) return null;
    var sel = el.getAttribute('data-sync-template');
    var tpl = sel ? document.querySelector(sel) : el.querySelector('template');
    if (!tpl || !tpl.content) { warn('region for', entity, 'has no <template> (data-sync-template)'); return null; }
    var sort = el.getAttribute('data-sync-sort') || ent.key;
    var desc = /^-/.test(sort);
    sort = sort.replace(/^-/, '');
    return {
      entity: entity, key: ent.key, tpl: tpl, sort: sort, desc: desc, byKey: sort === ent.key,
      limit: clampInt(el.getAttribute('data-sync-limit'), RENDER_LIMIT, 1, 100000),
      last: el.getAttribute('data-sync-window') === 'last'
    };
  }

  /* Display order of two records (the sort field, then the key). */
  function compareRecords(o, a, b) {
    var c = compareValues(a[o.sort], b[o.sort]);
    if (c === 0) c = compareValues(a[o.key], b[o.key]);
    return o.desc ? -c : c;
  }

  /* Display order of two keys, for a region sorted by its key. */
  function compareKeys(o, a, b) {
    return o.desc ? compareValues(b, a) : compareValues(a, b);
  }

  /* The region's top-level nodes in groups: { key, nodes, own, row } for a record's row (own:
   * the library rendered it, row its rowKeys entry; else a server-rendered element with
   * data-sync-id), { key: undefined } for anything else. <template> elements are left out
   * (they stay). */
  function regionRows(el) {
    var groups = [];
    var last = null;
    for (var n = el.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 1 && n.tagName === 'TEMPLATE') continue;
      var row = rowKeys.get(n);
      var key;
      if (row) key = resolveId(row.key);
      else if (n.nodeType === 1 && n.hasAttribute('data-sync-id')) key = resolveId(normId(n.getAttribute('data-sync-id')));
      if (row && last && last.row === row) { last.nodes.push(n); continue; }
      last = { key: key, nodes: [n], own: !!row, row: row };
      groups.push(last);
    }
    return groups;
  }

  /* The window of a region sorted by its key: walks the store in key order from the end the
   * window is anchored at and takes records until the window is full and past the farthest
   * row the region shows (`shown`, keys), at most RENDER_SPAN windows. Resolves with
   * { rows (display order), complete (no record was left out) }. */
  function readWindowByKey(store, o, shown) {
    var forward = o.last === o.desc;
    var walk = function (a, b) { return forward ? compareValues(a, b) : compareValues(b, a); };
    var far;
    shown.forEach(function (k) { if (far === undefined || walk(k, far) > 0) far = k; });
    var max = o.limit * RENDER_SPAN;
    var rows = [];
    return new Promise(function (resolve, reject) {
      var req = store.openCursor(null, forward ? 'next' : 'prev');
      req.onerror = function () { reject(req.error); };
      req.onsuccess = function () {
        var c = req.result;
        if (c && rows.length < max && (rows.length < o.limit || (far !== undefined && walk(c.primaryKey, far) <= 0))) {
          rows.push(c.value);
          c.continue();
          return;
        }
        rows.sort(function (a, b) { return compareRecords(o, a, b); });
        resolve({ rows: rows, complete: !c });
      };
    });
  }

  /* The same window from every record (a sort on another field than the key). */
  function pickWindow(all, o, shown) {
    all.sort(function (a, b) { return compareRecords(o, a, b); });
    var want = {};
    shown.forEach(function (k) { want[idKey(k)] = true; });
    var left = 0;
    all.forEach(function (r) { if (want[idKey(r[o.key])]) left++; });
    var max = o.limit * RENDER_SPAN;
    var rows = [];
    for (var i = 0; i < all.length && rows.length < max && (rows.length < o.limit || left > 0); i++) {
      var r = all[o.last ? all.length - 1 - i : i];
      if (want[idKey(r[o.key])]) left--;
      rows.push(r);
    }
    if (o.last) rows.reverse();
    return { rows: rows, complete: rows.length === all.length };
  }

  /* A record's row, filled from the template: its top-level nodes, each marked as the
   * library's (rowKeys). */
  function freshRow(o, rec, pending) {
    var nodes = Array.prototype.slice.call(instantiate(o.tpl, rec, pending).childNodes);
    var row = { key: rec[o.key] };
    nodes.forEach(function (n) { rowKeys.set(n, row); });
    return nodes;
  }

  function sameNodes(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (!a[i].isEqualNode(b[i])) return false;
    return true;
  }

  function renderOnce(el, rs, ids) {
    var o = regionOptions(el);
    if (!o) return Promise.resolve();
    return readyPromise.then(function () {
      var keyed = regionRows(el).filter(function (g) { return g.key !== undefined; });
      /* Rows of the named ids only: the library has rendered every change since its last
       * render (rs.local), every row on screen is its own (nothing replaced them) and their
       * order is the key's. */
      if (ids && rs.local && o.byKey && keyed.length && ids.length <= o.limit &&
          keyed.every(function (g) { return g.own; })) {
        return renderRows(el, rs, o, keyed, ids);
      }
      return renderWindow(el, rs, o);
    });
  }

  /* The whole window: row elements that come out the same are kept, the others replaced;
   * anything else in the region (but its <template>) is removed. */
  async function renderWindow(el, rs, o) {
    var gen = rs.gen;
    var shown = [];
    regionRows(el).forEach(function (g) { if (g.key !== undefined) shown.push(g.key); });
    var got = await withTx([o.entity, '_pending'], 'readonly', function (tx) {
      var store = tx.objectStore(o.entity);
      var win = o.byKey ? readWindowByKey(store, o, shown)
        : reqP(store.getAll()).then(function (all) { return pickWindow(all, o, shown); });
      return Promise.all([win, reqP(tx.objectStore('_pending').getAll())]);
    });
    var pending = pendingKeys(got[1], o.entity);
    /* The rows as they are now (a page script may have changed them meanwhile). */
    var old = new Map();
    regionRows(el).forEach(function (g) { if (g.own) old.set(idKey(g.key), g); });
    var seq = [];
    var added = [];
    got[0].rows.forEach(function (rec) {
      var fresh = freshRow(o, rec, pending[idKey(rec[o.key])]);
      var g = old.get(idKey(rec[o.key]));
      if (g && sameNodes(g.nodes, fresh)) {
        seq.push.apply(seq, g.nodes);
      } else {
        seq.push.apply(seq, fresh);
        added.push.apply(added, fresh);
      }
    });
    var keep = new Set(seq);
    Array.prototype.slice.call(el.childNodes).forEach(function (n) {
      if (!keep.has(n) && !(n.nodeType === 1 && n.tagName === 'TEMPLATE')) el.removeChild(n);
    });
    var next = skipTemplates(el.firstChild);
    seq.forEach(function (n) {
      if (n === next) { next = skipTemplates(n.nextSibling); return; }
      el.insertBefore(n, next);
    });
    rs.local = rs.gen === gen; /* else a change it may not have read came meanwhile */
    rs.complete = got[0].complete;
    rendered(el, o, added, got[0].rows.length, null);
  }

  function skipTemplates(n) {
    while (n && n.nodeType === 1 && n.tagName === 'TEMPLATE') n = n.nextSibling;
    return n;
  }

  /* The rows of `ids`: those in the window (from the first row shown on, for a window of
   * the last records; up to the last row shown, for the first) are replaced or inserted in
   * key order, the others removed. Ids outside the window and not shown are not read. */
  async function renderRows(el, rs, o, keyed, ids) {
    var bound = o.last ? keyed[0].key : keyed[keyed.length - 1].key;
    var inWindow = function (k) {
      if (rs.complete) return true;
      var c = compareKeys(o, k, bound);
      return o.last ? c >= 0 : c <= 0;
    };
    var byKey = new Map();
    keyed.forEach(function (g) { byKey.set(idKey(g.key), g); });
    var todo = [];
    var seen = {};
    ids.forEach(function (id) {
      var k = resolveId(id);
      if (seen[idKey(k)] || !(inWindow(k) || byKey.has(idKey(k)) || byKey.has(idKey(id)))) return;
      seen[idKey(k)] = true;
      todo.push({ id: id, key: k });
    });
    var got = todo.length ? await withTx([o.entity, '_pending'], 'readonly', function (tx) {
      var store = tx.objectStore(o.entity);
      return Promise.all([
        Promise.all(todo.map(function (t) { return reqP(store.get(t.key)); })),
        reqP(tx.objectStore('_pending').getAll())
      ]);
    }) : [[], []];
    /* The rows may have changed while IndexedDB answered (another render cannot run, but a
     * page script can): start from what is there now. */
    keyed = regionRows(el).filter(function (g) { return g.key !== undefined; });
    byKey = new Map();
    keyed.forEach(function (g) { byKey.set(idKey(g.key), g); });
    /* (A record shown twice: the whole window, which shows each once.) */
    if (!rs.local || !keyed.length || byKey.size !== keyed.length || !keyed.every(function (g) { return g.own; })) {
      return renderWindow(el, rs, o);
    }
    var pending = pendingKeys(got[1], o.entity);
    var added = [];
    var named = [];
    todo.forEach(function (t, i) {
      var rec = got[0][i];
      var g = byKey.get(idKey(t.key)) || byKey.get(idKey(t.id));
      if (!rec || !inWindow(t.key)) {
        if (!g) return;
        g.nodes.forEach(function (n) { if (n.parentNode === el) el.removeChild(n); });
        keyed.splice(keyed.indexOf(g), 1);
        byKey.delete(idKey(g.key));
        named.push(t.id);
        return;
      }
      var fresh = freshRow(o, rec, pending[idKey(t.key)]);
      if (g && sameNodes(g.nodes, fresh)) return;
      named.push(t.id);
      added.push.apply(added, fresh);
      var ng = { key: t.key, nodes: fresh, own: true };
      if (g) {
        fresh.forEach(function (n) { el.insertBefore(n, g.nodes[0]); });
        g.nodes.forEach(function (n) { if (n.parentNode === el) el.removeChild(n); });
        keyed[keyed.indexOf(g)] = ng;
      } else {
        var at = 0;
        while (at < keyed.length && compareKeys(o, keyed[at].key, t.key) < 0) at++;
        var before = at < keyed.length ? keyed[at].nodes[0] : keyed.length ? lastOf(keyed).nextSibling : null;
        fresh.forEach(function (n) { el.insertBefore(n, before); });
        keyed.splice(at, 0, ng);
      }
      byKey.set(idKey(t.key), ng);
    });
    if (rs.complete && keyed.length > o.limit) rs.complete = false;
    /* Grown past its span (many records added): the window again, from its anchored end. */
    if (keyed.length > o.limit * RENDER_SPAN) renderRegion(el, null);
    if (named.length) rendered(el, o, added, keyed.length, named);
  }

  /* Removes a second row of one record from a region: the one rendered with a temporary id
   * that `ids` (tmp -> real) renamed, else the later one. */
  function dropDuplicateRows(el, ids) {
    var first = new Map();
    regionRows(el).forEach(function (g) {
      if (g.key === undefined) return;
      var k = idKey(g.key);
      var other = first.get(k);
      if (!other) { first.set(k, g); return; }
      var renamed = function (x) { return x.own && isTmp(x.row.key) && ids[x.row.key] !== undefined; };
      var drop = renamed(other) && !renamed(g) ? other : g;
      if (drop === other) first.set(k, g);
      drop.nodes.forEach(function (n) { if (n.parentNode === el) el.removeChild(n); });
    });
  }

  function lastOf(keyed) {
    var nodes = keyed[keyed.length - 1].nodes;
    return nodes[nodes.length - 1];
  }

  /* idKey -> true for the records of `entity` with queued mutations. */
  function pendingKeys(all, entity) {
    var set = {};
    all.forEach(function (p) { if (p.entity === entity) set[idKey(p.id)] = true; });
    return set;
  }

  /* After a render: htmx processes the new elements, the region is marked and told. */
  function rendered(el, o, added, count, ids) {
    el.setAttribute('data-sync-rendered', 'local');
    if (window.htmx && window.htmx.process) {
      added.forEach(function (n) { if (n.nodeType === 1) window.htmx.process(n); });
    }
    el.dispatchEvent(new CustomEvent('rhtmx:rendered', { bubbles: true, detail: { entity: o.entity, count: count, ids: ids } }));
  }

  /* Numbers sort before strings (server keys before temporary ones), then natural order. */
  function compareValues(a, b) {
    var ta = typeof a, tb = typeof b;
    if (a === b) return 0;
    if (a === undefined || a === null) return -1;
    if (b === undefined || b === null) return 1;
    if (ta === 'number' && tb !== 'number') return -1;
    if (tb === 'number' && ta !== 'number') return 1;
    return a < b ? -1 : 1;
  }

  /* Fills a template with a record. Supported: {{field}} and {{!field}} (1 when the field is
   * falsy, else 0) in text and attribute values; data-sync-if / data-sync-unless="field"
   * (keep the element only when truthy / falsy); data-sync-checked="field"; data-sync-class=
   * "class:field ...". Values go in through textContent/setAttribute, never as HTML. */
  function instantiate(tpl, rec, pending) {
    var frag = tpl.content.cloneNode(true);
    function fill(s) {
      return s.replace(/\{\{\s*(!?)([A-Za-z0-9_]+)\s*\}\}/g, function (m, neg, f) {
        if (neg) return truthy(rec[f]) ? '0' : '1';
        var v = rec[f];
        return v === undefined || v === null ? '' : String(v);
      });
    }
    var walker = document.createTreeWalker(frag, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    var remove = [];
    var node;
    while ((node = walker.nextNode())) {
      if (node.nodeType === 3) {
        if (node.nodeValue.indexOf('{{') >= 0) node.nodeValue = fill(node.nodeValue);
        continue;
      }
      for (var i = 0; i < node.attributes.length; i++) {
        var at = node.attributes[i];
        if (at.value.indexOf('{{') >= 0) node.setAttribute(at.name, fill(at.value));
      }
      var cond = node.getAttribute('data-sync-if');
      if (cond && !truthy(rec[cond])) remove.push(node);
      cond = node.getAttribute('data-sync-unless');
      if (cond && truthy(rec[cond])) remove.push(node);
      cond = node.getAttribute('data-sync-checked');
      if (cond) { if (truthy(rec[cond])) node.setAttribute('checked', ''); else node.removeAttribute('checked'); }
      cond = node.getAttribute('data-sync-class');
      if (cond) cond.split(/\s+/).forEach(function (pair) {
        var p = pair.split(':');
        if (p.length === 2 && truthy(rec[p[1]])) node.classList.add(p[0]);
      });
    }
    remove.forEach(function (n) { if (n.parentNode) n.parentNode.removeChild(n); });
    if (pending) {
      for (var c = frag.firstElementChild; c; c = c.nextElementSibling) c.setAttribute('data-sync-pending', '');
    }
    return frag;
  }

  /* ------------------------------------------------------------------ local records */

  function entityOrThrow(entity) {
    var e = entityByName[entity];
    if (!e) throw new Error('rhtmx-sync: entity "' + entity + '" is not in data-sync-entities');
    return e;
  }

  async function getRecord(entity, id) {
    entityOrThrow(entity);
    id = resolveId(normId(id));
    return withTx([entity], 'readonly', function (tx) { return reqP(tx.objectStore(entity).get(id)); });
  }

  async function listRecords(entity) {
    entityOrThrow(entity);
    return withTx([entity], 'readonly', function (tx) { return reqP(tx.objectStore(entity).getAll()); });
  }

  async function pendingAll() {
    return withTx(['_pending'], 'readonly', function (tx) { return reqP(tx.objectStore('_pending').getAll()); });
  }

  /* Re-reads the queue into st.pendingBy / st.tmpIds. */
  async function refreshPending() {
    var all = await pendingAll();
    var by = {};
    var tmps = {};
    cfg.entities.forEach(function (e) { by[e.name] = 0; });
    all.forEach(function (p) {
      by[p.entity] = (by[p.entity] || 0) + 1;
      if (isTmp(p.id)) tmps[p.entity + '|' + p.id] = true;
    });
    st.pendingBy = by;
    st.tmpIds = tmps;
    statusChanged();
    return all.length;
  }

  function resolveId(id) {
    while (isTmp(id) && st.idMap[id] !== undefined) id = st.idMap[id];
    return id;
  }

  /* Replays queued mutations on top of a base row (null = absent); returns the local row. */
  function replay(base, muts, key, id) {
    var rec = base ? Object.assign({}, base) : null;
    muts.forEach(function (p) {
      if (p.action === 'delete') rec = null;
      else rec = Object.assign({}, rec || {}, p.data || {});
      if (rec) rec[key] = id;
    });
    return rec;
  }

  /* Queued writes of `entity` made before its store was rebuilt for a new key (upgrade):
   * they name their row by the old key, so the rebuilt store never shows them (a pull's
   * replay skips them) and the answer to them changes nothing in it (a rejection has no
   * old row to restore there; what the server kept comes with the next pull). Resolves with
   * a function of a queued entry, true for those. */
  async function oldKeyed(tx, entity) {
    var upto = (await metaGet(tx, 'rekeyed:' + entity)) || 0;
    return function (p) { return !!p && p.seq <= upto; };
  }

  /* Records one local mutation: the entity store and the queue change in one transaction.
   * Returns { id, record }. */
  async function mutateLocal(entity, action, id, data) {
    var ent = entityOrThrow(entity);
    if (action !== 'create' && action !== 'update' && action !== 'delete') throw new Error('bad action ' + action);
    if (action === 'create' && (id === undefined || id === null || id === '')) id = uid('tmp-');
    if (id === undefined || id === null || id === '') throw new Error('rhtmx-sync: ' + action + ' needs an id');
    id = resolveId(normId(id));
    var clean = {};
    Object.keys(data || {}).forEach(function (k) { if (k !== ent.key) clean[k] = data[k]; });
    var out = await withTx([entity, '_pending', '_meta'], 'readwrite', async function (tx) {
      var store = tx.objectStore(entity);
      var before = (await reqP(store.get(id))) || null;
      var cursor = (await metaGet(tx, 'cursor:' + entity)) || 0;
      var rec = replay(before, [{ action: action, data: clean }], ent.key, id);
      if (rec) store.put(rec); else store.delete(id);
      tx.objectStore('_pending').add({
        entity: entity, id: id, action: action,
        data: action === 'delete' ? null : clean,
        client_version: cursor,
        mutation_id: uid('m-'),
        before: before,
        at: Date.now()
      });
      return { id: id, record: rec };
    });
    await refreshPending();
    broadcast({ type: 'pending' });
    notifyChanged(entity, [id], 'local');
    scheduleFlush(0);
    if (!netOnline()) offlineQueued();
    return out;
  }

  /* ------------------------------------------------------------------ HTTP */

  function HttpError(status, body, retryAfter) {
    var msg = body && body.error && body.error.message ? body.error.message : 'HTTP ' + status;
    var e = new Error(msg);
    e.status = status;
    e.code = body && body.error ? body.error.code : undefined;
    e.body = body;
    e.retryAfter = retryAfter;
    return e;
  }

  /* A 5xx that is not in the server's error shape ({"error": {"code": ...}}) comes from
   * something in front of it (a proxy, a gateway, a web server whose FastCGI program is
   * gone): the server was not reached. */
  function fromProxy(status, body) {
    return status >= 500 && !(body && body.error && typeof body.error.code === 'string');
  }

  /* fetch + JSON. A failed or aborted request, or a 5xx from a proxy, marks the server
   * unreachable and rejects with err.network set; any other answer marks it reachable. HTTP
   * errors reject with HttpError carrying status, code and body. */
  async function requestJson(url, opts) {
    var res, text;
    if (offline.halted) throw haltedError();
    opts = Object.assign({ cache: 'no-store', credentials: 'same-origin' }, opts || {});
    if (cfg.token) opts.headers = Object.assign({ Authorization: 'Bearer ' + cfg.token }, opts.headers || {});
    try {
      res = await fetch(url, opts);
      text = await res.text(); /* a body cut off counts as a failed request too */
    } catch (err) {
      markUnreachable(err && err.message);
      err.network = true;
      throw err;
    }
    readHints(res);
    var body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (fromProxy(res.status, body)) {
      markUnreachable('HTTP ' + res.status + ' from a proxy');
      var perr = HttpError(res.status, null);
      perr.network = true;
      throw perr;
    }
    markReachable();
    if (res.status === 401 || res.status === 403) unauthorized(res.status, body);
    else if (res.ok) lastAuthStatus = 0;
    if (!res.ok) {
      var ra = parseInt(res.headers.get('Retry-After') || '', 10);
      throw HttpError(res.status, body, isFinite(ra) ? ra * 1000 : undefined);
    }
    if (body === null || typeof body !== 'object') throw HttpError(res.status, { error: { code: 'bad_response', message: 'response is not JSON' } });
    return body;
  }

  /* What the server says about itself in X-Rhtmx-Sync (pull and push answers): whether its
   * event answers poll ("events=poll": plain CGI, Apache with buffered output, or the config
   * says so), so this library polls at once instead of detecting it, and how large a push
   * may be ("max-body", "max-changes"). */
  function readHints(res) {
    var h = res.headers.get('X-Rhtmx-Sync');
    if (!h) return;
    h.split(';').forEach(function (part) {
      var kv = part.trim().split('=');
      var n = parseInt(kv[1], 10);
      if (kv[0] === 'events' && (kv[1] === 'poll' || kv[1] === 'stream')) st.hints.events = kv[1];
      else if (kv[0] === 'max-body' && n > 0) st.hints.maxBody = n;
      else if (kv[0] === 'max-changes' && n > 0) st.hints.maxChanges = n;
    });
    var first = !st.hints.seen;
    st.hints.seen = true;
    if (st.hints.events === 'poll' && cfg.eventsMode !== 'off' && ev.mode !== 'poll') {
      log('the server answers events in poll mode: polling');
      ev.mode = 'poll';
      if (st.leader && (ev.es || ev.timer)) reconnectEvents(0);
    } else if (first && ev.awaitHints && st.leader) {
      openEvents();
    }
  }

  /* The server refused who we are (401) or what we asked (403): the page may want to log in
   * again or hand us a fresh token (RhtmxSync.setToken). Reported once per status. */
  var lastAuthStatus = 0;
  function unauthorized(status, body) {
    if (lastAuthStatus === status) return;
    lastAuthStatus = status;
    var msg = body && body.error && body.error.message ? body.error.message : 'HTTP ' + status;
    notice('auth', say(status === 401 ? 'signed_out' : 'not_allowed'), 'auth');
    warn('HTTP ' + status + ': ' + msg);
    whenBody(function () {
      document.body.dispatchEvent(new CustomEvent('rhtmx:sync:unauthorized', { bubbles: true, detail: { status: status, error: body && body.error } }));
    });
    emit('unauthorized', { status: status, error: body && body.error });
    statusChanged();
  }

  /* ------------------------------------------------------------------ pull */

  var pullState = {};   /* entity -> { running: Promise, again: bool, target: version, retry } */

  /* True when a change by someone else undoes what this browser wrote (`fields`): a delete,
   * or another value in one of those fields. */
  function overwrites(fields, c) {
    if (c.action === 'delete') return true;
    var data = c.data || {};
    return Object.keys(fields).some(function (f) { return !sameValue(data[f], fields[f]); });
  }

  /* Field values as the server stores them: true/false are 1/0, a number and its text are
   * the same, null and absent are the same. */
  function sameValue(a, b) {
    function norm(v) { return v === true ? '1' : v === false ? '0' : v === null || v === undefined ? '' : String(v); }
    return norm(a) === norm(b);
  }

  /* Applies one page of server changes (and the new cursor) in one transaction, keeping
   * queued local mutations on top. Returns { changed: ids that changed for someone else's
   * reason, overwritten: [{ id, fields, change }] this browser's own kept changes that
   * someone else's later change overwrote }.
   * Relaxed durability: the browser need not wait for the disk before the next page. What
   * a crash loses is the last pages and their cursor together, pulled again on next start. */
  async function applyServerPage(entity, changes, cursor, reset, done) {
    var ent = entityByName[entity];
    return withTx([entity, '_pending', '_meta'], 'readwrite', async function (tx) {
      var store = tx.objectStore(entity);
      var pstore = tx.objectStore('_pending');
      var stale = await oldKeyed(tx, entity);
      var pending = (await reqP(pstore.getAll())).filter(function (p) { return p.entity === entity && !stale(p); });
      var groups = {};
      pending.forEach(function (p) { (groups[idKey(p.id)] = groups[idKey(p.id)] || []).push(p); });
      var changed = [];
      var mine = (await metaGet(tx, 'mine:' + entity)) || {};
      var mineTouched = false;
      var overwritten = [];
      if (reset) {
        store.clear();
        /* The local view of records with queued mutations survives a full resync. */
        Object.keys(groups).forEach(function (k) {
          var g = groups[k];
          var rec = replay(g[0].before, g, ent.key, g[0].id);
          if (rec) store.put(rec);
        });
      }
      changes.forEach(function (c) {
        if (!c || c.id === undefined || c.id === null) return;
        var id = c.id;
        var base = null;
        if (c.action !== 'delete') {
          base = Object.assign({}, c.data || {});
          base[ent.key] = id;
        }
        var g = groups[idKey(id)];
        var rec = base;
        if (g) {
          g[0].before = base; /* a rejection now restores the newest server row */
          pstore.put(g[0]);
          rec = replay(base, g, ent.key, id);
        }
        if (rec) store.put(rec); else store.delete(id);
        var own = !!c.client_id && c.client_id === st.clientId;
        if (!own) changed.push(id);
        var m = mine[idKey(id)];
        /* Someone else wrote after the server kept our change (its version is above the
         * push answer's): was ours overwritten? Asked once per change of ours. */
        if (m && !own && (Number(c.version) || 0) > m.version) {
          if (overwrites(m.fields, c)) overwritten.push({ id: id, fields: m.fields, change: c });
          delete mine[idKey(id)];
          mineTouched = true;
        }
      });
      if (mineTouched) await metaPut(tx, 'mine:' + entity, mine);
      await metaPut(tx, 'cursor:' + entity, cursor);
      /* synced is false while a full pull is under way; its last page sets it true (a full
       * pull of one page: both, true last). */
      if (reset) await metaPut(tx, 'synced:' + entity, false);
      if (done) await metaPut(tx, 'synced:' + entity, true);
      return { changed: changed, overwritten: overwritten };
    }, { durability: 'relaxed' });
  }

  /* The server's schema fingerprint for `entity` (pull answers' "schema") against the one
   * the stored rows were pulled with ('shape:{entity}' in _meta). When they differ (the app
   * added, renamed or dropped a column, or rebuilt the table), the entity is pulled again
   * from 0 in the background: the old rows stay shown and are replaced page by page, rows
   * the server no longer has are removed at the end, and _pending is left as it is (a
   * queued write the new schema refuses comes back as a rejection, undone like any other).
   * The cursor and the fingerprint move only when that pull is complete, so one cut short
   * starts over on the next pull. fresh: the answer just applied was a full sync already.
   * Returns the number of changes pulled again; changed collects their ids. */
  async function reshapeIfNeeded(entity, shape, fresh, changed) {
    if (typeof shape !== 'string') return 0;
    var old = await withTx(['_meta'], 'readonly', function (tx) { return metaGet(tx, 'shape:' + entity); });
    if (old === shape) return 0;
    var n = 0;
    if (old !== undefined && !fresh) {
      log(entity, 'schema changed on the server (' + old + ' -> ' + shape + '): pulling it again');
      n = await resyncKeepingRows(entity, changed);
    }
    await withTx(['_meta'], 'readwrite', function (tx) { return metaPut(tx, 'shape:' + entity, shape); });
    return n;
  }

  async function resyncKeepingRows(entity, changed) {
    var seen = {};
    var since = 0;
    var cursor = await withTx(['_meta'], 'readonly', function (tx) { return metaGet(tx, 'cursor:' + entity); });
    var n = 0;
    for (;;) {
      var url = cfg.base + '/' + encodeURIComponent(entity) + '?since=' + since +
        (cfg.pageSize ? '&limit=' + cfg.pageSize : '') + (since > 0 ? '&full=1' : '');
      var body = await requestJson(url, { headers: { Accept: 'application/json' } });
      if (!Array.isArray(body.changes) || typeof body.version !== 'number') throw new Error('malformed pull answer for ' + entity);
      var more = body.has_more === true;
      if (more && body.version <= since) throw new Error('pull of ' + entity + ' made no progress');
      body.changes.forEach(function (c) { if (c && c.action !== 'delete') seen[idKey(c.id)] = true; });
      var applied = await applyServerPage(entity, body.changes, more ? (cursor || 0) : Math.max(body.version, cursor || 0), false, false);
      applied.changed.forEach(function (id) { changed.push(id); });
      n += body.changes.length;
      if (!more) break;
      since = body.version;
    }
    await sweepUnseen(entity, seen, changed);
    return n;
  }

  /* Removes the stored rows of `entity` the full pull did not bring, except those with
   * queued writes (their local view stays until the queue is answered). */
  async function sweepUnseen(entity, seen, changed) {
    return withTx([entity, '_pending', '_meta'], 'readwrite', async function (tx) {
      var queued = {};
      var stale = await oldKeyed(tx, entity);
      (await reqP(tx.objectStore('_pending').getAll())).forEach(function (p) {
        if (p.entity === entity && !stale(p)) queued[idKey(p.id)] = true;
      });
      var store = tx.objectStore(entity);
      (await reqP(store.getAllKeys())).forEach(function (k) {
        if (!seen[idKey(k)] && !queued[idKey(k)]) { store.delete(k); changed.push(k); }
      });
    });
  }

  /* Pulls `entity` until the server has no more, page by page. A 410 clears the store and
   * starts again from 0. Pulls and pushes take the same lock, shared by the tabs: an answer
   * to a pull that was in flight while a push was answered would be older than what the
   * push wrote locally, and must not be applied over it. */
  async function pullEntity(entity) {
    return withLock('sync', async function (held) {
      await applyWorkerAnswers(); /* offline page loads: what the worker sent (Background Sync) */
      var saved = await withTx(['_meta'], 'readonly', function (tx) {
        return Promise.all([metaGet(tx, 'cursor:' + entity), metaGet(tx, 'synced:' + entity)])
          .then(function (v) { return { cursor: v[0], synced: v[1] }; });
      });
      var cursor = saved.cursor || 0;
      /* Later pages of a full sync say full=1, so the server does not take their cursor
       * for a stale one after a compaction (docs/PROTOCOL.md). */
      var full = cursor === 0 || saved.synced === false;
      var start = cursor;
      var loaded = 0;
      var allChanged = [];
      var overwritten = [];
      var resyncs = 0;
      var didReset = false;
      /* The next page is asked for as soon as this one's cursor is known, so it travels
       * while this one is written to IndexedDB. */
      var fetchPage = function (since) {
        var url = cfg.base + '/' + encodeURIComponent(entity) + '?since=' + since +
          (cfg.pageSize ? '&limit=' + cfg.pageSize : '') + (full && since > 0 ? '&full=1' : '');
        var p = requestJson(url, { headers: { Accept: 'application/json' } });
        p.catch(function () {}); /* awaited below, or dropped when an earlier page failed */
        return p;
      };
      var next = fetchPage(cursor);
      try {
        for (;;) {
          var body;
          try {
            body = await next;
          } catch (err) {
            if (err.status === 410 && resyncs < 3) {
              resyncs++;
              log(entity, 'cursor', cursor, 'is older than the server log: full resync');
              cursor = 0;
              start = 0;
              full = true;
              next = fetchPage(cursor);
              continue;
            }
            throw err;
          }
          if (!Array.isArray(body.changes) || typeof body.version !== 'number') throw new Error('malformed pull answer for ' + entity);
          var reset = cursor === 0;
          var more = body.has_more === true;
          if (more && body.version <= cursor && body.changes.length === 0) throw new Error('pull of ' + entity + ' made no progress');
          if (more) next = fetchPage(body.version);
          held.check(); /* a tab that took the lock over may have applied newer answers */
          var applied = await applyServerPage(entity, body.changes, body.version, reset, !more);
          allChanged = allChanged.concat(applied.changed);
          overwritten = overwritten.concat(applied.overwritten);
          loaded += body.changes.length;
          cursor = body.version;
          st.cursors[entity] = cursor;
          if (more || st.progress) {
            var ps = pullState[entity];
            var target = ps && ps.target > start ? ps.target : 0;
            st.progress = {
              entity: entity, loaded: loaded,
              fraction: target ? Math.min(1, (cursor - start) / (target - start)) : null
            };
            broadcast({ type: 'progress', progress: st.progress });
            statusChanged();
          }
          if (reset) didReset = true;
          if (!more) break;
        }
        loaded += await reshapeIfNeeded(entity, body.schema, didReset, allChanged);
        st.error = null;
      } finally {
        if (st.progress && st.progress.entity === entity) {
          st.progress = null;
          broadcast({ type: 'progress', progress: null });
        }
        statusChanged();
      }
      /* After a reset, rows may have vanished without a change naming them: say so anyway. */
      if (allChanged.length || didReset) notifyChanged(entity, allChanged, didReset ? 'resync' : 'server', false, didReset);
      overwritten.forEach(function (o) {
        var c = o.change;
        surfaceProblem({ kind: 'overwritten', entity: entity, id: o.id, mutation: null,
          detail: { server: c.data || null, version: Number(c.version) || 0, client_id: c.client_id || null, yours: o.fields },
          label: recordLabel(entity, o.id, [o.fields, c.data]) }, false);
      });
      if (loaded > 200) checkQuota();
      return loaded;
    });
  }

  /* Schedules a pull; concurrent requests for the same entity coalesce into one more run.
   * Failures retry with backoff while the page is online. */
  function schedulePull(entity, target) {
    var ps = pullState[entity] = pullState[entity] || { running: null, again: false, target: 0, failures: 0, timer: null };
    if (target && target > ps.target) ps.target = target;
    if (ps.running) { ps.again = true; return ps.running; }
    if (ps.timer) { clearTimeout(ps.timer); ps.timer = null; }
    /* busy from the moment a pull is due, so "online" never shows before the catch-up. */
    st.busy++;
    statusChanged();
    ps.running = (async function () {
      do {
        ps.again = false;
        try {
          await pullEntity(entity);
          ps.failures = 0;
          st.synced[entity] = true;
          ev.pulled = true;
          if ((ev.awaitSync || ev.awaitHints) && st.leader && allSynced()) openEvents();
        } catch (err) {
          ev.pulled = true;
          if (err.lockLost) {
            /* Another tab took the lock while this one had stopped: ask again, behind it. */
            ps.timer = setTimeout(function () { ps.timer = null; schedulePull(entity); }, 0);
            break;
          }
          ps.failures++;
          noteError('pull ' + entity, err);
          /* A network failure made the server unreachable: the probe pulls again. Anything
           * else (a 5xx from the server itself, a full disk) retries here, with backoff. */
          if (!err.network) {
            ps.timer = setTimeout(function () { ps.timer = null; schedulePull(entity); }, backoffDelay(ps.failures - 1));
            if (ev.awaitHints && st.leader && allSynced()) openEvents();
          }
          break;
        }
      } while (ps.again);
      ps.running = null;
      st.busy--;
      statusChanged();
    })();
    return ps.running;
  }

  function pullAll() {
    return Promise.all(cfg.entities.map(function (e) { return schedulePull(e.name); }));
  }

  function noteError(what, err) {
    if (err && err.network) { log(what, 'failed: network'); statusChanged(); return; }
    st.error = what + ': ' + (err && err.message ? err.message : String(err));
    warn(st.error);
    statusChanged();
  }

  /* ------------------------------------------------------------------ push */

  /* batchLimit: changes per batch, halved after a failed batch (down to 1) and doubled again
   * after each success (up to BATCH_CHANGES). stuck: the single change that a web server in
   * front of sync-push keeps refusing with its own 500 (see handlePushError). */
  var BATCH_CHANGES = 100;
  var BATCH_BYTES = 65536;
  var flushState = { running: null, again: false, timer: null, failures: 0, batchLimit: BATCH_CHANGES, netFail: false, stuck: null };

  /* One queued mutation as a push sends it. */
  function wireChange(p) {
    var c = { mutation_id: p.mutation_id, id: p.id, action: p.action, client_version: p.client_version || 0 };
    if (p.action !== 'delete') c.data = p.data || {};
    return c;
  }
  var encoder = new TextEncoder();
  function wireBytes(p) {
    if (p._bytes === undefined) p._bytes = encoder.encode(JSON.stringify(wireChange(p))).length + 1;
    return p._bytes;
  }
  /* What one push may hold: the server's push.max_body_bytes and push.max_changes (from its
   * X-Rhtmx-Sync header), and never more than BATCH_BYTES, which passes mod_fcgid's default
   * FcgidMaxRequestLen (131072) and proxies' usual limits with room. */
  function pushEnvelope() { return 64 + String(st.clientId || '').length; }
  function maxBody() { return st.hints.maxBody || 1048576; }
  function batchBytes() { return Math.min(BATCH_BYTES, maxBody()) - pushEnvelope(); }

  function scheduleFlush(delay) {
    if (flushState.timer) clearTimeout(flushState.timer);
    flushState.timer = setTimeout(function () { flushState.timer = null; flush(); }, delay || 0);
  }

  /* Pushes the queue, oldest first, one entity batch at a time, under a lock shared by the
   * tabs so each mutation is sent by one tab, in order. The server deduplicates
   * (client_id, mutation_id), so a batch resent after a lost answer is applied once. */
  function flush() {
    if (flushState.running) { flushState.again = true; return flushState.running; }
    /* Not netOnline(): after a network failure this is also the probe that finds the server. */
    if (!st.ready || navigator.onLine === false) return Promise.resolve();
    flushState.running = withLock('sync', async function (held) {
      await applyWorkerAnswers(); /* offline page loads: what the worker sent (Background Sync) */
      do {
        flushState.again = false;
        for (;;) {
          if (navigator.onLine === false) return;
          held.check();
          var all = (await pendingAll()).sort(function (a, b) { return a.seq - b.seq; });
          if (!all.length) return;
          var batch = takeBatch(all);
          var ok = await pushBatch(batch, held);
          if (!ok) return;
        }
      } while (flushState.again);
    }).catch(function (err) {
      if (err && err.lockLost) {
        /* This tab stopped while pushing and another took the queue over: it goes on there
         * (a batch sent twice is answered from its mutation ids); look again shortly. */
        log(err.message);
        scheduleFlush(LEASE_BEAT_MS);
        return;
      }
      /* Anything else that failed (storing the answer on a full disk, reading the queue):
       * the queue is intact, so try again later. A batch the server already applied is
       * answered again from its mutation ids, never applied twice. */
      noteError('push', err);
      flushState.netFail = false;
      scheduleFlush(backoffDelay(flushState.failures++));
    }).then(function () {
      flushState.running = null;
      return refreshPending();
    }).catch(function (err) { log('could not read the queue', err); });
    return flushState.running;
  }

  /* The longest run of same-entity mutations from the head of the queue that never refers to
   * a temporary id created earlier in the same run (its real id is only known afterwards). */
  function takeBatch(all) {
    var entity = all[0].entity;
    var batch = [];
    var createdHere = {};
    var limit = Math.min(flushState.batchLimit, st.hints.maxChanges || BATCH_CHANGES);
    var room = batchBytes();
    for (var i = 0; i < all.length && batch.length < limit; i++) {
      var p = all[i];
      if (p.entity !== entity) break;
      if (isTmp(p.id) && createdHere[p.id]) break;
      /* Bounded in bytes too; one change bigger than the bound goes alone. */
      if (batch.length && wireBytes(p) > room) break;
      room -= wireBytes(p);
      if (p.action === 'create' && isTmp(p.id)) createdHere[p.id] = true;
      batch.push(p);
    }
    return batch;
  }

  /* Sends one batch and applies the answer. Returns true to go on with the queue. */
  async function pushBatch(batch, held) {
    var entity = batch[0].entity;
    var body = { client_id: st.clientId, changes: batch.map(wireChange) };
    if (batch.length === 1 && wireBytes(batch[0]) + pushEnvelope() > maxBody()) {
      /* Over the server's push.max_body_bytes on its own: it can never be sent. */
      held.check();
      await rejectUnsendable(batch, 'too_large', 'the change is larger than the server takes (' + maxBody() + ' bytes)');
      return true;
    }
    held.check();
    st.busy++;
    statusChanged();
    var answer;
    try {
      answer = await requestJson(cfg.base + '/' + encodeURIComponent(entity), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body)
      });
    } catch (err) {
      return handlePushError(batch, err, held);
    } finally {
      st.busy--;
      statusChanged();
    }
    if (!Array.isArray(answer.applied) && !Array.isArray(answer.rejected) && !Array.isArray(answer.conflicts)) {
      return handlePushError(batch, new Error('malformed push answer'), held);
    }
    flushState.failures = 0;
    flushState.netFail = false;
    flushState.stuck = null;
    flushState.batchLimit = Math.min(BATCH_CHANGES, flushState.batchLimit * 2);
    st.error = null;
    held.check(); /* a tab that took the queue over got (or will get) the same answer */
    await applyPushAnswer(entity, batch, answer);
    return true;
  }

  /* Drops changes that can never be accepted as sent, as rejected (undone locally, listed
   * in the problems), instead of trying them forever. */
  function rejectUnsendable(batch, code, reason) {
    warn('push of', batch.length, 'change(s) to', batch[0].entity, 'rejected:', reason);
    return applyPushAnswer(batch[0].entity, batch, {
      applied: [], conflicts: [],
      rejected: batch.map(function (p) { return { mutation_id: p.mutation_id, id: p.id, code: code, reason: reason }; })
    });
  }

  /* A failed batch of several changes is split, whatever the failure: the next try sends
   * half as many, down to one (a web server's own limit in front of sync-push, such as
   * mod_fcgid's FcgidMaxRequestLen, answers with an HTML 500 that names no change). A
   * single change is dropped as rejected when the server says it can never take it (400,
   * 404, 413, 415), or when a web server in front answers its own 500 to it three times
   * in a row while other requests reach the server in between. */
  async function handlePushError(batch, err, held) {
    var s = err.status || 0;
    var proxy500 = !!err.network && s === 500;
    if (batch.length > 1) flushState.batchLimit = Math.max(1, Math.floor(batch.length / 2));
    if (batch.length > 1 && (proxy500 || s === 400 || s === 413 || s === 415)) return true;
    if (batch.length === 1 && proxy500) {
      var k = flushState.stuck;
      if (!k || k.mutation_id !== batch[0].mutation_id) k = flushState.stuck = { mutation_id: batch[0].mutation_id, count: 0, answers: -1 };
      if (k.answers !== st.answers) { k.count++; k.answers = st.answers; }
      if (k.count >= 3) {
        flushState.stuck = null;
        held.check();
        await rejectUnsendable(batch, 'not_accepted', 'the web server in front of the sync server refuses it (HTTP 500)');
        return true;
      }
    }
    if (err.network) {
      /* Sooner when the server is seen again (onBackOnline). */
      flushState.netFail = true;
      if (!err.halted) offlineQueued();
      scheduleFlush(backoffDelay(flushState.failures++));
      return false;
    }
    if (s === 400 || s === 404 || s === 413 || s === 415) {
      /* This change can never be accepted as sent: drop it, and say so. */
      held.check();
      await rejectUnsendable(batch, err.code || 'bad_change', err.message);
      return true;
    }
    noteError('push ' + batch[0].entity, err);
    flushState.netFail = false;
    scheduleFlush(err.retryAfter || backoffDelay(flushState.failures++));
    return false;
  }

  /* Applies a push answer: temporary ids become real ones (store, queue, DOM), conflicts
   * take the decided row, rejected changes are undone locally, and the batch leaves the
   * queue, all in one transaction. Then the page hears about it. */
  async function applyPushAnswer(entity, batch, answer) {
    /* An entity the page no longer lists (its writes stay queued and are pushed in their
     * turn) keeps its store: the key is the store's. */
    var key = entityByName[entity] ? entityByName[entity].key : null;
    var ids = answer.ids && typeof answer.ids === 'object' ? answer.ids : {};
    var conflicts = Array.isArray(answer.conflicts) ? answer.conflicts : [];
    var rejected = Array.isArray(answer.rejected) ? answer.rejected : [];
    var byMutation = {};
    batch.forEach(function (p) { byMutation[p.mutation_id] = p; });
    var changed = [];
    var problems = [];
    var staleAnswered = false;

    await withTx([entity, '_pending', '_meta'], 'readwrite', async function (tx) {
      var store = tx.objectStore(entity);
      var pstore = tx.objectStore('_pending');
      if (key === null) key = store.keyPath;
      var inBatch = {};
      batch.forEach(function (p) { inBatch[p.seq] = true; pstore.delete(p.seq); });
      var rest = (await reqP(pstore.getAll())).filter(function (p) { return !inBatch[p.seq] && p.entity === entity; });
      /* Writes queued under an old key (oldKeyed) leave the store as it is. */
      var stale = await oldKeyed(tx, entity);
      var live = rest.filter(function (p) { return !stale(p); });
      batch.forEach(function (p) { if (stale(p)) staleAnswered = true; });

      /* 1. temporary ids -> real ids */
      var idmap = (await metaGet(tx, 'idmap')) || {};
      for (var tmp in ids) {
        if (!Object.prototype.hasOwnProperty.call(ids, tmp)) continue;
        var real = ids[tmp];
        idmap[tmp] = real;
        st.idMap[tmp] = real;
        var rec = await reqP(store.get(tmp));
        store.delete(tmp);
        if (rec) { rec[key] = real; store.put(rec); }
        rest.forEach(function (p) {
          if (p.id === tmp) { p.id = real; if (p.before) p.before[key] = real; pstore.put(p); }
        });
        changed.push(tmp, real);
      }
      await metaPut(tx, 'idmap', idmap);

      function restOf(id) { return live.filter(function (p) { return p.id === id; }); }
      function realId(id) { return ids[id] !== undefined ? ids[id] : id; }

      /* 2. conflicts: the decided row, with still-queued mutations on top */
      conflicts.forEach(function (c) {
        var p = byMutation[c.mutation_id];
        var id = realId(p ? p.id : c.id);
        problems.push({ kind: 'conflict', entity: entity, id: id, mutation: p || null, detail: c,
          label: recordLabel(entity, id, [p && p.data, c.server, p && p.before]) });
        if (stale(p)) return;
        var base;
        if (c.decision === 'client') {
          /* The client's change was written over the server's row: that row plus our fields
           * (whether `server` is the row before or after the write, this is the result). */
          if (!c.server || typeof c.server !== 'object' || !p || p.action === 'delete') return;
          base = Object.assign({}, c.server, p.data || {});
        } else {
          /* No server row: the server kept the record deleted. */
          base = c.server && typeof c.server === 'object' ? Object.assign({}, c.server) : null;
        }
        if (base) base[key] = id;
        var later = restOf(id);
        if (later.length) { later[0].before = base; pstore.put(later[0]); }
        var recN = replay(base, later, key, id);
        if (recN) store.put(recN); else store.delete(id);
        changed.push(id);
      });

      /* 3. rejections: restore the row as it was before the change, replay what follows */
      for (var i = 0; i < rejected.length; i++) {
        var r = rejected[i];
        var pr = byMutation[r.mutation_id];
        problems.push({ kind: 'rejected', entity: entity, id: pr ? realId(pr.id) : r.id, mutation: pr || null, detail: r,
          label: recordLabel(entity, pr ? realId(pr.id) : r.id, [pr && pr.data, pr && pr.before]) });
        if (!pr || stale(pr)) continue;
        var rid = realId(pr.id);
        /* not_found: the server has no such row (deleted meanwhile): neither do we. */
        var base2 = pr.before && r.code !== 'not_found' ? Object.assign({}, pr.before) : null;
        if (base2) base2[key] = rid;
        var later2 = batch.filter(function (q) { return q.seq > pr.seq && realId(q.id) === rid && !rejected.some(function (x) { return x.mutation_id === q.mutation_id; }); })
          .concat(restOf(rid));
        var recR = replay(base2, later2, key, rid);
        if (recR) store.put(recR); else store.delete(rid);
        changed.push(rid);
      }

      /* 4. what the server kept of this browser's changes: should someone else's later
       * change overwrite it, a pull tells this browser so (applyServerPage). */
      var mine = (await metaGet(tx, 'mine:' + entity)) || {};
      var dropped = {};
      var merged = {};
      rejected.forEach(function (r) { dropped[r.mutation_id] = true; });
      conflicts.forEach(function (c) {
        if (c.decision === 'server') dropped[c.mutation_id] = true;
        if (c.decision === 'merged' && c.server && typeof c.server === 'object') merged[c.mutation_id] = c.server;
      });
      batch.forEach(function (p) {
        if (dropped[p.mutation_id] || stale(p)) return;
        var k = idKey(realId(p.id));
        if (p.action === 'delete') { delete mine[k]; return; }
        var kept = Object.assign({}, p.data || {});
        /* Of a merged change, only the fields the server took are ours to lose later (the
         * others were already reported with the conflict). */
        var row = merged[p.mutation_id];
        if (row) Object.keys(kept).forEach(function (f) { if (!sameValue(kept[f], row[f])) delete kept[f]; });
        var prev = mine[k];
        mine[k] = { fields: Object.assign({}, prev ? prev.fields : {}, kept), version: answer.version || 0, at: Date.now() };
      });
      var keys = Object.keys(mine);
      if (keys.length > MINE_MAX) {
        keys.sort(function (a, b) { return mine[a].at - mine[b].at; });
        keys.slice(0, keys.length - MINE_MAX).forEach(function (k) { delete mine[k]; });
      }
      await metaPut(tx, 'mine:' + entity, mine);
    });

    batch.forEach(function (p) { changed.push(ids[p.id] !== undefined ? ids[p.id] : p.id); });
    await refreshPending();
    broadcast({ type: 'pending' });
    if (Object.keys(ids).length) broadcast({ type: 'idmap', ids: ids });
    rewriteDomIds(ids);
    problems.forEach(function (p) { surfaceProblem(p, false); });
    /* What the server kept of writes queued under an old key reaches the store by a pull. */
    if (staleAnswered && st.ready) schedulePull(entity);
    var seen = {};
    notifyChanged(entity, changed.filter(function (id) { var k = idKey(id); if (seen[k]) return false; seen[k] = true; return true; }), 'push');
  }

  /* Elements rendered with a temporary id (data-sync-id, hidden inputs) get the real one. A
   * region may then show the record twice: a pull can bring the server's row before the push
   * answer says it is the queued create (the answer was lost, and the push sent again); the
   * row that had the temporary id goes. */
  function rewriteDomIds(ids) {
    if (!Object.keys(ids).length) return;
    Object.keys(ids).forEach(function (tmp) {
      var real = String(ids[tmp]);
      var els = document.querySelectorAll('[data-sync-id="' + CSS.escape(tmp) + '"]');
      for (var i = 0; i < els.length; i++) els[i].setAttribute('data-sync-id', real);
      var inputs = document.querySelectorAll('input[value="' + CSS.escape(tmp) + '"]');
      for (var j = 0; j < inputs.length; j++) inputs[j].value = real;
    });
    var regions = document.querySelectorAll('[data-sync-render]');
    for (var r = 0; r < regions.length; r++) dropDuplicateRows(regions[r], ids);
  }

  /* What happened to a change of this browser, in a person's words: the record by its
   * title, the server's reason by its code (its own words, SQLite's for a constraint, stay
   * in detail.reason and the console). */
  function problemMessage(p) {
    var d = p.detail || {};
    var label = p.label || recordLabel(p.entity, p.id, []);
    if (p.kind === 'conflict') {
      return say(d.decision === 'client' ? 'conflict_client' : d.decision === 'merged' ? 'conflict_merged' : 'conflict_server', { label: label });
    }
    if (p.kind === 'overwritten') return say('overwritten', { label: label });
    var reason = typeof MESSAGES['reason_' + d.code] === 'string' ? say('reason_' + d.code) : say('reason_other');
    return say(p.mutation && p.mutation.action === 'delete' ? 'rejected_delete' : 'rejected', { label: label, reason: reason });
  }

  /* Conflicts, rejections and overwritten changes are never silent: a DOM event, an API
   * event, the status element's list (until dismissed) and the console all say what
   * happened, in this tab and the others. */
  function surfaceProblem(p, fromTab) {
    p.message = p.message || problemMessage(p);
    p.pid = p.pid || uid('p-');
    if (p.kind === 'conflict') st.conflicts++;
    if (p.kind === 'rejected') st.rejected++;
    var why = p.detail && p.detail.reason ? ' (' + (p.detail.code || '') + ': ' + p.detail.reason + ')' : '';
    if (p.kind === 'conflict') log(p.message + why); else warn(p.message + why);
    whenBody(function () {
      document.body.dispatchEvent(new CustomEvent('rhtmx:sync:' + p.kind, { bubbles: true, detail: p }));
    });
    emit(p.kind, p);
    addProblem({ pid: p.pid, kind: p.kind, message: p.message, entity: p.entity, id: p.id }, { save: !fromTab, share: false });
    if (!fromTab) broadcast({ type: 'problem', problem: p });
  }

  /* ------------------------------------------------------------------ events (leader only) */

  var ev = { es: null, mode: cfg.eventsMode === 'poll' ? 'poll' : 'stream', lastId: 0, failures: 0, timer: null, openTimer: null, opened: false, catchUp: false, pollOk: false, awaitSync: false, awaitHints: false, pulled: false };

  /* Poll mode chosen, not detected: the page or the server said so. */
  function pollKnown() { return cfg.eventsMode === 'poll' || st.hints.events === 'poll'; }

  /* What to show while (re)connecting: polling that works, or that the page or the server
   * chose, stays "poll" between answers (a buffered poll shows nothing until it ends, which
   * is most of the time). */
  function connectingState() {
    if (!netOnline()) return 'off';
    return ev.mode === 'poll' && (ev.pollOk || pollKnown()) ? 'poll' : 'connecting';
  }

  function setLive(live) {
    if (st.live === live) return;
    st.live = live;
    broadcast({ type: 'live', live: live });
    statusChanged();
  }

  function closeEvents() {
    if (ev.openTimer) { clearTimeout(ev.openTimer); ev.openTimer = null; }
    if (ev.timer) { clearTimeout(ev.timer); ev.timer = null; }
    if (ev.es) { ev.es.onopen = ev.es.onmessage = ev.es.onerror = null; ev.es.close(); ev.es = null; }
  }

  function reconnectEvents(delay) {
    closeEvents();
    if (!st.leader || cfg.eventsMode === 'off') return;
    setLive(connectingState());
    ev.timer = setTimeout(function () { ev.timer = null; openEvents(); }, delay);
  }

  function minCursor() {
    var m = null;
    cfg.entities.forEach(function (e) {
      var c = st.cursors[e.name] || 0;
      if (m === null || c < m) m = c;
    });
    return m || 0;
  }

  /* True once every entity has a finished full pull (in this page or stored before). */
  function allSynced() {
    return cfg.entities.every(function (e) { return !!st.synced[e.name]; });
  }

  /* Opens the one event stream of this browser. `since` is the newest event seen, never less
   * than what every entity has pulled; the browser's own reconnects add Last-Event-ID. Not
   * before the first full pull has finished: the stream then starts at its cursor instead
   * of replaying, from 0, the log that pull already covered (schedulePull opens it). */
  function openEvents() {
    closeEvents();
    if (!st.leader || cfg.eventsMode === 'off' || !cfg.entities.length) return;
    if (navigator.onLine === false) { setLive('off'); return; }
    if (!allSynced()) { ev.awaitSync = true; setLive('connecting'); return; }
    ev.awaitSync = false;
    /* The first pull answer says whether the server polls (X-Rhtmx-Sync): wait for it, so a
     * polling server is polled from the first request, without the detection's delay. */
    if (!st.hints.seen && !ev.pulled) { ev.awaitHints = true; setLive('connecting'); return; }
    ev.awaitHints = false;
    if (pollKnown()) ev.mode = 'poll';
    var since = Math.max(ev.lastId, minCursor());
    var url = cfg.base + '/events?entities=' + cfg.entities.map(function (e) { return encodeURIComponent(e.name); }).join(',') +
      '&since=' + since + (ev.mode === 'poll' ? '&mode=poll' : '');
    log('event stream', ev.mode, 'since', since);
    var es = new EventSource(url);
    ev.es = es;
    ev.opened = false;
    setLive(connectingState());
    if (ev.mode === 'stream' && cfg.eventsMode === 'auto') {
      /* No headers within the timeout: something on the path buffers the stream. */
      ev.openTimer = setTimeout(function () {
        ev.openTimer = null;
        if (ev.es === es && !ev.opened) {
          warn('event stream sent nothing in', cfg.streamTimeout, 'ms: switching to poll mode');
          ev.mode = 'poll';
          reconnectEvents(0);
        }
      }, cfg.streamTimeout);
    }
    es.onopen = function () {
      if (ev.es !== es) return;
      ev.opened = true;
      if (ev.openTimer) { clearTimeout(ev.openTimer); ev.openTimer = null; }
      ev.failures = 0;
      if (ev.mode === 'poll') ev.pollOk = true; /* (a poll answer may end with `bye` first) */
      markReachable();
      setLive(ev.mode);
      if (ev.catchUp) { ev.catchUp = false; pullAll(); scheduleFlush(0); }
    };
    es.onmessage = function (e) { if (ev.es === es) onEvent(e); };
    es.addEventListener('resync', function (e) {
      if (ev.es !== es) return;
      var v = 0;
      try { v = JSON.parse(e.data).version || 0; } catch (err) { /* keep 0 */ }
      log('server asks for a full resync; resume at', v);
      closeEvents();
      fullResync().then(function () { ev.lastId = v; reconnectEvents(0); }, function (err) {
        noteError('resync', err);
        reconnectEvents(backoffDelay(ev.failures++));
      });
    });
    es.addEventListener('schema', function (e) {
      if (ev.es !== es) return;
      var shapes = null;
      try { shapes = JSON.parse(e.data); } catch (err) { /* ignored */ }
      if (shapes && typeof shapes === 'object') onSchemas(shapes);
    });
    es.addEventListener('bye', function (e) {
      if (ev.es !== es) return;
      try { var v = JSON.parse(e.data).version; if (v > ev.lastId) ev.lastId = v; } catch (err) { /* keep */ }
      reconnectEvents(0);
    });
    es.onerror = function () {
      if (ev.es !== es) return;
      if (ev.mode === 'poll' && ev.opened) {
        /* A poll answer ended, as it should: ask again at once. */
        ev.pollOk = true;
        reconnectEvents(0);
        return;
      }
      if (es.readyState === EventSource.CLOSED || !ev.opened || ev.failures > 0) {
        /* A non-200 answer (which stops EventSource for good), or no connection at all:
         * our own reconnect, with backoff. */
        ev.failures++;
        ev.catchUp = true;
        ev.pollOk = false;
        var d = backoffDelay(ev.failures - 1);
        log('event stream failed; retry in', d, 'ms');
        /* EventSource cannot say whether the server answered (a 503) or could not be
         * reached: a catch-up pull finds out, and marks it unreachable if so. */
        if (st.reachable) pullAll();
        reconnectEvents(d);
        return;
      }
      /* An open stream broke: EventSource reconnects by itself with Last-Event-ID. */
      ev.failures++;
      ev.opened = false;
      ev.catchUp = true;
      setLive('connecting');
    };
  }

  function onEvent(e) {
    var data;
    try { data = JSON.parse(e.data); } catch (err) { log('bad event', e.data); return; }
    var v = Number(e.lastEventId || data.version || 0);
    if (v > ev.lastId) ev.lastId = v;
    if (!data || !entityByName[data.entity]) return;
    if (data.client_id && data.client_id === st.clientId) {
      log('own echo', data.entity, data.id, 'v' + v);
      return; /* we pushed it; the local record is already what the server has */
    }
    if ((st.cursors[data.entity] || 0) >= v) return; /* already pulled */
    schedulePull(data.entity, v);
  }

  /* Each answer of the event stream opens with every entity's schema fingerprint, and a
   * stream ends (bye) when the app changes the database's schema, so the reconnect's answer
   * says the new ones: a change that wrote no row (a column added, or dropped where every
   * row held NULL) is heard too. An entity whose fingerprint differs from the one its stored
   * rows were pulled with is pulled; the pull answer's fingerprint then re-syncs it
   * (reshapeIfNeeded: in the background, _pending untouched). */
  function onSchemas(shapes) {
    var names = cfg.entities.map(function (e) { return e.name; }).filter(function (n) { return typeof shapes[n] === 'string'; });
    if (!names.length) return;
    withTx(['_meta'], 'readonly', function (tx) {
      return Promise.all(names.map(function (n) { return metaGet(tx, 'shape:' + n); }));
    }).then(function (old) {
      names.forEach(function (n, i) {
        if (old[i] !== undefined && old[i] !== shapes[n]) {
          log(n, 'schema changed on the server (event): pulling');
          schedulePull(n);
        }
      });
    }).catch(function (err) { log('cannot read the stored schema fingerprints:', err); });
  }

  /* Everything from 0: after a resync event, or on request. */
  async function fullResync() {
    await withTx(['_meta'], 'readwrite', async function (tx) {
      cfg.entities.forEach(function (e) { metaPut(tx, 'cursor:' + e.name, 0); st.cursors[e.name] = 0; });
    });
    await pullAll();
  }

  /* ------------------------------------------------------------------ leadership */

  /* A tab that takes the lead starts the stream from the cursors stored in IndexedDB: the
   * old leader's pulls moved them on while this tab's copy in memory stood still. */
  function becomeLeader() {
    st.leader = true;
    log('this tab leads (opens the event stream)');
    broadcast({ type: 'leader' });
    statusChanged();
    readyPromise.then(loadCursors).then(function () {
      ev.lastId = Math.max(ev.lastId, minCursor());
      openEvents();
    }).catch(function (err) { warn('cannot read the cursors:', err); openEvents(); });
  }

  /* Refreshes st.cursors and st.synced from _meta (they only move forward). */
  async function loadCursors() {
    var saved = await withTx(['_meta'], 'readonly', async function (tx) {
      var out = {};
      for (var i = 0; i < cfg.entities.length; i++) {
        var name = cfg.entities[i].name;
        out[name] = { cursor: (await metaGet(tx, 'cursor:' + name)) || 0, synced: await metaGet(tx, 'synced:' + name) };
      }
      return out;
    });
    cfg.entities.forEach(function (e) {
      var v = saved[e.name];
      if (v.cursor > (st.cursors[e.name] || 0)) st.cursors[e.name] = v.cursor;
      /* A stored cursor with no full pull under way (synced is false only during one). */
      if (v.cursor > 0 && v.synced !== false) st.synced[e.name] = true;
    });
  }

  function stepDown(why) {
    if (!st.leader) return;
    log('this tab no longer leads:', why);
    st.leader = false;
    closeEvents();
    statusChanged();
    broadcast({ type: 'hello' }); /* the new leader says what its stream does */
  }

  /* The tab holding the leader lock leads; the browser hands the lock to the next waiting
   * tab when it goes away. The lock carries a lease (see withLock) that the leader renews
   * every second, saying whether its page is visible: a waiting tab takes the lead over when
   * the lease runs out (the leader stopped running JavaScript: paused, frozen, hung), and a
   * visible tab takes it from a hidden one, so the stream lives where someone looks. A leader
   * that finds the lease naming another tab steps down and waits in line again. A page being
   * frozen or put in the back/forward cache gives the lead up, and asks again when it comes
   * back. Without Web Locks or localStorage every tab leads for itself. */
  var lead = { id: null, ctl: null, release: null, stopWatch: null, beat: null, away: false };
  var LEADER = 'leader';

  function electLeader() {
    if (cfg.eventsMode === 'off') return;
    if (!(navigator.locks && navigator.locks.request) || !storageOk) { becomeLeader(); return; }
    lead.queued = true;
    queueForLead(false);
  }

  /* Asks for the leader lock: in line behind the holder, or (steal) at once. */
  function queueForLead(steal) {
    if (lead.away) return;
    if (lead.ctl) lead.ctl.abort();
    if (lead.stopWatch) lead.stopWatch();
    lead.ctl = steal ? null : new AbortController();
    var id = uid('l-');
    lead.pending = id;
    navigator.locks.request('rhtmx-sync:' + cfg.dbName + ':' + LEADER, steal ? { steal: true } : { signal: lead.ctl.signal }, function () {
      if (lead.pending !== id || lead.away) return null; /* superseded: let it go */
      if (lead.stopWatch) { lead.stopWatch(); lead.stopWatch = null; }
      lead.id = id;
      lead.ctl = null;
      leaderLease(id);
      becomeLeader();
      return new Promise(function (resolve) { lead.release = resolve; });
    }).catch(function (err) {
      if (err && err.name === 'AbortError') {
        /* Taken over by another tab (or our own request replaced): wait in line again. */
        if (lead.id === id) { lead.id = null; lead.release = null; stepDown('another tab took over'); queueForLead(false); }
        return;
      }
      warn('leader election failed:', err);
      becomeLeader();
    });
    if (!steal) {
      lead.stopWatch = watchLease(LEADER, function () {
        lead.stopWatch = null;
        if (lead.pending !== id || lead.id) return;
        log('the leading tab stopped running or is hidden: taking the lead');
        queueForLead(true);
      }, function (l) { return l.visible === false && !document.hidden; });
    }
  }

  /* Every second, in every tab: a tab that finds it did not run for longer than a lease
   * (paused, frozen, suspended) catches up; the leader renews its lease, or steps down when
   * it names another tab. */
  function leaderBeat() {
    var now = Date.now();
    var gap = lead.lastBeat ? now - lead.lastBeat : 0;
    lead.lastBeat = now;
    /* (A hidden page's timers may be throttled: it catches up when it becomes visible.) */
    if (gap > LEASE_MS && !document.hidden) catchUp('this tab did not run for ' + Math.round(gap / 1000) + ' s', true);
    if (!lead.id) return;
    var l = readLease(LEADER);
    if (l && l.id !== lead.id) {
      var was = lead.release;
      lead.id = null;
      lead.release = null;
      if (was) was();
      stepDown('another tab took over');
      queueForLead(false);
      return;
    }
    leaderLease(lead.id);
  }

  /* Gives the lead up (a page being frozen or cached) until comeBack(). */
  function leaveLead() {
    if (!lead.queued) return;
    lead.away = true;
    if (lead.stopWatch) { lead.stopWatch(); lead.stopWatch = null; }
    if (lead.ctl) { lead.ctl.abort(); lead.ctl = null; }
    lead.pending = null;
    if (lead.id) {
      dropLease(LEADER, lead.id);
      lead.id = null;
      if (lead.release) { lead.release(); lead.release = null; }
      stepDown('the page is frozen or cached');
    }
  }
  function comeBack() {
    if (!lead.queued || !lead.away) return;
    lead.away = false;
    queueForLead(false);
  }

  function onChannelMessage(e) {
    var m = e.data || {};
    switch (m.type) {
    case 'changed':
      if (entityByName[m.entity]) notifyChanged(m.entity, m.ids || [], m.source, true, m.force);
      break;
    case 'pending':
      refreshPending().then(function () {
        cfg.entities.forEach(function (ent) { if (shouldRenderLocal(ent.name)) renderRegions(ent.name); });
      });
      break;
    case 'idmap':
      Object.keys(m.ids || {}).forEach(function (k) { st.idMap[k] = m.ids[k]; });
      rewriteDomIds(m.ids || {});
      break;
    case 'live':
      if (!st.leader) { st.live = m.live; statusChanged(); }
      break;
    case 'progress':
      if (!st.leader) { st.progress = m.progress; statusChanged(); }
      break;
    case 'problem':
      if (m.problem) surfaceProblem(m.problem, true);
      break;
    case 'notice':
      if (m.entry) addProblem(m.entry, { save: false, share: false });
      break;
    case 'dismiss':
      dismissProblem(m.pid, m.key, true);
      break;
    case 'hello':
      if (st.leader) broadcast({ type: 'live', live: st.live });
      break;
    }
  }

  /* ------------------------------------------------------------------ network state */

  /* Reachability is what the requests say, not navigator.onLine (which only knows whether
   * this machine has a network): a failed or aborted request of ours or of htmx, a 5xx from
   * a proxy, mark the server unreachable; the next answer from it marks it reachable. While
   * it is unreachable (and the browser online) a probe, a catch-up pull, runs with backoff
   * (0.5-1 s doubling to 10 s), so the status and the queue follow the server's return
   * without waiting for a write or a page event. */
  var probe = { timer: null, failures: 0 };

  function markUnreachable(why) {
    if (st.reachable) {
      st.reachable = false;
      log('server unreachable:', why);
      statusChanged();
      cfg.entities.forEach(function (e) { renderRegions(e.name); });
    }
    scheduleProbe();
  }

  function markReachable() {
    st.answers++;
    probe.failures = 0;
    if (probe.timer) { clearTimeout(probe.timer); probe.timer = null; }
    if (st.reachable) return;
    st.reachable = true;
    onBackOnline('reachable');
  }

  function scheduleProbe() {
    if (probe.timer || st.reachable || !st.ready || navigator.onLine === false) return;
    var delay = Math.min(10000, backoffDelay(probe.failures++ - 1));
    probe.timer = setTimeout(function () {
      probe.timer = null;
      if (st.reachable) return;
      pullAll().then(function () { scheduleProbe(); });
    }, delay);
  }

  function onBackOnline(why) {
    log('back online (' + why + ')');
    statusChanged();
    if (!st.ready) return;
    /* A push that is backing off after an answer from the server keeps its timer: one
     * request succeeding (say a pull) does not prove the push will, and resetting here would
     * make the two chase each other. One that failed for the network goes now. */
    if (why === 'online' || flushState.netFail) flushState.failures = 0;
    if (!(flushState.timer && flushState.failures > 0)) scheduleFlush(0);
    pullAll();
    if (st.leader && (!ev.es || !ev.opened)) { ev.failures = 0; reconnectEvents(0); }
    cfg.entities.forEach(function (e) { if (shouldRenderLocal(e.name)) renderRegions(e.name); });
  }

  /* htmx requests of the page (a region's refresh, say) are witnesses too. */
  document.addEventListener('htmx:sendError', function () { markUnreachable('an htmx request failed'); });
  document.addEventListener('htmx:responseError', function (e) {
    var x = e.detail && e.detail.xhr;
    if (x && (x.status === 502 || x.status === 503 || x.status === 504)) markUnreachable('htmx: HTTP ' + x.status);
  });

  window.addEventListener('online', function () {
    st.reachable = true;
    probe.failures = 0;
    onBackOnline('online');
  });
  /* A page that comes back (from the back/forward cache, from being frozen, into view, onto
   * the network) may have missed changes while it did not run: it pulls by cursor at once,
   * pushes what is queued and, if it leads, reopens a stream that is not open. */
  function catchUp(why, missed) {
    if (!st.ready || navigator.onLine === false) return;
    log('catching up (' + why + ')');
    /* Messages from the other tabs may have been lost meanwhile, and what they pulled is
     * already in IndexedDB (a pull finds nothing new): the regions refresh anyway. */
    if (missed) cfg.entities.forEach(function (e) { notifyChanged(e.name, [], 'resync', true, true); });
    pullAll();
    scheduleFlush(0);
    if (st.leader && (!ev.es || ev.es.readyState === 2)) { ev.failures = 0; reconnectEvents(0); }
  }
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) return;
    comeBack();
    catchUp('pageshow', true);
  });
  window.addEventListener('pagehide', function (e) { if (e.persisted) leaveLead(); });
  document.addEventListener('freeze', leaveLead);
  document.addEventListener('resume', function () { comeBack(); catchUp('resume', true); });
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) { leaderBeat(); return; }
    leaderBeat();
    catchUp('visible');
  });

  window.addEventListener('offline', function () {
    log('offline');
    closeEvents();
    setLive('off');
    statusChanged();
    cfg.entities.forEach(function (e) { renderRegions(e.name); });
  });

  /* ------------------------------------------------------------------ storage quota */

  function isQuotaError(err) { return !!err && (err.name === 'QuotaExceededError' || /quota/i.test(err.message || '')); }

  function quotaExceeded(err) {
    st.quota = Object.assign({}, st.quota || {}, { full: true, low: true });
    notice('quota', say('storage_full'), 'quota-full');
    warn('storage is full', err);
    whenBody(function () {
      document.body.dispatchEvent(new CustomEvent('rhtmx:sync:quota', { bubbles: true, detail: { full: true, error: String(err) } }));
    });
    emit('quota', st.quota);
    statusChanged();
  }

  /* Asks the browser how much of its quota is used; reports when it is nearly gone. */
  async function checkQuota() {
    if (!(navigator.storage && navigator.storage.estimate)) return null;
    try {
      var q = await navigator.storage.estimate();
      var low = !!q.quota && q.usage / q.quota >= cfg.quotaWarn;
      st.quota = { usage: q.usage, quota: q.quota, low: low, full: !!(st.quota && st.quota.full) };
      if (low) {
        var message = say('storage_low', { percent: Math.round(100 * q.usage / q.quota) });
        notice('quota', message, 'quota-low');
        warn(message);
        whenBody(function () {
          document.body.dispatchEvent(new CustomEvent('rhtmx:sync:quota', { bubbles: true, detail: st.quota }));
        });
        emit('quota', st.quota);
      }
      statusChanged();
      return st.quota;
    } catch (err) {
      log('storage estimate failed', err);
      return null;
    }
  }

  /* ------------------------------------------------------------------ offline page loads */

  /* The service worker (/api/sync/sw.js, js/rhtmx-sync-sw.js) and who the local data
   * belongs to; docs/CLIENT.md "Offline page loads". data-sync-offline="true" (or a scope
   * path) registers the worker, "false" removes a worker this library registered and its
   * caches, no attribute changes nothing. The user is the token's `sub`, else
   * data-sync-user; with the attribute (true or false), or data-sync-user given, each user has a database
   * of their own ("{data-sync-db}:u:{user}"), so nothing of one user is shown to another
   * and a queued write waits in its user's database until that user is back. */
  function readOffline(el, c) {
    var d = (el && el.dataset) || {};
    var o = { scope: null, off: false, precache: String(d.syncPrecache || '').trim(), user: '', halted: false, baseDb: c.dbName, done: Promise.resolve() };
    if (d.syncOffline === 'false') o.off = true;
    else if (d.syncOffline === '' || d.syncOffline === 'true') o.scope = '/';
    else if (d.syncOffline) o.scope = d.syncOffline;
    o.fromToken = !!(c.token && tokenSub(c.token));
    o.user = o.fromToken ? tokenSub(c.token) : String(d.syncUser || '');
    /* "false" keeps the per-user databases too: writes may still be queued in them. */
    if (o.user && (o.scope || o.off || d.syncUser !== undefined)) c.dbName = c.dbName + ':u:' + o.user;
    return o;
  }

  /* The `sub` claim of a JWT, as text ('' when there is none). Read, not verified: it only
   * picks the local database; the server checks the token. */
  function tokenSub(token) {
    try {
      var p = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      while (p.length % 4) p += '=';
      var bytes = atob(p);
      var claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(bytes, function (ch) { return ch.charCodeAt(0); })));
      return typeof claims.sub === 'string' || typeof claims.sub === 'number' ? String(claims.sub) : '';
    } catch (e) { return ''; }
  }

  function workerUrl() { return new URL(cfg.base + '/sw.js', location.href); }

  /* True for a registration of this library's worker (by its script's path). */
  function ourRegistration(reg) {
    var path = workerUrl().pathname;
    return [reg.active, reg.waiting, reg.installing].some(function (w) { return w && new URL(w.scriptURL).pathname === path; });
  }

  /* Registers or removes the worker as the script tag says. Resolves when done. */
  async function offlineSetup() {
    if (!('serviceWorker' in navigator) || !window.caches) return;
    if (offline.off) {
      var regs = await navigator.serviceWorker.getRegistrations();
      await Promise.all(regs.filter(ourRegistration).map(function (r) { return r.unregister(); }));
      var names = await caches.keys();
      await Promise.all(names.filter(function (n) { return n.indexOf('rhtmx-sync:') === 0; }).map(function (n) { return caches.delete(n); }));
      log('offline page loads are off: the worker and its caches are removed');
      return;
    }
    if (!offline.scope) return;
    var url = workerUrl();
    if (url.origin !== location.origin) { warn('data-sync-offline needs the sync server on the page\'s origin'); return; }
    if (offline.precache) url.searchParams.set('precache', offline.precache);
    var reg = await navigator.serviceWorker.register(url.href, { scope: offline.scope, updateViaCache: 'none' });
    /* The browser checks for a new build on navigations too; asking here makes it certain. */
    if (navigator.onLine !== false) reg.update().catch(function () {});
    await navigator.serviceWorker.ready;
    if (document.readyState === 'loading') await new Promise(function (r) { document.addEventListener('DOMContentLoaded', r, { once: true }); });
    /* Who this page is for, and what it is made of: the worker keeps what it has not seen
     * (this page may have loaded before the worker controlled it). */
    var assets = Array.prototype.map.call(document.querySelectorAll('script[src], link[rel~="stylesheet"][href], link[rel~="icon"][href], img[src]'),
      function (el) { return el.src || el.href; }).filter(function (u) { return u && new URL(u, location.href).origin === location.origin; });
    await askWorker({ type: 'rhtmx-sync:page', user: offline.user, url: location.href, assets: assets });
  }

  /* Posts a message to the newest worker of the registration; resolves with its answer, or
   * null after 2 s. A new build takes over at once (it calls skipWaiting() at install), and
   * Chromium swaps the workers once the old one has been stopped as idle; an event sent to
   * the old worker while it is being stopped starts it again, and the new one then waits
   * until a later navigation swaps them, stopping the old worker in the middle of answering
   * it (that page load hangs; tests/browser/offline-update, under load). So while a worker
   * installs, the message waits for it (15 s at most: its install gives each fetch 10 s),
   * and goes to the new worker, never to the one it replaces (the caches they keep are the
   * same). */
  async function askWorker(msg) {
    var reg = await navigator.serviceWorker.ready;
    var next = reg.installing;
    if (next) {
      await new Promise(function (resolve) {
        var timer = setTimeout(finish, 15000);
        function finish() { clearTimeout(timer); next.removeEventListener('statechange', check); resolve(); }
        function check() { if (next.state !== 'installing') finish(); }
        next.addEventListener('statechange', check);
        check();
      });
    }
    var w = reg.waiting || reg.active || navigator.serviceWorker.controller;
    if (!w) return null;
    return new Promise(function (resolve) {
      var ch = new MessageChannel();
      var timer = setTimeout(function () { resolve(null); }, 2000);
      ch.port1.onmessage = function (e) { clearTimeout(timer); resolve(e.data); };
      w.postMessage(msg, [ch.port2]);
    });
  }

  /* A page the worker served from its kept copy shows the regions from IndexedDB at once:
   * the copy is as old as the last visit, the database as new as the last pull, and writes
   * still queued are shown there too. */
  async function renderIfServedFromCache() {
    var ctl = navigator.serviceWorker && navigator.serviceWorker.controller;
    /* Only this library's worker is asked (the app may have a worker of its own). */
    if (!offline.scope || !ctl || new URL(ctl.scriptURL).pathname !== workerUrl().pathname) return;
    var answer = await new Promise(function (resolve) {
      var ch = new MessageChannel();
      var timer = setTimeout(function () { resolve(null); }, 2000);
      ch.port1.onmessage = function (e) { clearTimeout(timer); resolve(e.data); };
      ctl.postMessage({ type: 'rhtmx-sync:served' }, [ch.port2]);
    });
    if (!answer || !answer.cached) return;
    log('this page came from the offline copy: rendering from IndexedDB');
    await readyPromise;
    cfg.entities.forEach(function (e) { renderRegions(e.name); });
  }

  /* A write was queued while the server cannot be reached: where the browser has
   * Background Sync, the worker sends the queue when the network is back, even with no page
   * open (the tag names the database; the worker takes the same lock). */
  function offlineQueued() {
    if (!offline.scope || !('serviceWorker' in navigator)) return;
    navigator.serviceWorker.ready.then(function (reg) {
      if (reg.sync && reg.sync.register) return reg.sync.register('rhtmx-sync:' + cfg.dbName);
    }).catch(function (err) { log('background sync unavailable:', err && err.message); });
  }

  /* Push answers the worker got for batches it sent with no page open (Background Sync)
   * and took out of _pending (_meta 'worker_answers', oldest first): applied here with the
   * page's own applyPushAnswer, each then dropped from the list, before anything else that
   * holds the sync lock pulls or pushes. Called under that lock. */
  async function applyWorkerAnswers() {
    var list = await withTx(['_meta'], 'readonly', function (tx) { return metaGet(tx, 'worker_answers'); });
    if (!Array.isArray(list) || !list.length) return;
    for (var i = 0; i < list.length; i++) {
      var a = list[i];
      if (a && typeof a.entity === 'string' && Array.isArray(a.batch) && a.answer) {
        log('applying the answer the worker got for', a.batch.length, 'change(s) to', a.entity);
        await applyPushAnswer(a.entity, a.batch, a.answer);
      }
      await withTx(['_meta'], 'readwrite', async function (tx) {
        var now = (await metaGet(tx, 'worker_answers')) || [];
        await metaPut(tx, 'worker_answers', now.filter(function (x) { return !(x && a && x.at === a.at && x.batch && a.batch && x.batch[0].seq === a.batch[0].seq); }));
      });
    }
  }

  /* Stops this page from sending or applying anything more (another user's token, or a
   * logout): requests fail at once and the event stream closes. */
  function halt(why) {
    if (offline.halted) return;
    log('sync stops in this page:', why);
    offline.halted = true;
    st.ready = false;
    cfg.eventsMode = 'off';
    closeEvents();
    statusChanged();
  }
  function haltedError() {
    var e = new Error('sync has stopped in this page (the signed-in user changed)');
    e.network = true;
    e.halted = true;
    return e;
  }

  /* setToken with a token for someone else than the `sub` of the token the page was loaded
   * with: this page's data is not theirs. It stops at once, and the page reloads (the app
   * renders it for the new user) unless a listener of rhtmx:sync:identity calls
   * preventDefault(). Returns true then. (The user is read at load: a page loaded without
   * a token keeps its database when it gets one.) */
  function identityChanged(token) {
    if (!token || !offline.fromToken || tokenSub(token) === offline.user) return false;
    halt('the token is for another user');
    var evt = new CustomEvent('rhtmx:sync:identity', { bubbles: true, cancelable: true, detail: { from: offline.user, to: tokenSub(token) } });
    var go = document.body ? document.body.dispatchEvent(evt) : true;
    if (go) location.reload();
    return true;
  }

  /* RhtmxSync.logout(): call it before the app signs the user out. Sync stops in this page,
   * the worker forgets this user's pages, and the user's database stays (queued writes
   * leave when the same user signs in again) unless opts.erase deletes it, queue and all. */
  async function logout(opts) {
    halt('logout');
    if (navigator.serviceWorker && navigator.serviceWorker.controller) await askWorker({ type: 'rhtmx-sync:logout', user: offline.user });
    else if (window.caches) await caches.delete('rhtmx-sync:v1:u:' + encodeURIComponent(offline.user));
    if (opts && opts.erase) {
      if (dbPromise) { try { (await dbPromise).close(); } catch (e) { /* not open */ } }
      dbPromise = null;
      await new Promise(function (resolve) {
        var r = indexedDB.deleteDatabase(cfg.dbName);
        r.onsuccess = r.onerror = r.onblocked = function () { resolve(); };
      });
    }
  }

  /* An hx-get into a data-sync-render region that fails (offline, server gone) renders the
   * region from IndexedDB instead of leaving it as it was. */
  document.addEventListener('htmx:sendError', function (e) {
    var d = e.detail || {};
    var verb = d.requestConfig && d.requestConfig.verb;
    if (verb && String(verb).toLowerCase() !== 'get') return;
    [d.target, d.elt].forEach(function (el) {
      if (el && el.getAttribute && entityByName[el.getAttribute('data-sync-render')]) {
        renderRegion(el).catch(function (err) { warn('render failed:', err); });
      }
    });
  });

  /* ------------------------------------------------------------------ htmx integration */

  /* What an htmx request would write, or null: the entity and action come from
   * data-sync-entity / data-sync-action / data-sync-id on the element or an ancestor, or
   * from a REST-style path (/todos, /todos/5, /todos/5/delete). */
  function describeRequest(d) {
    var elt = d.elt;
    var holder = elt && elt.closest ? elt.closest('[data-sync-entity]') : null;
    var entity, action, id;
    if (holder) {
      entity = holder.getAttribute('data-sync-entity');
      action = holder.getAttribute('data-sync-action');
      id = holder.getAttribute('data-sync-id');
    } else {
      var segs = new URL(d.path || '', location.href).pathname.split('/').filter(Boolean);
      for (var i = 0; i < segs.length; i++) {
        var name = segs[i].replace(/\.php$/, '');
        if (entityByName[name]) {
          entity = name;
          if (segs[i + 1] && segs[i + 1] !== 'delete') id = decodeURIComponent(segs[i + 1]);
          if (segs[i + 1] === 'delete' || segs[i + 2] === 'delete') action = 'delete';
          break;
        }
      }
    }
    var ent = entityByName[entity];
    if (!ent) return null;
    var verb = String(d.verb || 'post').toLowerCase();
    if (verb === 'get') return null;
    var form = elt.form || (elt.closest && elt.closest('form')) || elt;
    var exclude = ((holder && holder.getAttribute('data-sync-exclude')) || '').split(',').map(function (s) { return s.trim(); });
    var data = {};
    var entries = [];
    if (d.formData && d.formData.entries) entries = Array.from(d.formData.entries());
    else if (d.parameters) {
      var params = d.parameters;
      if (params.entries) entries = Array.from(params.entries());
      else Object.keys(params).forEach(function (k) { entries.push([k, params[k]]); });
    }
    /* A file cannot be queued: such a form is the app's own (htmx sends it as usual). */
    if (entries.some(function (kv) { return typeof kv[1] !== 'string'; })) return null;
    entries.forEach(function (kv) {
      var k = kv[0], v = kv[1];
      if (k.charAt(0) === '_' || exclude.indexOf(k) >= 0) return;
      if (k === ent.key) { if (id === undefined || id === null || id === '') id = v; return; }
      data[k] = coerce(form, k, v);
    });
    if (!action) {
      if (verb === 'delete') action = 'delete';
      else if (verb === 'post' && (id === undefined || id === null || id === '')) action = 'create';
      else action = 'update';
    }
    if (action !== 'create' && (id === undefined || id === null || id === '')) return null;
    return { entity: entity, action: action, id: id === '' ? undefined : id, data: data, form: form };
  }

  /* Hidden, number, checkbox, radio, select and range values that look like numbers are
   * numbers (so "0" stays falsy); text a person typed stays text. */
  function coerce(form, name, v) {
    var el = form && form.elements ? form.elements[name] : null;
    if (el && el.length !== undefined && !el.tagName) el = el[0];
    var type = el ? (el.getAttribute('data-sync-type') || el.type || el.tagName.toLowerCase()) : 'hidden';
    if (type === 'string' || type === 'text' || type === 'textarea' || type === 'search' || type === 'email') return v;
    if (/^-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?$/.test(v)) return Number(v);
    return v;
  }

  /* The values of a form's fields, to put back if what was submitted cannot be stored. */
  function formSnapshot(form) {
    return Array.prototype.map.call(form.elements || [], function (el) {
      return { el: el, value: el.value, checked: el.checked };
    });
  }

  /* Puts a snapshot back into the fields that still hold their reset value (what the
   * person typed since is left alone). */
  function formRestore(snap) {
    snap.forEach(function (f) {
      var el = f.el;
      if (el.type === 'checkbox' || el.type === 'radio') {
        if (el.checked === el.defaultChecked) el.checked = f.checked;
      } else if (el.tagName === 'SELECT') {
        var untouched = Array.prototype.every.call(el.options, function (o) { return o.selected === o.defaultSelected; });
        if (untouched) el.value = f.value;
      } else if (el.type !== 'hidden' && el.type !== 'submit' && el.type !== 'button' && el.value === el.defaultValue) {
        el.value = f.value;
      }
    });
  }

  function onConfigRequest(evt) {
    var d = evt.detail || {};
    var elt = d.elt;
    if (!elt || !elt.getAttribute) return;
    var verb = String(d.verb || '').toLowerCase();
    var region = elt.getAttribute('data-sync-render');
    if (verb === 'get' && region && entityByName[region]) {
      if (shouldRenderLocal(region)) {
        evt.preventDefault();
        /* A refresh on the entity's changed event: the library renders the rows it named
         * already (notifyChanged). */
        var te = d.triggeringEvent;
        if (te && te.type === 'rhtmx:' + region + ':changed') return;
        renderRegion(elt).catch(function (err) { warn('render failed:', err); });
      }
      return;
    }
    if (!cfg.offlineForms || verb === 'get') return;
    var m;
    try { m = describeRequest(d); } catch (err) { warn('cannot read form:', err); return; }
    if (!m) return;
    /* Every write to a synced entity goes through the queue, online or not: its mutation id
     * makes it exactly-once whatever happens to the request or its answer (docs/CLIENT.md,
     * "Forms"). The app's handler (hx-post) is not called. */
    evt.preventDefault();
    log('queued', m.action, m.entity, m.id === undefined ? '(new)' : m.id, m.data);
    /* A create empties its form now, not once IndexedDB has answered: what the person types
     * next must not be erased by a late reset. */
    var snap = null;
    if (m.action === 'create' && m.form && m.form.reset && m.form.getAttribute('data-sync-reset') !== 'false') {
      snap = formSnapshot(m.form);
      m.form.reset();
    }
    mutateLocal(m.entity, m.action, m.id, m.data).then(function (r) {
      elt.dispatchEvent(new CustomEvent('rhtmx:sync:queued', { bubbles: true, detail: { entity: m.entity, action: m.action, id: r.id, record: r.record } }));
    }, function (err) {
      warn('could not queue the change:', err);
      if (snap) formRestore(snap);
      /* Named by its title: from the form (a create), else from the stored record (a toggle
       * sends no title); reading works on a full disk. */
      var stored = m.id === undefined ? Promise.resolve(null) : getRecord(m.entity, m.id).catch(function () { return null; });
      stored.then(function (rec) {
        var label = recordLabel(m.entity, m.id, [m.data, rec]);
        notice('error', say(isQuotaError(err) ? 'save_failed_full' : 'save_failed', { label: label }));
      });
      elt.dispatchEvent(new CustomEvent('rhtmx:sync:error', { bubbles: true, detail: { error: err } }));
    });
  }
  document.addEventListener('htmx:configRequest', onConfigRequest);

  /* ------------------------------------------------------------------ status element */

  /* Long messages wrap inside the element (and the element inside its container) instead
   * of running out of it. */
  var STYLE = [
    'rhtmx-sync-status{display:inline-flex;flex-wrap:wrap;align-items:center;gap:.4em;font:13px/1.4 system-ui,sans-serif;padding:.2em .6em;border-radius:1em;background:#eef2f5;color:#223;max-width:100%;min-width:0;box-sizing:border-box;overflow-wrap:anywhere}',
    'rhtmx-sync-status .rhtmx-sync-dot{width:.6em;height:.6em;border-radius:50%;background:#2a9d4b}',
    'rhtmx-sync-status[state=offline] .rhtmx-sync-dot{background:#999}',
    'rhtmx-sync-status[state=offline]{background:#f3e9d2}',
    'rhtmx-sync-status[state=unreachable] .rhtmx-sync-dot{background:#c05621}',
    'rhtmx-sync-status[state=unreachable]{background:#f3e9d2}',
    'rhtmx-sync-status[state=syncing] .rhtmx-sync-dot{background:#2b6cb0}',
    'rhtmx-sync-status[state=error] .rhtmx-sync-dot{background:#c53030}',
    'rhtmx-sync-status progress{width:5em;height:.6em}',
    'rhtmx-sync-status [hidden]{display:none}',
    'rhtmx-sync-status .rhtmx-sync-pending{font-weight:600}',
    'rhtmx-sync-status .rhtmx-sync-problems{flex-basis:100%;min-width:0;margin:.2em 0;padding:0;list-style:none}',
    'rhtmx-sync-status .rhtmx-sync-problems li{display:flex;align-items:baseline;gap:.3em}',
    'rhtmx-sync-status .rhtmx-sync-problem{flex:1 1 auto;min-width:0;color:#9b2c2c;max-width:32em;overflow-wrap:anywhere}',
    'rhtmx-sync-status .rhtmx-sync-dismiss{flex:none;border:0;background:none;cursor:pointer;color:inherit;padding:0 .2em}',
    'rhtmx-sync-status .rhtmx-sync-announce{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}',
    '[data-sync-pending]{opacity:.75}'
  ].join('\n');

  function installStyle() {
    if (!cfg.style || document.getElementById('rhtmx-sync-style')) return;
    var s = document.createElement('style');
    s.id = 'rhtmx-sync-style';
    s.textContent = STYLE;
    (document.head || document.documentElement).insertBefore(s, (document.head || document.documentElement).firstChild);
  }

  /* What the live region says when the status goes from `prev` to `s`: a change of
   * connection, the start and the end of a sync with progress (a first or full pull), and
   * each new problem; nothing for the pages of rows in between or the short pulls and
   * pushes of ordinary use. `since`: problems from before are not news. */
  function announcement(prev, s, since) {
    var parts = [];
    var away = function (x) { return x.state === 'offline' || x.state === 'unreachable'; };
    if (s.state !== prev.state && away(s)) parts.push(say(s.state === 'offline' ? 'say_offline' : 'say_unreachable'));
    else if (away(prev) && !away(s)) parts.push(say('say_online'));
    if (s.progress && (!prev.progress || prev.progress.entity !== s.progress.entity)) {
      parts.push(say('say_sync_start', { entity: s.progress.entity }));
    } else if (!s.progress && prev.progress) {
      parts.push(say('say_sync_end'));
    }
    var known = {};
    prev.problems.forEach(function (p) { known[p.pid] = true; });
    s.problems.forEach(function (p) { if (!known[p.pid] && p.at >= since) parts.push(p.message); });
    return parts.join(' ');
  }

  if (window.customElements && !customElements.get('rhtmx-sync-status')) {
    customElements.define('rhtmx-sync-status', class extends HTMLElement {
      connectedCallback() {
        if (!this._built) {
          this._built = true;
          this._since = Date.now();
          /* Not a live region itself: its label changes with every page of a pull. The
           * announcer inside (role=status) says only what announcement() picks. */
          this.innerHTML = '<span class="rhtmx-sync-dot"></span><span class="rhtmx-sync-label"></span>' +
            '<progress class="rhtmx-sync-progress" max="1" hidden></progress>' +
            '<span class="rhtmx-sync-pending" hidden></span>' +
            '<ul class="rhtmx-sync-problems" hidden></ul>' +
            '<span class="rhtmx-sync-announce" role="status"></span>';
          this.querySelector('.rhtmx-sync-progress').setAttribute('aria-label', say('progress_name'));
          this.querySelector('.rhtmx-sync-problems').setAttribute('aria-label', say('problems_name'));
          this.querySelector('.rhtmx-sync-problems').addEventListener('click', function (e) {
            var b = e.target.closest && e.target.closest('.rhtmx-sync-dismiss');
            if (b) dismissProblem(b.getAttribute('data-pid'));
          });
        }
        this.update(statusSnapshot());
      }
      update(s) {
        if (!this._built) return;
        this.setAttribute('state', s.state);
        this.setAttribute('live', s.live);
        this.setAttribute('pending', String(s.pending));
        var label = say(s.state);
        if (s.state === 'syncing' && s.progress) label = say('progress', { entity: s.progress.entity, rows: s.progress.loaded });
        if (s.state === 'online' && s.live === 'poll') label = say('polling', { label: label });
        this.querySelector('.rhtmx-sync-label').textContent = label;
        var bar = this.querySelector('.rhtmx-sync-progress');
        bar.hidden = s.state !== 'syncing';
        if (s.progress && s.progress.fraction !== null && s.progress.fraction !== undefined) bar.value = s.progress.fraction;
        else bar.removeAttribute('value'); /* indeterminate */
        var pend = this.querySelector('.rhtmx-sync-pending');
        pend.hidden = !s.pending;
        pend.textContent = say('pending', { n: s.pending });
        var list = this.querySelector('.rhtmx-sync-problems');
        var shown = Array.prototype.map.call(list.children, function (li) { return li.getAttribute('data-pid'); }).join(' ');
        if (shown !== s.problems.map(function (p) { return p.pid; }).join(' ')) {
          list.replaceChildren.apply(list, s.problems.map(function (p) {
            var li = document.createElement('li');
            li.setAttribute('data-pid', p.pid);
            li.setAttribute('data-kind', p.kind);
            var msg = document.createElement('span');
            msg.className = 'rhtmx-sync-problem';
            msg.textContent = p.message;
            var b = document.createElement('button');
            b.type = 'button';
            b.className = 'rhtmx-sync-dismiss';
            b.title = say('dismiss_tip');
            b.setAttribute('aria-label', say('dismiss', { message: p.message }));
            b.setAttribute('data-pid', p.pid);
            b.textContent = '\u00d7';
            li.append(msg, b);
            return li;
          }));
        }
        list.hidden = !s.problems.length;
        var said = this._prev ? announcement(this._prev, s, this._since) : '';
        if (said) this.querySelector('.rhtmx-sync-announce').textContent = said;
        this._prev = s;
      }
    });
  }

  /* ------------------------------------------------------------------ start */

  var readyResolve, readyReject;
  var readyPromise = new Promise(function (res, rej) { readyResolve = res; readyReject = rej; });
  readyPromise.catch(function () {});

  async function start() {
    if (!cfg.entities.length) throw new Error('data-sync-entities lists no valid entity');
    if (!window.indexedDB) throw new Error('this browser has no IndexedDB');
    whenBody(installStyle);
    var info = await withTx(['_meta', '_pending'], 'readwrite', async function (tx) {
      var id = await metaGet(tx, 'client_id');
      if (!id) { id = 'c-' + rand(8); await metaPut(tx, 'client_id', id); }
      var cursors = {};
      for (var i = 0; i < cfg.entities.length; i++) {
        cursors[cfg.entities[i].name] = (await metaGet(tx, 'cursor:' + cfg.entities[i].name)) || 0;
      }
      var idmap = (await metaGet(tx, 'idmap')) || {};
      var problems = (await metaGet(tx, 'problems')) || [];
      return { clientId: id, cursors: cursors, idmap: idmap, problems: problems };
    });
    st.clientId = info.clientId;
    st.cursors = info.cursors;
    st.idMap = info.idmap;
    st.problems = Array.isArray(info.problems) ? info.problems : [];
    await loadCursors();
    ev.lastId = minCursor();
    await refreshPending();
    if ('BroadcastChannel' in window) {
      channel = new BroadcastChannel('rhtmx-sync:' + cfg.dbName);
      channel.onmessage = onChannelMessage;
      broadcast({ type: 'hello' });
    }
    if (cfg.persist && navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(function () {});
    st.ready = true;
    readyResolve(api);
    log('ready; client', st.clientId, 'entities', cfg.entities.map(function (e) { return e.name; }).join(','));
    electLeader();
    lead.lastBeat = Date.now();
    lead.beat = setInterval(leaderBeat, LEASE_BEAT_MS);
    cfg.entities.forEach(function (e) { if (shouldRenderLocal(e.name)) renderRegions(e.name); });
    if (netOnline()) {
      scheduleFlush(0);
      pullAll();
    }
    checkQuota();
    statusChanged();
  }

  /* ------------------------------------------------------------------ public API */

  var api = {
    version: VERSION,
    config: cfg,
    ready: readyPromise,
    get clientId() { return st.clientId; },
    get isLeader() { return st.leader; },
    /* One record, or undefined. */
    get: function (entity, id) { return getRecord(entity, id); },
    /* All records of an entity (unsorted), as stored locally. */
    list: function (entity) { return listRecords(entity); },
    /* Creates (no key, or a tmp- key) or updates (partial fields) a record, locally at once
     * and on the server when online. Resolves with the stored record. */
    put: async function (entity, record) {
      var ent = entityOrThrow(entity);
      await readyPromise;
      var id = record ? record[ent.key] : undefined;
      var data = Object.assign({}, record || {});
      var exists = id !== undefined && id !== null && !!(await getRecord(entity, id));
      var r = await mutateLocal(entity, exists ? 'update' : 'create', id, data);
      return r.record;
    },
    delete: async function (entity, id) {
      await readyPromise;
      await mutateLocal(entity, 'delete', id, null);
    },
    pendingCount: async function (entity) {
      await readyPromise;
      await refreshPending();
      return entity ? (st.pendingBy[entity] || 0) : pendingTotal();
    },
    /* Pull every entity and push the queue now. */
    sync: async function () {
      await readyPromise;
      await Promise.all([pullAll(), flush()]);
    },
    /* Re-render the data-sync-render regions of an entity from IndexedDB. */
    render: function (entity) {
      var els = document.querySelectorAll('[data-sync-render="' + CSS.escape(entity) + '"]');
      return Promise.all(Array.prototype.map.call(els, function (el) { return renderRegion(el, null); }));
    },
    status: function () { return statusSnapshot(); },
    /* A new token for pulls and pushes (Authorization: Bearer). The event stream cannot send
     * headers: it authenticates with the cookie the server config names. */
    setToken: function (token) {
      if (identityChanged(token)) return;
      cfg.token = token || null;
      lastAuthStatus = 0;
      if (st.ready) { pullAll(); scheduleFlush(0); }
    },
    checkQuota: checkQuota,
    /* Call before the app signs the user out (docs/CLIENT.md, "Offline page loads"). */
    logout: function (opts) { return logout(opts); },
    /* The user whose local data this page shows ('' when the app names none). */
    get user() { return offline.user; },
    /* The problems still listed: [{ pid, kind, message, at[, entity, id] }], oldest first. */
    problems: function () { return st.problems.slice(); },
    /* Dismisses one problem (by pid), or all of them (no argument), in every tab. */
    dismiss: function (pid) { dismissProblem(pid || null, null); },
    /* on('status'|'changed'|'conflict'|'rejected'|'overwritten'|'quota'|'unauthorized', fn) -> unsubscribe */
    on: function (type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
      if (type === 'status') { try { fn(statusSnapshot()); } catch (e) { warn(e); } }
      return function () {
        listeners[type] = (listeners[type] || []).filter(function (f) { return f !== fn; });
      };
    },
    /* What the library says to a person (status, problems), by key; replace entries for
     * another language or other words. Messages already listed keep their text. */
    messages: MESSAGES,
    _debug: { state: st, events: ev, cfg: cfg, withLock: withLock, lead: lead, offline: offline }
  };
  window.RhtmxSync = api;

  /* Answers the worker kept are applied at load, online or not (they need no network). */
  readyPromise.then(function () {
    return withLock('sync', applyWorkerAnswers).catch(function (err) { warn('cannot apply the answers the worker got:', err && err.message ? err.message : err); });
  }, function () { /* start failed: reported there */ });
  offline.done = offlineSetup().catch(function (err) { warn('offline page loads:', err && err.message ? err.message : err); });
  renderIfServedFromCache().catch(function (err) { log('cannot ask the worker:', err); });

  start().catch(function (err) {
    st.error = 'start failed: ' + (err && err.message ? err.message : err);
    warn(st.error);
    statusChanged();
    readyReject(err);
  });
})();
