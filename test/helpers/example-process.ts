// Starts an example's start() in a child Node process (as a user runs it: plain Node, the package
// from dist/ through its own name) and stops it by closing the child's stdin; SIGKILL by pid
// if it does not exit within 5 s. vitest's module runner would load dist/'s CommonJS through Vite.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

export interface RunningExample {
  url: string
  child: ChildProcess
  stop(): Promise<void>
}

const ROOT = path.join(__dirname, '..', '..')

export async function startExample(file: string, options: Record<string, unknown>): Promise<RunningExample> {
  const href = pathToFileURL(path.join(ROOT, 'examples', file)).href
  const code = `
    const { start } = await import(${JSON.stringify(href)})
    const s = await start(${JSON.stringify({ port: 0, ...options })})
    console.log(JSON.stringify({ url: s.url }))
    process.stdin.on('end', () => s.close().then(() => process.exit(0)))
    process.stdin.resume()`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.stdin!.end() // the child closes its server and store, then exits
    const stuck = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(stuck)
  }
  let out = ''
  for await (const chunk of child.stdout!) {
    out += String(chunk)
    const line = out.split('\n').find((l) => l.startsWith('{'))
    if (line) return { url: (JSON.parse(line) as { url: string }).url, child, stop }
  }
  throw new Error(`example ${file} exited early (code ${child.exitCode})`)
}
