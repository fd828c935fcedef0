// One timer for every Redis command in flight, instead of a setTimeout (and a Promise.race) per
// command. All commands of a store share one timeout, so their deadlines arrive in the order the
// commands were sent: a FIFO queue whose head is the next to expire, and one unref'd timer armed
// for that head. A command that settles only marks its entry; settled entries leave the queue
// when they reach its head.
import { timedOut, toUnavailable } from './redis-errors'

interface Pending {
  deadline: number
  what: string
  settled: boolean
  reject: (err: unknown) => void
}

export class CommandDeadlines {
  readonly timeout: number
  #queue: Pending[] = []
  #head = 0
  #timer: NodeJS.Timeout | null = null

  constructor(timeout: number) {
    this.timeout = timeout
  }

  /** `reply`, or SessionStoreUnavailableError once `timeout` ms pass or on a connection error. */
  watch<T>(what: string, reply: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry: Pending = { deadline: Date.now() + this.timeout, what, settled: false, reject }
      this.#push(entry)
      reply.then(
        (value) => {
          if (entry.settled) return
          entry.settled = true
          resolve(value)
        },
        (err: unknown) => {
          if (entry.settled) return // timed out already: the late failure is nobody's
          entry.settled = true
          reject(toUnavailable(err, what))
        },
      )
    })
  }

  #push(entry: Pending): void {
    const q = this.#queue
    while (this.#head < q.length && q[this.#head].settled) this.#head++
    if (this.#head === q.length) {
      q.length = 0
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head)
      this.#head = 0
    }
    this.#queue.push(entry)
    if (this.#timer === null) this.#arm(this.timeout)
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#expire(), ms)
    this.#timer.unref()
  }

  #expire(): void {
    this.#timer = null
    const now = Date.now()
    const q = this.#queue
    while (this.#head < q.length) {
      const entry = q[this.#head]
      if (!entry.settled) {
        if (entry.deadline > now) break
        entry.settled = true
        entry.reject(timedOut(entry.what, this.timeout))
      }
      this.#head++
    }
    if (this.#head === q.length) {
      q.length = 0
      this.#head = 0
    } else {
      this.#arm(Math.max(1, q[this.#head].deadline - now))
    }
  }
}
