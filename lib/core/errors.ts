// Every error the package throws on purpose (other than argument TypeError/RangeError)
// is a SessionError with a stable `code`. Native errors arrive as plain Errors carrying
// `code` (and `errno`/`syscall` for I/O); toSessionError turns them into these classes.

export class SessionError extends Error {
  readonly code: string
  constructor(message: string, code = 'ERR_SESSION', options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** The envelope is not one: wrong magic, version, reserved bits, or too short. */
export class SessionFormatError extends SessionError {}
/** The envelope failed authentication: flipped bits, wrong key, wrong context. */
export class SessionTamperedError extends SessionError {}
/** The envelope was sealed under a key id none of our keys has. */
export class SessionUnknownKeyError extends SessionError {}
/** Over the size cap (`maxBytes`). */
export class SessionTooLargeError extends SessionError {}
/** A directory or file that is a symlink, owned by someone else, or writable by others. */
export class SessionSecurityError extends SessionError {}
/** No machine id could be read; pass `secret` or mount /etc/machine-id. */
export class MachineIdError extends SessionError {}
/** The operating system refused a file operation (ENOSPC, EFBIG, EACCES, ...). */
export class SessionIOError extends SessionError {
  readonly errno?: number
  readonly syscall?: string
  constructor(message: string, code: string, errno?: number, syscall?: string) {
    super(message, code)
    this.errno = errno
    this.syscall = syscall
  }
}
/** The key ring, manager or store was closed. */
export class SessionClosedError extends SessionError {}
/** The backing store (Redis) cannot be reached right now. */
export class SessionStoreUnavailableError extends SessionError {}
/** save() met a newer version of the session too many times in a row (ERR_SESSION_CONFLICT):
 *  other writers kept changing it. Nothing of this copy was written; retrying later is safe. */
export class SessionConflictError extends SessionError {}

/** A bounded wait for a cross-process lock ran out (ERR_SESSION_LOCK_TIMEOUT): another
 *  process (or another call in this one) held it the whole time. Nothing was changed. */
export class SessionLockTimeoutError extends SessionError {}

/** keySource 'keychain': no OS secret store, or it is locked (ERR_KEYCHAIN_UNAVAILABLE). */
export class KeychainUnavailableError extends SessionError {}
/** OpenSSL failed where it does not fail on valid input: no randomness for a nonce, seed or
 *  temp name, or HKDF, SHA-256, HMAC or AES-GCM itself failed (ERR_SESSION_CRYPTO). */
export class SessionCryptoError extends SessionError {}
/** No crypto backend (ERR_SESSION_CRYPTO_UNAVAILABLE): the host exports no OpenSSL and the
 *  system's libcrypto could not be loaded, or SEALED_SESSION_CRYPTO names one that is missing or
 *  unknown. The message names what is missing. Thrown by the first call that needs crypto. */
export class SessionCryptoUnavailableError extends SessionError {}
/** The native core ran out of memory (ERR_SESSION_NO_MEMORY) or met an unexpected C++
 *  exception (ERR_SESSION_INTERNAL). */
export class SessionInternalError extends SessionError {}

const byCode: Record<string, new (message: string, code: string) => SessionError> = {
  ERR_SESSION_BAD_MAGIC: SessionFormatError,
  ERR_SESSION_BAD_VERSION: SessionFormatError,
  ERR_SESSION_BAD_RESERVED: SessionFormatError,
  ERR_SESSION_TRUNCATED: SessionFormatError,
  ERR_SESSION_TAMPERED: SessionTamperedError,
  ERR_SESSION_UNKNOWN_KEY: SessionUnknownKeyError,
  ERR_SESSION_TOO_LARGE: SessionTooLargeError,
  ERR_SESSION_UNSAFE_PATH: SessionSecurityError,
  ERR_MACHINE_ID: MachineIdError,
  ERR_SESSION_CLOSED: SessionClosedError,
  ERR_SESSION_STORE_UNAVAILABLE: SessionStoreUnavailableError,
  ERR_KEYCHAIN_UNAVAILABLE: KeychainUnavailableError,
  ERR_SESSION_CONFLICT: SessionConflictError,
  ERR_SESSION_LOCK_TIMEOUT: SessionLockTimeoutError,
  ERR_SESSION_CRYPTO: SessionCryptoError,
  ERR_SESSION_CRYPTO_UNAVAILABLE: SessionCryptoUnavailableError,
  ERR_SESSION_INTERNAL: SessionInternalError,
  ERR_SESSION_NO_MEMORY: SessionInternalError,
}

/** Codes meaning "this envelope cannot be opened with what we have": callers treat them as no session. */
export const UNREADABLE_CODES: ReadonlySet<string> = new Set([
  'ERR_SESSION_BAD_MAGIC',
  'ERR_SESSION_BAD_VERSION',
  'ERR_SESSION_BAD_RESERVED',
  'ERR_SESSION_TRUNCATED',
  'ERR_SESSION_TAMPERED',
  'ERR_SESSION_UNKNOWN_KEY',
  'ERR_SESSION_TOO_LARGE',
])

/** Map an error thrown by the addon to its SessionError class; anything else passes through. */
export function toSessionError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof SessionError) return err
  const e = err as Error & { code?: unknown; errno?: unknown; syscall?: unknown }
  if (typeof e.code !== 'string' || !e.code.startsWith('ERR_')) return err
  if (e.code === 'ERR_SESSION_IO') {
    return new SessionIOError(
      e.message,
      e.code,
      typeof e.errno === 'number' ? e.errno : undefined,
      typeof e.syscall === 'string' ? e.syscall : undefined,
    )
  }
  const Cls = byCode[e.code]
  return Cls ? new Cls(e.message, e.code) : err
}

/** Awaits a native call, rejecting with the SessionError class its code names. */
export async function mapNative<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw toSessionError(err)
  }
}
