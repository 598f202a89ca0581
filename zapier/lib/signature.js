'use strict';

// Standard Webhooks verification of a REST-hook delivery (what the `standardwebhooks` libraries do):
// HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{body}" keyed with the base64 secret after "whsec_";
// `webhook-signature` holds one or more space-separated "v1,<base64>" (two during a secret rotation).

const crypto = require('crypto');

const TOLERANCE_S = 5 * 60;

// Zapier hands a hook's headers as "Http-Webhook-Id"; plain names elsewhere.
const header = (headers, name) => {
  for (const [key, value] of Object.entries(headers || {})) {
    if (key.toLowerCase().replace(/^http[-_]/, '').replace(/_/g, '-') === name) {
      return Array.isArray(value) ? value[0] : value;
    }
  }
  return undefined;
};

const sign = (secret, id, timestamp, body) => {
  const key = Buffer.from(String(secret).replace(/^whsec_/, ''), 'base64');
  return crypto.createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
};

// true when one of the signatures matches and the timestamp is within the tolerance.
const verify = (secret, headers, body, nowS = Math.floor(Date.now() / 1000)) => {
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures || !/^\d+$/.test(String(timestamp))) {
    return false;
  }
  if (Math.abs(nowS - parseInt(timestamp, 10)) > TOLERANCE_S) {
    return false;
  }
  const expected = Buffer.from(sign(secret, id, timestamp, body));
  return String(signatures).split(' ').some((entry) => {
    const [version, value] = entry.split(',', 2);
    if (version !== 'v1' || !value) {
      return false;
    }
    const given = Buffer.from(value);
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
};

module.exports = { header, sign, verify };
