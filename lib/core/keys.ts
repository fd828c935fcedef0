// Builds native key rings from public options. The key bytes are derived and kept in native
// memory; what passes through JavaScript is only the caller's own secret (never the machine id).
import { toSessionError } from './errors'
import { native, type NativeKeyRing } from './native'
import { describe } from './validate'

export type Secret = string | Uint8Array
/** Where a key without a secret comes from (SessionManager only). */
export type KeySource = 'machine' | 'keychain'

export interface KeyOptions {
  /** Replaces the machine id as key material: a string of 32+ characters or 32+ bytes. */
  secret?: Secret
  /** Rotation: seal with the first, open with any. Exclusive with `secret`. */
  secrets?: readonly Secret[]
  /** End the session at reboot (Linux boot_id, macOS kern.bootsessionuuid). */
  bindToBoot?: boolean
  /** 'machine' (default) or 'keychain': a random seed kept in the OS secret store, with the machine id. */
  keySource?: KeySource
}

const MIN_SECRET = 32

function secretBytes(value: unknown, where: string): Buffer {
  if (typeof value === 'string') {
    if (value.length < MIN_SECRET) {
      throw new RangeError(`${where} must be at least ${MIN_SECRET} characters, got ${value.length}`)
    }
    return Buffer.from(value, 'utf8')
  }
  if (value instanceof Uint8Array) {
    if (value.byteLength < MIN_SECRET) {
      throw new RangeError(`${where} must be at least ${MIN_SECRET} bytes, got ${value.byteLength}`)
    }
    if (value.byteLength > 4096) throw new RangeError(`${where} must be at most 4096 bytes, got ${value.byteLength}`)
    return Buffer.from(value) // a copy we may wipe; the caller's buffer is left alone
  }
  throw new TypeError(`${where} must be a string or a Uint8Array, got ${describe(value)}`)
}

/** The secrets from options, current first; empty when the key is machine-bound. */
export function secretsFrom(options: KeyOptions): Buffer[] {
  const { secret, secrets } = options
  if (secret !== undefined && secrets !== undefined) {
    throw new TypeError('pass either options.secret or options.secrets, not both')
  }
  if (secrets !== undefined) {
    if (!Array.isArray(secrets)) throw new TypeError(`options.secrets must be an array, got ${describe(secrets)}`)
    if (secrets.length === 0 || secrets.length > 16) {
      throw new RangeError(`options.secrets must hold 1 to 16 secrets, got ${secrets.length}`)
    }
    return secrets.map((s, i) => secretBytes(s, `options.secrets[${i}]`))
  }
  return secret === undefined ? [] : [secretBytes(secret, 'options.secret')]
}

export function checkBindToBoot(value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new TypeError(`options.bindToBoot must be a boolean, got ${describe(value)}`)
  return value
}

/** The key source; a secret and keySource 'keychain' together are refused (which would win?). */
export function checkKeySource(options: KeyOptions): KeySource {
  const { keySource } = options
  if (keySource === undefined) return 'machine'
  if (keySource !== 'machine' && keySource !== 'keychain') {
    throw new TypeError(`options.keySource must be 'machine' or 'keychain', got ${describe(keySource)}`)
  }
  if (keySource === 'keychain' && (options.secret !== undefined || options.secrets !== undefined)) {
    throw new TypeError("options.keySource 'keychain' cannot be combined with options.secret or options.secrets")
  }
  return keySource
}

/**
 * A key ring for `scope`/`name`: from the secrets when there are any, else machine-bound
 * (machine id and OS uid read natively). Throws MachineIdError when neither is available.
 */
export function makeKeyRing(
  scope: 'manager' | 'store' | 'store-index',
  name: string,
  options: KeyOptions,
): NativeKeyRing {
  const ikms = secretsFrom(options)
  const bindToBoot = checkBindToBoot(options.bindToBoot)
  const keychain = checkKeySource(options) === 'keychain'
  try {
    return ikms.length > 0
      ? new native.KeyRing({ scope, name, ikms, bindToBoot })
      : new native.KeyRing({ scope, name, machine: true, keychain, bindToBoot })
  } catch (err) {
    throw toSessionError(err)
  } finally {
    for (const b of ikms) b.fill(0)
  }
}
