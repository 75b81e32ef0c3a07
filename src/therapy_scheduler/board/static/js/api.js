// The page's only way to the server: the public JSON API, with the bearer token in memory.

// How many GET answers the page keeps for revalidation (the most recently used).
const MAX_VALIDATED = 64;

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.error) || `Request failed (HTTP ${status})`;
    super(message);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? "NETWORK_ERROR" : `HTTP_${status}`);
    this.details = (body && body.details) || {};
    this.requestId = (body && body.request_id) || null;
  }
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) {
      if (value.length) search.set(key, value.join(","));
    } else {
      search.set(key, String(value));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export function newIdempotencyKey() {
  return crypto.randomUUID();
}

export class Api {
  constructor({ token, onUnauthorized }) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
    // Server clock minus browser clock, from the Date header, so hold countdowns match the server.
    this.clockSkewMs = 0;
    // GET answers with their ETag, by URL, kept in this page's memory only (never the browser's
    // HTTP cache: the API answers `Cache-Control: no-store`). Reloading a week sends the tag in
    // `If-None-Match`; a 304 means the kept answer is still the answer (docs/API.md).
    this.validated = new Map();
  }

  remember(url, etag, payload) {
    this.validated.delete(url);
    this.validated.set(url, { etag, payload });
    if (this.validated.size > MAX_VALIDATED) {
      this.validated.delete(this.validated.keys().next().value);
    }
  }

  now() {
    return Date.now() + this.clockSkewMs;
  }

  async request(method, path, { params, body, idempotencyKey } = {}) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    const url = path + query(params);
    const kept = method === "GET" ? this.validated.get(url) : undefined;
    if (kept) headers["If-None-Match"] = kept.etag;
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch {
      throw new ApiError(0, { error: "The server could not be reached", code: "NETWORK_ERROR" });
    }
    const date = response.headers.get("Date");
    if (date) {
      const server = Date.parse(date);
      // The header has whole seconds: trust it only for a skew beyond that precision.
      const skew = server + 500 - Date.now();
      if (!Number.isNaN(server)) this.clockSkewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
    if (response.status === 304 && kept) {
      this.remember(url, kept.etag, kept.payload);
      return kept.payload;
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok || !payload || payload.success === false) {
      const error = new ApiError(response.status, payload);
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(error);
      throw error;
    }
    const etag = response.headers.get("ETag");
    if (method === "GET" && etag) this.remember(url, etag, payload);
    return payload;
  }

  get(path, params) {
    return this.request("GET", path, { params });
  }

  post(path, body, idempotencyKey) {
    return this.request("POST", path, { body, idempotencyKey });
  }

  delete(path) {
    return this.request("DELETE", path);
  }
}
