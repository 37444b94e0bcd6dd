// Calls to the gateway's admin API with the session cookie. A 401 means the session ended: back to log-in.
export class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

export async function api(path, { method = "GET", body, text, raw = false } = {}) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (text !== undefined) { // a file's content as it is (account imports in any supported format)
    init.headers["content-type"] = "text/plain";
    init.body = text;
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    location.replace("/");
    throw new ApiError(401, "logged out");
  }
  if (raw) return response;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error || {};
    throw new ApiError(response.status, error.message || response.statusText, error.param);
  }
  return data;
}
