// Which crypto backend the native core uses (docs/platforms.md#crypto-backends).
import { SessionCryptoUnavailableError, toSessionError } from './errors'
import { native } from './native'

/**
 * The crypto backend in use: `'node-openssl'` (the OpenSSL the runtime exports; Node),
 * `'system-openssl'` (the system's libcrypto, loaded at run time; Bun, Deno, Electron),
 * `'cng'` (Windows CNG, where the runtime exports no OpenSSL), or `'none'` when there is none (then every call that needs crypto throws
 * `SessionCryptoUnavailableError`, whose message names what is missing).
 * `SEALED_SESSION_CRYPTO` forces one; it is read once, on the first call that needs crypto.
 */
export function cryptoBackend(): string {
  return cryptoUnavailableReason() === null ? native.cryptoBackend() : 'none'
}

/** Why there is no crypto backend (what is missing), or null when there is one. */
export function cryptoUnavailableReason(): string | null {
  try {
    native.cryptoBackend()
    return null
  } catch (err) {
    const e = toSessionError(err)
    if (e instanceof SessionCryptoUnavailableError) return e.message
    throw e
  }
}
