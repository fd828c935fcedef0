// strace around a window of a child script: the script marks the window's start and end by
// stat-ing two paths that do not exist (`mark('begin')`, `mark('end')`, defined by MARK), and only
// the system calls traced between those two lines count.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import { expect } from 'vitest'

/** True where strace runs (Linux with strace installed). */
export const haveStrace = process.platform === 'linux' && spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0

/** The line a traced script starts with, defining `mark(name)`. */
export const MARK = "const mark = (m) => require('node:fs').statSync('/__ss_' + m + '__', { throwIfNoEntry: false })"

export interface TracedWindow {
  /** The thread that marked the window (the script's main thread). */
  pid: string
  /** Every traced call line of every thread between the two marks. */
  lines: string[]
}

/** Runs the script file under `strace -f -e trace=<classes>` (output in `out`). */
export function traceWindow(script: string, out: string, classes = '%file,%desc,%creds'): TracedWindow {
  execFileSync('strace', ['-f', '-e', `trace=${classes}`, '-o', out, process.execPath, script], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const all = fs.readFileSync(out, 'utf8').split('\n')
  const begin = all.findIndex((l) => l.includes('/__ss_begin__'))
  const end = all.findIndex((l) => l.includes('/__ss_end__'))
  expect(begin, 'begin marker traced').toBeGreaterThanOrEqual(0)
  expect(end, 'end marker traced').toBeGreaterThan(begin)
  return { pid: all[begin].split(/\s+/)[0], lines: all.slice(begin + 1, end).filter((l) => /^\d+\s+\w+\(/.test(l)) }
}

/** The marking thread's own call lines (a call split by another thread's is counted once). */
export const mainThreadLines = (w: TracedWindow): string[] =>
  w.lines.filter((l) => l.split(/\s+/)[0] === w.pid && !l.includes('resumed>'))

/** A call line's system call name; fstat, newfstatat and statx all read as 'fstat'. */
export const callName = (line: string): string => {
  const n = line.split(/\s+/)[1].replace(/\(.*$/, '')
  return n === 'newfstatat' || n === 'statx' ? 'fstat' : n
}
