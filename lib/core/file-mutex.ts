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
