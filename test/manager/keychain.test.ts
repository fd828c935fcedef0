// KeySource 'keychain' against a real gnome-keyring-daemon on a private
// D-Bus session bus, both started and stopped here (test/helpers/keyring-daemon.ts). Each
// scenario runs in a fresh child process, as an app would. Pinned derivation: IKM = the
// app's 32-byte seed (kept hex-encoded in the Secret Service, schema
// org.sealed-session.KeySeed, attribute app = <appName>) followed by the machine id; salt
// and info exactly as for the machine-bound key (uid included).
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { requireDist } from '../helpers/dist'
import { hkdfKey, keyId } from '../helpers/envelope-js'
import { HAS_KEYRING_TOOLS, startKeyring, type KeyringSession } from '../helpers/keyring-daemon'
import { lastJsonLine, ROOT, runNode } from '../helpers/run-node'

const APP = 'kc-app'

interface Seen {
  userId?: string | null
  accounts?: string[]
  warned?: string[]
  file?: string
  error?: { name: string; code: string; message: string }
}

async function child(
  mode: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  extra: string[] = [],
  nodeArgs: string[] = [],
): Promise<Seen> {
  const ran = await runNode(
    [...nodeArgs, path.join(ROOT, 'test/fixtures/manager-keychain.mjs'), mode, dir, APP, ...extra],
    { env },
  )
  if (ran.code !== 0) throw new Error(`child ${mode} failed (${ran.code}): ${ran.stderr}`)
  return lastJsonLine<Seen>(ran)
}

/** The environment of a machine with no Secret Service at all. */
function noBusEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.DBUS_SESSION_BUS_ADDRESS
  env.XDG_RUNTIME_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-nobus-'))
  return env
}

describe.skipIf(!HAS_KEYRING_TOOLS)("keySource 'keychain' (gnome-keyring-daemon on a private D-Bus session)", () => {
  let keyring: KeyringSession
  let root: string
  beforeAll(async () => {
    requireDist()
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-kc-'))
    keyring = await startKeyring()
  }, 30_000)
  afterAll(async () => {
    await keyring?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('creates a seed once, and a fresh process with the same keychain reads the session', async () => {
    const dir = path.join(root, 'a')
    expect(await child('login', dir, keyring.env)).toEqual({ userId: 'kc-user', warned: [] })
    const seed = keyring.run('secret-tool', ['lookup', 'app', APP]).trim()
    expect(seed).toMatch(/^[0-9a-f]{64}$/)
    expect(await child('read', dir, keyring.env)).toEqual({ userId: 'kc-user', warned: [] })
    // The seed was not replaced by the second process.
    expect(keyring.run('secret-tool', ['lookup', 'app', APP]).trim()).toBe(seed)

    // The key is HKDF(seed ‖ machine id) with the machine-bound info: check the key id on disk.
    const machineId = fs.readFileSync('/etc/machine-id', 'ascii').trim()
    const ikm = Buffer.concat([Buffer.from(seed, 'hex'), Buffer.from(machineId, 'ascii')])
    const key = hkdfKey(ikm, 'manager', APP, String(process.getuid!()), '')
    expect(fs.readFileSync(path.join(dir, 'session.enc')).subarray(8, 12).toString('hex')).toBe(
      keyId(key).toString('hex'),
    )
  })

  it('the machine-bound key alone cannot open a keychain session (a copied disk image without the keychain)', async () => {
    const dir = path.join(root, 'b')
    await child('login', dir, keyring.env)
    const copy = path.join(root, 'b-copy')
    fs.cpSync(dir, copy, { recursive: true })
    expect(await child('machine', copy, keyring.env)).toEqual({ userId: null, warned: ['ERR_SESSION_UNKNOWN_KEY'] })
  })

  it('accounts under the keychain key: kept, switched, and read by a fresh process', async () => {
    const dir = path.join(root, 'accounts')
    expect(await child('accounts', dir, keyring.env)).toEqual({
      userId: 'kc-a',
      accounts: ['kc-a*', 'kc-b'],
      warned: [],
    })
    expect(await child('accounts-read', dir, keyring.env)).toEqual({
      userId: 'kc-a',
      accounts: ['kc-a*', 'kc-b'],
      warned: [],
    })
    // Both files are sealed with the keychain-derived key: the machine key alone opens neither.
    const ids = ['session.enc', 'accounts.enc'].map((f) =>
      fs.readFileSync(path.join(dir, f)).subarray(8, 12).toString('hex'),
    )
    expect(ids[0]).toBe(ids[1])
    const copy = path.join(root, 'accounts-copy')
    fs.cpSync(dir, copy, { recursive: true })
    expect((await child('machine', copy, keyring.env)).userId).toBeNull()
  })

  it('no Secret Service: ERR_KEYCHAIN_UNAVAILABLE naming the other key sources, nothing written', async () => {
    const dir = path.join(root, 'c')
    const seen = await child('login', dir, noBusEnv())
    expect(seen.error).toMatchObject({ name: 'KeychainUnavailableError', code: 'ERR_KEYCHAIN_UNAVAILABLE' })
    expect(seen.error!.message).toContain("keySource 'machine'")
    expect(seen.error!.message).toContain('secret')
    expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(false)
  })

  it('the seed never becomes a JavaScript value: not in a heap snapshot in any encoding', async () => {
    const dir = path.join(root, 'd')
    const file = path.join(root, 'kc.heapsnapshot')
    expect((await child('snapshot', dir, keyring.env, [file], ['--expose-gc'])).file).toBe(file)
    const seed = keyring.run('secret-tool', ['lookup', 'app', APP]).trim()
    const snap = fs.readFileSync(file)
    fs.rmSync(file)
    const raw = Buffer.from(seed, 'hex')
    for (const needle of [seed, seed.toUpperCase(), raw.toString('base64'), raw.toString('base64url')]) {
      expect(snap.includes(Buffer.from(needle))).toBe(false)
    }
    expect(snap.includes(raw)).toBe(false)
    // Control: the snapshot is searchable (the record's own strings are in it).
    expect(snap.includes(Buffer.from('kc-user'))).toBe(true)
  }, 40_000)

  it('the CLI: status reads a keychain session; doctor checks the keychain (ok here, FAIL without a bus)', async () => {
    const dir = path.join(root, 'f')
    await child('login', dir, keyring.env)
    const bin = (args: string[], env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, [path.join(ROOT, 'bin/sealed-session.js'), ...args], {
        cwd: ROOT,
        env,
        encoding: 'utf8',
        timeout: 20_000,
      })
    const status = bin(['status', '--app', APP, '--dir', dir, '--key-source', 'keychain'], keyring.env)
    expect(status.status).toBe(0)
    expect(status.stdout).toContain('logged in: kc-user')
    const good = bin(['doctor', '--app', APP, '--dir', dir, '--key-source', 'keychain'], keyring.env)
    expect(good.stdout).toContain('ok    keychain: the OS secret store is available and unlocked')
    expect(good.stdout).toContain('ok    session file: opens with this key')
    expect(good.status).toBe(0)
    const bad = bin(['doctor', '--app', APP, '--dir', dir, '--key-source', 'keychain'], noBusEnv())
    expect(bad.status).toBe(1)
    expect(bad.stdout).toMatch(/FAIL {2}keychain: .*no D-Bus session bus.*fix: /)
    // Without the keychain, status still says a file is there, exits 3, and asks for nothing a shell cannot give.
    const blind = bin(['status', '--app', APP, '--dir', dir, '--key-source', 'keychain'], noBusEnv())
    expect(blind.status).toBe(3)
    expect(blind.stdout).toContain('a session file is there (session.enc, until ')
    expect(blind.stderr).toContain('unlock the keychain, or pass the --key-source the app uses')
    expect(blind.stderr).not.toMatch(/secret \(options\.secret\)|pass a .?secret/)
  })

  it("four first runs at once store one seed: every process's login reads back afterwards", async () => {
    // A fresh app name: no seed in the keyring yet. The test gate (SEALED_SESSION_TEST_SEED_GATE)
    // holds each process right after its lookup found no seed, until all four have got there.
    const app = 'kc-race'
    const N = 4
    const gate = fs.mkdtempSync(path.join(root, 'gate-'))
    const go = path.join(gate, 'go')
    expect(spawnSync('mkfifo', [go]).status).toBe(0)
    const env = { ...keyring.env, SEALED_SESSION_TEST_SEED_GATE: gate }
    const dirs = Array.from({ length: N }, (_, i) => path.join(root, `race-${i}`))
    const runs = dirs.map((dir) =>
      runNode([path.join(ROOT, 'test/fixtures/manager-keychain.mjs'), 'login', dir, app], { env }),
    )
    const arrived = () => fs.readdirSync(gate).filter((n) => n.startsWith('arrived-')).length
    for (const deadline = Date.now() + 20_000; arrived() < N; ) {
      if (Date.now() > deadline) throw new Error(`only ${arrived()} of ${N} processes reached the seed's creation`)
      await new Promise((res) => setTimeout(res, 20))
    }
    // Opening the FIFO for writing releases every process waiting to read it.
    fs.closeSync(fs.openSync(go, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK))
    for (const ran of await Promise.all(runs)) {
      expect(ran.code, ran.stderr).toBe(0)
      expect(lastJsonLine<Seen>(ran)).toEqual({ userId: 'kc-user', warned: [] })
    }
    // Fresh processes, the one seed the keyring keeps: each login opens.
    for (const dir of dirs) {
      const ran = await runNode([path.join(ROOT, 'test/fixtures/manager-keychain.mjs'), 'read', dir, app], {
        env: keyring.env,
      })
      expect(lastJsonLine<Seen>(ran), dir).toEqual({ userId: 'kc-user', warned: [] })
    }
  }, 60_000)

  it('a locked keyring: ERR_KEYCHAIN_UNAVAILABLE saying so, never a silent fallback', async () => {
    const dir = path.join(root, 'e')
    await child('login', dir, keyring.env)
    keyring.lock()
    const seen = await child('read', dir, keyring.env)
    expect(seen.error).toMatchObject({ code: 'ERR_KEYCHAIN_UNAVAILABLE' })
    expect(seen.error!.message).toContain('locked')
    expect(fs.existsSync(path.join(dir, 'session.enc'))).toBe(true) // not discarded
  })
})

describe('the addon has no link-time dependency on libsecret', () => {
  it.skipIf(process.platform !== 'linux')('ldd lists neither libsecret nor GLib', () => {
    const addon = path.join(ROOT, 'build', 'Release', 'sealed_session.node')
    expect(fs.existsSync(addon)).toBe(true)
    const r = spawnSync('ldd', [addon], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stdout).not.toMatch(/libsecret|libglib|libgobject/)
  })
})
