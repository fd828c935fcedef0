// The logging hook: any object with debug/info/warn/error (console, pino, winston). Silent by default.
import { describe } from './validate'

export interface Logger {
  debug(message: string, details?: Record<string, unknown>): void
  info(message: string, details?: Record<string, unknown>): void
  warn(message: string, details?: Record<string, unknown>): void
  error(message: string, details?: Record<string, unknown>): void
}

const noop = (): void => {}
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop }

export function checkLogger(value: unknown): Logger {
  if (value === undefined) return silentLogger
  if (typeof value !== 'object' || value === null) {
    throw new TypeError(`options.logger must be an object with debug/info/warn/error, got ${describe(value)}`)
  }
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (value as Record<string, unknown>)[level] !== 'function') {
      throw new TypeError(`options.logger.${level} must be a function`)
    }
  }
  return value as Logger
}
