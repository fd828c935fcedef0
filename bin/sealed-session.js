#!/usr/bin/env node
// `npx sealed-session status|logout|doctor [--app NAME] [--dir DIR]`: see dist/cli.js.
'use strict'
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
  })
