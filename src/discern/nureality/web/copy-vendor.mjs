// Copies the pinned three.js ES-module build from node_modules/ into vendor/ (npm "postinstall").
// The page imports ./vendor/three.module.js through its import map; three >= r170 splits the build into
// three.module.js + three.core.js, so every file of that split that exists is copied. Writes go to a
// temporary name first and are renamed, so an interrupted install never leaves a half-written file.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const build = join(here, "node_modules", "three", "build");
const vendor = join(here, "vendor");
const names = ["three.module.js", "three.core.js"];

if (!existsSync(join(build, names[0]))) {
  console.error(`copy-vendor: ${join(build, names[0])} is missing; run "npm ci" in ${here}`);
  process.exit(1);
}
mkdirSync(vendor, { recursive: true });
const copied = [];
for (const name of names) {
  const src = join(build, name);
  if (!existsSync(src)) continue;
  copyFileSync(src, join(vendor, name + ".tmp"));
  renameSync(join(vendor, name + ".tmp"), join(vendor, name));
  copied.push(name);
}
const version = JSON.parse(readFileSync(join(here, "node_modules", "three", "package.json"), "utf8")).version;
writeFileSync(join(vendor, "three.version.tmp"), version + "\n");
renameSync(join(vendor, "three.version.tmp"), join(vendor, "three.version"));
console.log(`copy-vendor: three ${version} -> vendor/ (${copied.join(", ")})`);
