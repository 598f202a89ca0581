'use strict';

// Request/response middleware shared by every operation: the base URL and API key from the connection, and
// memrelay's answers made Zapier-shaped (the {success, data} envelope unwrapped, errors mapped).

const trimBase = (url) => String(url || '').trim().replace(/\/+$/, '');

// beforeRequest: relative URLs ("/api/v1/...") go to the connection's base URL, with its API key.
const addAuth = (request, z, bundle) => {
  const auth = bundle.authData || {};
  if (request.url && request.url.startsWith('/')) {
    request.url = `${trimBase(auth.baseUrl)}${request.url}`;
  }
  request.headers = request.headers || {};
  if (auth.apiKey) {
    request.headers.Authorization = `Bearer ${auth.apiKey}`;
  }
  request.headers.Accept = 'application/json';
  return request;
};

// memrelay's error shape: {"success": false, "error": {"code", "message", "details"}} (any status >= 400).
const errorOf = (response) => {
  const body = response.data;
  if (body && typeof body === 'object' && body.error && typeof body.error === 'object') {
    return { code: body.error.code || `http_${response.status}`, message: body.error.message || '' };
  }
  return { code: `http_${response.status}`, message: (response.content || '').slice(0, 300) };
};

// afterResponse: map errors to Zapier's error types, unwrap the envelope of /api/v1 answers.
const handleResponse = (response, z) => {
  if (response.status >= 400) {
    const { code, message } = errorOf(response);
    const text = `${message || 'memrelay request failed'} (${code}, HTTP ${response.status})`;
    if (response.status === 401) {
      throw new z.errors.ExpiredAuthError(`The memrelay API key was refused: ${message || code}`);
    }
    if (response.status === 429) {
      const retryAfter = parseInt(response.headers.get('retry-after') || '60', 10);
      throw new z.errors.ThrottledError(text, Number.isFinite(retryAfter) ? retryAfter : 60);
    }
    throw new z.errors.Error(text, code, response.status);
  }
  const body = response.data;
  if (body && typeof body === 'object' && !Array.isArray(body) && body.success === true && 'data' in body) {
    response.data = body.data;
  }
  return response;
};

module.exports = { addAuth, handleResponse, trimBase };
