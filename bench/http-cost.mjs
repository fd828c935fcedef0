// The cost of one request per session stack in instructions, a measure that other load on the
// machine does not move (unlike req/s): one server of bench/http.mjs in this process, one client
// on a raw keep-alive socket sending `phase` requests one after another.
//
//   node bench/http-cost.mjs <stack> <read|write> <requests> [redis port]
//
// Under callgrind, the difference between two request counts is the per-request cost:
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p node bench/http-cost.mjs express/ours-file read 200
//   (again with 1200; (Ir(1200) - Ir(200)) / 1000 is the instructions of one request, client included,
//   so subtract the framework's `/none` row to get what the session adds)
// `node bench/http-cost.mjs --callgrind <stack...>` does that and prints the table.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

import { ROOT } from './common.mjs'
import { makeServer } from './http.mjs'

const SELF = fileURLToPath(import.meta.url)

/** Sends `count` GETs of `urlPath` on one socket, each after the last response ended; returns the last cookie. */
function drive(port, urlPath, count, cookie) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let buf = ''
    let left = count
    const send = () =>
      socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n${cookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`)
    socket.setEncoding('latin1')
    socket.on('connect', send)
    socket.on('error', reject)
    socket.on('data', (chunk) => {
      buf += chunk
      for (;;) {
        const head = buf.indexOf('\r\n\r\n')
        if (head < 0) return
        const headers = buf.slice(0, head)
        const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0)
        if (buf.length < head + 4 + length) return
        if (!headers.startsWith('HTTP/1.1 200')) return reject(new Error(headers.split('\r\n')[0]))
        const set = /set-cookie: *([^;\r]+)/i.exec(headers)?.[1]
        if (set) cookie = set
        buf = buf.slice(head + 4 + length)
        if (--left === 0) {
          socket.end()
          return resolve(cookie)
        }
        send()
      }
    })
  })
}

async function run(stack, phase, count, redisPort) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'http-cost-'))
  const server = await makeServer(stack, { pkg: process.env.HTTP_COST_PKG ?? ROOT, dir, redisPort })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  try {
    const cookie = await drive(port, '/write', 1, null)
    await drive(port, `/${phase}`, 200, cookie) // warm-up, the same in every run
    const cpu0 = process.cpuUsage()
    await drive(port, `/${phase}`, count, cookie)
    const cpu = process.cpuUsage(cpu0)
    // CPU time of client and server together: compare stacks, not absolute values.
    if (process.env.HTTP_COST_CPU) console.log(((cpu.user + cpu.system) / count).toFixed(2))
  } finally {
    server.closeAllConnections?.()
    server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  process.exit(0) // store timers, redis clients
}

function instructions(stack, phase, count, redisPort) {
  const out = path.join(os.tmpdir(), `http-cost-${process.pid}.cg`)
  const r = spawnSync(
    'valgrind',
    [
      '--tool=callgrind',
      `--callgrind-out-file=${out}`,
      process.execPath,
      SELF,
      stack,
      phase,
      String(count),
      String(redisPort ?? 0),
    ],
    { encoding: 'utf8' },
  )
  if (r.status !== 0) throw new Error(`${stack} ${phase}: ${r.stderr.slice(-2000)}`)
  const summary = /^summary: (\d+)/m.exec(fs.readFileSync(out, 'utf8'))
  fs.rmSync(out)
  return Number(summary[1])
}

if (process.argv[1] === SELF) {
  const args = process.argv.slice(2)
  if (args[0] === '--callgrind') {
    const phases = (process.env.PHASES ?? 'read,write').split(',')
    const redisPort = Number(process.env.REDIS_PORT ?? 0)
    const lo = 200
    const hi = Number(process.env.REQUESTS ?? 1200)
    for (const stack of args.slice(1)) {
      for (const phase of phases) {
        const per = (instructions(stack, phase, hi, redisPort) - instructions(stack, phase, lo, redisPort)) / (hi - lo)
        console.log(`${stack.padEnd(40)} ${phase.padEnd(6)} ${Math.round(per / 1000)}k instructions/request`)
      }
    }
  } else {
    const [stack, phase, count, redisPort] = args
    await run(stack, phase, Number(count), Number(redisPort ?? 0))
  }
}
