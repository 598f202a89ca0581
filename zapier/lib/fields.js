'use strict';

// Input fields shared by creates and searches, and the dynamic property fields built from /api/v1/collections.

const PROP_PREFIX = 'prop__';

const keyFields = ({ withType = true, required = false } = {}) => [
  ...(withType
    ? [{
      key: 'type',
      label: 'Entity Type',
      dynamic: 'entity_types.id.name',
      altersDynamicFields: true,
      required,
      helpText: 'contact, company, deal or any entity type of your memrelay (leave empty to infer from the key).',
    }]
    : []),
  { key: 'email', label: 'Email', helpText: 'Names a contact.' },
  { key: 'website_url', label: 'Website URL', helpText: 'Names a company.' },
  { key: 'record_id', label: 'Record ID', helpText: 'memrelay record id (`rec_...`).' },
  { key: 'customKeyName', label: 'Custom Key Name', helpText: 'e.g. `dealId` (with Custom Key Value).' },
  { key: 'customKeyValue', label: 'Custom Key Value' },
];

const KEY_NAMES = ['type', 'email', 'website_url', 'record_id', 'customKeyName', 'customKeyValue'];

// The identifier fields of inputData that are set.
const pickKeys = (inputData) => {
  const out = {};
  for (const name of KEY_NAMES) {
    const value = inputData[name];
    if (value !== undefined && value !== null && String(value).trim() !== '') {
      out[name] = String(value).trim();
    }
  }
  return out;
};

// Property values: dynamic fields (prop__<name>) plus the free-form "properties" dict.
const pickProperties = (inputData) => {
  const props = { ...(inputData.properties || {}) };
  for (const [key, value] of Object.entries(inputData)) {
    if (key.startsWith(PROP_PREFIX) && value !== undefined && value !== null && value !== '') {
      props[key.slice(PROP_PREFIX.length)] = value;
    }
  }
  return props;
};

const ZAPIER_TYPES = { number: 'number', boolean: 'boolean', date: 'datetime' };

// One input field per property of the entity type's collections (GET /api/v1/collections?type=...).
const propertyFieldsFor = (entityType) => async (z, bundle) => {
  const type = entityType || (bundle.inputData && bundle.inputData.type);
  if (!type) {
    return [];
  }
  const response = await z.request({ url: '/api/v1/collections', params: { type } });
  const seen = new Set();
  const fields = [];
  for (const collection of response.data.collections || []) {
    for (const spec of collection.properties || []) {
      if (!spec.propertyName || seen.has(spec.propertyName)) {
        continue;
      }
      seen.add(spec.propertyName);
      const field = {
        key: `${PROP_PREFIX}${spec.propertyName}`,
        label: spec.propertyName.replace(/[_-]+/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase()),
        helpText: spec.description || `Property \`${spec.propertyName}\` (${collection.collectionName}).`,
        type: ZAPIER_TYPES[spec.type] || 'string',
        required: false,
      };
      if (spec.type === 'options' && Array.isArray(spec.options) && spec.options.length) {
        field.choices = spec.options;
      }
      if (spec.type === 'array') {
        field.list = true;
      }
      fields.push(field);
    }
  }
  return fields;
};

const propertiesDict = {
  key: 'properties',
  label: 'Other Properties',
  dict: true,
  required: false,
  helpText: 'Property name → value for properties not listed above.',
};

module.exports = { keyFields, pickKeys, pickProperties, propertyFieldsFor, propertiesDict, PROP_PREFIX };
