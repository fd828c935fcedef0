// What util.inspect (and so console.log) shows of our objects: what a person debugging needs,
// and nothing that must not reach a log. A session id is a bearer credential, so only a short
// prefix is shown; auth snapshots (they may hold tokens), secrets and keys are never shown.
import { inspect, type InspectOptionsStylized } from 'node:util'

export const custom = inspect.custom

/** Enough of an id to tell sessions apart in a debugging session, not enough to use one. */
export function idPrefix(id: string): string {
  return `${id.slice(0, 6)}…`
}

export function isoTime(ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString()
}

/** `Name { ...view }` formatted with the caller's options, one level deeper. */
export function render(
  name: string,
  view: object,
  depth: number,
  options: InspectOptionsStylized,
  fn: typeof inspect = inspect,
): string {
  if (depth < 0) return options.stylize(`[${name}]`, 'special')
  const inner = fn(view, {
    ...options,
    depth: options.depth === null || options.depth === undefined ? null : options.depth - 1,
  })
  return `${name} ${inner}`
}

// The public, harmless fields a store may have: options and counts, never a key or a client.
const STORE_FIELDS = [
  'dir',
  'prefix',
  'namespace',
  'defaultTtl',
  'maxAge',
  'touchAfter',
  'maxBytes',
  'maxSessions',
  'sweepInterval',
  'commandTimeout',
  'size',
] as const

/** `MemorySessionStore { kind: 'memory', ... }` from the store's public option getters. */
export function storeView(store: object): Record<string, unknown> {
  const name = store.constructor.name
  const view: Record<string, unknown> = { kind: name.replace(/SessionStore$/, '').toLowerCase() || name }
  for (const field of STORE_FIELDS) {
    let value: unknown
    try {
      value = (store as Record<string, unknown>)[field]
    } catch {
      continue // a getter that throws (closed store): leave it out
    }
    if (value === undefined) continue
    view[field === 'defaultTtl' ? 'ttl' : field] = value
  }
  return view
}
