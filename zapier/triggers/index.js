'use strict';

const { eventTriggers } = require('../lib/events');

const typeFilter = {
  key: 'type',
  label: 'Entity Type',
  dynamic: 'entity_types.id.name',
  required: false,
  helpText: 'Only records of this entity type (e.g. contact). Empty: every type.',
};

const propertyFilter = {
  key: 'property',
  label: 'Property',
  dynamic: 'property_names.id.name',
  required: false,
  helpText: 'Only changes of this property (e.g. job_title). Empty: every property.',
};

const recordCreated = eventTriggers({
  key: 'record_created',
  event: 'record.created',
  noun: 'Record',
  label: 'New Record',
  description: 'Triggers when a record (contact, company, ...) is first created in memrelay, by any path',
  inputFields: [typeFilter],
  sample: {
    id: 'evt_0f6f0b0a4a1e4b3c9d2e1f00', event: 'record.created', created_at: '2026-12-06T14:00:00.000000Z',
    recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact', primaryKey: 'email:ann@acme.com',
    keys: { email: 'ann@acme.com' }, createdAt: '2026-12-06T14:00:00.000000Z',
  },
  outputFields: [
    { key: 'recordId', label: 'Record ID' }, { key: 'type', label: 'Entity Type' },
    { key: 'primaryKey', label: 'Primary Key' }, { key: 'keys__email', label: 'Email' },
    { key: 'keys__website_url', label: 'Website URL' },
  ],
});

const propertyUpdated = eventTriggers({
  key: 'property_updated',
  event: 'memory.property.updated',
  noun: 'Property',
  label: 'Property Updated',
  description: 'Triggers once per property whose value changes (every write, however many properties it changes)',
  inputFields: [typeFilter, propertyFilter],
  sample: {
    id: 'evt_e3d361dda6d733475b1f3960', event: 'memory.property.updated', created_at: '2026-12-06T14:00:00.000000Z',
    recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact', version: 2, source: 'api', sourceEventId: null,
    changedProperties: ['job_title', 'phone'], propertyName: 'job_title', value: 'CTO', previous: 'VP Engineering',
  },
  outputFields: [
    { key: 'recordId', label: 'Record ID' }, { key: 'type', label: 'Entity Type' },
    { key: 'propertyName', label: 'Property' }, { key: 'value', label: 'New Value' },
    { key: 'previous', label: 'Previous Value' }, { key: 'source', label: 'Source' },
    { key: 'version', label: 'Record Version', type: 'integer' },
  ],
});

const memoryUpdated = eventTriggers({
  key: 'memory_updated',
  event: 'memory.updated',
  noun: 'Memory',
  label: 'New or Updated Memory',
  description: 'Triggers when a memory about a record is stored or changed',
  inputFields: [typeFilter],
  sample: {
    id: 'evt_2b1d0c9e8f7a6b5c4d3e2f10', event: 'memory.updated', created_at: '2026-12-06T14:00:00.000000Z',
    memoryId: 'mem_01a2b3c4d5e6f7a8b9c0d1e2', recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact',
  },
  outputFields: [{ key: 'memoryId', label: 'Memory ID' }, { key: 'recordId', label: 'Record ID' }],
});

const recordDeleted = eventTriggers({
  key: 'record_deleted',
  event: 'memory.record.deleted',
  noun: 'Record',
  label: 'Record Deleted',
  description: 'Triggers when a record is deleted (or merged into another)',
  inputFields: [typeFilter],
  sample: {
    id: 'evt_9a8b7c6d5e4f3a2b1c0d9e8f', event: 'memory.record.deleted', created_at: '2026-12-06T14:00:00.000000Z',
    recordId: 'rec_01a208fd4eba696b0fc1110391ac', type: 'contact',
  },
  outputFields: [{ key: 'recordId', label: 'Record ID' }, { key: 'type', label: 'Entity Type' }],
});

// Hidden triggers feeding dynamic dropdowns.
const entityTypes = {
  key: 'entity_types',
  noun: 'Entity Type',
  display: { label: 'List Entity Types', description: 'Entity types, for dropdowns.', hidden: true },
  operation: {
    perform: async (z) => {
      const response = await z.request({ url: '/api/v1/entities' });
      const list = Array.isArray(response.data) ? response.data : response.data.entities || [];
      return list.map((e) => ({ id: e.slug, name: e.label || e.name || e.slug }));
    },
    sample: { id: 'contact', name: 'Contact' },
  },
};

const propertyNames = {
  key: 'property_names',
  noun: 'Property',
  display: { label: 'List Properties', description: 'Properties of the collections, for dropdowns.', hidden: true },
  operation: {
    perform: async (z, bundle) => {
      const params = bundle.inputData && bundle.inputData.type ? { type: bundle.inputData.type } : {};
      const response = await z.request({ url: '/api/v1/collections', params });
      const seen = new Map();
      for (const c of response.data.collections || []) {
        for (const spec of c.properties || []) {
          if (spec.propertyName && !seen.has(spec.propertyName)) {
            seen.set(spec.propertyName, { id: spec.propertyName, name: `${spec.propertyName} (${c.entityType})` });
          }
        }
      }
      return [...seen.values()];
    },
    sample: { id: 'job_title', name: 'job_title (contact)' },
  },
};

module.exports = [...recordCreated, ...propertyUpdated, ...memoryUpdated, ...recordDeleted, entityTypes, propertyNames];
