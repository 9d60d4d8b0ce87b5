// Hand-written entry point. Everything typed comes from ./schema.ts, which `npm run generate`
// writes from api/openapi.json; this file only wires in the admin credentials, and
// ./reader.ts pages listReposByCollection.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export { listRepos, XRPCError, type ListReposOptions } from "./reader.js";

export interface ColindexClientOptions {
  /** Where colindex listens, e.g. "http://127.0.0.1:2510". */
  baseUrl: string;
  /**
   * The server's RELAY_ADMIN_PASSWORD, sent as a bearer token. Only the admin routes need it:
   * leave it out to read the index (listReposByCollection, /v1/collections, /_health).
   */
  adminPassword?: string;
}

export type ColindexClient = Client<paths>;

/** A typed openapi-fetch client for every route of colindex's OpenAPI document. */
export function createColindexClient({ baseUrl, adminPassword }: ColindexClientOptions): ColindexClient {
  const client = createClient<paths>({ baseUrl });
  if (adminPassword === undefined) {
    return client;
  }
  // Middleware rather than the `headers` option: it runs last on every request, so the token
  // is always the configured one whatever headers a caller passes.
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${adminPassword}`);
      return request;
    },
  };
  client.use(auth);
  return client;
}
