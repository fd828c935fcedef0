// Checks the project's Markdown: every relative link and #anchor of README.md, CHANGELOG.md,
// SECURITY.md and docs/**/*.md resolves (the file or directory exists inside the repository;
// an anchor names a heading of the target, slugged as GitHub does, or an explicit <a id>), and
// README.md stays the front page: at most 250 lines. Links inside code (fenced blocks, `spans`)
// are not links; http(s), mailto and other schemes are not checked (no network). Comments in
// lib/ and native/ that cite a page (docs/security.md#keys) must resolve too.
//   node scripts/check-links.mjs [--root DIR]
// Exit code 0 when all resolve; 1 with one line per problem otherwise.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const README_MAX_LINES = 250

/** The Markdown files checked, relative to root. */
export function markdownFiles(root) {
  const files = ['README.md', 'CHANGELOG.md', 'SECURITY.md'].filter((f) => fs.existsSync(path.join(root, f)))
  const walk = (dir) => {
    if (!fs.existsSync(path.join(root, dir))) return
    for (const e of fs
      .readdirSync(path.join(root, dir), { withFileTypes: true })
      .sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.join(dir, e.name)
      if (e.isDirectory()) walk(rel)
      else if (e.name.endsWith('.md')) files.push(rel)
    }
  }
  walk('docs')
  return files
}

/** The text with fenced code blocks and code spans blanked out; line breaks are kept so that
 *  offsets still give the right line. */
function withoutCode(markdown) {
  const lines = markdown.split('\n')
  let fence = null
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {0,3}(`{3,}|~{3,})/.exec(lines[i])
    if (fence) {
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && /^\s*$/.test(lines[i].slice(m[0].length)))
        fence = null
      lines[i] = ''
    } else if (m) {
      fence = m[1]
      lines[i] = ''
    }
  }
  return lines.join('\n').replace(/(`+)[\s\S]*?\1/g, (span) => span.replace(/[^\n]/g, ' '))
}

/** GitHub's heading anchor: lowercase, punctuation and symbols dropped, spaces to hyphens. */
export function slug(heading) {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') // inline HTML
    .replace(/`/g, '')
    .replace(/\*+/g, '')
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-')
}

/** Every anchor a Markdown file offers: its headings' slugs (repeats get -1, -2, … as on
 *  GitHub) and explicit <a id="…"> / <a name="…">. */
export function anchorsOf(markdown) {
  const anchors = new Set()
  const seen = new Map()
  const add = (s) => {
    const n = seen.get(s) ?? 0
    seen.set(s, n + 1)
    anchors.add(n === 0 ? s : `${s}-${n}`)
  }
  const lines = markdown.split('\n')
  let fence = null
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const f = /^ {0,3}(`{3,}|~{3,})/.exec(line)
    if (fence) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length) fence = null
      continue
    }
    if (f) {
      fence = f[1]
      continue
    }
    const atx = /^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/.exec(line)
    if (atx) add(slug(atx[1]))
    else if (
      /^ {0,3}(=+|-+)[ \t]*$/.test(line) &&
      i > 0 &&
      /\S/.test(lines[i - 1]) &&
      !/^ {0,3}([|>#*+-]|\d+[.)])/.test(lines[i - 1])
    ) {
      add(slug(lines[i - 1].trim()))
    }
    for (const m of line.matchAll(/<a\s[^>]*(?:id|name)="([^"]+)"/gi)) anchors.add(m[1])
  }
  return anchors
}

/** The link targets of a Markdown file: inline links and images, reference definitions and
 *  HTML href/src, with the line each is on. */
export function linksOf(markdown) {
  const text = withoutCode(markdown)
  const lineAt = (offset) => text.slice(0, offset).split('\n').length
  const links = []
  for (const m of text.matchAll(
    /!?\[(?:[^[\]]|\[[^[\]]*\])*\]\(\s*(<[^>]*>|[^\s)]+)(?:\s+("[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g,
  )) {
    links.push({ target: m[1].replace(/^<|>$/g, ''), line: lineAt(m.index) })
  }
  for (const m of text.matchAll(/^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/gm)) {
    links.push({ target: m[1].replace(/^<|>$/g, ''), line: lineAt(m.index) })
  }
  for (const m of text.matchAll(/<(?:a|img)\s[^>]*(?:href|src)="([^"]+)"/gi))
    links.push({ target: m[1], line: lineAt(m.index) })
  return links
}

/** Every problem found under root, as "file:line: message" strings. */
export function checkLinks(root) {
  root = path.resolve(root)
  const problems = []
  const anchorCache = new Map()
  const anchorsIn = (file) => {
    if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(fs.readFileSync(file, 'utf8')))
    return anchorCache.get(file)
  }

  const readme = path.join(root, 'README.md')
  if (!fs.existsSync(readme)) problems.push('README.md: missing')
  else {
    const text = fs.readFileSync(readme, 'utf8')
    const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length
    if (lines > README_MAX_LINES) problems.push(`README.md: ${lines} lines, over the front page's ${README_MAX_LINES}`)
  }

  for (const rel of markdownFiles(root)) {
    const file = path.join(root, rel)
    for (const { target, line } of linksOf(fs.readFileSync(file, 'utf8'))) {
      const where = `${rel}:${line}`
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue // http:, mailto:, …
      const hash = target.indexOf('#')
      const pathPart = hash === -1 ? target : target.slice(0, hash)
      const anchor = hash === -1 ? null : decodeURIComponent(target.slice(hash + 1))
      let dest
      try {
        const decoded = decodeURIComponent(pathPart.split('?')[0])
        dest =
          decoded === ''
            ? file
            : decoded.startsWith('/')
              ? path.join(root, decoded)
              : path.resolve(path.dirname(file), decoded)
      } catch {
        problems.push(`${where}: ${target}: not a valid URL path`)
        continue
      }
      if (dest !== root && !dest.startsWith(root + path.sep)) {
        problems.push(`${where}: ${target}: leads outside the repository`)
        continue
      }
      if (!fs.existsSync(dest)) {
        problems.push(`${where}: ${target}: no such file or directory`)
        continue
      }
      if (anchor === null || anchor === '') continue
      if (fs.statSync(dest).isFile() && dest.endsWith('.md')) {
        if (!anchorsIn(dest).has(anchor))
          problems.push(`${where}: ${target}: no heading or anchor #${anchor} in ${path.relative(root, dest)}`)
      } else if (!/^L\d+(-L\d+)?$/.test(anchor)) {
        problems.push(`${where}: ${target}: #${anchor} on a file that has no headings`)
      }
    }
  }

  // Code cites the docs by repository path: docs/<page>.md, optionally with an anchor.
  const cite = (rel, text) => {
    for (const m of text.matchAll(/\bdocs\/[\w./-]*?\.md(?:#[\w-]+)?/g)) {
      const line = text.slice(0, m.index).split('\n').length
      const [page, anchor] = m[0].split('#')
      const dest = path.join(root, page)
      if (!fs.existsSync(dest)) problems.push(`${rel}:${line}: ${m[0]}: no such file`)
      else if (anchor && !anchorsIn(dest).has(anchor))
        problems.push(`${rel}:${line}: ${m[0]}: no heading or anchor #${anchor} in ${page}`)
    }
  }
  const walkCode = (dir) => {
    if (!fs.existsSync(path.join(root, dir))) return
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name)
      if (e.isDirectory()) walkCode(rel)
      else if (/\.(ts|mts|cts|js|mjs|cjs|cc|h)$/.test(e.name)) cite(rel, fs.readFileSync(path.join(root, rel), 'utf8'))
    }
  }
  walkCode('lib')
  walkCode('native')
  return problems
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const args = process.argv.slice(2)
  const root = args.includes('--root')
    ? args[args.indexOf('--root') + 1]
    : path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
  const problems = checkLinks(root)
  for (const p of problems) console.log(p)
  const files = markdownFiles(path.resolve(root)).length
  console.log(problems.length === 0 ? `check-links: ok (${files} files)` : `check-links: ${problems.length} problem(s)`)
  process.exit(problems.length === 0 ? 0 : 1)
}
