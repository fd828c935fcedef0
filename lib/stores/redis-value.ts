// How a session sits in its Redis value: a 16-byte version header, then the sealed envelope.
// The header ("sv" + 14 hex digits) lets a Lua script compare versions with one GETRANGE, and
// lets a bounded read (GETRANGE 0..header+maxBytes) fetch header and envelope in one command.
// A value written by 0.1 (a bare envelope, starting with the envelope magic "SEAL") reads as
// version 0.

export const HEADER_BYTES = 16
const MAGIC = 0x5345414c // "SEAL"

/** The header of `version` (a safe integer ≥ 0). */
export function versionHeader(version: number): string {
  return 'sv' + version.toString(16).padStart(14, '0')
}

/** The header a compare-and-swap compares against: what a value of this version starts with. */
export function expectedPrefix(version: number, legacy: boolean): string {
  return legacy ? 'SEAL' : versionHeader(version)
}

export interface StoredValue {
  version: number
  /** True for a 0.1 value without header. */
  legacy: boolean
  envelope: Buffer
}

/** Splits a value read back; null when it is neither layout (not ours). */
export function parseValue(value: Buffer): StoredValue | null {
  if (value.length >= 4 && value.readUInt32BE(0) === MAGIC) return { version: 0, legacy: true, envelope: value }
  if (value.length <= HEADER_BYTES || value[0] !== 0x73 || value[1] !== 0x76) return null
  // 14 lowercase hex digits, read in place (no string, no regex: this is on every read)
  let version = 0
  for (let i = 2; i < HEADER_BYTES; i++) {
    const c = value[i]
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1
    if (d < 0) return null
    version = version * 16 + d
  }
  return { version, legacy: false, envelope: value.subarray(HEADER_BYTES) }
}
