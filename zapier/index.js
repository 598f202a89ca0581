'use strict';

// memrelay for Zapier: REST-hook triggers with polling fallbacks, creates, searches with search-or-create.
const zapier = require('zapier-platform-core');

const authentication = require('./authentication');
const { addAuth, handleResponse } = require('./lib/http');
const triggers = require('./triggers');
const creates = require('./creates');
const searches = require('./searches');

const byKey = (list) => Object.fromEntries(list.map((item) => [item.key, item]));

module.exports = {
  version: require('./package.json').version,
  platformVersion: zapier.version,
  authentication,
  beforeRequest: [addAuth],
  afterResponse: [handleResponse],
  triggers: byKey(triggers),
  creates: byKey(creates),
  searches: byKey(searches),
  searchOrCreates: {
    find_record: {
      key: 'find_record',
      display: {
        label: 'Find or Create Record',
        description: 'Finds a record by its key, or creates it.',
      },
      search: 'find_record',
      create: 'upsert_record',
    },
    find_contact: {
      key: 'find_contact',
      display: {
        label: 'Find or Create Contact',
        description: 'Finds a contact by email, or creates it.',
      },
      search: 'find_contact',
      create: 'upsert_contact',
    },
  },
};
