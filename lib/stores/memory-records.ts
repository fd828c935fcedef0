// The memory store's records by storage name, in least-recently-used order (a Map keeps insertion
// order; the store moves a record to the end on every use), with what eviction needs kept in step
// on every set and delete: the bytes of JSON held in all, and which records have no identity
// (those are evicted first). A Map subclass, so no call site can change a record and forget them.
import { recordIdentity, type VersionedRecord } from './base-store'

/** What eviction needs of one record, computed once per record object (records are never mutated). */
interface Info {
  bytes: number
  identity: string | null
}

const infos = new WeakMap<VersionedRecord, Info>()

function infoOf(record: VersionedRecord): Info {
  let info = infos.get(record)
  if (info === undefined) {
    info = { bytes: Buffer.byteLength(JSON.stringify(record)), identity: recordIdentity(record) }
    infos.set(record, info)
  }
  return info
}

export class RecordMap extends Map<string, VersionedRecord> {
  #bytes = 0
  /** Names of the records without an identity, least recently used first. */
  readonly #anonymous = new Set<string>()

  /** The JSON bytes of every record held. */
  get bytes(): number {
    return this.#bytes
  }

  /** Sets a record whose JSON (`json`) and identity the caller already has, sparing a second stringify. */
  put(name: string, record: VersionedRecord, json: string, identity: string | null): this {
    if (!infos.has(record)) infos.set(record, { bytes: Buffer.byteLength(json), identity })
    return this.set(name, record)
  }

  override set(name: string, record: VersionedRecord): this {
    this.delete(name)
    const info = infoOf(record)
    this.#bytes += info.bytes
    if (info.identity === null) this.#anonymous.add(name)
    return super.set(name, record)
  }

  override delete(name: string): boolean {
    const record = super.get(name)
    if (record === undefined) return false
    this.#bytes -= infoOf(record).bytes
    this.#anonymous.delete(name)
    return super.delete(name)
  }

  override clear(): void {
    this.#bytes = 0
    this.#anonymous.clear()
    super.clear()
  }

  /** The identity `record` is indexed under; null when anonymous. */
  identityOf(record: VersionedRecord): string | null {
    return infoOf(record).identity
  }

  /** Names in eviction order: anonymous records least recently used first, then the others likewise. */
  *evictionOrder(): Generator<string> {
    yield* this.#anonymous
    for (const [name, record] of this) if (infoOf(record).identity !== null) yield name
  }
}
