'use strict';

// The platform's own validator, offline: zapier-platform-core compiles the app and checks it against
// zapier-platform-schema (what `zapier validate` runs locally before its server-side checks).
const schemaTools = require('zapier-platform-core/src/tools/schema');
const app = require('../index');

const errors = schemaTools.validateApp(schemaTools.compileApp(app));
if (errors.length) {
  for (const e of errors) {
    console.error(`${e.property}: ${e.message}`);
  }
  process.exit(1);
}
console.log(`memrelay-zapier ${app.version} (platform ${app.platformVersion}) is valid: ` +
  `${Object.keys(app.triggers).length} triggers, ${Object.keys(app.creates).length} creates, ` +
  `${Object.keys(app.searches).length} searches, ${Object.keys(app.searchOrCreates).length} search-or-creates`);
