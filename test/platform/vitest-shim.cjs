// The part of vitest's API our portable test files use, on node:test and node:assert. It lets
// the same test files run under a Windows node.exe in wine and an arm64 node in qemu, where
// vitest cannot (its bundler ships native binaries for the host platform only).
// scripts/platform-tests.mjs compiles the test files to CommonJS and resolves `vitest` here.
// Anything this shim does not implement throws, so a test cannot pass by accident.
'use strict'
const nodeTest = require('node:test')
const util = require('node:util')

class AssertionError extends Error {
  constructor(message) {
    super(message)
    this.name = 'AssertionError'
  }
}

const show = (v) => util.inspect(v, { depth: 6, breakLength: 120 })

// ---- equality (vitest's toEqual: recursive, undefined properties ignored) -------------------

function isAsymmetric(v) {
  return v !== null && typeof v === 'object' && typeof v.asymmetricMatch === 'function'
}

function equals(a, b) {
  if (isAsymmetric(b)) return b.asymmetricMatch(a)
  if (isAsymmetric(a)) return a.asymmetricMatch(b)
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(b)) {
    if (!ArrayBuffer.isView(a) || !ArrayBuffer.isView(b) || a.constructor !== b.constructor) return false
    return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
  }
  if (a instanceof Date || b instanceof Date)
    return a instanceof Date && b instanceof Date && a.getTime() === b.getTime()
  if (a instanceof RegExp || b instanceof RegExp) return String(a) === String(b)
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => equals(x, b[i]))
  if (a instanceof Map || b instanceof Map) {
    if (!(a instanceof Map && b instanceof Map) || a.size !== b.size) return false
    for (const [k, v] of a) if (!b.has(k) || !equals(v, b.get(k))) return false
    return true
  }
  if (a instanceof Set || b instanceof Set) {
    if (!(a instanceof Set && b instanceof Set) || a.size !== b.size) return false
    for (const v of a) if (![...b].some((w) => equals(v, w))) return false
    return true
  }
  if (a instanceof Error && b instanceof Error && a.message !== b.message) return false
  const keys = (o) => Object.keys(o).filter((k) => o[k] !== undefined)
  const ka = keys(a)
  const kb = keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) => Object.hasOwn(b, k) && equals(a[k], b[k]))
}

// vitest's toMatchObject: every property of expected is in actual, recursively.
function matchesObject(actual, expected) {
  if (isAsymmetric(expected)) return expected.asymmetricMatch(actual)
  if (typeof expected !== 'object' || expected === null) return equals(actual, expected)
  if (typeof actual !== 'object' || actual === null) return false
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((e, i) => matchesObject(actual[i], e))
    )
  }
  if (ArrayBuffer.isView(expected) || expected instanceof Date) return equals(actual, expected)
  return Object.keys(expected).every((k) => k in actual && matchesObject(actual[k], expected[k]))
}

function errorMatches(err, expected) {
  if (expected === undefined) return true
  const message = err && typeof err === 'object' && 'message' in err ? String(err.message) : String(err)
  if (typeof expected === 'string') return message.includes(expected)
  if (expected instanceof RegExp) return expected.test(message)
  if (typeof expected === 'function') return err instanceof expected
  if (expected instanceof Error) return message === expected.message
  if (typeof expected === 'object') return matchesObject(err, expected)
  throw new Error(`toThrow(${show(expected)}) is not supported by the platform runner`)
}

// ---- matchers ---------------------------------------------------------------------------

function isMock(fn) {
  return typeof fn === 'function' && fn.mock && Array.isArray(fn.mock.calls)
}

// Each returns [pass, description of what was expected].
const matchers = {
  toBe: (a, e) => [Object.is(a, e), `${show(a)} to be ${show(e)}`],
  toEqual: (a, e) => [equals(a, e), `${show(a)} to equal ${show(e)}`],
  toStrictEqual: (a, e) => [
    equals(a, e) && Object.getPrototypeOf(a ?? 0) === Object.getPrototypeOf(e ?? 0),
    `${show(a)} to strictly equal ${show(e)}`,
  ],
  toMatchObject: (a, e) => [matchesObject(a, e), `${show(a)} to match object ${show(e)}`],
  toContain: (a, e) => [
    typeof a === 'string' ? a.includes(e) : a != null && typeof a[Symbol.iterator] === 'function' && [...a].includes(e),
    `${show(a)} to contain ${show(e)}`,
  ],
  toBeNull: (a) => [a === null, `${show(a)} to be null`],
  toBeUndefined: (a) => [a === undefined, `${show(a)} to be undefined`],
  toBeDefined: (a) => [a !== undefined, `${show(a)} to be defined`],
  toBeTruthy: (a) => [!!a, `${show(a)} to be truthy`],
  toBeFalsy: (a) => [!a, `${show(a)} to be falsy`],
  toBeInstanceOf: (a, C) => [a instanceof C, `${show(a)} to be an instance of ${C && C.name}`],
  toBeGreaterThan: (a, e) => [a > e, `${show(a)} > ${show(e)}`],
  toBeGreaterThanOrEqual: (a, e) => [a >= e, `${show(a)} >= ${show(e)}`],
  toBeLessThan: (a, e) => [a < e, `${show(a)} < ${show(e)}`],
  toBeLessThanOrEqual: (a, e) => [a <= e, `${show(a)} <= ${show(e)}`],
  toMatch: (a, e) => [
    typeof a === 'string' && (e instanceof RegExp ? e.test(a) : a.includes(e)),
    `${show(a)} to match ${show(e)}`,
  ],
  toHaveLength: (a, n) => [a != null && a.length === n, `${show(a)} to have length ${n}`],
  toHaveProperty: (a, p, ...value) => {
    const parts = Array.isArray(p) ? p : String(p).split('.')
    let cur = a
    for (const part of parts) {
      if (cur == null || !(part in Object(cur))) return [false, `${show(a)} to have property ${p}`]
      cur = cur[part]
    }
    return [
      value.length === 0 || equals(cur, value[0]),
      `${show(a)} to have property ${p}${value.length ? ` = ${show(value[0])}` : ''}`,
    ]
  },
  toThrow: (fn, expected) => {
    if (typeof fn !== 'function') throw new Error('toThrow needs a function')
    try {
      fn()
    } catch (err) {
      return [errorMatches(err, expected), `${show(err)} to match ${show(expected)}`]
    }
    return [false, `the function to throw ${expected === undefined ? '' : show(expected)}`]
  },
  toHaveBeenCalled: (fn) => [isMock(fn) && fn.mock.calls.length > 0, 'the mock to have been called'],
  toHaveBeenCalledTimes: (fn, n) => [
    isMock(fn) && fn.mock.calls.length === n,
    `the mock to have been called ${n} times (got ${isMock(fn) ? fn.mock.calls.length : 'not a mock'})`,
  ],
  toHaveBeenCalledWith: (fn, ...args) => [
    isMock(fn) && fn.mock.calls.some((c) => equals(c, args)),
    `the mock to have been called with ${show(args)}; calls: ${isMock(fn) ? show(fn.mock.calls) : 'not a mock'}`,
  ],
}
matchers.toThrowError = matchers.toThrow

function makeAssertions(actual, negate) {
  const out = {}
  for (const [name, m] of Object.entries(matchers)) {
    out[name] = (...args) => {
      const [pass, what] = m(actual, ...args)
      if (pass === negate) throw new AssertionError(`expected ${negate ? 'NOT ' : ''}${what}`)
    }
  }
  return out
}

// .rejects / .resolves: settle first, then match the reason or value.
function makeAsync(actual, mode, negate) {
  const out = {}
  for (const name of Object.keys(matchers)) {
    out[name] = async (...args) => {
      const promise = typeof actual === 'function' ? actual() : actual
      let value
      let rejected = false
      try {
        value = await promise
      } catch (err) {
        rejected = true
        value = err
      }
      if (mode === 'rejects' && !rejected) throw new AssertionError(`expected a rejection, got ${show(value)}`)
      if (mode === 'resolves' && rejected) throw new AssertionError(`expected a resolved value, got ${show(value)}`)
      if (mode === 'rejects' && (name === 'toThrow' || name === 'toThrowError')) {
        if (errorMatches(value, args[0]) === negate)
          throw new AssertionError(`expected rejection ${show(value)} ${negate ? 'not ' : ''}to match ${show(args[0])}`)
        return
      }
      makeAssertions(value, negate)[name](...args)
    }
  }
  return out
}

function expect(actual) {
  const e = makeAssertions(actual, false)
  e.not = makeAssertions(actual, true)
  e.resolves = makeAsync(actual, 'resolves', false)
  e.rejects = makeAsync(actual, 'rejects', false)
  e.resolves.not = makeAsync(actual, 'resolves', true)
  e.rejects.not = makeAsync(actual, 'rejects', true)
  return e
}
expect.objectContaining = (o) => ({
  asymmetricMatch: (a) => matchesObject(a, o),
  toString: () => `objectContaining(${show(o)})`,
})
expect.arrayContaining = (arr) => ({
  asymmetricMatch: (a) => Array.isArray(a) && arr.every((x) => a.some((y) => equals(y, x))),
})
expect.stringContaining = (s) => ({ asymmetricMatch: (a) => typeof a === 'string' && a.includes(s) })
expect.stringMatching = (re) => ({ asymmetricMatch: (a) => typeof a === 'string' && new RegExp(re).test(a) })
expect.any = (C) => ({
  asymmetricMatch: (a) =>
    C === String
      ? typeof a === 'string'
      : C === Number
        ? typeof a === 'number'
        : C === Boolean
          ? typeof a === 'boolean'
          : C === Function
            ? typeof a === 'function'
            : a instanceof C,
})
expect.anything = () => ({ asymmetricMatch: (a) => a != null })

// ---- tests and hooks --------------------------------------------------------------------

// Emulators are slower than the machine the timeouts were chosen on: PLATFORM_TIMEOUT_SCALE.
const scale = Number(process.env.PLATFORM_TIMEOUT_SCALE || 1)
const options = (opts) => ({ timeout: (typeof opts === 'number' ? opts : (opts && opts.timeout) || 30_000) * scale })
// vitest passes a context object; node:test would take a second parameter as a callback.
// vitest's worker also keeps the event loop alive while a test awaits; node:test does not, so a
// test waiting only on unref()ed timers (a manager's cleanup interval) would be cut short. A
// ref'd timer is held while the test runs, through the original setTimeout (spies on the
// global one do not see it).
const realSetTimeout = setTimeout
const realClearTimeout = clearTimeout
const wrap = (fn) =>
  fn
    ? async () => {
        const keepAlive = realSetTimeout(() => {}, 2 ** 31 - 1)
        try {
          return await fn({ skip: unsupported('context.skip') })
        } finally {
          realClearTimeout(keepAlive)
        }
      }
    : undefined

function formatTitle(title, row, index) {
  const args = Array.isArray(row) ? row : [row]
  if (!Array.isArray(row) && row && typeof row === 'object' && title.includes('$')) {
    return title.replace(/\$([A-Za-z_][\w.]*)/g, (_, key) =>
      String(key.split('.').reduce((o, k) => (o == null ? o : o[k]), row)),
    )
  }
  let i = 0
  return title.replace(/%[sdifjo#%]/g, (spec) => {
    if (spec === '%%') return '%'
    if (spec === '%#') return String(index)
    const v = args[i++]
    return spec === '%j' ? JSON.stringify(v) : typeof v === 'string' ? v : show(v)
  })
}

function withEach(register) {
  return (table) => (title, fn, opts) =>
    table.forEach((row, index) => {
      const args = Array.isArray(row) ? row : [row]
      register(formatTitle(title, row, index), () => fn(...args), opts)
    })
}

function unsupported(name) {
  return () => {
    throw new Error(`${name} is not supported by the platform runner`)
  }
}

// Tests the runner was told the platform cannot run (scripts/platform-tests.mjs SKIP), by
// pattern over "describe > ... > title"; registered as skipped with the reason, never hidden.
const skips = JSON.parse(process.env.PLATFORM_TEST_SKIP || '[]').map((s) => ({
  re: new RegExp(s.re, s.flags),
  why: s.why,
}))
const titles = []
const platformSkip = (title) => {
  const full = [...titles, title].join(' > ')
  return skips.find((s) => s.re.test(full))
}
const it = (title, fn, opts) => {
  const skip = platformSkip(title)
  if (skip) return nodeTest.it(title, { skip: `not on this platform: ${skip.why}` })
  return nodeTest.it(title, options(opts), wrap(fn))
}
it.each = withEach(it)
it.skip = (title) => nodeTest.it(title, { skip: 'it.skip in the test file' })
it.only = unsupported('it.only')
it.todo = (title) => nodeTest.it(title, { todo: true })
// A listed platform skip says why even where the file's own condition skips the test too.
it.skipIf = (cond) =>
  cond
    ? (title) => {
        const skip = platformSkip(title)
        return nodeTest.it(title, {
          skip: skip ? `not on this platform: ${skip.why}` : 'skipIf condition in the test file',
        })
      }
    : it
it.runIf = (cond) => it.skipIf(!cond)
const describe = (title, fn) =>
  nodeTest.describe(title, () => {
    titles.push(title)
    try {
      return fn()
    } finally {
      titles.pop()
    }
  })
describe.each = withEach((title, fn) => describe(title, fn))
describe.skip = (title) => nodeTest.describe(title, { skip: 'describe.skip in the test file' }, () => {})
describe.skipIf = (cond) =>
  cond ? (title) => nodeTest.describe(title, { skip: 'skipIf condition in the test file' }, () => {}) : describe
describe.runIf = (cond) => describe.skipIf(!cond)

const hook = (register) => (fn, timeout) => register(wrap(fn), options(timeout))

// ---- vi: mocks and spies (fake timers are not available here) ---------------------------

function fn(impl) {
  let current = impl
  const mock = function (...args) {
    mock.mock.calls.push(args)
    try {
      const value = current ? current.apply(this, args) : undefined
      mock.mock.results.push({ type: 'return', value })
      return value
    } catch (err) {
      mock.mock.results.push({ type: 'throw', value: err })
      throw err
    }
  }
  mock.mock = { calls: [], results: [] }
  mock.mockImplementation = (f) => ((current = f), mock)
  mock.mockReturnValue = (v) => ((current = () => v), mock)
  mock.mockClear = () => ((mock.mock.calls = []), (mock.mock.results = []), mock)
  mock.mockReset = () => (mock.mockClear(), (current = undefined), mock)
  return mock
}

const restores = []
function spyOn(obj, key) {
  const original = obj[key]
  const spy = fn(function (...args) {
    return original.apply(this, args)
  })
  spy.mockRestore = () => {
    obj[key] = original
  }
  restores.push(spy.mockRestore)
  obj[key] = spy
  return spy
}

// Only a fake clock for Date (vi.useFakeTimers({ toFake: ['Date'] })): timers stay real.
const RealDate = Date
let fakeNow = null
class FakeDate extends RealDate {
  constructor(...args) {
    if (args.length === 0 && fakeNow !== null) super(fakeNow)
    else super(...args)
  }
  static now() {
    return fakeNow !== null ? fakeNow : RealDate.now()
  }
}

const vi = {
  fn,
  spyOn,
  restoreAllMocks: () => restores.splice(0).forEach((r) => r()),
  clearAllMocks: () => {},
  useFakeTimers: (opts) => {
    const what = opts && opts.toFake
    if (!Array.isArray(what) || what.length !== 1 || what[0] !== 'Date')
      unsupported('vi.useFakeTimers beyond { toFake: ["Date"] }')()
    fakeNow = RealDate.now()
    globalThis.Date = FakeDate
  },
  setSystemTime: (t) => {
    if (globalThis.Date !== FakeDate) unsupported('vi.setSystemTime without vi.useFakeTimers')()
    fakeNow = new RealDate(t).getTime()
  },
  useRealTimers: () => {
    fakeNow = null
    globalThis.Date = RealDate
  },
}

module.exports = {
  describe,
  it,
  test: it,
  expect,
  vi,
  beforeAll: hook(nodeTest.before),
  afterAll: hook(nodeTest.after),
  beforeEach: hook(nodeTest.beforeEach),
  afterEach: hook(nodeTest.afterEach),
}
