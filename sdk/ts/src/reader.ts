// Hand-written: reads com.atproto.sync.listReposByCollection to its end through the typed
// client, so callers iterate DIDs instead of handling cursors.
import type { ColindexClient } from "./index.js";
import type { components } from "./schema.js";

export interface ListReposOptions {
  /** DIDs asked per request (the server clamps to 1..10000; its default is 500). */
  pageSize?: number;
  /** Aborts the request in flight; the generator then throws the abort reason. */
  signal?: AbortSignal;
}

/** A non-2xx answer from listReposByCollection, with XRPC's error name and message. */
export class XRPCError extends Error {
  constructor(
    readonly status: number,
    /** The XRPC error name, e.g. "InvalidRequest" (empty when the body had none). */
    readonly error: string,
    message: string,
  ) {
    super(`listReposByCollection answered ${status}${error ? ` ${error}` : ""}: ${message}`);
    this.name = "XRPCError";
  }
}

/**
 * Pages com.atproto.sync.listReposByCollection from its first page to its last and yields each
 * DID in DID order. Several collections (at most 20) are read as their union, each DID once.
 * Stopping the loop early (break, return) asks for no further page.
 *
 * ```ts
 * for await (const did of listRepos(colindex, "app.bsky.feed.post", { pageSize: 1000 })) {
 *   console.log(did);
 * }
 * ```
 */
export async function* listRepos(
  client: ColindexClient,
  collections: string | readonly string[],
  { pageSize, signal }: ListReposOptions = {},
): AsyncGenerator<string, void, undefined> {
  const collection = typeof collections === "string" ? [collections] : [...collections];
  let cursor: string | undefined;
  for (;;) {
    const { data, error, response } = await client.GET("/xrpc/com.atproto.sync.listReposByCollection", {
      params: { query: { collection, limit: pageSize, cursor } },
      signal,
    });
    if (!data) {
      const body = error as Partial<components["schemas"]["XRPCError"]> | undefined;
      throw new XRPCError(response.status, body?.error ?? "", body?.message ?? response.statusText);
    }
    for (const repo of data.repos) {
      yield repo.did;
    }
    if (!data.cursor) {
      return;
    }
    if (data.cursor === cursor) {
      throw new Error(`listReposByCollection returned the cursor it was asked with (${cursor}): stopping`);
    }
    cursor = data.cursor;
  }
}
