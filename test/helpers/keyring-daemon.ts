// A real Secret Service for keychain tests: a private D-Bus session bus (dbus-daemon on a
// socket in a temp directory) and gnome-keyring-daemon on it, its login keyring created and
// unlocked with a password given on stdin. Both are started here and stopped by pid; HOME and
// XDG_RUNTIME_DIR point into the temp directory, so the user's own keyring is never touched.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { needs } from './ci'

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Whether the tools exist; under CI=true their absence is a failure (.ci/run installs them). */
export const HAS_KEYRING_TOOLS = needs(
  process.platform === 'linux' && ['dbus-daemon', 'gnome-keyring-daemon', 'secret-tool', 'dbus-send'].every(have),
  'dbus-daemon, gnome-keyring-daemon, secret-tool and dbus-send (Debian: dbus, gnome-keyring, libsecret-tools)',
)

export interface KeyringSession {
  /** Environment for child processes that should see this Secret Service. */
  env: NodeJS.ProcessEnv
  /** secret-tool / dbus-send on this bus. */
  run(cmd: string, args: string[]): string
  lock(): void
  stop(): Promise<void>
}

function waitForLine(child: ChildProcess, test: (out: string) => string | null, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 10 s: ${err}`)), 10_000)
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const found = test(out)
      if (found !== null) {
        clearTimeout(timer)
        resolve(found)
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code}): ${err}`))
    })
  })
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

export async function startKeyring(password = 'keyring test password'): Promise<KeyringSession> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-keyring-'))
  const runtime = path.join(root, 'run')
  fs.mkdirSync(runtime, { mode: 0o700 })
  const home = path.join(root, 'home')
  fs.mkdirSync(home, { mode: 0o700 })
  const socket = path.join(runtime, 'bus')
  // The stock session configuration without its service directories, so nothing is ever
  // auto-started on this bus (a second keyring daemon we would not know the pid of).
  const config = path.join(root, 'session.conf')
  const stock = fs.readFileSync('/usr/share/dbus-1/session.conf', 'utf8')
  fs.writeFileSync(
    config,
    stock
      .replace(/<standard_session_servicedirs\s*\/>/, '')
      .replace(/<servicedir>[^<]*<\/servicedir>/g, '')
      .replace(/<listen>[^<]*<\/listen>/, `<listen>unix:path=${socket}</listen>`),
  )
  const bus = spawn('dbus-daemon', [`--config-file=${config}`, '--nofork', '--print-address=1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const children: ChildProcess[] = [bus]
  const stop = async () => {
    for (const c of children.reverse()) await stopChild(c)
    fs.rmSync(root, { recursive: true, force: true })
  }
  try {
    const address = await waitForLine(
      bus,
      (out) => (out.includes('\n') ? out.split('\n')[0].trim() : null),
      'dbus-daemon',
    )
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DBUS_SESSION_BUS_ADDRESS: address,
      HOME: home,
      XDG_RUNTIME_DIR: runtime,
      XDG_DATA_HOME: path.join(home, '.local', 'share'),
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
    }
    delete env.DISPLAY
    delete env.WAYLAND_DISPLAY
    const keyring = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    children.push(keyring)
    keyring.stdin.end(password)
    let keyringErr = ''
    keyring.stderr.setEncoding('utf8').on('data', (d: string) => (keyringErr += d))
    keyring.stdout.resume()
    const run = (cmd: string, args: string[]) => {
      const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 10_000 })
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`)
      return r.stdout
    }
    // Ready once the daemon owns org.freedesktop.secrets on our bus (polled: it says nothing).
    for (let i = 0; ; i++) {
      if (keyring.exitCode !== null) throw new Error(`gnome-keyring-daemon exited (${keyring.exitCode}): ${keyringErr}`)
      const owner = run('dbus-send', [
        '--session',
        '--print-reply',
        '--dest=org.freedesktop.DBus',
        '/org/freedesktop/DBus',
        'org.freedesktop.DBus.NameHasOwner',
        'string:org.freedesktop.secrets',
      ])
      if (owner.includes('boolean true')) break
      if (i > 100) throw new Error(`gnome-keyring-daemon never took org.freedesktop.secrets: ${keyringErr}`)
      await new Promise((res) => setTimeout(res, 100))
    }
    const lock = () => {
      run('dbus-send', [
        '--session',
        '--print-reply',
        '--dest=org.freedesktop.secrets',
        '/org/freedesktop/secrets',
        'org.freedesktop.Secret.Service.Lock',
        'array:objpath:/org/freedesktop/secrets/collection/login',
      ])
    }
    return { env, run, lock, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
