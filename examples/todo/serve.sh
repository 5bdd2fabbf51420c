#!/usr/bin/env bash
# serve.sh: run the todo example behind lighttpd, on loopback, with the four rhtmx-sync
# executables under /api/sync/ and the PHP pages through php-cgi, all as FastCGI.
#
#   serve.sh start --dir DIR [--port N] [--bin-dir DIR] [--strategy S] [--seed N]
#                  [--events-mode stream|poll] [--buffered] [--debug]
#                  [--offline true|false|SCOPE] [--no-offline] [--sw-off]
#   serve.sh stop  --dir DIR
#   serve.sh url   --dir DIR
#
# start: makes DIR (a scratch folder: todo.db, rhtmx-sync.json, lighttpd.conf, logs, sockets,
# lighttpd.pid) unless it exists, creates the database with N seeded todos (default 3; they
# predate the sync triggers on purpose), runs `rhtmx-sync init`, starts lighttpd in the
# background and returns once it answers, printing the URL. --port 0 picks a free port.
# stop: stops that lighttpd by its pid, then any FastCGI process it had spawned that is still
# alive, so nothing outlives it. Used by scripts/demo.sh and tests/browser/. The page registers
# the service worker (data-sync-offline="true": it opens offline); --offline sets the attribute's
# value, --no-offline leaves it out; --sw-off starts client-js with RHTMX_SYNC_SW=off (the kill
# switch: sw.js removes the worker from the browsers).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { echo "serve.sh: $*" >&2; exit 1; }

cmd=${1:-}
[ -n "$cmd" ] || die "usage: serve.sh start|stop|url --dir DIR [options]"
shift
dir="" port=8080 bindir="${RHTMX_BIN_DIR:-$root/build/cgi-bin}" strategy=last-write-wins
seed=3 events_mode="" debug="" stream_body=2 offline=true sw=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --bin-dir) bindir=$2; shift 2 ;;
    --strategy) strategy=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --events-mode) events_mode=$2; shift 2 ;;
    --debug) debug=1; shift ;;
    --offline) offline=$2; shift 2 ;;
    --no-offline) offline=""; shift ;;
    --sw-off) sw=off; shift ;;
    --buffered) stream_body=0; shift ;; # lighttpd holds each response until it ends (tests poll mode)

    *) die "unknown option $1" ;;
  esac
done
[ -n "$dir" ] || die "--dir is required"
pidfile="$dir/lighttpd.pid"

# alive PID: true while PID runs (a zombie counts as gone).
alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ] && [ "$st" != X ]
}

# descendants PID: every process below PID, children before grandchildren.
descendants() {
  local kid
  for kid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$kid"
    descendants "$kid"
  done
}

# stop_pid PID SECONDS: TERM, wait up to SECONDS, then KILL.
stop_pid() {
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < $2 * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# free_port: a port nobody listens on, below the kernel's ephemeral range (ports there may be
# held by outgoing connections, which a connect test cannot see).
free_port() {
  local p lo=32768 i
  read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  [ "$lo" -gt 12000 ] || lo=32768
  for ((i = 0; i < 50; i++)); do
    p=$((10000 + RANDOM % (lo - 10000)))
    if ! { (exec 3<>"/dev/tcp/127.0.0.1/$p"); } 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# http_ok PORT: true when lighttpd serves a static file there (all backends have started).
http_ok() {
  local line
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /style.css HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 2 line <&3 || line=""
  exec 3<&- 3>&-
  [[ "$line" == "HTTP/1."?" 200"* ]]
}

do_stop() {
  [ -f "$pidfile" ] || return 0
  local pid kids k
  pid=$(cat "$pidfile")
  if alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = lighttpd ]; then
    kids=$(descendants "$pid")
    stop_pid "$pid" 5
    for k in $kids; do stop_pid "$k" 2; done
  fi
  rm -f "$pidfile"
}

json_str() { # a JSON string literal for $1 (paths and names here have no control characters)
  local s=${1//\\/\\\\}
  printf '"%s"' "${s//\"/\\\"}"
}

do_start() {
  local exe
  for exe in sync-pull sync-push sync-events client-js rhtmx-sync; do
    [ -x "$bindir/$exe" ] || die "missing $bindir/$exe (build first: cmake -S . -B build && cmake --build build)"
  done
  command -v lighttpd >/dev/null || die "lighttpd is not installed"
  command -v php-cgi >/dev/null || die "php-cgi is not installed"
  command -v sqlite3 >/dev/null || die "sqlite3 is not installed"
  local htmx="$root/node_modules/htmx.org/dist/htmx.min.js"
  [ -f "$htmx" ] || die "missing $htmx (run npm install in $root)"

  bindir=$(cd "$bindir" && pwd)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  pidfile="$dir/lighttpd.pid"
  if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then die "already running (pid $(cat "$pidfile"))"; fi
  local pick=0
  if [ "$port" = 0 ]; then pick=1; port=$(free_port); fi

  local db="$dir/todo.db"
  if [ ! -f "$db" ]; then
    sqlite3 "$db" <"$here/schema.sql" >/dev/null
    if [ "$seed" -gt 0 ]; then
      sqlite3 "$db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $seed)
        INSERT INTO todos (title, done) SELECT CASE i WHEN 1 THEN 'Try the demo' WHEN 2 THEN 'Turn the network off'
          WHEN 3 THEN 'Watch it sync' ELSE 'Todo ' || i END, CASE WHEN i = 1 THEN 1 ELSE 0 END FROM n;"
    fi
  fi

  local events_cfg=""
  [ -n "$events_mode" ] && events_cfg=",
  \"events\": { \"mode\": $(json_str "$events_mode") }"
  cat >"$dir/rhtmx-sync.json" <<EOF
{
  "database": "todo.db",
  "entities": [
    { "name": "todos", "table": "todos", "key": "id",
      "strategy": $(json_str "$strategy"), "offline_writes": true }
  ],
  "auth": { "mode": "none" }$events_cfg
}
EOF
  "$bindir/rhtmx-sync" init --config "$dir/rhtmx-sync.json" >"$dir/init.log" 2>&1 ||
    die "rhtmx-sync init failed: $(cat "$dir/init.log")"

  local cfgq; cfgq=$(json_str "$dir/rhtmx-sync.json")
  # One fastcgi.server block per executable; lighttpd spawns each (bin-path) and keeps it.
  fcgi() { # fcgi NAME MAX_PROCS
    cat <<EOF
(( "bin-path" => $(json_str "$bindir/$1"),
   "socket" => $(json_str "$dir/$1.sock"),
   "max-procs" => $2,
   "check-local" => "disable",
   "bin-environment" => ( "RHTMX_SYNC_CONFIG" => $cfgq, "RHTMX_SYNC_SW" => "$sw" ) ))
EOF
  }
  cat >"$dir/lighttpd.conf" <<EOF
# Generated by examples/todo/serve.sh; see lighttpd/ in the repository for a commented one.
server.modules = ( "mod_access", "mod_alias", "mod_fastcgi", "mod_accesslog" )
server.document-root = $(json_str "$here")
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = $(json_str "$dir/lighttpd-error.log")
accesslog.filename = $(json_str "$dir/access.log")
# Hand every byte of a response to the browser as soon as the backend writes it: the event
# stream (sync-events) depends on it.
server.stream-response-body = $stream_body
index-file.names = ( "index.php" )
static-file.exclude-extensions = ( ".php", ".sh", ".sql" )
url.access-deny = ( ".sh", ".sql", ".db", ".db-wal", ".db-shm", "~" )
mimetype.assign = ( ".html" => "text/html; charset=utf-8", ".css" => "text/css; charset=utf-8",
                    ".js" => "text/javascript; charset=utf-8", ".svg" => "image/svg+xml" )
alias.url = ( "/vendor/htmx.min.js" => $(json_str "$htmx") )

fastcgi.server = ( ".php" =>
  (( "bin-path" => "$(command -v php-cgi)",
     "socket" => $(json_str "$dir/php.sock"),
     "max-procs" => 2,
     "bin-environment" => ( "TODO_DB" => $(json_str "$db"), "TODO_DEBUG" => "$debug", "TODO_OFFLINE" => "$offline",
                            "PHP_FCGI_CHILDREN" => "0", "PHP_FCGI_MAX_REQUESTS" => "1000" ) )) )

# /api/sync/events: one process, many streams (threads inside), max-procs 1.
\$HTTP["url"] == "/api/sync/events" {
  fastcgi.server = ( "/api/sync/events" => $(fcgi sync-events 1) )
}
\$HTTP["url"] =~ "^/api/sync/(client|sw)\\.js\$" {
  fastcgi.server = ( "/api/sync" => $(fcgi client-js 1) )
}
\$HTTP["url"] =~ "^/api/sync/(?!events\$|client\\.js\$|sw\\.js\$)" {
  \$HTTP["request-method"] == "POST" {
    fastcgi.server = ( "/api/sync/" => $(fcgi sync-push 1) )
  }
  \$HTTP["request-method"] != "POST" {
    fastcgi.server = ( "/api/sync/" => $(fcgi sync-pull 2) )
  }
}
EOF
  lighttpd -tt -f "$dir/lighttpd.conf" >"$dir/lighttpd-check.log" 2>&1 ||
    die "bad lighttpd.conf: $(cat "$dir/lighttpd-check.log")"

  local try pid i
  for ((try = 0; try < 5; try++)); do
    # setsid: its own session, so a Ctrl-C meant for the caller does not race our stop.
    : >"$dir/lighttpd.out"
    setsid lighttpd -D -f "$dir/lighttpd.conf" </dev/null >>"$dir/lighttpd.out" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      if http_ok "$port" && alive "$pid"; then
        echo "$port" >"$dir/port"
        echo "http://127.0.0.1:$port/"
        return 0
      fi
      sleep 0.1
    done
    if alive "$pid"; then break; fi
    rm -f "$pidfile"
    # A port picked for us may have been taken meanwhile: pick another and try again.
    if [ "$pick" = 1 ] && grep -q "Address already in use" "$dir/lighttpd.out"; then
      local old=$port
      port=$(free_port)
      sed -i "s/^server.port = $old\$/server.port = $port/" "$dir/lighttpd.conf"
      continue
    fi
    die "lighttpd exited at start: $(tail -n 20 "$dir/lighttpd-error.log" "$dir/lighttpd.out" 2>/dev/null)"
  done
  do_stop
  die "lighttpd did not answer on 127.0.0.1:$port"
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  url) [ -f "$dir/port" ] && echo "http://127.0.0.1:$(cat "$dir/port")/" ;;
  *) die "unknown command $cmd" ;;
esac
