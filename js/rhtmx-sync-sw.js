/*
 * rhtmx-sync-sw.js: the service worker of rhtmx-sync, served by client-js at /api/sync/sw.js.
 *
 * A page registers it with data-sync-offline on the library's script tag (js/rhtmx-sync.js,
 * "offline page loads"); docs/CLIENT.md "Offline page loads" is the manual. It does three
 * things and keeps no data of its own beyond the Cache Storage entries named below:
 *
 * - Pages open offline. Navigations go to the network first and fall back to the copy kept
 *   from the last visit after NAV_TIMEOUT_MS or a network failure; same-origin scripts,
 *   styles, images and fonts come from that copy and are refreshed in the background. Both
 *   are kept per signed-in user (the page tells the worker who that is), so one user's
 *   pages are never served to the next. /api/sync/* is never cached except client.js,
 *   which is network-first (a page loaded online always runs the server's build) and kept
 *   for offline loads. Non-GET requests and other origins are left to the browser.
 * - Queued writes leave without an open page (Background Sync, "rhtmx-sync:{db}" tags):
 *   under the page's own lock it sends _pending, oldest first, in the page's batches, with
 *   the page's client id and mutation ids (a batch whose answer is lost is answered again
 *   from the server's stored outcomes). Each answered batch leaves _pending, and its answer
 *   is kept in _meta for the page, which applies it with its own code (temporary ids,
 *   conflicts, rejections) before it pulls or pushes again: one implementation of what an
 *   answer does to local data, and no batch is sent twice by the two.
 * - It tells a page whether it was served from the kept copy, so the library renders the
 *   data-sync-render regions from IndexedDB at once.
 *
 * Plain ES2018, no dependencies, no importScripts.
 */
'use strict';

var BASE = self.location.pathname.replace(/\/sw\.js$/, '');   /* "/api/sync" */
var LIBRARY = BASE + '/client.js';
var SCHEME = 'rhtmx-sync:v1:';            /* every cache name starts with it */
var LIB_CACHE = SCHEME + 'lib';
var STATE_CACHE = SCHEME + 'state';
var STATE_KEY = BASE + '/sw-state';       /* a Cache Storage key, never a request */
var NAV_TIMEOUT_MS = 3000;
var INSTALL_FETCH_MS = 10000;
var LAYOUT = 2;                           /* the IndexedDB layout this worker reads (js/rhtmx-sync.js LAYOUT) */
var BATCH_CHANGES = 100;
var BATCH_BYTES = 65536;
var ASSETS = { script: 1, style: 1, image: 1, font: 1 };

/* Pages to keep at install: ?precache=/,/list.php on the worker's URL (data-sync-precache). */
var PRECACHE = (new URL(self.location.href).searchParams.get('precache') || '')
  .split(',').map(function (s) { return s.trim(); }).filter(Boolean);

function userCacheName(user) { return SCHEME + 'u:' + encodeURIComponent(user || ''); }

/* ------------------------------------------------------------------ who is signed in */

/* The user the pages said they show ('' when the app names none), kept in Cache Storage
 * because a worker's memory does not outlive it, and read from there each time: while a new
 * build installs or waits, pages tell it (js/rhtmx-sync.js askWorker), and the old worker,
 * still answering, must see the same user. */
function currentUser() {
  return caches.open(STATE_CACHE).then(function (c) { return c.match(STATE_KEY); })
    .then(function (r) { return r ? r.json() : {}; })
    .then(function (s) { return typeof s.user === 'string' ? s.user : ''; })
    .catch(function () { return ''; });
}
function setUser(user) {
  return caches.open(STATE_CACHE).then(function (c) {
    return c.put(STATE_KEY, new Response(JSON.stringify({ user: user }), { headers: { 'Content-Type': 'application/json' } }));
  });
}

/* A page says who it shows (message 'rhtmx-sync:page'). When that is someone else than
 * before, the page's own URL is dropped from the previous user's copy (its navigation was
 * kept there before the worker knew), and a copy kept while nobody was named goes too. */
async function userChanged(user, url) {
  var old = await currentUser();
  if (old === user) return;
  await setUser(user);
  if (old === '') await caches.delete(userCacheName(''));
  else if (url) await (await caches.open(userCacheName(old))).delete(pageKey(url));
}

/* A page loaded before this worker controlled it (the first visit) was not seen by the
 * fetch handler: the page sends its URL and its same-origin scripts, styles and images,
 * and what is not kept yet is fetched and kept now. */
async function keepPage(url, assets) {
  var cache = await caches.open(userCacheName(await currentUser()));
  var lib = await caches.open(LIB_CACHE);
  var wanted = [{ key: pageKey(url), cache: cache }];
  (assets || []).forEach(function (a) {
    var u = new URL(a, self.location.origin);
    if (u.origin !== self.location.origin) return;
    if (u.pathname === LIBRARY) wanted.push({ key: LIBRARY, cache: lib });
    else if (u.pathname.indexOf(BASE + '/') !== 0) wanted.push({ key: u.href, cache: cache });
  });
  await Promise.all(wanted.map(async function (w) {
    if (await w.cache.match(w.key)) return;
    try {
      var res = await fetch(w.key, { credentials: 'same-origin', cache: 'no-cache' });
      if (keepable(res)) await w.cache.put(w.key, res);
    } catch (err) { /* offline now: kept at the next visit */ }
  }));
}

/* The user signs out (message 'rhtmx-sync:logout'): that user's copy is deleted, and
 * nobody is named until a page names someone. */
async function loggedOut(user) {
  await caches.delete(userCacheName(user));
  await caches.delete(userCacheName(''));
  await setUser('');
}

/* ------------------------------------------------------------------ install, activate */

/* fetch() given up after ms (rejects then): what install fetches may not wait longer than. */
function fetchWithin(url, opts, ms) {
  var ctl = new AbortController();
  var timer = setTimeout(function () { ctl.abort(); }, ms);
  return fetch(url, Object.assign({ signal: ctl.signal }, opts)).finally(function () { clearTimeout(timer); });
}

self.addEventListener('install', function (event) {
  event.waitUntil((async function () {
    /* The library of this build, fresh from the server. Each fetch here is given up after
     * INSTALL_FETCH_MS (its body included): on a network that stalls, the worker installs
     * without that copy (the first online page load keeps it) instead of holding the new
     * build back until the browser fails the install, minutes later. */
    try {
      var res = await fetchWithin(LIBRARY, { cache: 'no-cache', credentials: 'same-origin' }, INSTALL_FETCH_MS);
      if (res.ok) await (await caches.open(LIB_CACHE)).put(LIBRARY, res);
    } catch (err) { /* offline at install, or too slow */ }
    if (PRECACHE.length) {
      var cache = await caches.open(userCacheName(await currentUser()));
      await Promise.all(PRECACHE.map(function (p) {
        var u = new URL(p, self.location.origin).href;
        return fetchWithin(u, { credentials: 'same-origin', cache: 'no-cache' }, INSTALL_FETCH_MS).then(function (r) {
          if (keepable(r)) return cache.put(pageKey(u), r);
        }).catch(function () {});
      }));
    }
    /* A new build takes over at once (docs/CLIENT.md, "Updates"). */
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', function (event) {
  event.waitUntil((async function () {
    /* Caches of an older naming scheme go. */
    var names = await caches.keys();
    await Promise.all(names.filter(function (n) { return /^rhtmx-sync:/.test(n) && n.indexOf(SCHEME) !== 0; })
      .map(function (n) { return caches.delete(n); }));
    await self.clients.claim();
  })());
});

/* ------------------------------------------------------------------ fetch */

/* What a navigation is kept under: its URL without the fragment. */
function pageKey(url) { var u = new URL(url); u.hash = ''; return u.href; }

/* A response worth keeping: a full same-origin 200 that is not the end of a redirect (a
 * sign-in page answered for another URL) and that the app did not mark as never offline. */
function keepable(res) {
  return !!res && res.status === 200 && res.type === 'basic' && !res.redirected &&
    res.headers.get('X-Rhtmx-Sync-Offline') !== 'no';
}

var servedFromCache = {};   /* client id -> true: that page came from the kept copy */

self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === LIBRARY) { event.respondWith(libraryFirst(req)); return; }
  if (url.pathname.indexOf(BASE + '/') === 0) return;   /* the sync API: IndexedDB is its cache */
  if (req.mode === 'navigate') { event.respondWith(navigate(event)); return; }
  if (ASSETS[req.destination]) event.respondWith(asset(event));
});

/* client.js: the network's (revalidated, so never an older build than the server's), kept
 * for offline loads; the kept copy only when the network fails. */
async function libraryFirst(req) {
  var cache = await caches.open(LIB_CACHE);
  try {
    var res = await fetch(req.url, { cache: 'no-cache', credentials: 'same-origin' });
    if (res.ok) await cache.put(LIBRARY, res.clone());
    return res;
  } catch (err) {
    var kept = await cache.match(LIBRARY);
    if (kept) return kept;
    throw err;
  }
}

/* Network first; the kept copy after NAV_TIMEOUT_MS or when the network fails. */
async function navigate(event) {
  var req = event.request;
  var cache = await caches.open(userCacheName(await currentUser()));
  var key = pageKey(req.url);
  var network = fetch(req).then(function (res) {
    if (keepable(res)) {
      var copy = res.clone();
      event.waitUntil(cache.put(key, copy).catch(function () {}));
    }
    return res;
  });
  network.catch(function () {}); /* awaited below; a late failure after the fallback won is no error */
  var fallback = function () {
    return cache.match(key).then(function (kept) {
      if (!kept) return network; /* nothing kept: the network's answer or its error */
      if (event.resultingClientId) servedFromCache[event.resultingClientId] = true;
      return kept;
    });
  };
  var timer;
  var late = new Promise(function (resolve) { timer = setTimeout(function () { resolve(fallback()); }, NAV_TIMEOUT_MS); });
  try {
    return await Promise.race([network, late]);
  } catch (err) {
    return fallback();
  } finally {
    clearTimeout(timer);
  }
}

/* Same-origin scripts, styles, images, fonts: the kept copy, refreshed in the background;
 * the network when none is kept. */
async function asset(event) {
  var req = event.request;
  var cache = await caches.open(userCacheName(await currentUser()));
  var refresh = fetch(req).then(function (res) {
    if (keepable(res)) return cache.put(req, res.clone()).then(function () { return res; });
    return res;
  });
  var kept = await cache.match(req);
  if (kept) { event.waitUntil(refresh.catch(function () {})); return kept; }
  return refresh;
}

/* ------------------------------------------------------------------ messages from pages */

self.addEventListener('message', function (event) {
  var m = event.data || {};
  var port = event.ports && event.ports[0];
  var reply = function (v) { if (port) port.postMessage(v); };
  var work;
  if (m.type === 'rhtmx-sync:page') {
    work = userChanged(String(m.user || ''), m.url).then(function () { return m.url ? keepPage(m.url, m.assets) : null; });
  }
  else if (m.type === 'rhtmx-sync:logout') work = loggedOut(String(m.user || ''));
  else if (m.type === 'rhtmx-sync:served') {
    var id = event.source && event.source.id;
    reply({ cached: !!(id && servedFromCache[id]) });
    if (id) delete servedFromCache[id];
    return;
  } else return;
  event.waitUntil(work.then(function () { reply({ ok: true }); }, function (err) { reply({ ok: false, error: String(err) }); }));
});

/* ------------------------------------------------------------------ Background Sync */

self.addEventListener('sync', function (event) {
  if (event.tag.indexOf('rhtmx-sync:') !== 0) return;
  event.waitUntil(sendQueue(event.tag.slice('rhtmx-sync:'.length)));
});

function reqP(r) {
  return new Promise(function (resolve, reject) {
    r.onsuccess = function () { resolve(r.result); };
    r.onerror = function () { reject(r.error); };
  });
}

/* Opens the page's database as it is, or resolves null when it does not exist (an open
 * that would create it is aborted) or has no queue. */
function openExisting(name) {
  return new Promise(function (resolve, reject) {
    var r = indexedDB.open(name);
    var created = false;
    r.onupgradeneeded = function () { created = true; r.transaction.abort(); };
    r.onsuccess = function () {
      var db = r.result;
      if (!db.objectStoreNames.contains('_meta') || !db.objectStoreNames.contains('_pending')) { db.close(); resolve(null); return; }
      resolve(db);
    };
    r.onerror = function () { if (created) resolve(null); else reject(r.error); };
  });
}

/* Sends the queue of database `name` under the page's lock; rejects when the network
 * failed, so the browser fires the sync event again later. A user's database
 * ("{db}:u:{user}") is sent only while the pages say that user is signed in: the request
 * carries the browser's cookies, which are the signed-in user's, and a queue is never sent
 * as someone else. It waits for its user's next visit instead. */
async function sendQueue(name) {
  var at = name.lastIndexOf(':u:');
  if (at >= 0 && name.slice(at + 3) !== await currentUser()) return;
  if (!(self.navigator.locks && self.navigator.locks.request)) return sendUnlocked(name);
  /* ifAvailable: a page holding the lock is sending the same queue right now. */
  return self.navigator.locks.request('rhtmx-sync:' + name + ':sync', { ifAvailable: true }, function (lock) {
    return lock ? sendUnlocked(name) : null;
  });
}

async function sendUnlocked(name) {
  var db = await openExisting(name);
  if (!db) return;
  try {
    var tx = db.transaction(['_meta', '_pending'], 'readonly');
    var meta = tx.objectStore('_meta');
    var rows = await Promise.all([reqP(meta.get('client_id')), reqP(meta.get('layout')), reqP(tx.objectStore('_pending').getAll())]);
    var client = rows[0] && rows[0].value;
    var layout = rows[1] && rows[1].value;
    var queue = rows[2].sort(function (a, b) { return a.seq - b.seq; });
    /* Another layout: a page of another build wrote it; that page sends it. */
    if (!client || layout !== LAYOUT) return;
    var i = 0;
    while (i < queue.length) {
      var batch = takeBatch(queue, i, client);
      var res = await fetch(BASE + '/' + encodeURIComponent(batch[0].entity), {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ client_id: client, changes: batch.map(wireChange) })
      }); /* a network failure rejects: the browser tries again later */
      var text = await res.text();
      if (res.status >= 500 || res.status === 429) throw new Error('push answered ' + res.status);
      /* Any other refusal (sign-in, a change never accepted) is the page's to handle. */
      if (!res.ok) return;
      var answer = null;
      try { answer = JSON.parse(text); } catch (err) { /* below */ }
      if (!answer || typeof answer !== 'object' || (!Array.isArray(answer.applied) && !Array.isArray(answer.rejected) && !Array.isArray(answer.conflicts))) return;
      if (!(await keepAnswer(db, batch, answer))) return;
      i += batch.length;
    }
  } finally {
    db.close();
  }
}

/* The batch from queue[i] on, as the page makes it (js/rhtmx-sync.js takeBatch): one
 * entity, at most BATCH_CHANGES changes and BATCH_BYTES, and never a change to a temporary
 * id created earlier in the same batch. */
function takeBatch(queue, i, client) {
  var batch = [];
  var created = {};
  var room = BATCH_BYTES - 64 - client.length;
  for (var j = i; j < queue.length && batch.length < BATCH_CHANGES; j++) {
    var p = queue[j];
    if (p.entity !== queue[i].entity) break;
    if (isTmp(p.id) && created[p.id]) break;
    var n = new TextEncoder().encode(JSON.stringify(wireChange(p))).length + 1;
    if (batch.length && n > room) break;
    room -= n;
    if (p.action === 'create' && isTmp(p.id)) created[p.id] = true;
    batch.push(p);
  }
  return batch;
}
function isTmp(id) { return typeof id === 'string' && id.indexOf('tmp-') === 0; }

/* Takes the sent batch out of _pending and keeps the server's answer for the page
 * (_meta 'worker_answers'), in one transaction: the page applies it with its own code
 * (temporary ids, conflicts, rejections) before it pulls or pushes again, and the batch is
 * never sent again, whenever the page comes back (the server keeps outcomes only for its
 * retention). Resolves false, changing nothing, when a change of the batch is no longer
 * queued (a page took the lock over and answered it). */
async function keepAnswer(db, batch, answer) {
  var tx = db.transaction(['_meta', '_pending'], 'readwrite');
  var done = new Promise(function (resolve, reject) {
    tx.oncomplete = function () { resolve(true); };
    tx.onerror = tx.onabort = function () { reject(tx.error); };
  });
  var pending = tx.objectStore('_pending');
  var meta = tx.objectStore('_meta');
  var still = await Promise.all(batch.map(function (p) { return reqP(pending.getKey(p.seq)); }));
  if (still.some(function (k) { return k === undefined; })) { tx.abort(); return done.catch(function () { return false; }); }
  var kept = await reqP(meta.get('worker_answers'));
  var list = kept && Array.isArray(kept.value) ? kept.value : [];
  list.push({ at: Date.now(), entity: batch[0].entity, batch: batch, answer: answer });
  meta.put({ key: 'worker_answers', value: list });
  batch.forEach(function (p) { pending.delete(p.seq); });
  return done;
}

/* One queued mutation as a push sends it (as js/rhtmx-sync.js wireChange). */
function wireChange(p) {
  var c = { mutation_id: p.mutation_id, id: p.id, action: p.action, client_version: p.client_version || 0 };
  if (p.action !== 'delete') c.data = p.data || {};
  return c;
}
