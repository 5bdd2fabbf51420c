/*
 * rhtmx-sync-sw-off.js: the kill switch. client-js answers /api/sync/sw.js with this instead
 * of js/rhtmx-sync-sw.js while its environment has RHTMX_SYNC_SW=off (docs/CLIENT.md,
 * "Offline page loads"). A browser's update check (every navigation, and every page load of
 * the library) installs it in place of the worker it has. While it installs it deletes the
 * caches of rhtmx-sync; it takes over as soon as the old worker is idle (a page of the
 * library that sees it waiting gives the old worker the event Chromium needs to notice that,
 * js/rhtmx-sync.js offlineSetup), deletes them again and unregisters itself. It handles no
 * request. IndexedDB, and the writes queued in it, are left alone.
 */
'use strict';

function deleteCaches() {
  return caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf('rhtmx-sync:') === 0; })
      .map(function (n) { return caches.delete(n); }));
  });
}

self.addEventListener('install', function (event) {
  self.skipWaiting();
  /* The kept copies go at once, even while the old worker is still active. */
  event.waitUntil(deleteCaches().catch(function () {}));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(deleteCaches().then(function () { return self.registration.unregister(); }).catch(function () {}));
});
