// listRepos against a running colindex whose index the Go test suite filled: it writes what
// each read must return to the JSON file named by COLINDEX_READER_CASES. Without it (or
// COLINDEX_URL) every test here fails, never skips.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { createColindexClient, listRepos, XRPCError } from "../src/index.js";

interface ReaderCase {
  /** The collections read together. */
  collections: string[];
  /** Every DID the read must yield, in order. */
  dids: string[];
}

function setup(): { baseUrl: string; cases: ReaderCase[] } {
  const baseUrl = process.env.COLINDEX_URL;
  const casesFile = process.env.COLINDEX_READER_CASES;
  if (!baseUrl || !casesFile) {
    throw new Error("COLINDEX_URL and COLINDEX_READER_CASES must be set (the Go test suite sets them)");
  }
  const cases = JSON.parse(readFileSync(casesFile, "utf8")) as ReaderCase[];
  assert.ok(cases.length > 0, "no reader cases");
  return { baseUrl, cases };
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const did of it) out.push(did);
  return out;
}

test("listRepos pages each collection, and a union, to its end in DID order", async () => {
  const { baseUrl, cases } = setup();
  // No admin password: reading the index is public.
  const client = createColindexClient({ baseUrl });
  for (const { collections, dids } of cases) {
    assert.ok(dids.length > 0, `${collections} has DIDs to read`);
    for (const pageSize of [7, undefined, 10000]) {
      const got = await collect(listRepos(client, collections, { pageSize }));
      assert.deepEqual(got, dids, `${collections} with pageSize ${pageSize}`);
    }
  }
});

test("listRepos stops paging when the loop stops", async () => {
  const { baseUrl, cases } = setup();
  const client = createColindexClient({ baseUrl });
  const { collections, dids } = cases[0]!;
  const requested: string[] = [];
  client.use({
    onRequest({ request }) {
      requested.push(request.url);
      return request;
    },
  });
  const got: string[] = [];
  for await (const did of listRepos(client, collections, { pageSize: 2 })) {
    got.push(did);
    if (got.length === 3) break;
  }
  assert.deepEqual(got, dids.slice(0, 3));
  assert.equal(requested.length, 2, "two pages of two were enough for three DIDs");
});

test("listRepos throws the server's XRPC error", async () => {
  const { baseUrl } = setup();
  const client = createColindexClient({ baseUrl });
  await assert.rejects(collect(listRepos(client, "not-an-nsid")), (err: unknown) => {
    assert.ok(err instanceof XRPCError);
    assert.equal(err.status, 400);
    assert.equal(err.error, "InvalidRequest");
    assert.match(err.message, /NSID/);
    return true;
  });
});
