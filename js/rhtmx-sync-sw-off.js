/*
 * rhtmx-sync-sw-off.js: the kill switch. client-js answers /api/sync/sw.js with this instead
 * of js/rhtmx-sync-sw.js while its environment has RHTMX_SYNC_SW=off (docs/CLIENT.md,
 * "Offline page loads"). A browser's update check (every navigation, and every page load of
 * the library) installs it in place of the worker it has; it takes over at once, deletes
 * the caches of rhtmx-sync and unregisters itself. It handles no request: from then on the
 * browser goes to the network as if no worker had ever been there. IndexedDB, and the
 * writes queued in it, are left alone.
 */
'use strict';

self.addEventListener('install', function () { self.skipWaiting(); });

/* A page that sees it waiting asks again (as it asks js/rhtmx-sync-sw.js). */
self.addEventListener('message', function (event) {
  if (event.data && event.data.type === 'rhtmx-sync:skip-waiting') event.waitUntil(self.skipWaiting());
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf('rhtmx-sync:') === 0; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.registration.unregister(); }));
});
