// A store's namespace: part of the key derivation (HKDF info) and of every envelope's context.
import { describe } from './validate'

export function checkNamespace(value: unknown): string {
  if (value === undefined) return 'default'
  if (typeof value !== 'string') throw new TypeError(`options.namespace must be a string, got ${describe(value)}`)
  // ':' separates the context's parts and NUL the HKDF info's: neither may appear inside one.
  if (value === '' || /[:\0]/.test(value) || Buffer.byteLength(value) > 200) {
    throw new RangeError(`options.namespace must be 1 to 200 bytes without ':' or NUL, got ${describe(value)}`)
  }
  return value
}
