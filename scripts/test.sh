#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian 12), builds everything
# with AddressSanitizer + UndefinedBehaviorSanitizer, and runs every test; then
# runs the cgi tests a second time under valgrind's memcheck, against a build
# without sanitizers (the two do not mix), so each CGI process is checked by both.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         one label (unit, cgi, server, fault, browser, fuzz, bench)
#   scripts/test.sh -R pull         tests whose name matches
#   RHTMX_VALGRIND=0 scripts/test.sh   skip the valgrind pass
#
# The valgrind pass runs the cgi and fault tests among those selected (none for
# -L unit): in the fault tests only the CGI runs they start through the harness's
# cgiCommand are under valgrind.
# Every CGI process costs over a second of CPU under valgrind, so the corpus-heavy
# tests run a sample there (push-jsontestsuite: every 16th file; push-concurrency:
# fewer clients), and the cgi tests that run on both backends keep their
# PostgreSQL cases there only where they cover the PostgreSQL code (pull, push,
# events, compact, scope, pg-*; tests/harness/backends.mjs); the sanitized pass
# runs everything whole. A valgrind finding makes the
# process exit 99 and its report fails the test (tests/harness/rhtmx.mjs).
# Measured on the shared 2-core machine (a fresh clone, 2026-12-05): both builds,
# the sanitized suite (108 tests, 672 s) and the valgrind pass (31 tests, 468 s):
# 19 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

need_apt "${BUILD_PKGS[@]}" "${TEST_BUILD_PKGS[@]}" "${PG_PKGS[@]}" lighttpd php-cli php-cgi php-sqlite3 php-pgsql apache2 libapache2-mod-fcgid nginx spawn-fcgi fcgiwrap libfcgi-bin wrk \
         chromium fonts-dejavu-core clang valgrind strace curl openssl
need_npm

# Some tests run the web server as www-data, the way a real host runs it; it must be
# able to reach the build folder. A clone in a private folder (mktemp -d is 0700) gets
# search permission (o+x, not read) on the folders above it.
if [ "$(id -u)" -eq 0 ]; then
  d=$(pwd -P)
  while [ "$d" != / ]; do
    if [ -n "$(find "$d" -maxdepth 0 ! -perm -o+x)" ]; then
      chmod o+x "$d"
      echo "==> chmod o+x $d"
    fi
    d=$(dirname "$d")
  done
fi

BUILD=${BUILD:-build-test}
# The test builds carry the PostgreSQL backend (RHTMX_POSTGRES): its tests start their own
# throwaway cluster (tests/harness/postgres.mjs). The shared-hosting build without it is
# built and checked by tests/server/static-build.
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DRHTMX_SANITIZE=ON -DRHTMX_WERROR=ON -DRHTMX_POSTGRES=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure --timeout 900 -j2 "$@"

cgi_tests=$(ctest --test-dir "$BUILD" -N -L '^(cgi|fault)$' "$@" | grep -c '^ *Test *#' || true)
if [ "${RHTMX_VALGRIND:-1}" != 0 ] && [ "$cgi_tests" -gt 0 ]; then
  VG="$BUILD-valgrind"
  cmake -S . -B "$VG" -DCMAKE_BUILD_TYPE=Debug -DRHTMX_SANITIZE=OFF -DRHTMX_WERROR=ON -DRHTMX_POSTGRES=ON >/dev/null
  cmake --build "$VG" -j"$(nproc)"
  echo "==> the cgi and fault tests under valgrind memcheck"
  RHTMX_CGI_WRAPPER='valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite -q' \
    ctest --test-dir "$VG" --output-on-failure --timeout 900 -j2 -L '^(cgi|fault)$' "$@"
fi
