# shellcheck shell=bash
# Shared helpers for realm-run's test scripts (Scripts/setup-host, fetch-arm64-assets, cross-build,
# nested-tests, test). Source it from a bash script that runs with `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#
# Nothing here writes outside the repository except the host package installs (apt_install_pinned,
# setup-host). Caches live in .build-* directories of the repository (ignored by git):
#   .build-nested/  private apt state, arm64 debs, the extracted arm64 tree, assets.env, test images
#   .build-cross/   the sid chroot with swiftlang, the aarch64 Swift SDK bundle, the static realm-run
#   .build-logs/    times.txt: one line per stage of every script run
# The Debian archive URI is always read at run time from this machine's apt sources (apt_mirror).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PROG=${PROG:-$(basename "$0")}
NESTED_DIR=${NESTED_DIR:-$ROOT/.build-nested}       # arm64 assets and nested-test images
CROSS_DIR=${CROSS_DIR:-$ROOT/.build-cross}          # cross chroot, SDK bundle, aarch64 realm-run
LOGS_DIR=${LOGS_DIR:-$ROOT/.build-logs}
TIMES_FILE=${TIMES_FILE:-$LOGS_DIR/times.txt}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
APTLOCK=(-o DPkg::Lock::Timeout=600)   # another apt/dpkg job may hold the locks: wait, do not fail

# Swift at /opt/swift (the project's toolchain) when it is not on PATH yet (sudo resets PATH)
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  PATH=$PATH:/opt/swift/usr/bin
fi

die() { echo "$PROG: ERROR: $*" >&2; exit 1; }
warn() { echo "$PROG: warning: $*" >&2; }
info() { echo "$PROG: $*" >&2; }

require_root() { [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0): $*"; }

host_release() { (. /etc/os-release && echo "${VERSION_CODENAME:-}"); }

require_bookworm_x86() {
  [ "$(uname -m)" = x86_64 ] || die "written for an x86_64 host (this is $(uname -m))"
  [ "$(host_release)" = bookworm ] || die "written for Debian 12 (bookworm); this host is '$(host_release)'"
}

# ------------------------------------------------------------------ timing
# stage NAME [INFO]: time since the previous stage call (or since this file was sourced), printed
# to stderr and appended to $TIMES_FILE as "<date> <prog> <seconds> <name> | <info>".
usec() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t)); }   # wall clock, microseconds
secs() { printf '%d.%02d' $(($1 / 1000000)) $(($1 % 1000000 / 10000)); }
STAGE_LAST=$(usec)
STAGE_START=$STAGE_LAST
stage() {
  local now d; now=$(usec); d=$(secs $((now - STAGE_LAST)))
  printf '== %s: %-34s %7s s  %s\n' "$PROG" "$1" "$d" "${2:-}" >&2
  mkdir -p "$(dirname "$TIMES_FILE")" 2>/dev/null &&
    printf '%s %s %s %s | %s\n' "$(date -u +%FT%TZ)" "$PROG" "$d" "$1" "${2:-}" >> "$TIMES_FILE" || true
  STAGE_LAST=$now
}
stage_total() { stage "total" "$(secs $(($(usec) - STAGE_START))) s since start"; }
mb() { du -sm "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

# ------------------------------------------------------------------ preparing side by side
# The VM test scripts (nested-tests, realm-tests) share build folders: the arm64 assets, the
# payloads, the host build. Each prepares them holding this lock and lets go once its VM boots,
# so that several can run side by side (Scripts/test runs them so).
hold_prepare_lock() {
  mkdir -p "$LOGS_DIR"
  exec 9> "$LOGS_DIR/prepare.lock"
  flock -n 9 || { info "waiting for another test script to finish preparing"; flock 9; }
}
release_prepare_lock() { flock -u 9; }

# Little-endian fields of binary files (disk images made to be damaged by tests and fuzz seeds)
peek_le() {   # peek_le FILE OFFSET WIDTH: the value
  local v=0 i=0 b
  for b in $(od -An -tu1 -j "$2" -N "$3" "$1"); do v=$((v | b << (8 * i))); i=$((i + 1)); done
  echo "$v"
}
poke_le() {   # poke_le FILE OFFSET WIDTH VALUE
  local i s=""
  for ((i = 0; i < $3; i++)); do s+=$(printf '\\x%02x' $((($4 >> (8 * i)) & 0xFF))); done
  printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ------------------------------------------------------------------ apt
# Debian archive URI, read at run time from this machine's own apt configuration:
# deb822 debian.sources first, then one-line sources.list ([options] such as signed-by are skipped)
apt_mirror() {
  local u=""
  [ -r /etc/apt/sources.list.d/debian.sources ] &&
    u=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$u" ] || [ ! -r /etc/apt/sources.list ] ||
    u=$(awk '/^deb[ \t]/{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  printf '%s\n' "$u"
}
mirror() {   # MIRROR from the environment, else apt_mirror; dies if neither gives one
  MIRROR=${MIRROR:-$(apt_mirror)}
  [ -n "$MIRROR" ] || die "no Debian archive URI found in /etc/apt; set MIRROR=<Debian archive URI>"
  printf '%s\n' "$MIRROR"
}

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

APT_UPDATED=0
apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  apt-get "${APTLOCK[@]}" update -qq || die "apt-get update failed"
  APT_UPDATED=1
}

# apt_install_pinned PKG...: install those of the host packages that are missing, from the host's own
# release (-t <codename>: a machine whose sources also list newer suites must not pull them in),
# without recommends, waiting for the dpkg lock. Prints "installed: ..." (or nothing if all present).
APT_INSTALLED=()
apt_install_pinned() {
  local need=() p rel log
  for p in "$@"; do pkg_installed "$p" || need+=("$p"); done
  [ ${#need[@]} -gt 0 ] || return 0
  rel=$(host_release)
  apt_update_once
  log=$LOGS_DIR/apt-install.log; mkdir -p "$LOGS_DIR"
  info "installing from $rel: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get "${APTLOCK[@]}" install -y -q --no-install-recommends \
    -t "$rel" "${need[@]}" > "$log" 2>&1 || { tail -20 "$log" >&2; die "apt-get install ${need[*]} failed (log: $log)"; }
  grep -E '^(Need to get|W:)' "$log" >&2 || true
  for p in "${need[@]}"; do pkg_installed "$p" || die "$p still not installed (log: $log)"; done
  APT_INSTALLED+=("${need[@]}")
}

# ------------------------------------------------------------------ private arm64 apt
# A private apt configuration under DIR: its own one-line sources list (arm64 only), lists, cache and
# an empty dpkg status; the host's sources.list.d, pins and package set are not read, the host's apt
# state is not touched. papt_init DIR SUITE...; then papt ARGS... (apt-get), papt_cache ARGS...
# (apt-cache), papt_download DEST PKG... (downloads the debs of the PKGs that are not in DEST yet).
papt_init() {
  local dir=$1 s m; shift
  m=$(mirror)
  PAPT_DIR=$dir
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  [ -e "$dir/status" ] || : > "$dir/status"
  [ -r "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"
  for s in "$@"; do echo "deb [arch=arm64 signed-by=$KEYRING] $m $s main"; done > "$dir/sources.list.new"
  # a changed mirror or suite list invalidates the lists
  if ! cmp -s "$dir/sources.list.new" "$dir/sources.list"; then
    mv "$dir/sources.list.new" "$dir/sources.list"; rm -f "$dir/updated"
  else
    rm -f "$dir/sources.list.new"
  fi
  PAPT=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
        -o Dir::State::Lists="$dir/lists" -o Dir::State::status="$dir/status" -o Dir::Cache="$dir/cache"
        -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o APT::Sandbox::User=root
        -o Acquire::Check-Valid-Until=false "${APTLOCK[@]}")
  PAPT_UPDATED=0
}
papt() { apt-get "${PAPT[@]}" "$@"; }
papt_cache() { apt-cache "${PAPT[@]}" "$@"; }
# papt_update [force]: the private apt-get update, at most once per run; cached lists are reused
# unless forced (REFRESH=1) or they were never fetched
papt_update() {
  [ "$PAPT_UPDATED" = 1 ] && return 0
  if [ "${1:-}" = force ] || [ ! -e "$PAPT_DIR/updated" ]; then
    papt update -qq || die "private apt-get update (arm64) failed"
    : > "$PAPT_DIR/updated"
  fi
  PAPT_UPDATED=1
}
have_deb() { compgen -G "$1/${2}_*_arm64.deb" >/dev/null || compgen -G "$1/${2}_*_all.deb" >/dev/null; }
papt_download() {
  local dest=$1 p; shift
  mkdir -p "$dest"
  for p in "$@"; do
    have_deb "$dest" "$p" && continue
    papt_update
    (cd "$dest" && papt download -q "$p" >/dev/null 2>"$dest/.download.err") ||
      { cat "$dest/.download.err" >&2; die "apt-get download $p (arm64) failed"; }
    have_deb "$dest" "$p" || die "no $dest/${p}_*.deb after apt-get download $p"
  done
  rm -f "$dest/.download.err"
}

# ------------------------------------------------------------------ misc
qemu_major() { qemu-system-aarch64 --version 2>/dev/null | awk 'NR==1{split($4, v, "."); print v[1] + 0}'; }

# load_assets: source $NESTED_DIR/assets.env (written by Scripts/fetch-arm64-assets)
load_assets() {
  [ -r "$NESTED_DIR/assets.env" ] || die "$NESTED_DIR/assets.env missing: run Scripts/fetch-arm64-assets"
  # shellcheck disable=SC1091
  . "$NESTED_DIR/assets.env"
}

# fuzz_summary TARGET LOG: one line from a finished libFuzzer run's log (its final "#N DONE cov: C
# ft: F corp: K/..." and "Done N runs" lines):
#   fuzz: TARGET: N executions, cov C, ft F, corpus K, 0 crashes
# Fails (and says so) when the log has no final statistics.
fuzz_summary() {
  local target=$1 log=$2 done_line runs cov ft corp
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE ' "$log" | tail -n 1 || true)
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
  [ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  if [ -z "$runs" ] || [ -z "$cov" ]; then
    echo "fuzz: $target: no final statistics in $log"
    return 1
  fi
  echo "fuzz: $target: $runs executions, cov $cov, ft ${ft:-?}, corpus ${corp:-?}, 0 crashes"
}
