// The accounts a SessionManager with `accounts: true` keeps besides the active one. The active
// account is session.enc, exactly the single-login record (so its sync read stays one native
// call, and an older reader still sees who is logged in); the others live together in one
// sealed side file, accounts.enc, each with the time it stopped being active.
import { SessionData } from './session-data'
import { describe } from '../core/validate'

export const ACCOUNTS_FILE = 'accounts.enc'

/** What `accounts()` lists: times as ISO-8601, like SessionData. */
export interface AccountInfo {
  userId: string
  userName: string | null
  expiresAt: string
  active: boolean
}

/** An inactive account: its record and when it was last the active one (ms since the epoch). */
export interface StoredAccount {
  lastActive: number
  session: SessionData
}

/** The AAD context of accounts.enc: never equal to a session.enc context (`manager:<app>`). */
export const accountsContext = (appName: string) => `manager-accounts:${appName}`

export function parseAccounts(plaintext: string): StoredAccount[] {
  const parsed = JSON.parse(plaintext) as unknown
  const list = (parsed as { accounts?: unknown } | null)?.accounts
  if (!Array.isArray(list)) throw new TypeError(`accounts file must hold { accounts: [] }, got ${describe(parsed)}`)
  return list.map((entry: unknown) => {
    const e = entry as { lastActive?: unknown; session?: unknown } | null
    if (typeof e?.lastActive !== 'number') throw new TypeError('accounts file entry lacks lastActive')
    return { lastActive: e.lastActive, session: SessionData.fromParsed(e.session) }
  })
}

export function serializeAccounts(list: StoredAccount[]): string {
  return JSON.stringify({ accounts: list.map((a) => ({ lastActive: a.lastActive, session: a.session })) })
}

/** Live entries only, one per user (the latest lastActive wins), most recently active first. */
export function liveAccounts(list: StoredAccount[], now: number, exceptUserId?: string): StoredAccount[] {
  const byUser = new Map<string, StoredAccount>()
  for (const a of list) {
    if (a.session.expiresAtMs <= now || a.session.userId === exceptUserId) continue
    const seen = byUser.get(a.session.userId)
    if (seen === undefined || seen.lastActive < a.lastActive) byUser.set(a.session.userId, a)
  }
  return [...byUser.values()].sort((a, b) => b.lastActive - a.lastActive)
}

export function infoOf(session: SessionData, active: boolean): AccountInfo {
  return { userId: session.userId, userName: session.userName, expiresAt: session.expiresAt, active }
}
