// The v1 envelope written independently with node:crypto, from docs/security.md (the envelope and keys):
// the yardstick the native core is checked against (and the pure-JS contender in the bench).
import * as crypto from 'node:crypto'

export const SALT = 'sealed-session/v1'

export function hkdfKey(ikm: string | Buffer, scope: string, name: string, uid: string, bootId: string): Buffer {
  const info = Buffer.concat([
    Buffer.from(scope),
    Buffer.from([0]),
    Buffer.from(name),
    Buffer.from([0]),
    Buffer.from(uid),
    Buffer.from([0]),
    Buffer.from(bootId),
  ])
  return Buffer.from(crypto.hkdfSync('sha256', ikm, SALT, info, 32))
}

export function keyId(key: Buffer): Buffer {
  return crypto.createHash('sha256').update('sealed-session kid').update(key).digest().subarray(0, 4)
}

export interface JsSealInput {
  key: Buffer
  plaintext: string | Buffer
  context: string
  createdAt: number
  expiresAt: number
  flags?: number
  nonce?: Buffer
}

export function jsSeal({ key, plaintext, context, createdAt, expiresAt, flags = 0, nonce }: JsSealInput): Buffer {
  const header = Buffer.alloc(40)
  header.write('SEAL', 0, 'ascii')
  header[4] = 1
  header[5] = flags
  keyId(key).copy(header, 8)
  header.writeBigUInt64BE(BigInt(createdAt), 12)
  header.writeBigUInt64BE(BigInt(expiresAt), 20)
  ;(nonce ?? crypto.randomBytes(12)).copy(header, 28)
  const cipher = crypto.createCipheriv('aes-256-gcm', key, header.subarray(28, 40))
  cipher.setAAD(Buffer.concat([header, Buffer.from(context)]))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([header, body, cipher.getAuthTag()])
}

export function jsOpen(key: Buffer, envelope: Buffer, context: string): Buffer {
  const header = envelope.subarray(0, 40)
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, header.subarray(28, 40))
  decipher.setAAD(Buffer.concat([header, Buffer.from(context)]))
  decipher.setAuthTag(envelope.subarray(envelope.length - 16))
  return Buffer.concat([decipher.update(envelope.subarray(40, envelope.length - 16)), decipher.final()])
}
