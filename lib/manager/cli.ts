// The `sealed-session` command (package bin): look at, end, or check a SessionManager's
// session from a shell. Exit codes: 0 success (status: logged in; logout: removed; doctor:
// every check passed), 1 a negative result (not logged in; nothing to remove; a check failed,
// its line naming the fix), 2 a usage error.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { privateRuntimeDir } from './default-dir'
import { cryptoUnavailableReason } from '../core/crypto-backend'
import { toSessionError, UNREADABLE_CODES } from '../core/errors'
import { checkKeySource, makeKeyRing, type KeySource } from '../core/keys'
import { SessionManager } from './manager'
import { native, OPEN_AS_STRING, type NativeKeyRing, type OpenFileResult } from '../core/native'
import { SessionData } from './session-data'

const USAGE = `Usage: sealed-session <command> [--app NAME] [--dir DIR] [--key-source machine|keychain]

Commands:
  status [--show-data]  who is logged in and until when (exit 0 logged in, 1 not)
  logout                remove the session (exit 0 removed, 1 there was none)
  doctor                check the directory, machine id, crypto backend, addon build, keychain,
                        temp files and session file, one line each (exit 0 all ok, 1 a check failed)

Options:
  --app NAME            the app name given to SessionManager (default: sealed-session)
  --dir DIR             the app's dir option, when it sets one (default: the manager's default)
  --key-source SOURCE   the app's keySource option (default: machine)
  --show-data           status: also print the session's data
Exit code 2: usage error.
`

class UsageError extends Error {}

interface Args {
  command: 'status' | 'logout' | 'doctor'
  app: string
  dir?: string
  keySource: KeySource
  showData: boolean
}

function parse(argv: string[]): Args | 'help' {
  const values: Record<string, string> = {}
  let showData = false
  let command: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') return 'help'
    if (arg === '--show-data') {
      showData = true
      continue
    }
    const m = /^--(app|dir|key-source)(?:=(.*))?$/.exec(arg)
    if (m) {
      const value = m[2] ?? argv[++i]
      if (value === undefined || value === '') throw new UsageError(`--${m[1]} needs a value`)
      values[m[1]] = value
      continue
    }
    if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`)
    if (command !== undefined) throw new UsageError(`unexpected argument ${arg}`)
    command = arg
  }
  if (command === undefined) throw new UsageError('no command given')
  if (command !== 'status' && command !== 'logout' && command !== 'doctor')
    throw new UsageError(`unknown command ${command}`)
  if (showData && command !== 'status') throw new UsageError('--show-data goes with status only')
  let keySource: KeySource
  try {
    keySource = checkKeySource({ keySource: (values['key-source'] ?? 'machine') as KeySource })
  } catch {
    throw new UsageError(`--key-source must be machine or keychain, got ${values['key-source']}`)
  }
  return { command, app: values.app ?? 'sealed-session', dir: values.dir, keySource, showData }
}

interface Out {
  out(line: string): void
  err(line: string): void
}

/** The manager the app would build (validates the name and dir as the app's constructor does). */
function managerFor(args: Args): SessionManager {
  try {
    return new SessionManager(args.app, { dir: args.dir, keySource: args.keySource, sweepInterval: 0 })
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError)
      throw new UsageError(err.message.replace(/^appName/, '--app'))
    throw err
  }
}

// Reads session.enc without removing anything (the CLI may hold the wrong key: a status must
// never destroy the app's session). null: missing.
function peek(dir: string, ring: NativeKeyRing, app: string): OpenFileResult | Error {
  try {
    const d = new native.PrivateDir(dir, false)
    try {
      return d.openFileSync(ring, 'session.enc', `manager:${app}`, native.DEFAULT_MAX_BYTES, Date.now(), OPEN_AS_STRING)
    } finally {
      d.close()
    }
  } catch (err) {
    return toSessionError(err) as Error
  }
}

function until(ms: number): string {
  const left = ms - Date.now()
  const h = Math.floor(left / 3_600_000)
  const m = Math.floor((left % 3_600_000) / 60_000)
  return `${new Date(ms).toISOString()} (in ${h} h ${m} min)`
}

function describeUnreadable(err: Error, keySource: KeySource): string {
  const code = (err as { code?: string }).code ?? ''
  return UNREADABLE_CODES.has(code)
    ? `session.enc exists but cannot be opened with keySource '${keySource}' (${code}); an app that uses a secret or the keychain needs the same here`
    : err.message
}

async function status(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  await m.close()
  if (!fs.existsSync(m.sessionDir)) {
    io.out(`not logged in (no session directory ${m.sessionDir})`)
    return 1
  }
  let ring: NativeKeyRing
  try {
    ring = makeKeyRing('manager', args.app, { keySource: args.keySource })
  } catch (err) {
    io.err(`error: ${(err as Error).message}`)
    return 1
  }
  const found = peek(m.sessionDir, ring, args.app)
  ring.close()
  if (found instanceof Error) {
    io.err(`error: ${describeUnreadable(found, args.keySource)}`)
    return 1
  }
  if (found === null) {
    io.out(`not logged in (no session in ${m.sessionDir})`)
    return 1
  }
  if ('expired' in found) {
    io.out(`not logged in (the session expired at ${new Date(found.expiresAt).toISOString()})`)
    return 1
  }
  let s: SessionData
  try {
    s = SessionData.fromParsed(JSON.parse(found.plaintext as string))
  } catch {
    io.err('error: session.enc opens but holds no session record')
    return 1
  }
  io.out(`logged in: ${s.userId}${s.userName === null ? '' : ` (${s.userName})`}`)
  io.out(`since: ${s.createdAt}`)
  io.out(`until: ${until(s.expiresAtMs)}`)
  if (args.showData) io.out(`data: ${JSON.stringify(s.data, null, 2)}`)
  return 0
}

async function logout(args: Args, io: Out): Promise<number> {
  // Removing needs no key: a machine-bound manager takes the app's lock and unlinks the file.
  const m = managerFor({ ...args, keySource: 'machine' })
  try {
    if (!fs.existsSync(m.sessionDir) || !(await m.logout())) {
      io.out(`not logged in: no session to remove in ${m.sessionDir}`)
      return 1
    }
    io.out(`logged out: removed ${m.sessionFile}`)
    return 0
  } catch (err) {
    io.err(`error: ${(err as Error).message}`)
    return 1
  } finally {
    await m.close()
  }
}

const tempName = (n: string) => n.startsWith('.') && n.endsWith('.tmp')

async function doctor(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  await m.close()
  const dir = m.sessionDir
  let failed = 0
  const ok = (check: string, detail: string) => io.out(`ok    ${check}: ${detail}`)
  const fail = (check: string, detail: string, fix: string) => {
    failed++
    io.out(`FAIL  ${check}: ${detail}; fix: ${fix}`)
  }

  // Directory (opening it also removes temp files whose writer is gone: count them first).
  const chosen =
    args.dir !== undefined
      ? '--dir'
      : privateRuntimeDir() !== null
        ? 'default: $XDG_RUNTIME_DIR/<app>'
        : 'default: <tmpdir>/.<app>_session-<uid>'
  let tempsBefore: string[] | null = null
  let dirOk = false
  if (!fs.existsSync(dir)) {
    ok('directory', `${dir} (${chosen}) does not exist yet; the first login creates it 0700`)
  } else {
    try {
      tempsBefore = fs.readdirSync(dir).filter(tempName)
      new native.PrivateDir(dir, false).close()
      dirOk = true
      ok('directory', `${dir} (${chosen}) is private: ours, not writable by others, not a symlink`)
    } catch (err) {
      fail(
        'directory',
        String((toSessionError(err) as Error).message),
        `remove ${dir} if you did not create it, or give the app (and this command) another dir`,
      )
    }
  }

  try {
    native.machineId()
    ok('machine id', 'present')
  } catch (err) {
    fail('machine id', (err as Error).message, 'mount or create /etc/machine-id, or have the app pass a secret')
  }

  const cryptoProblem = cryptoUnavailableReason()
  if (cryptoProblem === null) ok('crypto', describeBackend(native.cryptoBackend()))
  else fail('crypto', cryptoProblem, "install the system's OpenSSL 3 (Debian: libssl3), or unset SEALED_SESSION_CRYPTO")

  let addon = 'unknown'
  try {
    addon = require('node-gyp-build').resolve(path.join(__dirname, '..', '..')) as string
  } catch {
    /* reported as unknown */
  }
  ok('addon', `${addon.includes(`${path.sep}prebuilds${path.sep}`) ? 'prebuild' : 'built from source'}: ${addon}`)

  const keychain = native.keychainStatus()
  if (args.keySource === 'keychain') {
    if (keychain === 'ok') ok('keychain', 'the OS secret store is available and unlocked')
    else fail('keychain', keychain, "unlock the login keyring (or start its daemon), or use keySource 'machine'")
  } else {
    ok('keychain', `not used (keySource machine); secret store: ${keychain === 'ok' ? 'available' : 'unavailable'}`)
  }

  if (tempsBefore !== null && dirOk) {
    const left = fs.readdirSync(dir).filter(tempName)
    const removed = tempsBefore.filter((n) => !left.includes(n)).length
    if (tempsBefore.length === 0) ok('temp files', 'none')
    else ok('temp files', `${removed} stale temp file(s) removed, ${left.length} in use by a running writer`)
  } else {
    ok('temp files', 'none (no directory yet)')
  }

  if (dirOk && fs.existsSync(path.join(dir, 'session.enc'))) {
    let ring: NativeKeyRing | null = null
    try {
      ring = makeKeyRing('manager', args.app, { keySource: args.keySource })
      const found = peek(dir, ring, args.app)
      if (found instanceof Error) {
        fail(
          'session file',
          describeUnreadable(found, args.keySource),
          'pass the --key-source the app uses, or remove it with `sealed-session logout`',
        )
      } else if (found !== null && 'expired' in found) {
        ok('session file', 'expired (removed at the next read or sweep)')
      } else {
        ok('session file', 'opens with this key')
      }
    } catch (err) {
      fail('session file', (err as Error).message, 'use --key-source machine, or make the keychain available')
    } finally {
      ring?.close()
    }
  } else {
    ok('session file', 'none')
  }
  return failed === 0 ? 0 : 1
}

/** Runs the command line; resolves with the exit code. */
export async function main(
  argv: string[],
  io: Out = { out: (l) => console.log(l), err: (l) => console.error(l) },
): Promise<number> {
  let args: Args | 'help'
  try {
    args = parse(argv)
    if (args === 'help') {
      io.out(USAGE.trimEnd())
      return 0
    }
    if (args.command === 'status') return await status(args, io)
    if (args.command === 'logout') return await logout(args, io)
    return await doctor(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`sealed-session: ${err.message}\n\n${USAGE.trimEnd()}`)
      return 2
    }
    io.err(`error: ${(err as Error).message}`)
    return 1
  }
}

function describeBackend(name: string): string {
  if (name === 'node-openssl') return `node-openssl: the OpenSSL the runtime exports (${process.versions.openssl})`
  if (name === 'system-openssl') return "system-openssl: the system's libcrypto, loaded at run time"
  if (name === 'cng') return 'cng: Windows CNG (bcrypt.dll)'
  return name
}
