// Loads the addon (a prebuild first, a local build second) and describes its surface.
// Nothing here validates arguments: the public classes do that before calling in, and the
// addon checks types again itself so that no call from JavaScript can crash the process.
import * as path from 'node:path'

/** The 40-byte envelope header, readable without a key. Times are ms since the epoch. */
export interface EnvelopeHeader {
  version: number
  flags: number
  /** 8 hex chars: the first 4 bytes of SHA-256("sealed-session kid" ‖ key). */
  keyId: string
  createdAt: number
  /** 0 means never. */
  expiresAt: number
}

export interface OpenedEnvelope extends EnvelopeHeader {
  plaintext: Buffer
  /** Index of the key that opened it: 0 is the current key, more means re-seal on next write. */
  keyIndex: number
}

/** An opened file: plaintext is a string when OPEN_AS_STRING was passed. */
export interface OpenedFile extends EnvelopeHeader {
  plaintext: Buffer | string
  keyIndex: number
}

/** What openFile found: null when there is no file. */
export type OpenFileResult = OpenedFile | { expired: true; createdAt: number; expiresAt: number } | null

export interface KeyRingSpec {
  scope: 'manager' | 'store'
  name: string
  /** Read the machine id and the OS uid natively (the default, machine-bound key). */
  machine?: boolean
  /** With machine: the IKM is a seed kept in the OS secret store (created on first use) ‖ the machine id. */
  keychain?: boolean
  /** IKMs, current first; used when `machine` is not set. */
  ikms?: Buffer[]
  /** uid for the HKDF info; empty unless machine-bound. Only with `ikms`. */
  uid?: string
  /** Read /proc/sys/kernel/random/boot_id and bind the key to it. */
  bindToBoot?: boolean
  /** An explicit boot id (tests); overrides bindToBoot's read. */
  bootId?: string
}

export interface NativeKeyRing {
  /** Key ids (hex), current first. Key bytes themselves are never exposed. */
  readonly keyIds: string[]
  readonly closed: boolean
  readonly flags: number
  /** Wipes every key (OPENSSL_cleanse); later calls throw ERR_SESSION_CLOSED. */
  close(): void
  /** nonce is for known-answer tests only; production seals always draw a fresh random nonce. */
  seal(plaintext: Buffer | string, context: string, createdAt: number, expiresAt: number, nonce?: Buffer): Buffer
  open(envelope: Buffer, context: string, maxBytes: number, asString?: false): OpenedEnvelope
  /** The plaintext decoded as UTF-8 natively (no Buffer): the Redis store's read path. */
  open(envelope: Buffer, context: string, maxBytes: number, asString: true): OpenedFile
}

export interface SweepResult {
  scanned: number
  removed: number
  /** Files that are not envelopes (left alone). */
  skipped: number
}

export const OPEN_REMOVE_EXPIRED = 1
export const OPEN_REMOVE_INVALID = 2
/** Return the plaintext as a string (decoded as UTF-8 natively), saving a Buffer. */
export const OPEN_AS_STRING = 4

export interface NativeLock {
  release(): void
}

export interface NativePrivateDir {
  readonly path: string
  readonly closed: boolean
  close(): void
  /** Seal and replace atomically; with existingOnly, write nothing (false) when the file is gone. */
  sealToFile(ring: NativeKeyRing, name: string, plaintext: Buffer | string, context: string, createdAt: number, expiresAt: number, existingOnly?: boolean): Promise<boolean>
  sealToFileSync(ring: NativeKeyRing, name: string, plaintext: Buffer | string, context: string, createdAt: number, expiresAt: number, existingOnly?: boolean): boolean
  /** open, read (size-capped), check expiry from the header, decrypt, close: one call. */
  openFile(ring: NativeKeyRing, name: string, context: string, maxBytes: number, now: number, flags: number): Promise<OpenFileResult>
  openFileSync(ring: NativeKeyRing, name: string, context: string, maxBytes: number, now: number, flags: number): OpenFileResult
  remove(name: string): Promise<boolean>
  removeSync(name: string): boolean
  peek(name: string): Promise<EnvelopeHeader | null>
  /** Names of regular files in the directory, temp and lock files excluded. */
  list(): Promise<string[]>
  /** Remove envelopes whose header says they expired at or before `now`; reads 40 bytes of each. */
  sweep(now: number): Promise<SweepResult>
  sweepSync(now: number): SweepResult
  /** Exclusive advisory lock (flock) on `<name>.lock`, waited for on the thread pool. */
  lock(name: string): Promise<NativeLock>
  lockSync(name: string): NativeLock
}

export interface NativeBinding {
  KeyRing: new (spec: KeyRingSpec) => NativeKeyRing
  /** Opens (creating if asked) a private 0700 directory owned by the caller; refuses unsafe ones. */
  PrivateDir: new (dirPath: string, create: boolean) => NativePrivateDir
  peekHeader(envelope: Buffer): EnvelopeHeader
  machineId(): string
  bootId(): string
  /** Key rings constructed and not yet destroyed (wiped), process-wide. */
  liveKeyRings(): number
  /** 'ok', or why the OS secret store cannot be used (no Secret Service, locked, no libsecret). */
  keychainStatus(): string
  HEADER_SIZE: number
  MIN_ENVELOPE_SIZE: number
  DEFAULT_MAX_BYTES: number
}

// lib/ (sources under vitest) and dist/ (built) both sit one level below the package root.
const root = path.join(__dirname, '..')
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const native: NativeBinding = require('node-gyp-build')(root)
