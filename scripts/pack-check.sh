#!/usr/bin/env bash
# Release packaging check (run by .ci/run): in a copy of the tracked files (a fresh clone: no
# dist/), with the installed node_modules, a plain `npm pack` builds dist/ itself (prepack), and
# the packed tarball
#   1. holds what users need (no test/, bench/, build/), and says so with its size;
#   2. installs with --ignore-scripts and no compiler on PATH, and loads its prebuild from
#      both `require` and `import`, with a working login/getSession round trip;
#   3. without prebuilds/, compiles from source with node-gyp on install and does the same;
#   4. passes publint and are-the-types-wrong (node10, node16 CJS and ESM, bundler), for the
#      root and the express-session (and its deprecated name express), fastify, fetch and
#      middleware entries.
#   5. carries the cross-built win32-x64 and linux-arm64 prebuilds (scripts/cross-build.mjs,
#      built here if missing), which node-gyp-build picks on those platforms.
# Works in a scratch copy so the developer's build/ and prebuilds/ are left alone.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ss-pack.XXXXXX)
trap 'rm -rf "$work"' EXIT
say() { printf '\n--- %s\n' "$*"; }

say "scratch copy and prebuild"
mkdir "$work/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/src")
ln -s "$repo/node_modules" "$work/src/node_modules"
cd "$work/src"
npx prebuildify --napi --strip --tag-libc >/dev/null 2>&1
# Windows x64 and Linux arm64: cross-built from the same sources (ci-platforms.sh tests them).
for target in win32-x64 linux-arm64; do
  [ -d "$repo/prebuilds/$target" ] || (cd "$repo" && node scripts/cross-build.mjs "$target" >/dev/null)
  cp -r "$repo/prebuilds/$target" prebuilds/
done
ls prebuilds/*/
test ! -e dist || { echo "FAIL: the scratch copy has a dist/ already"; exit 1; }

say "npm pack (prepack builds dist/)"
tarball=$(npm pack --silent | tail -n 1)
test -e dist/index.js || { echo "FAIL: npm pack did not build dist/"; exit 1; }
tar -tzf "$tarball" | sed 's/^package\///' | sort > "$work/files.txt"
cat "$work/files.txt"
printf 'tarball: %s, %s bytes packed, %s files\n' "$tarball" "$(stat -c %s "$tarball")" "$(wc -l < "$work/files.txt")"
if grep -Eq '^(test|bench|build|examples|scripts|\.ci)/' "$work/files.txt"; then
  echo "FAIL: the tarball carries development files"; exit 1
fi
grep -q '^prebuilds/linux-x64/' "$work/files.txt" || { echo "FAIL: no linux-x64 prebuild in the tarball"; exit 1; }
# A source build needs every file binding.gyp compiles, and the headers beside them.
for src in $(node -p "JSON.parse(require('fs').readFileSync('binding.gyp', 'utf8')).targets[0].sources.join(' ')"); do
  grep -qx "$src" "$work/files.txt" || { echo "FAIL: $src (binding.gyp) is not in the tarball"; exit 1; }
  grep -qx "${src%.cc}.h" "$work/files.txt" || [ ! -e "${src%.cc}.h" ] || { echo "FAIL: ${src%.cc}.h is not in the tarball"; exit 1; }
done
for f in index express express-session fastify fetch express-request; do
  for ext in js mjs d.ts d.mts; do
    grep -qx "dist/$f.$ext" "$work/files.txt" || { echo "FAIL: dist/$f.$ext is not in the tarball"; exit 1; }
  done
done
# The README's links lead into docs/: they must resolve in the installed package too.
for f in docs/api/README.md docs/security.md CHANGELOG.md SECURITY.md; do
  grep -qx "$f" "$work/files.txt" || { echo "FAIL: no $f in the tarball (README links to it)"; exit 1; }
done
for f in prebuilds/win32-x64/sealed-session.node prebuilds/linux-arm64/sealed-session.glibc.node; do
  grep -qx "$f" "$work/files.txt" || { echo "FAIL: no $f in the tarball"; exit 1; }
done

# The round trip both consumers run: a login written, read back, then removed.
cat > "$work/roundtrip.cjs" <<'EOF'
const { SessionManager } = require('sealed-session')
const os = require('node:os'), path = require('node:path'), fs = require('node:fs')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-pack-'))
;(async () => {
  const m = new SessionManager('pack-check', { dir: path.join(dir, 's') })
  await m.login('u1', 'e1', { userName: 'Pack Check' })
  const s = m.getSessionSync()
  if (!s || s.userName !== 'Pack Check') throw new Error('round trip failed')
  await m.logout(); await m.close(); fs.rmSync(dir, { recursive: true })
  console.log('require: round trip ok, addon from', require('node-gyp-build').path(path.dirname(require.resolve('sealed-session/package.json'))))
})().catch((e) => { console.error(e); process.exit(1) })
EOF
cat > "$work/roundtrip.mjs" <<'EOF'
import { SessionManager, SessionError } from 'sealed-session'
import { ExpressSessionStore } from 'sealed-session/express-session'
import { ExpressSessionStore as DeprecatedName } from 'sealed-session/express'
import sealedSession, { sealedSession as named } from 'sealed-session/fastify'
import { withSession } from 'sealed-session/fetch'
import { sessionMiddleware } from 'sealed-session/middleware'
import { createRequire } from 'node:module'
import * as os from 'node:os'; import * as path from 'node:path'; import * as fs from 'node:fs'
if (typeof ExpressSessionStore !== 'function' || typeof SessionError !== 'function') throw new Error('exports missing')
if (DeprecatedName !== ExpressSessionStore) throw new Error('sealed-session/express is not an alias of sealed-session/express-session')
if (typeof sealedSession !== 'function' || named !== sealedSession || typeof withSession !== 'function' || typeof sessionMiddleware !== 'function') throw new Error('adapter exports missing')
// One class identity: the ESM entries re-export the CommonJS build.
if (createRequire(import.meta.url)('sealed-session').SessionManager !== SessionManager) throw new Error('two copies of SessionManager')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-pack-'))
const m = new SessionManager('pack-check', { dir: path.join(dir, 's') })
await m.login('u2', 'e2')
if ((await m.getSession())?.userId !== 'u2') throw new Error('round trip failed')
await m.close(); fs.rmSync(dir, { recursive: true })
console.log('import: round trip ok')
EOF

consumer() { # $1 = PATH to run with, $2 = dir, $3 = tarball, rest = npm install flags
  local path=$1 dir=$2 tgz=$3; shift 3
  mkdir -p "$dir" && cd "$dir"
  printf '{"name":"consumer","version":"1.0.0","private":true}\n' > package.json
  PATH="$path" npm install --no-audit --no-fund --silent "$@" "$tgz" express-session
  cp "$work/roundtrip.cjs" "$work/roundtrip.mjs" .  # resolved from the consumer's node_modules
  PATH="$path" node roundtrip.cjs
  PATH="$path" node roundtrip.mjs
}

say "install the tarball with --ignore-scripts and no compiler on PATH"
nocc="$work/nocc-bin"
mkdir "$nocc"
for tool in node npm npx sh bash env; do ln -s "$(command -v $tool)" "$nocc/$tool"; done
if PATH="$nocc" command -v g++ c++ cc make >/dev/null 2>&1; then echo "FAIL: a compiler is on the restricted PATH"; exit 1; fi
(consumer "$nocc" "$work/prebuilt" "$work/src/$tarball" --ignore-scripts)
test ! -e "$work/prebuilt/node_modules/sealed-session/build" || { echo "FAIL: something was compiled"; exit 1; }
# What node-gyp-build would load on Windows x64 and on Linux arm64 (glibc), from the installed package.
for want in win32:x64:prebuilds/win32-x64/sealed-session.node linux:arm64:prebuilds/linux-arm64/sealed-session.glibc.node; do
  IFS=: read -r plat arch file <<<"$want"
  got=$(cd "$work/prebuilt" && npm_config_platform=$plat npm_config_arch=$arch node -p \
    "require('node-gyp-build').path(require('path').dirname(require.resolve('sealed-session/package.json')))")
  case "$got" in
    */node_modules/sealed-session/$file) echo "node-gyp-build on $plat-$arch: $file" ;;
    *) echo "FAIL: node-gyp-build on $plat-$arch picks $got"; exit 1 ;;
  esac
done

say "the same tarball without prebuilds/: compiled from source on install"
mkdir "$work/noprebuild" && tar -xzf "$work/src/$tarball" -C "$work/noprebuild"
rm -rf "$work/noprebuild/package/prebuilds"
(cd "$work/noprebuild" && tar -czf source-only.tgz package)
(consumer "$PATH" "$work/from-source" "$work/noprebuild/source-only.tgz")
ls "$work/from-source/node_modules/sealed-session/build/Release/sealed_session.node"

say "publint and are-the-types-wrong"
cd "$work/src"
npx publint --strict "$tarball"
npx attw "$tarball"
echo "pack-check: ok"
