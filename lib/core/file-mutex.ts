import { mapNative } from './errors'

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
