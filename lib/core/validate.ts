// Argument checks shared by Bag, Avatar, Session and the stores. Every message names the
// argument and shows what was passed, so a caller can find the bad value from the message alone.

/** Largest duration or timestamp we accept: the last ms a JS Date can represent. Keeps
 *  `lastAccess + ttl` a safe integer and inside the envelope's 64-bit expiry field. */
export const MAX_MS = 8.64e15

/** A short, safe rendering of any value for an error message. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
    case 'number':
    case 'boolean':
      return String(value)
    case 'bigint':
      return `${value}n`
    case 'undefined':
      return 'undefined'
    case 'symbol':
      return 'a symbol'
    case 'function':
      return 'a function'
  }
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto === null || proto === Object.prototype) return 'an object'
  // Reading constructor.name can run user code (a getter); it must never turn into a second error.
  try {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name
    if (typeof name === 'string' && name !== '') return `a ${name}`
  } catch {
    /* fall through */
  }
  return 'an object'
}

/** now + ms as a time a Date can hold, or a RangeError naming the argument. */
export function laterBy(now: number, ms: number, name: string): number {
  if (now + ms > MAX_MS) throw new RangeError(`${name} puts the expiry past the latest representable date`)
  return now + ms
}

/** A duration that must be > 0: ttl, defaultTtl, maxAge. */
export function checkTtl(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a finite number of milliseconds, got ${describe(value)}`)
  }
  if (!Number.isInteger(value) || value <= 0 || value > MAX_MS) {
    throw new RangeError(`${name} must be a positive integer number of milliseconds, got ${describe(value)}`)
  }
  return value
}

/** A duration that may be 0: touchAfter (0 means "persist every touch"). */
export function checkNonNegativeMs(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a finite number of milliseconds, got ${describe(value)}`)
  }
  if (!Number.isInteger(value) || value < 0 || value > MAX_MS) {
    throw new RangeError(`${name} must be a non-negative integer number of milliseconds, got ${describe(value)}`)
  }
  return value
}

/** A point in time in ms since the epoch (envelope headers store these unsigned). */
export function checkTimestamp(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a timestamp in milliseconds, got ${describe(value)}`)
  }
  if (!Number.isFinite(value) || value < 0 || value > MAX_MS) {
    throw new RangeError(`${name} must be a timestamp between 0 and ${MAX_MS} ms, got ${describe(value)}`)
  }
  return value
}

/** A directory path the native side can open: a non-empty string without NUL. */
export function checkDirPath(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.includes('\0')) {
    throw new TypeError(`${name} must be a non-empty path string, got ${describe(value)}`)
  }
  return value
}

/**
 * The checks every constructor's options object gets: a plain object, only known keys (a
 * misspelt option would otherwise be silently ignored), and no `secret`/`secrets` key that is
 * present but unset (`secret: process.env.SESSION_SECRET` with the variable missing must not
 * quietly become a machine-bound key, different on every host).
 */
export function checkOptionKeys(options: unknown, allowed: ReadonlySet<string>, owner: string): void {
  const proto: unknown = typeof options === 'object' && options !== null ? Object.getPrototypeOf(options) : undefined
  if (proto !== Object.prototype && proto !== null)
    throw new TypeError(`options must be a plain object, got ${describe(options)}`)
  const record = options as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (!allowed.has(key)) throw new TypeError(`options.${key} is not an option of ${owner}`)
  }
  for (const key of ['secret', 'secrets']) {
    if (!Object.hasOwn(record, key)) continue
    const value = record[key]
    // `{ ...defaults, secret: undefined, secrets: [...] }` replaces one key source by the other:
    // an unset key is harmless only while the other one holds a value.
    const other = record[key === 'secret' ? 'secrets' : 'secret']
    if ((value === undefined || value === null) && other !== undefined && other !== null) continue
    if (value === undefined || value === null || value === '') {
      const Cls = value === '' ? RangeError : TypeError
      throw new Cls(
        `options.${key} is ${describe(value)}: the ${key} is not set (an unset environment variable?). Set it, or leave options.${key} out for a machine-bound key`,
      )
    }
    if (Array.isArray(value)) {
      value.forEach((item: unknown, i) => {
        if (item === undefined || item === null || item === '') {
          const Cls = item === '' ? RangeError : TypeError
          throw new Cls(
            `options.${key}[${i}] is ${describe(item)}: that secret is not set (an unset environment variable?)`,
          )
        }
      })
    }
  }
}
