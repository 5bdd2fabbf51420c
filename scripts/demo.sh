#!/usr/bin/env bash
# The demo: builds rhtmx-sync and serves the example todo app (examples/todo, PHP + htmx)
# with live sync, through lighttpd on 127.0.0.1, until Ctrl-C.
#
#   scripts/demo.sh                 http://127.0.0.1:8080/
#   DEMO_PORT=9000 scripts/demo.sh  another port
#   DEMO_DIR=/some/dir scripts/demo.sh   keep the database (and logs) there between runs
#
# Installs what is missing first (Debian packages; htmx.org from npm), then builds with
# cmake into build/. lighttpd runs php-cgi for the pages and the four executables as FastCGI
# under /api/sync/ (examples/todo/serve.sh has the configuration); Ctrl-C stops it by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

need_apt "${BUILD_PKGS[@]}" lighttpd php-cgi php-sqlite3 sqlite3
need_npm

BUILD=${BUILD:-build}
echo "==> building into $BUILD/"
cmake -S . -B "$BUILD" -DRHTMX_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null

port=${DEMO_PORT:-8080}
dir=${DEMO_DIR:-}
keep=1
if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/rhtmx-demo.XXXXXX")
  keep=0
fi
serve=examples/todo/serve.sh

stopped=0
stop() {
  [ "$stopped" = 1 ] && return
  stopped=1
  echo
  echo "==> stopping lighttpd"
  "$serve" stop --dir "$dir" || true
  if [ "$keep" = 0 ]; then rm -rf "$dir"; fi
}
trap 'stop; exit 130' INT TERM
trap stop EXIT

url=$("$serve" start --dir "$dir" --port "$port" --bin-dir "$BUILD/cgi-bin")
pid=$(cat "$dir/lighttpd.pid")
cat <<EOT

  rhtmx-sync demo: $url

  Open it in two browser windows: a todo added in one appears in the other.
  Turn the network off in one (devtools > Network > Offline), keep editing, turn it back on.
  Reload while offline, or open the page in a new tab: it opens from the browser's copy, with
  your queued changes (the service worker at /api/sync/sw.js keeps the pages you visited).
  Write at a shell and watch both windows follow:
    sqlite3 $dir/todo.db "INSERT INTO todos (title) VALUES ('from the shell')"
  Logs: $dir/lighttpd-error.log

  Ctrl-C to stop.
EOT

# Stay in the foreground while lighttpd runs (a zombie counts as gone).
while [ -r "/proc/$pid/stat" ] && ! grep -qE '^[0-9]+ \(.*\) [ZX]' "/proc/$pid/stat"; do
  sleep 1
done
echo "lighttpd exited on its own; last errors:" >&2
tail -n 20 "$dir/lighttpd-error.log" >&2 || true
exit 1
