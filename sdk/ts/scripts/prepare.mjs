// `npm run prepare`: builds dist/ whenever the package is installed. npm runs it after
// `npm ci` in this directory, and in this directory again when another project installs it
// from a checkout (`npm install ../colindex/sdk/ts`) or packs it (`npm pack`). In a fresh
// checkout the SDK's own build tools (typescript, @types/node) are not installed yet, and npm
// does not install a linked folder's devDependencies: install them from the lock file first.
import { execFileSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
if (!existsSync("node_modules/typescript/bin/tsc") || !existsSync("node_modules/@types/node")) {
  // --ignore-scripts: that install must not run this script again.
  execFileSync(npm, ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], { stdio: "inherit" });
}
rmSync("dist", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc"], { stdio: "inherit" });
