// Where a SessionManager keeps session.enc when no `dir` is given. The name must be one that
// another local user cannot take first: per user, and private.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { SessionSecurityError } from './errors'

// statfs f_type of file systems that start empty at every boot (like the seed's temp dir).
const TMPFS_MAGIC = 0x01021994
const RAMFS_MAGIC = 0x858458f6

/** $XDG_RUNTIME_DIR when it is usable: absolute, a real directory of ours, 0700, in memory. */
export function privateRuntimeDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const dir = env.XDG_RUNTIME_DIR
  if (process.platform !== 'linux' || !dir || !path.isAbsolute(dir)) return null
  try {
    const st = fs.lstatSync(dir)
    if (!st.isDirectory() || st.uid !== process.getuid!() || (st.mode & 0o777) !== 0o700) return null
    const type = fs.statfsSync(dir).type
    return type === TMPFS_MAGIC || type === RAMFS_MAGIC ? dir : null
  } catch {
    return null
  }
}

export function defaultSessionDir(appName: string, env: NodeJS.ProcessEnv = process.env): string {
  // Windows: os.tmpdir() is the user's own %TEMP%, so the name needs no uid.
  if (process.platform === 'win32') return path.join(os.tmpdir(), `.${appName}_session`)
  const runtime = privateRuntimeDir(env)
  if (runtime !== null) return path.join(runtime, appName)
  return path.join(os.tmpdir(), `.${appName}_session-${process.getuid!()}`)
}

/** The unsafe-directory error for the default location, with both ways out. */
export function squattedDefault(err: unknown, dir: string): unknown {
  if (!(err instanceof SessionSecurityError)) return err
  return new SessionSecurityError(
    `${err.message}. ${dir} is the default session directory and cannot be used safely: ` +
      `pass the SessionManager option dir to keep sessions elsewhere, or remove ${dir} ` +
      `(after checking who created it) so that it is created again, private to you`,
    err.code,
  )
}
