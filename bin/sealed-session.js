#!/usr/bin/env node
// `npx sealed-session status|switch ID|logout|doctor [--app NAME] [--dir DIR]`: see lib/manager/cli.ts.
'use strict'
require('../dist/manager/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
