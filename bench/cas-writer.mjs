// Child of the bench contender ss-store-save-8w: prints "ready", waits for a line on stdin, then
// for durationMs reads one shared FileSessionStore session, sets its own path and saves it;
// prints {saves, lat (ns), lost, errors}.
//   node bench/cas-writer.mjs <pkgDir> <dir> <secret> <namespace> <id> <proc> <durationMs>
import { createRequire } from 'node:module'
import * as path from 'node:path'

const [pkg, dir, secret, namespace, id, proc, duration] = process.argv.slice(2)
const { FileSessionStore } = createRequire(import.meta.url)(path.join(pkg, 'dist', 'index.js'))
const store = new FileSessionStore({ dir, namespace, secret, sweepInterval: 0, touchAfter: 86_400_000 })
const lat = []
let lost = 0
let errors = 0
let n = 0
await store.get(id) // warm: addon loaded, key derived
process.stdout.write('ready\n')
await new Promise((resolve) => process.stdin.once('data', resolve))
process.stdin.pause()
const end = Date.now() + Number(duration)
while (Date.now() < end) {
  const t0 = process.hrtime.bigint()
  try {
    const session = await store.get(id)
    session.data.set(`p${proc}`, ++n) // one path per writer: the record keeps its size
    if (await store.save(session)) lat.push(Number(process.hrtime.bigint() - t0))
    else lost++
  } catch {
    errors++
  }
}
await store.close()
process.stdout.write(`${JSON.stringify({ saves: lat.length, lat, lost, errors })}\n`)
