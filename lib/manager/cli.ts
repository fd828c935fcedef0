// The `sealed-session` command (package bin): look at, switch, end, or check a
// SessionManager's logins from a shell. Exit codes: 0 success, 1 a negative result (not logged
// in; nothing to remove; no such account; a check failed, its line naming the fix), 2 a usage
// error, 3 a failure (the directory or the session cannot be read, a check could not run).
// `status` and `doctor` change nothing on disk; stored text is escaped before it is printed.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { privateRuntimeDir } from './default-dir'
import { cryptoUnavailableReason } from '../core/crypto-backend'
import { toSessionError, UNREADABLE_CODES } from '../core/errors'
import { checkKeySource, makeKeyRing, type KeySource } from '../core/keys'
import { SessionManager } from './manager'
import { native, OPEN_AS_STRING, type NativeKeyRing, type NativePrivateDir, type OpenFileResult } from '../core/native'
import { SessionData } from './session-data'
import { ACCOUNTS_FILE, accountsContext, liveAccounts, parseAccounts, type StoredAccount } from './accounts'
import { printable } from './printable'

const USAGE = `Usage: sealed-session <command> [--app NAME] [--dir DIR] [--key-source machine|keychain]

Commands:
  status [--show-data]  the accounts kept, the active one marked *, and until when
                        (exit 0 logged in, 1 not)
  switch ID             make account ID the active one (exit 0 switched, 1 no such account)
  logout [--user ID]    end the active login (the most recently active other account takes
                        over), or account ID's (exit 0 removed, 1 there was none)
  doctor                check the directory, machine id, crypto backend, addon build, keychain,
                        temp files and session file, one line each (exit 0 all ok, 1 a check failed)

Options:
  --app NAME            the app name given to SessionManager (default: sealed-session)
  --dir DIR             the app's dir option, when it sets one (default: the manager's default)
  --key-source SOURCE   the app's keySource option (default: machine)
  --show-data           status: also print the active session's data
  --user ID             logout: the account to log out
Exit code 2: usage error; 3: failure (the directory or the session cannot be read, a check
could not run). status and doctor change nothing on disk.
`

export const EXIT = { ok: 0, negative: 1, usage: 2, failure: 3 } as const

class UsageError extends Error {}

type Command = 'status' | 'logout' | 'doctor' | 'switch'
const COMMANDS: ReadonlySet<string> = new Set(['status', 'logout', 'doctor', 'switch'])

interface Args {
  command: Command
  app: string
  dir?: string
  keySource: KeySource
  showData: boolean
  user?: string
}

function parse(argv: string[]): Args | 'help' {
  const values: Record<string, string> = {}
  let showData = false
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') return 'help'
    if (arg === '--show-data') {
      showData = true
      continue
    }
    const m = /^--(app|dir|key-source|user)(?:=(.*))?$/.exec(arg)
    if (m) {
      const value = m[2] ?? argv[++i]
      if (value === undefined || value === '') throw new UsageError(`--${m[1]} needs a value`)
      values[m[1]] = value
      continue
    }
    if (arg.startsWith('-')) throw new UsageError(`unknown option ${printable(arg)}`)
    positional.push(arg)
  }
  const [command, ...rest] = positional
  if (command === undefined) throw new UsageError('no command given')
  if (!COMMANDS.has(command)) throw new UsageError(`unknown command ${printable(command)}`)
  if (command === 'switch') {
    if (rest.length !== 1) throw new UsageError('switch takes one account id')
  } else if (rest.length > 0) {
    throw new UsageError(`unexpected argument ${printable(rest[0])}`)
  }
  if (showData && command !== 'status') throw new UsageError('--show-data goes with status only')
  if (values.user !== undefined && command !== 'logout') throw new UsageError('--user goes with logout only')
  let keySource: KeySource
  try {
    keySource = checkKeySource({ keySource: (values['key-source'] ?? 'machine') as KeySource })
  } catch {
    throw new UsageError(`--key-source must be machine or keychain, got ${printable(values['key-source'])}`)
  }
  return {
    command: command as Command,
    app: values.app ?? 'sealed-session',
    dir: values.dir,
    keySource,
    showData,
    user: command === 'switch' ? rest[0] : values.user,
  }
}

interface Out {
  out(line: string): void
  err(line: string): void
}

/** The manager the app would build (validates the name and dir as the app's constructor does). */
function managerFor(args: Args): SessionManager {
  try {
    return new SessionManager(args.app, { dir: args.dir, keySource: args.keySource, accounts: true, sweepInterval: 0 })
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError)
      throw new UsageError(err.message.replace(/^appName/, '--app'))
    throw err
  }
}

// Why a key or a file could not be used, in words for a shell user: the library's own
// messages suggest options (a secret) that a command line cannot pass.
function problem(err: unknown, keySource: KeySource): string {
  const e = toSessionError(err) as Error & { code?: string }
  if (e.code === 'ERR_MACHINE_ID')
    return 'this system has no machine id (/etc/machine-id, /var/lib/dbus/machine-id), so the key cannot be derived here'
  if (e.code === 'ERR_KEYCHAIN_UNAVAILABLE')
    return `${e.message.replace(/; use keySource .*$/, '')}; unlock the keychain, or pass the --key-source the app uses`
  if (e.code !== undefined && UNREADABLE_CODES.has(e.code))
    return `it cannot be opened with keySource '${keySource}' (${e.code}); an app that uses the keychain needs --key-source keychain here, and a file sealed with an app's secret cannot be read from the command line`
  return e.message
}

type DirState = { kind: 'none' } | { kind: 'ok'; dir: NativePrivateDir } | { kind: 'unusable'; reason: string }

// Opens the directory for reading only: checked like the app's, but nothing removed (no sweep
// of stale temp files), nothing created.
function openForReading(dirPath: string): DirState {
  try {
    fs.lstatSync(dirPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' }
    return { kind: 'unusable', reason: (err as Error).message }
  }
  try {
    return { kind: 'ok', dir: new native.PrivateDir(dirPath, false, false) }
  } catch (err) {
    return { kind: 'unusable', reason: (toSessionError(err) as Error).message }
  }
}

// Reads an envelope without removing anything, even an expired or foreign one (the CLI may
// hold the wrong key: looking must never destroy the app's session). null: missing.
function peek(dir: NativePrivateDir, ring: NativeKeyRing, name: string, context: string): OpenFileResult | Error {
  try {
    return dir.openFileSync(ring, name, context, native.DEFAULT_MAX_BYTES, Date.now(), OPEN_AS_STRING)
  } catch (err) {
    return toSessionError(err) as Error
  }
}

function until(ms: number): string {
  const left = Math.max(0, ms - Date.now())
  const h = Math.floor(left / 3_600_000)
  const m = Math.floor((left % 3_600_000) / 60_000)
  return `${new Date(ms).toISOString()} (in ${h} h ${m} min)`
}

const who = (s: SessionData) => `${printable(s.userId)}${s.userName === null ? '' : ` (${printable(s.userName)})`}`

async function status(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  await m.close()
  const state = openForReading(m.sessionDir)
  if (state.kind === 'none') {
    io.out(`not logged in (no session directory ${m.sessionDir})`)
    return EXIT.negative
  }
  if (state.kind === 'unusable') {
    io.err(`error: the session directory cannot be used: ${state.reason}`)
    return EXIT.failure
  }
  const dir = state.dir
  try {
    // Headers first: saying whether a file is there needs no key. A header that cannot be
    // read counts as there: the keyed read below names what is wrong with it.
    const headerOf = (name: string) => dir.peek(name).catch(() => 'unreadable' as const)
    const header = await headerOf('session.enc')
    const side = await headerOf(ACCOUNTS_FILE)
    if (header === null && side === null) {
      io.out(`not logged in (no session in ${m.sessionDir})`)
      return EXIT.negative
    }
    let ring: NativeKeyRing
    try {
      ring = makeKeyRing('manager', args.app, { keySource: args.keySource })
    } catch (err) {
      if (header !== null && header !== 'unreadable') {
        const live = header.expiresAt === 0 || header.expiresAt > Date.now()
        io.out(
          `a session file is there (session.enc, ${live ? `until ${new Date(header.expiresAt).toISOString()}` : 'expired'})`,
        )
      }
      io.err(`error: who is logged in cannot be shown: ${problem(err, args.keySource)}`)
      return EXIT.failure
    }
    try {
      return show(dir, ring, args, io, m.sessionDir)
    } finally {
      ring.close()
    }
  } finally {
    dir.close()
  }
}

function show(dir: NativePrivateDir, ring: NativeKeyRing, args: Args, io: Out, where: string): number {
  const found = peek(dir, ring, 'session.enc', `manager:${args.app}`)
  if (found instanceof Error) {
    io.err(`error: session.enc is there but ${problem(found, args.keySource)}`)
    return EXIT.failure
  }
  let active: SessionData | null = null
  let expiredAt: number | null = null
  if (found !== null && 'expired' in found) expiredAt = found.expiresAt
  else if (found !== null) {
    try {
      active = SessionData.fromParsed(JSON.parse(found.plaintext as string))
    } catch {
      io.err('error: session.enc opens but holds no session record')
      return EXIT.failure
    }
  }
  const sideFound = peek(dir, ring, ACCOUNTS_FILE, accountsContext(args.app))
  if (sideFound instanceof Error) {
    io.err(`error: ${ACCOUNTS_FILE} is there but ${problem(sideFound, args.keySource)}`)
    return EXIT.failure
  }
  let others: StoredAccount[] = []
  if (sideFound !== null && !('expired' in sideFound)) {
    try {
      others = liveAccounts(parseAccounts(sideFound.plaintext as string), Date.now(), active?.userId)
    } catch {
      io.err(`error: ${ACCOUNTS_FILE} opens but holds no list of accounts`)
      return EXIT.failure
    }
  }
  if (active === null) {
    io.out(
      expiredAt === null
        ? `not logged in (no active session in ${where})`
        : `not logged in (the session expired at ${new Date(expiredAt).toISOString()})`,
    )
  } else {
    io.out(`logged in: ${who(active)}`)
    io.out(`since: ${printable(active.createdAt)}`)
    io.out(`until: ${until(active.expiresAtMs)}`)
    if (args.showData) {
      const lines = JSON.stringify(active.data, null, 2).split('\n')
      io.out(`data: ${lines.map(printable).join('\n')}`)
    }
  }
  if (active !== null || others.length > 0) {
    io.out(`accounts (${(active === null ? 0 : 1) + others.length}, * active):`)
    if (active !== null) io.out(`* ${who(active)} until ${printable(active.expiresAt)}`)
    for (const a of others) io.out(`  ${who(a.session)} until ${printable(a.session.expiresAt)}`)
    if (active === null) io.out('`sealed-session switch ID` makes one of them active')
  }
  return active === null ? EXIT.negative : EXIT.ok
}

async function logout(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  try {
    if (openForReading(m.sessionDir).kind === 'none') {
      io.out(`not logged in: no session to remove in ${m.sessionDir}`)
      return EXIT.negative
    }
    // Removing the only login needs no key; the manager derives one only to pick the next account.
    if (!(await m.logout(args.user))) {
      io.out(
        args.user === undefined
          ? `not logged in: no session to remove in ${m.sessionDir}`
          : `no account ${printable(args.user)} in ${m.sessionDir}`,
      )
      return EXIT.negative
    }
    io.out(args.user === undefined ? `logged out: removed ${m.sessionFile}` : `logged out: ${printable(args.user)}`)
    return EXIT.ok
  } catch (err) {
    io.err(`error: ${problem(err, args.keySource)}`)
    return EXIT.failure
  } finally {
    await m.close()
  }
}

async function switchTo(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  try {
    if (openForReading(m.sessionDir).kind === 'none' || !(await m.switchAccount(args.user!))) {
      io.out(`no account ${printable(args.user!)} in ${m.sessionDir} (see \`sealed-session status\`)`)
      return EXIT.negative
    }
    io.out(`switched: ${printable(args.user!)} is the active account`)
    return EXIT.ok
  } catch (err) {
    io.err(`error: ${problem(err, args.keySource)}`)
    return EXIT.failure
  } finally {
    await m.close()
  }
}

const tempName = (n: string) => n.startsWith('.') && n.endsWith('.tmp')

async function doctor(args: Args, io: Out): Promise<number> {
  const m = managerFor(args)
  await m.close()
  const dirPath = m.sessionDir
  let failed = 0
  let notRun = 0
  const ok = (check: string, detail: string) => io.out(`ok    ${check}: ${detail}`)
  const fail = (check: string, detail: string, fix: string) => {
    failed++
    io.out(`FAIL  ${check}: ${detail}; fix: ${fix}`)
  }
  // A check that could not run for a reason another line already reports as failed.
  const skip = (check: string, why: string) => io.out(`skip  ${check}: not checked: ${why}`)
  const error = (check: string, why: string) => {
    notRun++
    io.out(`ERROR ${check}: could not be checked: ${why}`)
  }

  const chosen =
    args.dir !== undefined
      ? '--dir'
      : privateRuntimeDir() !== null
        ? 'default: $XDG_RUNTIME_DIR/<app>'
        : 'default: <tmpdir>/.<app>_session-<uid>'
  const state = openForReading(dirPath)
  if (state.kind === 'none') {
    ok('directory', `${dirPath} (${chosen}) does not exist yet; the first login creates it 0700`)
  } else if (state.kind === 'ok') {
    ok('directory', `${dirPath} (${chosen}) is private: ours, not writable by others, not a symlink`)
  } else {
    fail(
      'directory',
      state.reason,
      `remove ${dirPath} if you did not create it, or give the app (and this command) another dir`,
    )
  }

  let machineOk = true
  try {
    native.machineId()
    ok('machine id', 'present')
  } catch (err) {
    machineOk = false
    fail(
      'machine id',
      problem(err, args.keySource),
      'mount or create /etc/machine-id (an app that seals with a secret of its own does not need it)',
    )
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

  if (state.kind === 'none') {
    ok('temp files', 'none (no directory yet)')
    ok('session file', 'none (no directory yet)')
    return failed > 0 ? EXIT.negative : notRun > 0 ? EXIT.failure : EXIT.ok
  }
  if (state.kind === 'unusable') {
    const there = (() => {
      try {
        return fs.existsSync(path.join(dirPath, 'session.enc')) ? '; a session.enc is there' : ''
      } catch {
        return ''
      }
    })()
    skip('temp files', 'the directory failed its check')
    skip('session file', `the directory failed its check${there}`)
    return failed > 0 ? EXIT.negative : EXIT.failure
  }

  const dir = state.dir
  try {
    let temps: string[]
    try {
      temps = fs.readdirSync(dirPath).filter(tempName)
      if (temps.length === 0) ok('temp files', 'none')
      else
        ok(
          'temp files',
          `${temps.length} (a writer at work, or one that died: the app removes those whose writer is gone when it next opens the directory)`,
        )
    } catch (err) {
      error('temp files', (err as Error).message)
    }

    let header: Awaited<ReturnType<NativePrivateDir['peek']>> = null
    try {
      header = await dir.peek('session.enc')
    } catch {
      header = null // opened below, which names the problem
    }
    const hasFile = header !== null || fs.existsSync(path.join(dirPath, 'session.enc'))
    const hasSide = fs.existsSync(path.join(dirPath, ACCOUNTS_FILE))
    if (!hasFile && !hasSide) {
      ok('session file', 'none')
      return failed > 0 ? EXIT.negative : notRun > 0 ? EXIT.failure : EXIT.ok
    }
    let ring: NativeKeyRing
    try {
      ring = makeKeyRing('manager', args.app, { keySource: args.keySource })
    } catch (err) {
      if (!machineOk) skip('session file', 'no key without a machine id (above)')
      else error('session file', problem(err, args.keySource))
      return failed > 0 ? EXIT.negative : EXIT.failure
    }
    try {
      for (const [name, context] of [
        ['session.enc', `manager:${args.app}`],
        [ACCOUNTS_FILE, accountsContext(args.app)],
      ] as const) {
        const found = peek(dir, ring, name, context)
        const check = name === 'session.enc' ? 'session file' : 'accounts file'
        if (found === null) {
          if (check === 'session file') ok(check, 'none (no active account)')
        } else if (found instanceof Error) {
          fail(
            check,
            `${name} is there but ${problem(found, args.keySource)}`,
            'pass the --key-source the app uses, or remove it with `sealed-session logout`',
          )
        } else if ('expired' in found) {
          ok(check, 'expired (removed at the next read or sweep)')
        } else {
          ok(check, 'opens with this key')
        }
      }
    } finally {
      ring.close()
    }
  } finally {
    dir.close()
  }
  return failed > 0 ? EXIT.negative : notRun > 0 ? EXIT.failure : EXIT.ok
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
      return EXIT.ok
    }
    if (args.command === 'status') return await status(args, io)
    if (args.command === 'logout') return await logout(args, io)
    if (args.command === 'switch') return await switchTo(args, io)
    return await doctor(args, io)
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`sealed-session: ${err.message}\n\n${USAGE.trimEnd()}`)
      return EXIT.usage
    }
    io.err(`error: ${(err as Error).message}`)
    return EXIT.failure
  }
}

function describeBackend(name: string): string {
  if (name === 'node-openssl') return `node-openssl: the OpenSSL the runtime exports (${process.versions.openssl})`
  if (name === 'system-openssl') return "system-openssl: the system's libcrypto, loaded at run time"
  if (name === 'cng') return 'cng: Windows CNG (bcrypt.dll)'
  return name
}
