// Skips that cannot lie: a test that needs something from the machine (root, a machine id, a
// tmpfs mount, a tool) is skipped where it is missing, but under CI=true, where the
// environment must provide it, a missing need is a failure.
export const IN_CI = process.env.CI === 'true'

/** `have`, or throws under CI=true naming what is missing. Use as `it.skipIf(!needs(x, '…'))`. */
export function needs(have: boolean, what: string): boolean {
  if (!have && IN_CI) throw new Error(`CI=true but ${what} is missing: this test must run in CI`)
  return have
}
