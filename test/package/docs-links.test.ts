// The README is the front page and docs/ holds the rest: scripts/check-links.mjs resolves every
// relative link and #anchor of README.md, CHANGELOG.md, SECURITY.md and docs/**/*.md and keeps
// the README within 250 lines; comments in lib/ and native/ that cite a docs page resolve too. The CHANGELOG's top entry is package.json's version.
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ROOT = path.join(__dirname, '..', '..')
const script = path.join(ROOT, 'scripts', 'check-links.mjs')

describe('README and docs links', () => {
  it('every link and anchor resolves, and the README is at most 250 lines', async () => {
    const { stdout } = await run(process.execPath, [script], { cwd: ROOT })
    expect(stdout).toMatch(/^check-links: ok \(\d+ files\)$/m)
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    expect(readme.split('\n').length - 1).toBeLessThanOrEqual(250)
  })

  it('the README links into docs/ and keeps the two commands of a clone', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
    for (const page of [
      'docs/api/README.md',
      'docs/security.md',
      'docs/performance.md',
      'docs/platforms.md',
      'docs/contributing.md',
    ]) {
      expect(readme).toContain(`](${page})`)
    }
    expect(readme).toContain('npm install sealed-session')
    expect(readme).toMatch(/^npm install && npm run demo\b/m)
    expect(readme).toMatch(/^npm test\b/m)
  })

  describe('fails on', () => {
    let dir: string | undefined
    afterEach(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
      dir = undefined
    })
    function tree(files: Record<string, string>): string {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ss-links-'))
      for (const [name, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
        fs.writeFileSync(path.join(dir, name), text)
      }
      return dir
    }
    async function check(root: string): Promise<{ code: number; stdout: string }> {
      try {
        const { stdout } = await run(process.execPath, [script, '--root', root])
        return { code: 0, stdout }
      } catch (err) {
        const e = err as { code: number; stdout: string }
        return { code: e.code, stdout: e.stdout }
      }
    }

    it('a link to a missing file, a missing anchor, a link outside the repository, or code citing a missing anchor', async () => {
      const root = tree({
        'README.md': '# Title\n\nSee [the API](docs/api.md#sessions), [gone](docs/gone.md), [up](../x.md).\n',
        'docs/api.md':
          '# API\n\n## Sessions\n\n[back](../README.md#nothing-here) and [self](#api)\n\n```md\n[in code](nowhere.md)\n```\n',
        'lib/x.ts': '// The format: docs/api.md#sessions\n// The keys: docs/api.md#keys\nexport {}\n',
      })
      const { code, stdout } = await check(root)
      expect(code).toBe(1)
      expect(stdout).toContain('README.md:3: docs/gone.md: no such file or directory')
      expect(stdout).toContain('README.md:3: ../x.md: leads outside the repository')
      expect(stdout).toContain(
        'docs/api.md:5: ../README.md#nothing-here: no heading or anchor #nothing-here in README.md',
      )
      expect(stdout).not.toContain('nowhere.md')
      expect(stdout).not.toContain('#sessions')
      expect(stdout).toContain('lib/x.ts:2: docs/api.md#keys: no heading or anchor #keys in docs/api.md')
      expect(stdout).toContain('check-links: 4 problem(s)')
    })

    it('a README over 250 lines', async () => {
      const root = tree({ 'README.md': `# Title\n${'line\n'.repeat(250)}` })
      const { code, stdout } = await check(root)
      expect(code).toBe(1)
      expect(stdout).toContain("README.md: 251 lines, over the front page's 250")
      const ok = await check(tree({ 'README.md': `# Title\n${'line\n'.repeat(249)}` }))
      expect(ok).toMatchObject({ code: 0 })
    })

    it('anchors as GitHub spells them: code, punctuation and repeated headings', async () => {
      const root = tree({
        'README.md':
          "# A\n\n## Keychain-backed keys (`keySource: 'keychain'`)\n\n## The C++ core's tests\n\n## Notes\n\n## Notes\n\n" +
          '[a](#keychain-backed-keys-keysource-keychain) [b](#the-c-cores-tests) [c](#notes-1) [d](#notes-2)\n',
      })
      const { code, stdout } = await check(root)
      expect(code).toBe(1)
      expect(stdout.trim().split('\n').slice(0, -1)).toEqual([
        'README.md:11: #notes-2: no heading or anchor #notes-2 in README.md',
      ])
    })
  })
})

describe('CHANGELOG.md', () => {
  it("its top entry names package.json's version", () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    const changelog = fs.readFileSync(path.join(ROOT, 'CHANGELOG.md'), 'utf8')
    const top = /^## (\S+)/m.exec(changelog)
    expect(top?.[1]).toBe(version)
  })
})
