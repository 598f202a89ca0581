'use strict';

const { keyFields, pickKeys, pickProperties, propertyFieldsFor, propertiesDict } = require('../lib/fields');

const RECORD_SAMPLE = {
  recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact', primaryKey: 'email:ann@acme.com', version: 1,
  createdAt: '2026-12-06T14:00:00.000000Z', updatedAt: '2026-12-06T14:00:00.000000Z', created: true,
  updated: 'first_name,job_title', stale: '', unchanged: '',
};

const RECORD_OUTPUT = [
  { key: 'recordId', label: 'Record ID' }, { key: 'type', label: 'Entity Type' },
  { key: 'created', label: 'Created', type: 'boolean' }, { key: 'updated', label: 'Updated Properties' },
  { key: 'version', label: 'Version', type: 'integer' },
];

const post = async (z, url, body) => (await z.request({ url, method: 'POST', body })).data;

const upsertContact = {
  key: 'upsert_contact',
  noun: 'Contact',
  display: { label: 'Create or Update Contact', description: 'Creates a contact, or updates the one with that email.' },
  operation: {
    inputFields: [
      { key: 'email', label: 'Email', required: true },
      propertyFieldsFor('contact'),
      propertiesDict,
    ],
    perform: (z, bundle) => post(z, '/api/v1/actions/upsert-contact', {
      email: bundle.inputData.email, properties: pickProperties(bundle.inputData),
    }),
    sample: RECORD_SAMPLE,
    outputFields: RECORD_OUTPUT,
  },
};

const upsertCompany = {
  key: 'upsert_company',
  noun: 'Company',
  display: {
    label: 'Create or Update Company',
    description: 'Creates a company, or updates the one with that website.',
  },
  operation: {
    inputFields: [
      { key: 'website_url', label: 'Website URL', required: true, helpText: 'e.g. acme.com' },
      propertyFieldsFor('company'),
      propertiesDict,
    ],
    perform: (z, bundle) => post(z, '/api/v1/actions/upsert-company', {
      website_url: bundle.inputData.website_url, properties: pickProperties(bundle.inputData),
    }),
    sample: { ...RECORD_SAMPLE, type: 'company', primaryKey: 'website_url:acme.com', updated: 'industry' },
    outputFields: RECORD_OUTPUT,
  },
};

const upsertRecord = {
  key: 'upsert_record',
  noun: 'Record',
  display: {
    label: 'Create or Update Record',
    description: 'Creates a record of any entity type, or updates the one its key names.',
  },
  operation: {
    inputFields: [
      ...keyFields({ withType: true, required: true }),
      propertyFieldsFor(),
      propertiesDict,
    ],
    perform: (z, bundle) => post(z, '/api/v1/actions/upsert-record', {
      ...pickKeys(bundle.inputData), properties: pickProperties(bundle.inputData),
    }),
    sample: RECORD_SAMPLE,
    outputFields: RECORD_OUTPUT,
  },
};

const memorizeFields = [
  { key: 'content', label: 'Content', required: true, type: 'text', helpText: 'The text to remember.' },
  ...keyFields(),
  { key: 'tags', label: 'Tags', list: true, helpText: 'Defaults to `zapier`.' },
  { key: 'speaker', label: 'Speaker', helpText: 'Who said or wrote it.' },
  {
    key: 'enhanced', label: 'Extract with AI', type: 'boolean', default: 'false',
    helpText: 'Use the configured LLM to extract properties and facts (otherwise the offline extractor).',
  },
];

const memorize = {
  key: 'memorize',
  noun: 'Memory',
  display: { label: 'Memorize', description: 'Stores free text about a record as memories and properties.' },
  operation: {
    inputFields: memorizeFields,
    perform: (z, bundle) => {
      const d = bundle.inputData;
      return post(z, '/api/v1/actions/memorize', {
        ...pickKeys(d),
        content: d.content,
        tags: d.tags && d.tags.length ? d.tags : undefined,
        speaker: d.speaker || undefined,
        enhanced: d.enhanced === true || d.enhanced === 'true',
      });
    },
    sample: {
      recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact', memoriesCreated: 2, duplicatesSkipped: 0,
    },
    outputFields: [
      { key: 'recordId', label: 'Record ID' }, { key: 'memoriesCreated', label: 'Memories Created', type: 'integer' },
    ],
  },
};

const batchMemorize = {
  key: 'batch_memorize',
  noun: 'Memories',
  display: {
    label: 'Memorize Batch',
    description: 'Stores several texts at once (Zapier line items), each about its own record.',
  },
  operation: {
    inputFields: [
      {
        key: 'items',
        label: 'Items',
        required: true,
        children: [
          { key: 'content', label: 'Content', required: true },
          { key: 'email', label: 'Email' },
          { key: 'website_url', label: 'Website URL' },
          { key: 'type', label: 'Entity Type' },
        ],
      },
      { key: 'tags', label: 'Tags', list: true },
    ],
    perform: (z, bundle) => {
      const items = (bundle.inputData.items || []).map((item) => {
        const out = { content: item.content };
        for (const k of ['email', 'website_url', 'type']) {
          if (item[k]) {
            out[k] = item[k];
          }
        }
        return out;
      });
      const tags = bundle.inputData.tags && bundle.inputData.tags.length ? bundle.inputData.tags : undefined;
      return post(z, '/api/v1/actions/batch-memorize', { items, tags });
    },
    sample: { total: 2, succeeded: 2, failed: 0 },
  },
};

module.exports = [upsertContact, upsertCompany, upsertRecord, memorize, batchMemorize];
