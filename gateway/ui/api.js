// Talking to the gateway: every request goes to the API beside the page, with the API key
// (kept in sessionStorage, sent as a Bearer header, never in an address), and every failure
// becomes an ApiFailure that says in words what happened.

const KEY = "facematch.key";
/** The API's root: the folder above the page's (`/ui/` → `/`), so a path prefix works. */
const ROOT = new URL("../", document.baseURI);

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** A request the gateway refused or could not answer. */
export class ApiFailure extends Error {
  constructor(status, code, detail, retryAfter) {
    super(explain(status, detail));
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const WORDS = {
  0: "The gateway cannot be reached.",
  401: "The gateway needs an API key, or the key given is not valid.",
  403: "This key may not do that (a scope it lacks, or another collection).",
  404: "The gateway knows no such thing.",
  408: "The upload was too slow; the gateway gave up on it.",
  413: "Too large: the gateway refuses images this big.",
  415: "Not an image the gateway reads (JPEG, PNG, WebP, GIF or BMP), or one too large.",
  429: "The gateway is busy; the page tries again shortly.",
  503: "The gateway is not ready (its queue or store is down); try again shortly.",
};

/** One sentence for a failure, with the gateway's own detail when it gave one. */
function explain(status, detail) {
  const words = WORDS[status] || `The gateway answered ${status}.`;
  return detail ? `${words} (${detail})` : words;
}

let askForKey = async () => false;

/** `ask()` resolves true once the user gave a new key (then the request is sent again). */
export function whenUnauthorized(ask) {
  askForKey = ask;
}

/** Sends one request to `path` (relative to the API's root); resolves to the Response. */
export async function call(method, path, { body, json, signal } = {}) {
  for (;;) {
    const headers = {};
    const key = apiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let payload = body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    let resp;
    try {
      resp = await fetch(new URL(path, ROOT), { method, headers, body: payload, signal });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiFailure(0, "network", e.message, 0);
    }
    if (resp.status === 401 && (await askForKey())) continue;
    if (resp.ok) return resp;
    let code = "";
    let detail = "";
    try {
      const answer = await resp.json();
      code = answer.error.code;
      detail = answer.error.message;
    } catch {
      detail = resp.statusText;
    }
    throw new ApiFailure(resp.status, code, detail, Number(resp.headers.get("Retry-After")) || 0);
  }
}

export async function getJson(path, options) {
  return (await call("GET", path, options)).json();
}

const thumbnails = new Map();

/**
 * A face's thumbnail as an object URL, or null when there is none (thumbnails off, image
 * erased). Fetched with the key (an <img> cannot send one), once per face.
 */
export function thumbnail(hash, face) {
  const id = `${hash}/${face}`;
  if (!thumbnails.has(id)) {
    const load = call("GET", `images/${hash}/faces/${face}.jpg`)
      .then(async (resp) => URL.createObjectURL(await resp.blob()))
      .catch((e) => {
        if (e instanceof ApiFailure && e.status === 404) return null;
        thumbnails.delete(id); // a passing failure: try again next time
        throw e;
      });
    thumbnails.set(id, load);
  }
  return thumbnails.get(id);
}
