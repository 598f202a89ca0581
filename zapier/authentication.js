'use strict';

// Custom auth: the memrelay base URL and an org API key (mr_...). The test is GET /api/v1/me.
module.exports = {
  type: 'custom',
  fields: [
    {
      key: 'baseUrl',
      label: 'memrelay URL',
      required: true,
      type: 'string',
      helpText: 'Where your memrelay answers, e.g. `https://memrelay.example.com` (no trailing `/api/v1`).',
    },
    {
      key: 'apiKey',
      label: 'API Key',
      required: true,
      type: 'password',
      helpText: 'An org API key (`mr_...`). Triggers need the `admin` scope (a REST hook streams the org\'s ' +
        'events to Zapier); creates need `write`; searches `read`.',
    },
  ],
  test: async (z) => {
    const response = await z.request({ url: '/api/v1/me' });
    return response.data;
  },
  connectionLabel: (z, bundle) => {
    const me = bundle.inputData || {};
    const org = (me.org && me.org.name) || '';
    const key = (me.key && me.key.id) || '';
    return [org, key].filter(Boolean).join(' · ');
  },
};
