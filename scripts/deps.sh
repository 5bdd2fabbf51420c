# Sourced by scripts/test.sh and scripts/demo.sh: install what is missing.
# Only Debian's and npm's registries are used. Needs root (or sudo) for apt-get.

# need_apt PKG...: install the Debian packages that are not installed yet.
need_apt() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The packages the C build needs.
BUILD_PKGS=(build-essential cmake pkg-config libfcgi-dev libsqlite3-dev libjson-c-dev zlib1g-dev
            sqlite3)
# What building the tests adds: OpenSSL's libcrypto, the independent HMAC-SHA256 the unit
# and fuzz tests check lib/sha256.c against (the programs do not link it).
TEST_BUILD_PKGS=(libssl-dev)
# The PostgreSQL backend (cmake -DRHTMX_POSTGRES=ON, which the test builds use): libpq to
# build against, and the server binaries (initdb, postgres) its tests run a throwaway
# cluster with (tests/harness/postgres.mjs; no system cluster is used or started).
PG_PKGS=(libpq-dev postgresql)

# need_node: node and npm, from Debian unless the machine already has a node.
need_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    need_apt nodejs npm
  fi
}

# need_npm: the project's npm packages (playwright-core, htmx.org), as locked.
need_npm() {
  need_node
  [ -f package.json ] || return 0
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "==> installing npm packages"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: we drive Debian's chromium; never download a browser.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
  fi
}
