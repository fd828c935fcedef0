// What a machine-bound key is derived from on Windows (docs/security.md#keys), read without our addon:
// MachineGuid from the 64-bit registry view, and the current user's SID (the ProfileList entry
// whose profile is this user's home directory). Tests derive the key from these in JavaScript.
import { execFileSync } from 'node:child_process'
import * as os from 'node:os'

function reg(args: string[]): string {
  return execFileSync('reg', ['query', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
}

export function windowsMachineGuid(): string {
  const m = /MachineGuid\s+REG_SZ\s+(\S+)/.exec(
    reg(['HKLM\\SOFTWARE\\Microsoft\\Cryptography', '/v', 'MachineGuid', '/reg:64']),
  )
  if (!m) throw new Error('no MachineGuid in the registry')
  return m[1]
}

export function windowsUserSid(): string {
  const out = reg(['HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\ProfileList', '/s'])
  const home = os.homedir().toLowerCase()
  for (const block of out.split(/\r?\n\r?\n/)) {
    const sid = /ProfileList\\(S-1-[\d-]+)/.exec(block)
    const profile = /ProfileImagePath\s+REG_(?:EXPAND_)?SZ\s+(.+)/.exec(block)
    if (sid && profile && profile[1].trim().toLowerCase() === home) return sid[1]
  }
  throw new Error(`no ProfileList entry for ${os.homedir()}`)
}
