// What every store checks before it writes a record, gathered so restore() can check a whole
// dump before its first write (all or nothing). The envelope header keeps times as integers up
// to 2^53, so a record whose expiry lies beyond that could be read but never sealed.
import type { Session } from '../session/session'

const MAX_SEAL_TIME = Number.MAX_SAFE_INTEGER

/** RangeError naming the dump record when its times cannot be sealed; `prepare` (the store's own
 *  checks, e.g. its size cap) runs next and its error is prefixed with the record's place. */
export function checkRecordWritable<T>(session: Session, index: number, prepare: () => T): T {
  const where = `dump.sessions[${index}]`
  const { createdAt } = session.meta
  const expiresAt = session.expiresAt()
  if (!Number.isInteger(createdAt))
    throw new RangeError(`${where}.meta.createdAt must be an integer number of ms, got ${createdAt}`)
  if (!Number.isInteger(expiresAt) || expiresAt > MAX_SEAL_TIME) {
    throw new RangeError(
      `${where}: lastAccess + ttl (or createdAt + maxAge) must be an integer number of ms up to 2^53, got ${expiresAt}`,
    )
  }
  try {
    return prepare()
  } catch (err) {
    if (err instanceof Error) err.message = `${where}: ${err.message}`
    throw err
  }
}
