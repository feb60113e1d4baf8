'use strict';
// Preload for scripts/sequelize-suite.sh (loaded with mocha -r, i.e. node --require).
// Installs sequelize-multitenant on every postgres Sequelize instance that Sequelize's own test suite creates.
//   SEQ_SUITE_CHECKOUT  the Sequelize v6 checkout under test (its built lib/ is what the suite loads as 'sequelize')
//   SEQ_SUITE_PLUGIN    a copy of this project's dist/ whose require('sequelize') resolves to that checkout
const { createRequire } = require('node:module');
const path = require('node:path');

const checkout = process.env.SEQ_SUITE_CHECKOUT;
const pluginDir = process.env.SEQ_SUITE_PLUGIN;
if (!checkout || !pluginDir) throw new Error('sequelize-suite-preload: SEQ_SUITE_CHECKOUT and SEQ_SUITE_PLUGIN must be set');

// The class the suite uses: its `require('sequelize')` is the package's self-reference, i.e. <checkout>/lib/index.js.
const suiteEntry = createRequire(path.join(checkout, 'test', 'support.js')).resolve('sequelize');
const pluginEntry = createRequire(path.join(pluginDir, 'index.js')).resolve('sequelize');
if (suiteEntry !== pluginEntry) {
  throw new Error(`sequelize-suite-preload: the plugin resolves ${pluginEntry}, the suite ${suiteEntry}: not one module`);
}
const Sequelize = require(suiteEntry);
const { multitenant } = require(path.join(pluginDir, 'index.js'));

// Sequelize's constructor ends with the synchronous `Sequelize.runHooks('afterInit', this)`. A static
// `Sequelize.addHook('afterInit', ...)` would not survive test/integration/hooks/hooks.test.js, which resets
// `Sequelize.options.hooks = {}`, so the static runHooks is wrapped instead: the plugin goes in first (as a
// hook added at startup would), and an install error is thrown from the constructor rather than lost in
// runHooks' promise.
let created = 0;
let installed = 0;
const runHooks = Sequelize.runHooks;
Sequelize.runHooks = function runHooksWithPlugin(hookType, ...args) {
  if (hookType === 'afterInit' && args[0] instanceof Sequelize) {
    created++;
    if (args[0].getDialect() === 'postgres') {
      multitenant(args[0], { notice: false });
      installed++;
    }
  }
  return runHooks.call(this, hookType, ...args);
};

process.on('exit', () => {
  process.stderr.write(`sequelize-multitenant installed on ${installed} of ${created} Sequelize instances\n`);
});
