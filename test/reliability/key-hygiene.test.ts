// Key hygiene: a child
// process (--expose-gc) uses a SessionManager and a FileSessionStore, each with a known secret,
// and writes a V8 heap snapshot while both are open. The test derives the two AES keys itself
// (HKDF-SHA256, IKM = secret, salt 'sealed-session/v1', info = scope\0name\0\0) and asserts that
// no encoding of either key appears in the snapshot. The secrets themselves may appear (they are
// the caller's JS strings). A control run, in which the child deliberately keeps the keys as JS
// strings, shows that the search does find a key that reached the heap.
// Limitation: a heap snapshot holds JS strings and object graphs, not ArrayBuffer contents, so
// it shows keys that became strings; native memory (where the keys live) is not in it at all.
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { SECRET, STORE_SECRET, lastJson, requireDist, rmTree, runNode, tmpRoot } from './helpers'

const APP = 'hygiene-app'
const NAMESPACE = 'hygiene-ns'

let root: string
beforeAll(() => {
  requireDist()
  root = tmpRoot('hygiene')
})
afterAll(() => rmTree(root))

function hkdf(secret: string, info: string): Buffer {
  return Buffer.from(
    crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'sealed-session/v1', Buffer.from(info, 'utf8'), 32),
  )
}

/** How V8's heap snapshot serializer writes a one-byte string: printable ASCII as is, the
 *  rest as \uXXXX (it stops at a NUL, so only NUL-free runs can be matched). */
function v8Escaped(bytes: Buffer, upper: boolean): string {
  let out = ''
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`
    else if (b === 8) out += '\\b'
    else if (b === 9) out += '\\t'
    else if (b === 10) out += '\\n'
    else if (b === 12) out += '\\f'
    else if (b === 13) out += '\\r'
    else if (b > 31 && b < 128) out += String.fromCharCode(b)
    else {
      const hex = b.toString(16).padStart(4, '0')
      out += `\\u${upper ? hex.toUpperCase() : hex}`
    }
  }
  return out
}

/** Every encoding of the key we look for, each with a label. */
function needles(key: Buffer): Array<[string, Buffer]> {
  const list: Array<[string, Buffer]> = [
    ['raw bytes', key],
    ['hex', Buffer.from(key.toString('hex'))],
    ['HEX', Buffer.from(key.toString('hex').toUpperCase())],
    ['base64', Buffer.from(key.toString('base64'))],
    ['base64url', Buffer.from(key.toString('base64url'))],
    ['base64 without padding', Buffer.from(key.toString('base64').replace(/=+$/, ''))],
  ]
  // The key as a latin1 JS string: 8-byte windows without NUL, escaped as the serializer does.
  for (let i = 0; i + 8 <= key.length; i += 4) {
    const w = key.subarray(i, i + 8)
    if (w.includes(0)) continue
    list.push([`latin1 string bytes ${i}..${i + 7}`, Buffer.from(v8Escaped(w, true))])
    list.push([`latin1 string bytes ${i}..${i + 7} (lowercase escapes)`, Buffer.from(v8Escaped(w, false))])
  }
  return list
}

async function snapshotOf(mode: 'use' | 'control'): Promise<Buffer> {
  const dir = path.join(root, mode)
  fs.mkdirSync(dir)
  const file = path.join(dir, 'heap.heapsnapshot')
  const r = await runNode('reliability-heap.mjs', [mode, dir, APP, NAMESPACE, SECRET, STORE_SECRET, file], {
    nodeArgs: ['--expose-gc'],
    timeoutMs: 30_000,
  })
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  // Windows may report the snapshot under its long-path form (\\?\C:\...).
  expect(lastJson<{ file: string }>(r).file.replace(/^\\\\\?\\/, '')).toBe(file)
  const bytes = fs.readFileSync(file)
  fs.rmSync(file)
  return bytes
}

const keys: Array<[string, Buffer]> = [
  ['SessionManager key', hkdf(SECRET, `manager\0${APP}\0\0`)],
  ['FileSessionStore key', hkdf(STORE_SECRET, `store\0${NAMESPACE}\0\0`)],
]

function findKeys(snapshot: Buffer): string[] {
  const found: string[] = []
  for (const [which, key] of keys) {
    for (const [how, needle] of needles(key)) if (snapshot.includes(needle)) found.push(`${which} as ${how}`)
  }
  return found
}

describe('key hygiene', () => {
  it('the derived AES keys appear in no form in a heap snapshot of a process that used a manager and a store', async () => {
    const started = Date.now()
    const snapshot = await snapshotOf('use')
    // The snapshot is real and searchable: the caller's secrets (JS strings) are in it.
    expect(snapshot.includes(Buffer.from(SECRET))).toBe(true)
    expect(snapshot.includes(Buffer.from(STORE_SECRET))).toBe(true)
    // The keys really are the ones in use: the key ids on disk match them.
    const kid = (key: Buffer) =>
      crypto.createHash('sha256').update('sealed-session kid').update(key).digest().subarray(0, 4).toString('hex')
    expect(
      fs
        .readFileSync(path.join(root, 'use', 'manager', 'session.enc'))
        .subarray(8, 12)
        .toString('hex'),
    ).toBe(kid(keys[0][1]))
    const storeFile = fs.readdirSync(path.join(root, 'use', 'store'))[0]
    expect(
      fs
        .readFileSync(path.join(root, 'use', 'store', storeFile))
        .subarray(8, 12)
        .toString('hex'),
    ).toBe(kid(keys[1][1]))

    const found = findKeys(snapshot)
    const tried = keys.reduce((n, [, k]) => n + needles(k).length, 0)
    console.log(
      `key-hygiene: heap snapshot ${(snapshot.length / 1e6).toFixed(1)} MB searched for 2 derived keys in ${tried} encodings: ` +
        `${found.length} found (${Date.now() - started} ms)`,
    )
    expect(found).toEqual([])
  }, 40_000)

  it('control: keys deliberately kept as JS strings in the child are found by the same search', async () => {
    const found = findKeys(await snapshotOf('control'))
    console.log(`key-hygiene control: keys kept as JS strings found as ${found.length} encodings`)
    for (const which of ['SessionManager key', 'FileSessionStore key']) {
      expect(found).toContain(`${which} as hex`)
      expect(found).toContain(`${which} as base64`)
      expect(found.some((f) => f.startsWith(`${which} as latin1 string`))).toBe(true)
    }
  }, 40_000)
})
