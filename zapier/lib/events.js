'use strict';

// One factory for every memrelay event trigger: an instant REST hook (subscribe/unsubscribe through
// /api/v1/hooks, each delivery verified with the hook's Standard Webhooks secret) whose performList — the
// sample and the polling fallback — pages GET /api/v1/feed with a cursor. Items carry the event's stable `id`
// (Zapier dedupes on it), `event`, `created_at` and the event data flat at the top level.

const { verify } = require('./signature');

const FEED_LIMIT = 50;

// Query filters a trigger's input supports (server side for polling, here for hooks).
const filtersOf = (inputData = {}) => {
  const out = {};
  if (inputData.type) {
    out.type = String(inputData.type).trim().toLowerCase();
  }
  if (inputData.property) {
    out.property = String(inputData.property).trim();
  }
  return out;
};

const wanted = (item, filters) => {
  if (filters.type && String(item.type || '').toLowerCase() !== filters.type) {
    return false;
  }
  if (filters.property) {
    const changed = item.properties && typeof item.properties === 'object' ? item.properties : {};
    return item.propertyName === filters.property || filters.property in changed;
  }
  return true;
};

// A page of events, newest first; page > 0 continues from the cursor the previous page stored.
const listEvents = (event) => async (z, bundle) => {
  const params = { eventTypes: event, limit: FEED_LIMIT, ...filtersOf(bundle.inputData) };
  if (bundle.meta && bundle.meta.page) {
    const cursor = await z.cursor.get();
    if (!cursor) {
      return [];
    }
    params.cursor = cursor;
  }
  const response = await z.request({ url: '/api/v1/feed', params });
  const page = response.data;
  if (bundle.meta && bundle.meta.page !== undefined && page.nextCursor) {
    await z.cursor.set(page.nextCursor);
  }
  const seen = new Set();
  return (page.items || []).filter((item) => !seen.has(item.id) && seen.add(item.id));
};

const subscribe = (event) => async (z, bundle) => {
  const response = await z.request({
    url: '/api/v1/hooks',
    method: 'POST',
    body: { target_url: bundle.targetUrl, event },
  });
  return response.data; // {id, event, target_url, secret}: kept by Zapier as bundle.subscribeData
};

const unsubscribe = async (z, bundle) => {
  const id = bundle.subscribeData && bundle.subscribeData.id;
  const response = await z.request({ url: `/api/v1/hooks/${encodeURIComponent(id)}`, method: 'DELETE' });
  return response.data;
};

// A delivery: verified when Zapier hands the raw request and the subscription's secret is known.
const receive = async (z, bundle) => {
  const secret = bundle.subscribeData && bundle.subscribeData.secret;
  const raw = bundle.rawRequest;
  if (secret && raw && raw.headers && typeof raw.content === 'string') {
    if (!verify(secret, raw.headers, raw.content)) {
      z.console.log('memrelay: dropped a delivery whose Standard Webhooks signature does not verify');
      return [];
    }
  }
  const item = bundle.cleanedRequest || {};
  return wanted(item, filtersOf(bundle.inputData)) ? [item] : [];
};

const COMMON_OUTPUT = [
  { key: 'id', label: 'Event ID' },
  { key: 'event', label: 'Event Type' },
  { key: 'created_at', label: 'Created At', type: 'datetime' },
];

// ({key, event, noun, label, description, inputFields, sample, outputFields}) → a hook trigger and its
// polling twin (key + "_polling", for a memrelay that cannot reach Zapier).
const eventTriggers = ({ key, event, noun, label, description, inputFields = [], sample, outputFields = [] }) => {
  const hook = {
    key,
    noun,
    display: { label, description: `${description} (instant).` },
    operation: {
      type: 'hook',
      inputFields,
      performSubscribe: subscribe(event),
      performUnsubscribe: unsubscribe,
      perform: receive,
      performList: listEvents(event),
      canPaginate: true,
      sample,
      outputFields: [...COMMON_OUTPUT, ...outputFields],
    },
  };
  const polling = {
    key: `${key}_polling`,
    noun,
    display: {
      label: `${label} (Polling)`,
      description: `${description}, checked every few minutes — for a memrelay that Zapier can reach but that ` +
        'cannot send webhooks out.',
    },
    operation: {
      type: 'polling',
      inputFields,
      perform: listEvents(event),
      canPaginate: true,
      sample,
      outputFields: [...COMMON_OUTPUT, ...outputFields],
    },
  };
  return [hook, polling];
};

module.exports = { eventTriggers, listEvents, receive, filtersOf, wanted };
