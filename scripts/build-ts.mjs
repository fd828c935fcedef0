// Compiles lib/ to CommonJS in dist/, then writes the ESM entry points as thin re-exports of
// the CommonJS build: one copy of each class whichever way the package is loaded.
// The entries' export names come from the compiler, not from loading dist/: loading it would load
// the native addon, and a clone installed with --ignore-scripts (no addon) must build and pack.
import { rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true })
const configPath = fileURLToPath(new URL('../tsconfig.json', import.meta.url))
const config = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  },
})
const program = ts.createProgram({
  rootNames: config.fileNames,
  options: config.options,
  configFileParsingDiagnostics: config.errors,
})
const emitted = program.emit()
const diagnostics = ts.sortAndDeduplicateDiagnostics([...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics])
if (diagnostics.length > 0) {
  const host = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: ts.sys.getCurrentDirectory,
    getNewLine: () => ts.sys.newLine,
  }
  const format = process.stdout.isTTY ? ts.formatDiagnosticsWithColorAndContext : ts.formatDiagnostics
  process.stderr.write(format(diagnostics, host))
  if (diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error)) process.exit(1)
}
const checker = program.getTypeChecker()

/** An alias declared type-only (`export type { X }`, `export { type X }`, `import type`): no runtime value. */
function typeOnly(declaration) {
  if (ts.isExportSpecifier(declaration) || ts.isImportSpecifier(declaration)) {
    return declaration.isTypeOnly || declaration.parent.parent.isTypeOnly
  }
  if (ts.isImportClause(declaration) || ts.isExportDeclaration(declaration)) return declaration.isTypeOnly
  if (ts.isNamespaceImport(declaration)) return declaration.parent.isTypeOnly
  return false
}

/** What an export is at run time: undefined for a type (it has no value in dist/). */
function runtimeTarget(symbol) {
  let s = symbol
  while (s.flags & ts.SymbolFlags.Alias) {
    if (s.declarations?.some(typeOnly)) return undefined
    s = checker.getImmediateAliasedSymbol(s)
    if (s === undefined) return undefined
  }
  return s.flags & ts.SymbolFlags.Value ? s : undefined
}

// The public entry points (package.json "exports"; typesVersions for node10 resolution).
// express-request is the `sealed-session/middleware` entry; express, the deprecated name of
// express-session.
for (const entry of ['index', 'express', 'express-session', 'fastify', 'fetch', 'express-request']) {
  const source = program.getSourceFile(fileURLToPath(new URL(`../lib/${entry}.ts`, import.meta.url)))
  if (source === undefined) continue
  const values = new Map()
  for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(source))) {
    const target = runtimeTarget(symbol)
    if (target !== undefined) values.set(symbol.name, target)
  }
  const names = [...values.keys()].filter((n) => n !== 'default')
  if (names.length === 0) continue
  // An entry with a default export (the Fastify plugin) also exports it by name: ESM's default
  // is that value, not the CommonJS module object.
  const alias = values.has('default') ? names.find((n) => values.get(n) === values.get('default')) : undefined
  if (values.has('default') && alias === undefined) {
    throw new Error(`lib/${entry}.ts: its default export has no named twin`)
  }
  const js = `import cjs from './${entry}.js'\nexport const { ${names.join(', ')} } = cjs\nexport default ${alias === undefined ? 'cjs' : alias}\n`
  const dts =
    alias === undefined
      ? `export * from './${entry}.js'\n`
      : `export * from './${entry}.js'\nimport { ${alias} } from './${entry}.js'\nexport default ${alias}\n`
  writeFileSync(new URL(`../dist/${entry}.mjs`, import.meta.url), js)
  writeFileSync(new URL(`../dist/${entry}.d.mts`, import.meta.url), dts)
}
