// Fails when the committed src/schema.ts differs from what `npm run generate` would write now
// (i.e. api/openapi.json changed and the SDK was not regenerated). It runs the "generate"
// script itself, output redirected to a temp file, so the two can never use different flags.
// Run it through `npm run check-generated`, which puts node_modules/.bin on PATH.
import { execSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const committed = "src/schema.ts";
const generate = JSON.parse(readFileSync("package.json", "utf8")).scripts.generate;
const outputFlag = `--output ${committed}`;
if (!generate.includes(outputFlag)) {
  throw new Error(`the "generate" script must contain "${outputFlag}" for this check to redirect it`);
}

const dir = mkdtempSync(join(tmpdir(), "colindex-sdk-"));
try {
  const fresh = join(dir, "schema.ts");
  execSync(generate.replace(outputFlag, `--output ${JSON.stringify(fresh)}`), {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const current = existsSync(committed) ? readFileSync(committed, "utf8") : null;
  if (readFileSync(fresh, "utf8") !== current) {
    console.error("sdk/ts/src/schema.ts is stale: run make generate");
    process.exitCode = 1;
  } else {
    console.log("sdk/ts/src/schema.ts is up to date");
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
