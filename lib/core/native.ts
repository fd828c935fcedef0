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
  /** 'store-index': the key that names identity indexes (HMAC), apart from the sealing key. */
  scope: 'manager' | 'store' | 'store-index'
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
  /** Wipes every key (the crypto backend's cleanse); later calls throw ERR_SESSION_CLOSED. */
  close(): void
  /** nonce is for known-answer tests only; production seals always draw a fresh random nonce. */
  seal(plaintext: Buffer | string, context: string, createdAt: number, expiresAt: number, nonce?: Buffer): Buffer
  open(envelope: Buffer, context: string, maxBytes: number, asString?: false): OpenedEnvelope
  /** The plaintext decoded as UTF-8 natively (no Buffer): the Redis store's read path. */
  open(envelope: Buffer, context: string, maxBytes: number, asString: true): OpenedFile
  /** Lowercase hex HMAC-SHA256 of the message's UTF-8 bytes under key `keyIndex` (default 0, the current one). */
  mac(message: string, keyIndex?: number): string
}

export interface SweepResult {
  scanned: number
  removed: number
  /** Files examined and left alone: not envelopes, or not ours (symlink, FIFO, foreign owner). */
  skipped: number
  /** The names starting with the sweep's collectPrefix that it did not remove (empty without one). */
  collected: string[]
}

export interface NativeLock {
  release(): void
}

export interface CasSealOptions {
  /** The lock file taken for the write (`<stripe>.lock`). */
  stripe: string
  plaintext: Buffer | string
  context: string
  createdAt: number
  expiresAt: number
  /** The largest current record read for the comparison. */
  maxBytes: number
  /** The current record's expiry is judged at this time. */
  now: number
  mode: 'any' | 'absent' | 'version'
  /** With mode 'version': the version the live record must carry. */
  expected?: number
}

export interface CasSealResult {
  outcome: 'written' | 'missing' | 'conflict' | 'exists'
  /** On 'conflict': the live record's plaintext, and the stripe lock, still held. */
  current?: string
  lock?: NativeLock
  /** The code of an unreadable record that was treated as none. */
  unreadable?: string
}

export interface NativePrivateDir {
  readonly path: string
  /**
   * The directory's identity taken when it was opened ("device:inode"; Windows "volume:index"):
   * the same for every spelling of its path. In-process lock queues are keyed by it.
   */
  readonly id: string
  readonly closed: boolean
  close(): void
  /** Seal and replace atomically; with existingOnly, write nothing (false) when the file is gone. */
  sealToFile(
    ring: NativeKeyRing,
    name: string,
    plaintext: Buffer | string,
    context: string,
    createdAt: number,
    expiresAt: number,
    existingOnly?: boolean,
  ): Promise<boolean>
  sealToFileSync(
    ring: NativeKeyRing,
    name: string,
    plaintext: Buffer | string,
    context: string,
    createdAt: number,
    expiresAt: number,
    existingOnly?: boolean,
  ): boolean
  /**
   * open, read (size-capped), check expiry from the header, decrypt, close: one call. On Linux
   * ≥ 5.12 served on the main thread when the kernel can do it without blocking (page cache,
   * cached lookups), on the thread pool otherwise; the promise settles on a later tick either way.
   */
  openFile(
    ring: NativeKeyRing,
    name: string,
    context: string,
    maxBytes: number,
    now: number,
    flags: number,
  ): Promise<OpenFileResult>
  /** openFile's non-blocking attempt, answered now: the result, or undefined when only the pool
   *  can read it (not cached, no RESOLVE_CACHED/RWF_NOWAIT here, or inline reads are off). */
  openFileNow(
    ring: NativeKeyRing,
    name: string,
    context: string,
    maxBytes: number,
    now: number,
    flags: number,
  ): OpenFileResult | undefined
  openFileSync(
    ring: NativeKeyRing,
    name: string,
    context: string,
    maxBytes: number,
    now: number,
    flags: number,
  ): OpenFileResult
  remove(name: string): Promise<boolean>
  removeSync(name: string): boolean
  peek(name: string): Promise<EnvelopeHeader | null>
  /** Names of regular files in the directory, temp and lock files excluded. */
  list(): Promise<string[]>
  /**
   * Remove envelopes that expired at or before `now`. A file of ours whose mtime (set to its
   * expiry by sealToFile) is still ahead of `now` is passed by on one fstatat; any other file's
   * 40-byte header decides, so a forged mtime can only delay a removal. Each removal, here and
   * in openFile, holds the file's lock (taken without waiting: a file whose lock is busy is left).
   */
  sweep(now: number, collectPrefix?: string): Promise<SweepResult>
  sweepSync(now: number, collectPrefix?: string): SweepResult
  /**
   * Compare-and-swap write of a store record in one pool job: under the flock of `<stripe>.lock`,
   * opens `name` (an expired one is removed, an unreadable one counts as none), checks `mode`
   * ('any'; 'absent'; 'version': a live record whose trailing `"version":N` is `expected`), then
   * seals and writes. On 'conflict' nothing is written and the lock is still held: write, then
   * release it.
   */
  casSeal(ring: NativeKeyRing, name: string, options: CasSealOptions): Promise<CasSealResult>
  /** Whether writes through this handle fsync the file and the directory (default true). Off,
   *  a write still replaces the file by rename: it survives a crash of the process, not of the
   *  kernel or a power loss. */
  setSyncWrites(on: boolean): void
  /** Exclusive advisory lock (flock) on `<name>.lock`, waited for on the thread pool. */
  lock(name: string): Promise<NativeLock>
  lockSync(name: string): NativeLock
  /** The lock if it is free now, else null: never waits. */
  tryLockSync(name: string): NativeLock | null
}

export interface InlineReadStats {
  /** False once the kernel answered ENOSYS/EPERM (process-wide), and off Linux. */
  available: boolean
  /** Async openFile calls tried on the main thread. */
  attempts: number
  /** Of those, settled from the main thread without the pool. */
  inline: number
  /** Async openFile calls that ran on the thread pool. */
  pool: number
}

export interface NativeBinding {
  KeyRing: new (spec: KeyRingSpec) => NativeKeyRing
  /**
   * Opens (creating if asked) a private 0700 directory owned by the caller; refuses unsafe ones.
   * removeStaleTemps (default true): false leaves dead writers' temp files (read-only inspection).
   */
  PrivateDir: new (
    dirPath: string,
    create: boolean,
    removeStaleTemps?: boolean,
  ) => NativePrivateDir
  /** Opens (creating if asked) a private directory on the thread pool. */
  openPrivateDir(dirPath: string, create: boolean): Promise<NativePrivateDir>
  /** Whether non-blocking reads are still tried in this process, and how this instance's async reads went. */
  inlineReads(): InlineReadStats
  /**
   * Test and bench switch (this addon instance): 0 normal, 1 every inline read answers EAGAIN
   * (cold cache), 2 openat2 answers ENOSYS, 3 no inline attempt (every read on the pool, as 0.1),
   * 4 every non-blocking read answers EOPNOTSUPP (a filesystem without RWF_NOWAIT).
   */
  setInlineReadMode(mode: 0 | 1 | 2 | 3 | 4): void
  peekHeader(envelope: Buffer): EnvelopeHeader
  machineId(): string
  bootId(): string
  /** Key rings constructed and not yet destroyed (wiped), process-wide. */
  liveKeyRings(): number
  /** 'ok', or why the OS secret store cannot be used (no Secret Service, locked, no libsecret). */
  keychainStatus(): string
  /** The flags of openFile/openFileSync, defined once in the core (private_dir.h). */
  OPEN_FLAGS: Readonly<{ REMOVE_EXPIRED: number; REMOVE_INVALID: number; AS_STRING: number; LOCK_HELD: number }>
  /**
   * The crypto backend's name ('node-openssl', 'system-openssl'), selected on first use;
   * throws ERR_SESSION_CRYPTO_UNAVAILABLE naming what is missing when there is none.
   */
  cryptoBackend(): string
  HEADER_SIZE: number
  MIN_ENVELOPE_SIZE: number
  DEFAULT_MAX_BYTES: number
}

// lib/ (sources under vitest) and dist/ (built) both sit one level below the package root.
const root = path.join(__dirname, '..', '..')
export const native: NativeBinding = require('node-gyp-build')(root)

/** Remove a file found expired (under its lock). */
export const OPEN_REMOVE_EXPIRED: number = native.OPEN_FLAGS.REMOVE_EXPIRED
/** Remove a file that cannot be opened (tampered, another key's, truncated). */
export const OPEN_REMOVE_INVALID: number = native.OPEN_FLAGS.REMOVE_INVALID
/** Return the plaintext as a string (decoded as UTF-8 natively), saving a Buffer. */
export const OPEN_AS_STRING: number = native.OPEN_FLAGS.AS_STRING
/** The caller holds the file's lock (`lock(name)`): a removal the read makes does not take it. */
export const OPEN_LOCK_HELD: number = native.OPEN_FLAGS.LOCK_HELD
