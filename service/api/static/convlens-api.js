// The convlens HTTP API as the page uses it: a base URL (this origin, or ?api=URL), an optional API key,
// JSON errors turned into ApiError with the service's own message. API keys are kept per API origin, and a service
// on another origin than the one confirmed last gets no request at all until the user confirms it.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The API base URL: `?api=http://host:port` when given (the page may be hosted elsewhere), else this origin. */
export function apiBase(search = window.location.search) {
  const given = new URLSearchParams(search).get("api");
  if (!given) return window.location.origin;
  return new URL(given, window.location.href).href.replace(/\/+$/, "");
}

const LAST_ORIGIN = "convlens.apiOrigin";

/** API keys in localStorage, one per API origin: a key is only ever read back for the origin it was entered for. */
export const apiKeys = {
  name: (origin) => `convlens.apiKey:${origin}`,
  get: (origin) => localStorage.getItem(apiKeys.name(origin)) || "",
  set(origin, key) {
    if (key) localStorage.setItem(apiKeys.name(origin), key);
    else localStorage.removeItem(apiKeys.name(origin));
  },
};

/** Whether the page may call `origin` without asking: it is the page's own, or the one the user confirmed last. */
export function trusted(origin) {
  return origin === window.location.origin || origin === localStorage.getItem(LAST_ORIGIN);
}

/** Fetch options that POST ``image`` (a Blob or File) as the raw body, with its own content type, abortable with
 * ``signal``: how every image the page sends goes. */
export function imagePost(image, signal) {
  return { method: "POST", body: image, signal, headers: { "Content-Type": image.type || "application/octet-stream" } };
}

export class Api {
  /**
   * @param {string} base
   * @param {() => string} key  returns the API key to send to this base's origin, or ""
   * @param {boolean} confirmed  whether requests may go out yet (see `trusted`); `confirm()` allows them later
   */
  constructor(base, key, confirmed) {
    this.base = base;
    this.origin = new URL(base).origin;
    this.key = key;
    this.confirmed = confirmed;
  }

  /** The user agreed to talk to this origin: requests may go out, and it is the origin confirmed last. */
  confirm() {
    this.confirmed = true;
    localStorage.setItem(LAST_ORIGIN, this.origin);
  }

  url(path) {
    return this.base + path;
  }

  headers(extra = {}) {
    const key = this.key();
    return key ? { ...extra, "X-API-Key": key } : extra;
  }

  async request(path, options = {}) {
    if (!this.confirmed) throw new ApiError(0, `Nothing is sent to ${this.origin} until you connect to it (above).`);
    let response;
    try {
      response = await fetch(this.url(path), { ...options, headers: this.headers(options.headers) });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(0, `cannot reach the service at ${this.base} (${error.message})`);
    }
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try {
        message = (await response.json()).error || message;
      } catch { /* not JSON */ }
      throw new ApiError(response.status, message);
    }
    return response;
  }

  /** Everything the page shows for one image: POST /v1/inspect with the image as the raw body, for ``model`` (the
   * model selector's choice; the shipped classifier by default). */
  async inspect(image, signal, model = "classifier") {
    const query = model === "classifier" ? "" : `&model=${encodeURIComponent(model)}`;
    const response = await this.request(`/v1/inspect?preprocess=auto${query}`, imagePost(image, signal));
    return response.json();
  }

  /** The models that classify, from GET /v1/models: the shipped classifier and variants, then the imported ones. */
  async classifiers() {
    const { models } = await (await this.request("/v1/models")).json();
    return models.filter((model) => model.kind === "imported" || model.layers.includes("output"));
  }

  /** A PNG answer as an object URL (the caller revokes it). */
  async png(path, options = {}) {
    const response = await this.request(path, options);
    return URL.createObjectURL(await response.blob());
  }

  /** The projection of one filter to pixels for this image; ``query`` adds parameters (`&model=…&scale=…`). */
  deconvolution(image, layer, filter, signal, query = "&scale=6") {
    return this.png(`/v1/deconvolution/${layer}/${filter}?preprocess=auto${query}`, imagePost(image, signal));
  }

  /** A PNG from an endpoint that may not exist on this service: null on 404 (and 501). */
  async optionalPng(path) {
    try {
      return await this.png(path);
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 501)) return null;
      throw error;
    }
  }

  /** Whether a GET endpoint exists here (the dataset statistics are shipped separately from the models). */
  async exists(path) {
    try {
      await this.request(path);
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return false;
      throw error;
    }
  }
}
