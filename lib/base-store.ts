// The SessionStore logic every store shares, above where a record lives: id validation before any
// I/O, expiry on read, touchAfter, re-writing a record read with an older key, save/delete/restore.
// A store supplies readSession, writeSession, removeSession, dump, purgeExpired, close.
import { generateSessionId, isValidSessionId } from './ids'
import { checkRecordWritable } from './record-limits'
import { Session } from './session'
import {
  checkCreateArgs,
  checkSession,
  parseDump,
  type CreateOptions,
  type SessionDump,
  type SessionStore,
  type StoreTiming,
} from './store'
import { describe } from './validate'

/** A session as read back, with the index of the key that opened it (> 0: write it again). */
export interface Found {
  session: Session
  keyIndex: number
}

export abstract class BaseSessionStore implements SessionStore {
  protected readonly timing: StoreTiming

  protected constructor(timing: StoreTiming) {
    this.timing = timing
  }

  get defaultTtl(): number {
    return this.timing.defaultTtl
  }

  get maxAge(): number | undefined {
    return this.timing.maxAge
  }

  get touchAfter(): number {
    return this.timing.touchAfter
  }

  async create(auth?: Readonly<Record<string, unknown>> | null, options?: CreateOptions): Promise<Session> {
    this.assertOpen()
    const args = checkCreateArgs(auth, options, this.timing.defaultTtl)
    const session = new Session(generateSessionId(), args.auth, args.ttl, { maxAge: this.timing.maxAge })
    await this.writeSession(session, false)
    return session
  }

  async get(id: string): Promise<Session | null> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isValidSessionId(id)) return null
    const now = Date.now()
    const found = await this.readSession(id, now)
    if (found === null) return null
    const session = found.session
    // A record of another id under this one is not this session (sealed stores bind the
    // envelope to its name, so this means a file or key was moved).
    if (session.id !== id || session.isExpired(now)) {
      if (session.id === id) await this.removeSession(id)
      return null
    }
    // Rewrite only when lastAccess is stale (or the key rotated): read-mostly traffic stays reads.
    const stale = now - session.meta.lastAccess > this.timing.touchAfter
    session.touch(now)
    if (stale || found.keyIndex > 0) await this.writeSession(session, true)
    return session
  }

  async save(session: Session): Promise<void> {
    this.assertOpen()
    checkSession(session)
    // Storing an expired session would only resurrect it until the next read: drop it instead.
    if (session.isExpired()) await this.removeSession(session.id)
    else await this.writeSession(session, false)
    session.clearDirty()
  }

  async delete(id: string): Promise<boolean> {
    this.assertOpen()
    checkIdArgument(id)
    if (!isValidSessionId(id)) return false
    return this.removeSession(id)
  }

  async restore(dump: SessionDump): Promise<number> {
    this.assertOpen()
    const sessions = parseDump(dump)
    const now = Date.now()
    const live = sessions.filter((s) => !s.isExpired(now))
    // All or nothing: every record must pass what writing it would check before the first write.
    live.forEach((s, i) => checkRecordWritable(s, i, (session) => this.checkWritable(session)))
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < live.length) await this.writeSession(live[next++], false)
    }
    await Promise.all(Array.from({ length: Math.min(this.restoreConcurrency, live.length) }, worker))
    return live.length
  }

  abstract dump(): Promise<SessionDump>
  abstract purgeExpired(): Promise<number>
  abstract close(): Promise<void>

  /** The session stored under a valid id, or null when missing or unreadable. */
  protected abstract readSession(id: string, now: number): Promise<Found | null>
  /** Store it; `existingOnly` for touches and re-seals (must not revive a deleted session). */
  protected abstract writeSession(session: Session, existingOnly: boolean): Promise<void>
  protected abstract removeSession(id: string): Promise<boolean>
  /** Throws SessionClosedError once closed. */
  protected abstract assertOpen(): void
  /** Throws what writeSession would throw for this session's size or form (no I/O). */
  protected checkWritable(_session: Session): void {}
  /** How many restore writes are in flight at once. */
  protected get restoreConcurrency(): number {
    return 1
  }
}

/** A wrong-typed id is the caller's bug (TypeError); a malformed string is just no session. */
function checkIdArgument(id: unknown): void {
  if (typeof id !== 'string') throw new TypeError(`id must be a string, got ${describe(id)}`)
}
