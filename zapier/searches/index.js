'use strict';

const { keyFields, pickKeys } = require('../lib/fields');

const RECORD_SAMPLE = {
  id: 'rec_01a208fd4eba696b0fc1110391ac', recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact',
  primaryKey: 'email:ann@acme.com', version: 3, keys__email: 'ann@acme.com',
  properties__job_title__value: 'CTO', properties__job_title__source: 'zapier',
};

const findRecord = {
  key: 'find_record',
  noun: 'Record',
  display: { label: 'Find Record', description: 'Finds a record by email, website, record id or a custom key.' },
  operation: {
    inputFields: keyFields({ withType: true }),
    perform: async (z, bundle) => {
      const response = await z.request({ url: '/api/v1/searches/find-record', params: pickKeys(bundle.inputData) });
      return response.data;
    },
    sample: RECORD_SAMPLE,
    outputFields: [{ key: 'recordId', label: 'Record ID' }, { key: 'type', label: 'Entity Type' }],
  },
};

const findContact = {
  key: 'find_contact',
  noun: 'Contact',
  display: { label: 'Find Contact', description: 'Finds a contact by email.' },
  operation: {
    inputFields: [{ key: 'email', label: 'Email', required: true }],
    perform: async (z, bundle) => {
      const response = await z.request({
        url: '/api/v1/searches/find-record', params: { type: 'contact', email: bundle.inputData.email },
      });
      return response.data;
    },
    sample: RECORD_SAMPLE,
  },
};

const smartRecall = {
  key: 'smart_recall',
  noun: 'Memory',
  display: {
    label: 'Smart Recall',
    description: 'Finds the memories that best answer a question, about one record or across the org.',
  },
  operation: {
    inputFields: [
      { key: 'query', label: 'Question', required: true, helpText: 'e.g. "What does Ann care about?"' },
      ...keyFields(),
      { key: 'limit', label: 'Max Results', type: 'integer', default: '5' },
    ],
    perform: async (z, bundle) => {
      const d = bundle.inputData;
      const response = await z.request({
        url: '/api/v1/searches/smart-recall',
        method: 'POST',
        body: { ...pickKeys(d), query: d.query, limit: parseInt(d.limit || '5', 10) || 5 },
      });
      return response.data;
    },
    sample: {
      id: 'mem_01a2b3c4d5e6f7a8b9c0d1e2', memoryId: 'mem_01a2b3c4d5e6f7a8b9c0d1e2',
      recordId: 'rec_01a208fd4eba696b0fc1110391ac', text: 'Ann prefers email.', score: 0.82,
    },
    outputFields: [{ key: 'text', label: 'Memory' }, { key: 'score', label: 'Score', type: 'number' }],
  },
};

module.exports = [findRecord, findContact, smartRecall];
