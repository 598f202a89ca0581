'use strict';

// zapier-platform-core's app tester against a REAL memrelay (started by tests/zapier/test_zapier_app.py, which
// passes MEMRELAY_BASE_URL and an admin MEMRELAY_API_KEY). Effects are checked through memrelay's own API.
//   node --test test/        (skips everything without MEMRELAY_BASE_URL)

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');

const zapier = require('zapier-platform-core');
const createLambdaHandler = require('zapier-platform-core/src/tools/create-lambda-handler');
const resolveMethodPath = require('zapier-platform-core/src/tools/resolve-method-path');

const App = require('../index');
const { sign } = require('../lib/signature');

const BASE_URL = process.env.MEMRELAY_BASE_URL;
const API_KEY = process.env.MEMRELAY_API_KEY;
const READ_KEY = process.env.MEMRELAY_READ_KEY;
const skip = !BASE_URL || !API_KEY ? 'MEMRELAY_BASE_URL / MEMRELAY_API_KEY not set (run via make test-zapier)' : false;

const appTester = zapier.createAppTester(App);
const authData = { baseUrl: BASE_URL, apiKey: API_KEY };
const RUN = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const email = (name) => `${name}.${RUN}@zap.example`;

// The app tester has no cursor store (z.cursor would call Zapier's RPC server); Zapier keeps one cursor per
// zap between pages. Run a paginated operation through the platform's own handler with core's in-memory cursor
// mock (rpc-client's cursorTestObj). That mock files set_cursor(value) under the value and get_cursor() under
// `undefined`, so the store below hands back the last cursor set — one store per paging run, like Zapier's.
const cursorStores = {};
const cursorStore = (storeKey) => {
  if (!cursorStores[storeKey]) {
    let last = null;
    cursorStores[storeKey] = new Proxy({}, {
      set: (target, cursor) => { last = cursor; return true; },
      get: (target, key) => (key === 'undefined' ? last : Reflect.get(target, key)),
    });
  }
  return cursorStores[storeKey];
};
const runPage = async (operation, bundle, page, storeKey) => {
  const handler = createLambdaHandler(App);
  const method = resolveMethodPath(App, operation);
  const resp = await handler({
    command: 'execute', method, bundle: { ...bundle, meta: { ...(bundle.meta || {}), page } },
    storeKey, cursorTestObj: cursorStore(storeKey), zcacheTestObj: {},
  });
  return resp.results;
};

// memrelay's own API, to set up and to check effects.
const api = async (path, { method = 'GET', body, key = API_KEY } = {}) => {
  const res = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
};

// A local receiver standing in for hooks.zapier.com: records every delivery (raw headers and body).
const receiver = { deliveries: [], server: null, url: null };
const startReceiver = () => new Promise((resolve) => {
  receiver.server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      receiver.deliveries.push({ path: req.url, headers: req.headers, content: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"status":"success"}');
    });
  });
  receiver.server.listen(0, '127.0.0.1', () => {
    receiver.url = `http://127.0.0.1:${receiver.server.address().port}`;
    resolve();
  });
});

const waitFor = async (predicate, timeoutMs = 45000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = predicate();
    if (value) {
      return value;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('timed out waiting for a delivery');
};

// Zapier hands a hook's headers as "Http-Webhook-Id" etc.
const zapierHeaders = (headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [
  `Http-${k.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-')}`, v]));

const hookBundle = (trigger, delivery, subscribeData, inputData = {}) => ({
  authData,
  inputData,
  subscribeData,
  cleanedRequest: JSON.parse(delivery.content),
  rawRequest: { method: 'POST', headers: zapierHeaders(delivery.headers), content: delivery.content },
});

describe('memrelay Zapier app', { skip }, () => {
  before(async () => {
    await startReceiver();
    const allow = await api('/api/v1/webhooks/allowlist', { method: 'PUT', body: { hosts: ['127.0.0.1'] } });
    assert.equal(allow.status, 200, JSON.stringify(allow.json));
  });

  after(() => receiver.server && receiver.server.close());

  describe('authentication', () => {
    it('tests the connection against /api/v1/me and labels it', async () => {
      const me = await appTester(App.authentication.test, { authData });
      assert.equal(me.org.id, process.env.MEMRELAY_ORG_ID);
      const label = await appTester(App.authentication.connectionLabel, { authData, inputData: me });
      assert.ok(label.includes(me.org.name), label);
    });

    it('refuses a bad key with an auth error carrying memrelay\'s message', async () => {
      await assert.rejects(appTester(App.authentication.test, { authData: { ...authData, apiKey: 'mr_nope' } }),
        (err) => err.name === 'ExpiredAuthError' && /API key was refused/.test(err.message));
    });

    it('maps memrelay\'s error shape (code, message, status) onto a Zapier error', async () => {
      await assert.rejects(appTester(App.creates.upsert_contact.operation.perform,
        { authData, inputData: { email: 'not-an-email' } }), (err) => {
        const parsed = JSON.parse(err.message);
        return err.name === 'AppError' && parsed.status === 422 && parsed.code && parsed.message.includes('HTTP 422');
      });
      await assert.rejects(appTester(App.creates.upsert_contact.operation.perform,
        { authData: { ...authData, apiKey: READ_KEY }, inputData: { email: email('scope') } }),
      (err) => JSON.parse(err.message).status === 403);
    });
  });

  describe('creates (effects checked through the API)', () => {
    it('upsert contact with a dynamic property field', async () => {
      const fields = await appTester(App.creates.upsert_contact.operation.inputFields[1], { authData, inputData: {} });
      const jobTitle = fields.find((f) => f.key === 'prop__job_title');
      assert.ok(jobTitle, JSON.stringify(fields.map((f) => f.key)));
      const out = await appTester(App.creates.upsert_contact.operation.perform, {
        authData, inputData: { email: email('ann'), prop__job_title: 'CTO', properties: { first_name: 'Ann' } },
      });
      assert.equal(out.created, true);
      assert.ok(out.recordId.startsWith('rec_'));
      const [rec] = (await api(`/api/v1/searches/find-record?email=${email('ann')}`)).json;
      assert.equal(rec.recordId, out.recordId);
      assert.equal(rec.properties__job_title__value, 'CTO');
      assert.equal(rec.properties__first_name__value, 'Ann');
      assert.equal(rec.properties__job_title__source, 'zapier');
    });

    it('upsert company', async () => {
      const site = `${RUN}.acme.example`;
      const out = await appTester(App.creates.upsert_company.operation.perform,
        { authData, inputData: { website_url: site, properties: { name: 'Acme' } } });
      assert.equal(out.type, 'company');
      const found = await api(`/api/v1/searches/find-record?website_url=${site}`);
      assert.equal(found.json[0].recordId, out.recordId);
      assert.equal(found.json[0].properties__name__value, 'Acme');
    });

    it('upsert record of any type, with dynamic fields for the chosen type', async () => {
      const fields = await appTester(App.creates.upsert_record.operation.inputFields[6],
        { authData, inputData: { type: 'company' } });
      assert.ok(fields.some((f) => f.key === 'prop__industry' || f.key === 'prop__name'), JSON.stringify(fields));
      const out = await appTester(App.creates.upsert_record.operation.perform, {
        authData, inputData: { type: 'contact', email: email('rec'), prop__job_title: 'CFO' },
      });
      assert.equal(out.created, true);
      const again = await appTester(App.creates.upsert_record.operation.perform, {
        authData, inputData: { type: 'contact', email: email('rec'), prop__job_title: 'CEO' },
      });
      assert.equal(again.created, false);
      assert.equal(again.recordId, out.recordId);
      assert.equal(again.updated, 'job_title');
    });

    it('memorize', async () => {
      const out = await appTester(App.creates.memorize.operation.perform, {
        authData, inputData: { content: 'Bea Ortiz leads the SSO rollout and prefers phone calls.', email: email('bea'),
          tags: ['crm'] },
      });
      assert.ok(out.memoriesCreated >= 1, JSON.stringify(out));
      const recall = await api('/api/v1/smart-recall', { method: 'POST', body: { query: 'SSO rollout', email: email('bea') } });
      assert.ok(recall.json.data.results.some((m) => /SSO/.test(m.text)), JSON.stringify(recall.json));
    });

    it('batch memorize (line items)', async () => {
      const out = await appTester(App.creates.batch_memorize.operation.perform, {
        authData, inputData: { items: [
          { content: 'Cal runs procurement at Initech.', email: email('cal') },
          { content: 'Dee signs the renewal in March.', email: email('dee') },
        ] },
      });
      assert.ok(JSON.stringify(out).length > 2);
      for (const who of ['cal', 'dee']) {
        const found = await api(`/api/v1/searches/find-record?email=${email(who)}`);
        assert.equal(found.json.length, 1, who);
      }
    });
  });

  describe('searches', () => {
    it('find record: found, and [] when not found', async () => {
      const found = await appTester(App.searches.find_record.operation.perform,
        { authData, inputData: { email: email('ann') } });
      assert.equal(found.length, 1);
      assert.equal(found[0].properties__job_title__value, 'CTO');
      const none = await appTester(App.searches.find_record.operation.perform,
        { authData, inputData: { email: email('nobody') } });
      assert.deepEqual(none, []);
    });

    it('find contact (search-or-create pairs with upsert contact)', async () => {
      assert.equal(App.searchOrCreates.find_contact.create, 'upsert_contact');
      assert.equal(App.searchOrCreates.find_record.create, 'upsert_record');
      const found = await appTester(App.searches.find_contact.operation.perform,
        { authData, inputData: { email: email('ann') } });
      assert.equal(found[0].keys__email, email('ann'));
      const none = await appTester(App.searches.find_contact.operation.perform,
        { authData, inputData: { email: email('zed') } });
      assert.deepEqual(none, []); // Zapier then runs the create
      const created = await appTester(App.creates.upsert_contact.operation.perform,
        { authData, inputData: { email: email('zed') } });
      const now = await appTester(App.searches.find_contact.operation.perform,
        { authData, inputData: { email: email('zed') } });
      assert.equal(now[0].id, created.recordId);
    });

    it('smart recall', async () => {
      const hits = await appTester(App.searches.smart_recall.operation.perform,
        { authData, inputData: { query: 'Who leads the SSO rollout?', email: email('bea'), limit: '3' } });
      assert.ok(hits.length >= 1 && hits.length <= 3);
      assert.ok(hits[0].id && /SSO/.test(hits[0].text), JSON.stringify(hits[0]));
    });
  });

  describe('triggers: REST hook subscribe, a real signed delivery, perform, polling fallback, unsubscribe', () => {
    const subs = {};
    const CASES = {
      record_created: { event: 'record.created', match: (b) => b.keys.email === email('hooked') },
      property_updated: { event: 'memory.property.updated', inputData: { property: 'job_title' },
        match: (b) => b.propertyName === 'job_title' },
      memory_updated: { event: 'memory.updated', match: () => true },
      record_deleted: { event: 'memory.record.deleted', match: () => true },
    };

    before(async () => {
      for (const [key, c] of Object.entries(CASES)) {
        subs[key] = await appTester(App.triggers[key].operation.performSubscribe, {
          authData, inputData: c.inputData || {}, targetUrl: `${receiver.url}/${key}`,
        });
        assert.ok(subs[key].id.startsWith('whk_') && subs[key].secret.startsWith('whsec_'), JSON.stringify(subs[key]));
      }
      // the events: a new contact with two properties, a memory, a deletion
      await appTester(App.creates.upsert_contact.operation.perform, {
        authData, inputData: { email: email('hooked'), prop__job_title: 'VP Sales', prop__first_name: 'Hal' },
      });
      await appTester(App.creates.memorize.operation.perform, {
        authData, inputData: { content: 'Mo prefers Slack over email.', email: email('hooked-mem') },
      });
      await appTester(App.creates.upsert_contact.operation.perform,
        { authData, inputData: { email: email('hooked-del') } });
      const del = await api('/api/v1/memory/delete-record', { method: 'POST', body: { email: email('hooked-del') } });
      assert.equal(del.status, 200, JSON.stringify(del.json));
    });

    for (const [key, c] of Object.entries(CASES)) {
      it(`${key} (${c.event})`, async () => {
        const delivery = await waitFor(() => receiver.deliveries.find((d) => d.path === `/${key}` &&
          c.match(JSON.parse(d.content))));
        const body = JSON.parse(delivery.content);
        assert.equal(body.event, c.event);
        assert.ok(body.id.startsWith('evt_'));

        // perform: verifies the Standard Webhooks signature with the secret from the subscribe answer
        const items = await appTester(App.triggers[key].operation.perform,
          hookBundle(key, delivery, subs[key], c.inputData));
        assert.equal(items.length, 1);
        assert.equal(items[0].id, body.id);
        const forged = { ...delivery, content: delivery.content.replace(/"event"/, '"event" ') };
        assert.deepEqual(await appTester(App.triggers[key].operation.perform,
          hookBundle(key, forged, subs[key], c.inputData)), []);
        const wrongSecret = { ...subs[key], secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64') };
        assert.deepEqual(await appTester(App.triggers[key].operation.perform,
          hookBundle(key, delivery, wrongSecret, c.inputData)), []);

        // performList (sample / polling fallback) returns the same item, same id, same shape
        const listed = await appTester(App.triggers[key].operation.performList, { authData, inputData: c.inputData || {},
          meta: { isLoadingSample: true } });
        const same = listed.find((i) => i.id === body.id);
        assert.deepEqual(same, body);
        // the polling twin
        const polled = await appTester(App.triggers[`${key}_polling`].operation.perform,
          { authData, inputData: c.inputData || {} });
        assert.ok(polled.some((i) => i.id === body.id));
        assert.equal(new Set(polled.map((i) => i.id)).size, polled.length); // deduped by id
      });
    }

    it('property_updated fires once per changed property and filters by property', async () => {
      const ofHooked = receiver.deliveries.filter((d) => d.path === '/property_updated')
        .map((d) => JSON.parse(d.content)).filter((b) => b.recordId);
      const names = ofHooked.map((b) => b.propertyName).sort();
      assert.ok(names.includes('first_name') && names.includes('job_title'), names.join(','));
      const firstName = receiver.deliveries.find((d) => d.path === '/property_updated' &&
        JSON.parse(d.content).propertyName === 'first_name');
      assert.deepEqual(await appTester(App.triggers.property_updated.operation.perform,
        hookBundle('property_updated', firstName, subs.property_updated, { property: 'job_title' })), []);
      const polled = await appTester(App.triggers.property_updated_polling.operation.perform,
        { authData, inputData: { property: 'job_title' } });
      assert.ok(polled.length > 0 && polled.every((i) => i.propertyName === 'job_title'));
    });

    it('record_created filters by entity type', async () => {
      const contacts = await appTester(App.triggers.record_created_polling.operation.perform,
        { authData, inputData: { type: 'company' } });
      assert.ok(contacts.length > 0 && contacts.every((i) => i.type === 'company'));
    });

    it('unsubscribe removes the hook: no more deliveries to it', async () => {
      for (const key of Object.keys(CASES)) {
        const out = await appTester(App.triggers[key].operation.performUnsubscribe,
          { authData, subscribeData: subs[key] });
        assert.deepEqual(out, { id: subs[key].id, deleted: true });
      }
      const hooks = await api('/api/v1/webhooks?kind=zapier_hook');
      assert.deepEqual(hooks.json.data.webhooks.filter((h) => Object.values(subs).some((s) => s.id === h.id)), []);
    });
  });

  describe('polling with a cursor', () => {
    it('pages newest first through the cursor without gaps or duplicates', async () => {
      const emails = [];
      for (let i = 0; i < 56; i += 1) {
        emails.push(email(`page${i}`));
      }
      const rows = emails.map((e) => ({ email: e, title: 'Engineer' }));
      const res = await api('/api/v1/batch-memorize', { method: 'POST', body: { source: 'zapier-test',
        mapping: { entityType: 'contact', email: 'email', properties: { job_title: { sourceField: 'title' } } },
        rows } });
      assert.equal(res.status, 202, JSON.stringify(res.json));
      const runId = res.json.data.runId;
      let status;
      const deadline = Date.now() + 60000;
      do {
        status = (await api(`/api/v1/batch-memorize/${runId}`)).json.data.status;
        if (status !== 'completed') {
          await new Promise((r) => setTimeout(r, 500));
        }
      } while (status !== 'completed' && Date.now() < deadline);
      assert.equal(status, 'completed');

      const bundle = { authData, inputData: { type: 'contact' } };
      const key = `record-created-${RUN}`;
      const page0 = await runPage(App.triggers.record_created_polling.operation.perform, bundle, 0, key);
      const page1 = await runPage(App.triggers.record_created_polling.operation.perform, bundle, 1, key);
      assert.equal(page0.length, 50);
      const ids = [...page0, ...page1].map((i) => i.id);
      assert.equal(new Set(ids).size, ids.length); // no item on two pages
      const seen = new Set([...page0, ...page1].map((i) => i.keys.email));
      for (const e of emails) {
        assert.ok(seen.has(e), `missing ${e}`); // the 56 newest records span the two pages
      }
      const newestFirst = [...page0, ...page1].map((i) => i.created_at);
      assert.deepEqual(newestFirst, [...newestFirst].sort().reverse());
    });
  });

  describe('dynamic dropdowns', () => {
    it('entity types and property names from memrelay', async () => {
      const types = await appTester(App.triggers.entity_types.operation.perform, { authData });
      assert.ok(types.some((t) => t.id === 'contact') && types.some((t) => t.id === 'company'));
      const props = await appTester(App.triggers.property_names.operation.perform,
        { authData, inputData: { type: 'contact' } });
      assert.ok(props.some((p) => p.id === 'job_title'));
    });
  });
});
