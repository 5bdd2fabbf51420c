#!/bin/sh
# Start or stop the four rhtmx-sync programs as FastCGI servers for nginx, with
# spawn-fcgi (Debian: apt-get install spawn-fcgi). nginx cannot start FastCGI
# programs itself; run this at boot (a systemd unit or @reboot cron line) and
# after an upgrade.
#
#   RHTMX_BIN=/srv/myapp/sync/cgi-bin \
#   RHTMX_SYNC_CONFIG=/srv/myapp/sync/rhtmx-sync.json \
#   RHTMX_RUN=/run/rhtmx \
#     nginx/rhtmx-sync-fcgi.sh start|stop|restart
#
# RHTMX_RUN gets one socket and one pid file per program (<program>.sock,
# <program>.pid); point the nginx config's $rhtmx_run at it. As root, also set
# RHTMX_USER (the programs run as that user: the one that may write the
# database) and RHTMX_SOCKET_GROUP (nginx's group, so nginx may connect).
# Each program's error output (configuration problems, database errors) is
# appended to RHTMX_LOG, by default $RHTMX_RUN/rhtmx-sync.log.
set -eu

: "${RHTMX_BIN:?set RHTMX_BIN to the folder of the four programs}"
: "${RHTMX_SYNC_CONFIG:?set RHTMX_SYNC_CONFIG to the configuration file}"
: "${RHTMX_RUN:?set RHTMX_RUN to a folder for the sockets}"
RHTMX_LOG=${RHTMX_LOG:-$RHTMX_RUN/rhtmx-sync.log}
PROGRAMS="client-js sync-pull sync-push sync-events"

start_one() {
  prog=$1
  sock="$RHTMX_RUN/$prog.sock"
  set -- -s "$sock" -M 0660 -P "$RHTMX_RUN/$prog.pid"
  # Every open page holds a connection to sync-events, and all of them arrive
  # at once after a restart: a deep accept queue (the kernel caps it at
  # net.core.somaxconn).
  [ "$prog" = sync-events ] && set -- "$@" -b 8192
  if [ "$(id -u)" -eq 0 ]; then
    : "${RHTMX_USER:?as root, set RHTMX_USER to the user the programs run as}"
    set -- "$@" -u "$RHTMX_USER" -U "$RHTMX_USER" -G "${RHTMX_SOCKET_GROUP:-www-data}"
  fi
  rm -f "$sock"
  # spawn-fcgi points a program's stderr at /dev/null; the shell puts it back on
  # the log, then becomes the program (same pid, the one in the pid file).
  # RHTMX_SYNC_DETACHED: spawn-fcgi exits once the program runs; the program
  # must not take that for its web server going away (this script stops it).
  RHTMX_SYNC_DETACHED=1 RHTMX_SYNC_CONFIG="$RHTMX_SYNC_CONFIG" spawn-fcgi "$@" -- \
    /bin/sh -c 'exec "$0" 2>>"$1"' "$RHTMX_BIN/$prog" "$RHTMX_LOG" >/dev/null
}

stop_one() {
  pidfile="$RHTMX_RUN/$1.pid"
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  # SIGTERM: each program finishes the requests it is answering (streams end
  # with a "bye" event the browser resumes from) and exits.
  if kill "$pid" 2>/dev/null; then
    n=0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$RHTMX_RUN/$1.sock"
}

case "${1:-}" in
start)
  mkdir -p "$RHTMX_RUN"
  for p in $PROGRAMS; do start_one "$p"; done
  ;;
stop)
  for p in $PROGRAMS; do stop_one "$p"; done
  ;;
restart)
  "$0" stop
  "$0" start
  ;;
*)
  echo "usage: $0 start|stop|restart" >&2
  exit 2
  ;;
esac
