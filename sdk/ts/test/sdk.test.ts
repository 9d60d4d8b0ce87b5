// Exercises the SDK against a running colindex. The Go test suite starts the server and runs
// `npm test` with COLINDEX_URL and COLINDEX_ADMIN_PASSWORD set; without them every test fails
// (never skips), so a misconfigured run cannot pass silently.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createColindexClient } from "../src/index.js";

function server(): { baseUrl: string; adminPassword: string } {
  const baseUrl = process.env.COLINDEX_URL;
  const adminPassword = process.env.COLINDEX_ADMIN_PASSWORD;
  if (!baseUrl || !adminPassword) {
    throw new Error(
      "COLINDEX_URL and COLINDEX_ADMIN_PASSWORD must be set to a running colindex server and its admin password",
    );
  }
  return { baseUrl, adminPassword };
}

test("GET /admin/backfill-collections returns the status", async () => {
  const client = createColindexClient(server());
  const { data, error, response } = await client.GET("/admin/backfill-collections");
  assert.equal(response.status, 200, `unexpected error: ${JSON.stringify(error)}`);
  assert.ok(data);
  assert.equal(typeof data.total, "number");
  assert.equal(typeof data.running, "boolean");
  assert.ok(Array.isArray(data.collections), "collections is an array");
});

test("a wrong admin password is 401", async () => {
  const { baseUrl, adminPassword } = server();
  const client = createColindexClient({ baseUrl, adminPassword: `${adminPassword}-wrong` });
  const { data, response } = await client.GET("/admin/backfill-collections");
  assert.equal(response.status, 401);
  assert.equal(data, undefined);
});

test("POST /admin/backfill-collections with a bad source is a 400 problem", async () => {
  const client = createColindexClient(server());
  const { data, error, response } = await client.POST("/admin/backfill-collections", {
    params: { query: { source: "ftp://bad" } },
  });
  assert.equal(response.status, 400);
  assert.equal(data, undefined);
  assert.match(response.headers.get("content-type") ?? "", /^application\/problem\+json/);
  assert.ok(error);
  assert.equal(typeof error.detail, "string");
});
