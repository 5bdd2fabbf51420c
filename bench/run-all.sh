#!/usr/bin/env bash
# Every benchmark in one command (a few minutes): installs what is missing (Debian 12),
# builds a Release tree WITHOUT sanitizers in build-bench (BENCH_BUILD to change it) the
# default way (RHTMX_STATIC=AUTO: the libraries linked in where their archives are installed)
# and, where the build offers RHTMX_STATIC, sync-pull in the two other kinds for the plain
# CGI benchmark (build-bench-fullstatic: FULL; build-bench-shared: OFF),
# and prints each target of issue 8 as a ratio with the figures behind it.
#
#   bench/run-all.sh                      everything
#   bench/run-all.sh --only pull,cgi      some: pull, cgi, push, events, browser, pg, scope
#   bench/run-all.sh --json results.json  also write the rows as JSON
#
# Only loopback addresses are used; every process the suite starts is stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

need_apt "${BUILD_PKGS[@]}" "${TEST_BUILD_PKGS[@]}" "${PG_PKGS[@]}" lighttpd php-cgi php-sqlite3 php-pgsql wrk chromium \
         fonts-dejavu-core
need_npm

BUILD=${BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DRHTMX_SANITIZE=OFF -DRHTMX_TESTS=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target sync-pull sync-push sync-events client-js rhtmx-sync \
  bench-fcgi-fixed bench-cgi-fixed >/dev/null
# The other kinds for the plain CGI benchmark (cmake/Static.cmake): FULL (nothing shared,
# what docs/DEPLOY.md recommends for shared hosting) and OFF (the system's shared libraries,
# as distribution packages link). The linker's warnings about dlopen in a fully static
# program are expected (docs/DEPLOY.md).
shared_bin="" fullstatic_bin=""
if [ -f cmake/Static.cmake ]; then
  cmake -S . -B "$BUILD-shared" -DCMAKE_BUILD_TYPE=Release -DRHTMX_STATIC=OFF -DRHTMX_TESTS=OFF >/dev/null
  cmake --build "$BUILD-shared" -j"$(nproc)" --target sync-pull >/dev/null
  shared_bin="$PWD/$BUILD-shared/cgi-bin"
  cmake -S . -B "$BUILD-fullstatic" -DCMAKE_BUILD_TYPE=Release -DRHTMX_STATIC=FULL -DRHTMX_TESTS=OFF >/dev/null
  if ! cmake --build "$BUILD-fullstatic" -j"$(nproc)" --target sync-pull >"$BUILD-fullstatic/build.log" 2>&1; then
    cat "$BUILD-fullstatic/build.log" >&2
    exit 1
  fi
  fullstatic_bin="$PWD/$BUILD-fullstatic/cgi-bin"
fi
# The PostgreSQL rows (bench/pg.mjs) run the programs of a build with -DRHTMX_POSTGRES=ON
# (libpq, shared libraries), kept apart so every other row measures the default build.
cmake -S . -B "$BUILD-pg" -DCMAKE_BUILD_TYPE=Release -DRHTMX_SANITIZE=OFF -DRHTMX_POSTGRES=ON \
  -DRHTMX_TESTS=OFF >/dev/null
cmake --build "$BUILD-pg" -j"$(nproc)" --target sync-pull sync-push sync-events client-js rhtmx-sync >/dev/null
rm -rf "$BUILD/bench-tmp" # databases of the previous run (the 100,000-row one is ~35 MB)
mkdir -p "$BUILD/bench-tmp"
RHTMX_BIN="$PWD/$BUILD/cgi-bin" BENCH_BASELINES="$PWD/$BUILD/bench" BENCH_SHARED_BIN="$shared_bin" \
  BENCH_PG_BIN="$PWD/$BUILD-pg/cgi-bin" \
  BENCH_FULLSTATIC_BIN="$fullstatic_bin" RHTMX_TEST_TMP="$PWD/$BUILD/bench-tmp" exec node bench/run.mjs "$@"
