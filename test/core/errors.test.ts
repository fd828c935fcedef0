// The error contract: every code the native addon can throw reaches users as a SessionError
// subclass they can import and catch, except Node's argument codes (TypeError/RangeError). The
// codes are read from the native sources, so a new one without a class fails here; the Errors
// table of the docs names every class and code.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import * as api from '../../lib/index'
import { SessionError, SessionIOError, toSessionError } from '../../lib/core/errors'

const ROOT = path.join(__dirname, '..', '..')

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return e.name === 'test' ? [] : sources(p) // the core's own tests throw nothing to users
    return /\.(cc|h)$/.test(e.name) ? [p] : []
  })
}

/** Every `"ERR_…"` string literal in the addon's and the core's sources. */
function nativeCodes(): string[] {
  const codes = new Set<string>()
  for (const file of sources(path.join(ROOT, 'native'))) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/"(ERR_[A-Z0-9_]+)"/g)) codes.add(m[1])
  }
  return [...codes].sort()
}

// Node's own codes for a wrong argument: thrown as TypeError / RangeError, as Node's APIs do.
const ARGUMENT_CODES: Record<string, ErrorConstructor> = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: RangeError,
  ERR_OUT_OF_RANGE: RangeError,
}

const exportedClasses = Object.entries(api).filter(
  ([, v]) => typeof v === 'function' && (v === SessionError || v.prototype instanceof SessionError),
) as Array<[string, typeof SessionError]>

describe('native error codes', () => {
  const codes = nativeCodes()

  it('are found in native/ (the scan itself works)', () => {
    expect(codes).toEqual(
      expect.arrayContaining([
        'ERR_SESSION_TAMPERED',
        'ERR_SESSION_CRYPTO',
        'ERR_SESSION_NO_MEMORY',
        'ERR_SESSION_INTERNAL',
        'ERR_KEYCHAIN_UNAVAILABLE',
      ]),
    )
    expect(codes.length).toBeGreaterThanOrEqual(18)
  })

  it.each(codes.filter((c) => !(c in ARGUMENT_CODES)))('%s maps to an exported SessionError subclass', (code) => {
    const native = Object.assign(new Error('from the addon'), { code })
    const mapped = toSessionError(native)
    expect(mapped).toBeInstanceOf(SessionError)
    const e = mapped as SessionError
    expect(e.constructor).not.toBe(SessionError)
    expect(e.code).toBe(code)
    expect(e.message).toBe('from the addon')
    expect(e.name).toBe(e.constructor.name)
    expect(exportedClasses.map(([, cls]) => cls)).toContain(e.constructor)
  })

  it.each(codes.filter((c) => c in ARGUMENT_CODES))('%s stays the TypeError/RangeError the addon threw', (code) => {
    const Ctor = ARGUMENT_CODES[code]
    const native = Object.assign(new Ctor('bad argument'), { code })
    expect(toSessionError(native)).toBe(native)
  })

  it('ERR_SESSION_IO keeps errno and syscall', () => {
    const e = toSessionError(
      Object.assign(new Error('no space'), { code: 'ERR_SESSION_IO', errno: -28, syscall: 'write' }),
    )
    expect(e).toBeInstanceOf(SessionIOError)
    expect(e).toMatchObject({ code: 'ERR_SESSION_IO', errno: -28, syscall: 'write' })
  })
})

describe('the Errors table in docs/api/errors.md', () => {
  const table = fs.readFileSync(path.join(ROOT, 'docs', 'api', 'errors.md'), 'utf8')

  it.each(exportedClasses.map(([name]) => name))('lists %s', (name) => {
    expect(table).toContain(`| \`${name}\` |`)
  })

  it('lists every native code and every code lib/ throws', () => {
    const libCodes = new Set<string>()
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name)
        if (e.isDirectory()) walk(p)
        else if (e.name.endsWith('.ts'))
          for (const m of fs.readFileSync(p, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) libCodes.add(m[1])
      }
    }
    walk(path.join(ROOT, 'lib'))
    for (const code of [...nativeCodes(), ...libCodes]) expect(table, code).toContain(`\`${code}\``)
  })
})
