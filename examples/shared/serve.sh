#!/usr/bin/env bash
# serve.sh: run the shared-lists example behind lighttpd on 127.0.0.1, in the foreground
# (Ctrl-C stops it), with the rhtmx-sync executables as FastCGI under /api/sync/ and the PHP
# pages through php-cgi.
#
#   serve.sh DIR [PORT] [BIN_DIR]
#
# DIR is a scratch folder: on first use it gets shared.db (schema.sql and seed.sql), a fresh
# token secret (sync.secret, mode 600) and rhtmx-sync.json; lighttpd.conf and the logs are
# written each time. PORT defaults to 8080; BIN_DIR to build/cgi-bin. Then open
# http://127.0.0.1:PORT/?as=alice in one browser and /?as=bob in another.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:?usage: serve.sh DIR [PORT] [BIN_DIR]}
port=${2:-8080}
bindir=$(cd "${3:-$root/build/cgi-bin}" && pwd)
htmx="$root/node_modules/htmx.org/dist/htmx.min.js"
for need in "$bindir/rhtmx-sync" "$htmx"; do
  [ -e "$need" ] || { echo "serve.sh: missing $need (build, and npm ci at the top)" >&2; exit 1; }
done
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

if [ ! -f "$dir/shared.db" ]; then
  cat "$here/schema.sql" "$here/seed.sql" | sqlite3 "$dir/shared.db" >/dev/null
  (umask 077 && head -c 32 /dev/urandom | base64 >"$dir/sync.secret")
fi
# Members see their lists and the lists' todos. list_members is found in the scopes and
# watched by rhtmx-sync itself; nothing else needs to name it.
cat >"$dir/rhtmx-sync.json" <<JSON
{
  "database": "shared.db",
  "entities": [
    { "name": "lists", "scope": "id IN (SELECT list_id FROM list_members WHERE user_id = :user)" },
    { "name": "todos", "scope": "list_id IN (SELECT list_id FROM list_members WHERE user_id = :user)" }
  ],
  "auth": { "mode": "token", "secret_file": "sync.secret" }
}
JSON
"$bindir/rhtmx-sync" init --config "$dir/rhtmx-sync.json" >/dev/null

fcgi() { # fcgi NAME: one FastCGI backend (lighttpd starts it and keeps it)
  printf '(( "bin-path" => "%s", "socket" => "%s", "max-procs" => 1, "check-local" => "disable",
     "bin-environment" => ( "RHTMX_SYNC_CONFIG" => "%s" ) ))' "$bindir/$1" "$dir/$1.sock" "$dir/rhtmx-sync.json"
}
cat >"$dir/lighttpd.conf" <<CONF
server.modules = ( "mod_access", "mod_alias", "mod_fastcgi" )
server.document-root = "$here"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/lighttpd-error.log"
server.stream-response-body = 2
index-file.names = ( "index.php" )
url.access-deny = ( ".sh", ".sql", ".db", "~" )
mimetype.assign = ( ".css" => "text/css; charset=utf-8", ".js" => "text/javascript; charset=utf-8" )
alias.url = ( "/vendor/htmx.min.js" => "$htmx" )
fastcgi.server = ( ".php" => (( "bin-path" => "$(command -v php-cgi)", "socket" => "$dir/php.sock",
  "max-procs" => 2, "bin-environment" => ( "SHARED_DB" => "$dir/shared.db",
  "SHARED_SECRET" => "$dir/sync.secret", "PHP_FCGI_CHILDREN" => "0" ) )) )
\$HTTP["url"] == "/api/sync/events" { fastcgi.server = ( "/api/sync/events" => $(fcgi sync-events) ) }
else \$HTTP["url"] == "/api/sync/client.js" { fastcgi.server = ( "/api/sync/client.js" => $(fcgi client-js) ) }
else \$HTTP["url"] =~ "^/api/sync/" {
  \$HTTP["request-method"] == "POST" { fastcgi.server = ( "/api/sync/" => $(fcgi sync-push) ) }
  else { fastcgi.server = ( "/api/sync/" => $(fcgi sync-pull) ) }
}
CONF
echo "http://127.0.0.1:$port/?as=alice"
exec lighttpd -D -f "$dir/lighttpd.conf"
