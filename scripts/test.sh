#!/usr/bin/env bash
# The whole test suite: installs what is missing (Debian 12), builds everything
# with AddressSanitizer + UndefinedBehaviorSanitizer, and runs every test.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -L unit         one label (unit, cgi, server, browser, fuzz, bench)
#   scripts/test.sh -R pull         tests whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh

need_apt "${BUILD_PKGS[@]}" lighttpd php-cli php-cgi php-sqlite3 apache2 libapache2-mod-fcgid wrk \
         chromium fonts-dejavu-core clang valgrind curl openssl
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
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DRHTMX_SANITIZE=ON -DRHTMX_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure --timeout 900 -j2 "$@"
