// Compiles lib/ to CommonJS in dist/, then writes the ESM entry points as thin re-exports of
// the CommonJS build: one copy of each class whichever way the package is loaded.
import { execFileSync } from 'node:child_process'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true })
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { stdio: 'inherit' })

// The public entry points (package.json "exports"; typesVersions for node10 resolution).
// express-request is the `sealed-session/middleware` entry; express, the deprecated name of
// express-session.
for (const entry of ['index', 'express', 'express-session', 'fastify', 'fetch', 'express-request']) {
  if (!existsSync(new URL(`../dist/${entry}.js`, import.meta.url))) continue
  const cjs = require(`../dist/${entry}.js`)
  const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
  if (names.length === 0) continue
  // An entry with a default export (the Fastify plugin) also exports it by name: ESM's default
  // is that value, not the CommonJS module object.
  const alias = 'default' in cjs ? names.find((n) => cjs[n] === cjs.default) : undefined
  if ('default' in cjs && alias === undefined) throw new Error(`dist/${entry}.js: its default export has no named twin`)
  const js = `import cjs from './${entry}.js'\nexport const { ${names.join(', ')} } = cjs\nexport default ${alias === undefined ? 'cjs' : alias}\n`
  const dts = alias === undefined
    ? `export * from './${entry}.js'\n`
    : `export * from './${entry}.js'\nimport { ${alias} } from './${entry}.js'\nexport default ${alias}\n`
  writeFileSync(new URL(`../dist/${entry}.mjs`, import.meta.url), js)
  writeFileSync(new URL(`../dist/${entry}.d.mts`, import.meta.url), dts)
}
