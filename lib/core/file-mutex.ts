import { mapNative, toSessionError } from './errors'

// One queue per lock file in this process. The cross-process lock (flock) is waited for on a
// libuv pool thread; queueing here first means at most one pool thread per file ever waits,
// so several managers on one file cannot starve the pool that the lock holder needs.
const queues = new Map<string, Promise<void>>()

export async function withFileMutex<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve()
  let release!: () => void
  const current = new Promise<void>((resolve) => (release = resolve))
  const tail = previous.then(() => current)
  queues.set(key, tail)
  await previous
  try {
    return await fn()
  } finally {
    release()
    if (queues.get(key) === tail) queues.delete(key)
  }
}

/** The in-process queue of lock `name` in the directory `dirId` (its device and inode), so two
 *  spellings of one directory share one queue. */
export function dirLockKey(dirId: string, name: string): string {
  return `${dirId}\0${name}`
}

/**
 * Runs `fn` holding lock `name` of a directory: the in-process queue first, then the flock taken
 * by `dir.lock` (on a pool thread), which other processes take too; released whatever `fn` does.
 */
export function withDirLock<T>(
  dir: { readonly id: string; lock(name: string): Promise<{ release(): void }> },
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  return withFileMutex(dirLockKey(dir.id, name), async () => {
    const lock = await mapNative(() => dir.lock(name))
    try {
      return await fn()
    } finally {
      lock.release()
    }
  })
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * withDirLock with a bounded wait: rejects with `timedOut()` once `timeoutMs` have passed
 * without the lock, having changed nothing. The cross-process lock is polled (`tryLockSync`,
 * backing off to 25 ms) rather than waited for on a pool thread, which could not be called
 * back: a wait given up on leaves no thread blocked behind a holder that may never let go.
 */
export async function withDirLockWithin<T>(
  dir: { readonly id: string; tryLockSync(name: string): { release(): void } | null },
  name: string,
  timeoutMs: number,
  timedOut: () => Error,
  fn: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  const key = dirLockKey(dir.id, name)
  const previous = queues.get(key) ?? Promise.resolve()
  let release!: () => void
  const current = new Promise<void>((resolve) => (release = resolve))
  const tail = previous.then(() => current)
  queues.set(key, tail)
  try {
    // Leaving the queue early is safe: whoever queued after us still waits for `previous`.
    await beforeDeadline(previous, deadline, timedOut)
    let step = 1
    let lock: { release(): void } | null
    for (;;) {
      try {
        lock = dir.tryLockSync(name)
      } catch (err) {
        throw toSessionError(err)
      }
      if (lock !== null) break
      const left = deadline - Date.now()
      if (left <= 0) throw timedOut()
      await delay(Math.min(step, left))
      step = Math.min(step * 2, 25)
    }
    try {
      return await fn()
    } finally {
      lock.release()
    }
  } finally {
    release()
    if (queues.get(key) === tail) queues.delete(key)
  }
}

function beforeDeadline(p: Promise<void>, deadline: number, timedOut: () => Error): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), Math.max(0, deadline - Date.now()))
  })
  return Promise.race([p, expired]).finally(() => clearTimeout(timer))
}
