// The dashboard's calls to the daemon's API: the key from the login (sessionStorage, this tab only) as X-API-Key.
const KEY = "onebox.key";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const session = {
  key: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** Called when the key stops working (revoked): back to the login. */
let onUnauthorized: () => void = () => undefined;
export function whenUnauthorized(f: () => void): void {
  onUnauthorized = f;
}

/** A call with the session's key (or `key`); JSON in and out; an API error as ApiError with its message. */
export async function api<T>(path: string, init: { method?: string; body?: unknown; key?: string; text?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { "x-api-key": init.key ?? session.key() ?? "" };
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method: init.method ?? "GET", headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  if (res.status === 401 && !init.key) onUnauthorized();
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { message?: string } | null;
    throw new ApiError(res.status, body?.message ?? `${res.status} ${res.statusText}`);
  }
  if (res.status === 204 || res.headers.get("content-length") === "0") return undefined as T;
  return (init.text ? await res.text() : await res.json()) as T;
}
