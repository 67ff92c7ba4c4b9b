// The typed API client: openapi-fetch over the types generated from the server's
// OpenAPI document (src/api/schema.d.ts, by `npm run gen:api`), plus the session's
// credentials on every call.
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { session } from '../lib/session';

/** An error answered by the API: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
  /** The field the server named as wrong, when it named one. */
  get field(): string | undefined {
    const d = this.details as { field?: unknown } | null | undefined;
    return typeof d?.field === 'string' ? d.field : undefined;
  }
}

/** Turn an error body (or its absence) into an [`ApiError`]. */
export function toApiError(status: number, body: unknown): ApiError {
  const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | undefined)
    ?.error;
  if (e && typeof e.message === 'string') {
    return new ApiError(status, e.code ?? 'error', e.message, e.details);
  }
  return new ApiError(status, 'http_' + status, `the server answered ${status}`);
}

const auth: Middleware = {
  async onRequest({ request }) {
    const token = await session.accessToken();
    if (token && !request.headers.has('Authorization')) {
      request.headers.set('Authorization', `Bearer ${token}`);
    }
    const project = session.project();
    if (project && !request.headers.has('X-Project')) request.headers.set('X-Project', project);
    request.headers.set('X-Requested-With', 'prompt-registry-console');
    return request;
  },
  async onResponse({ response }) {
    if (response.status === 401) session.unauthorized();
    return response;
  },
};

/** The client every screen uses. */
export const api = createClient<paths>({
  baseUrl: globalThis.location?.origin ?? '',
  credentials: 'same-origin',
  // Looked up on each call (not captured once), so tests can stand in for the server.
  fetch: (request) => globalThis.fetch(request),
});
api.use(auth);

/** The data of an openapi-fetch answer, or its error thrown as an [`ApiError`]. */
export async function unwrap<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await p;
  if (!response.ok || error !== undefined) throw toApiError(response.status, error);
  return data as T;
}

/** A prompt name as one path segment (`a/b` → `a%2Fb`). */
export const promptPath = (name: string) => encodeURIComponent(name);
