// After `vite build`: a gzip copy of each text asset (`x.js.gz`), which the server sends to browsers that accept
// gzip, so the first page ships about a third of its bytes. Node's own zlib: no extra dependency.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const dir = new URL("./dist/assets/", import.meta.url).pathname;
for (const name of readdirSync(dir)) {
  if (!/\.(js|css|svg|json)$/.test(name)) continue;
  const data = readFileSync(join(dir, name));
  writeFileSync(join(dir, `${name}.gz`), gzipSync(data, { level: constants.Z_BEST_COMPRESSION }));
}
