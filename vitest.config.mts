import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Native code and child processes: keep workers as processes, not threads.
    pool: 'forks',
    // One worker per core, and at least two: most files wait on servers, child processes and
    // fsync rather than compute (vitest's default, cores - 1, runs them one at a time on two).
    maxWorkers: Math.max(2, availableParallelism()),
  },
})
