// A periodic timer that holds its owner weakly and never keeps the process alive: an owner that
// was not closed is still collected (its key ring, which wipes the key, with it), and the first
// tick after that stops the timer.

/** Calls `tick(owner)` every `ms` while `owner` lives; clear the returned timer to stop it.
 *  `tick` must not capture `owner` itself (that would hold it strongly). */
export function weakInterval<T extends object>(owner: T, ms: number, tick: (owner: T) => void): NodeJS.Timeout {
  const self = new WeakRef(owner)
  const timer = setInterval(() => {
    const live = self.deref()
    if (live === undefined) clearInterval(timer)
    else tick(live)
  }, ms)
  timer.unref()
  return timer
}
