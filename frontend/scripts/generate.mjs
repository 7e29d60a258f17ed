// `npm run generate`: regenerates src/gen from ../proto with `buf generate` (buf.gen.yaml).
// When ../proto is not there (a Docker build whose context is frontend/ alone), it keeps the
// committed src/gen and says so, rather than failing.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = path.resolve(root, "..", "proto");
if (!existsSync(path.join(protoDir, "streamweaver"))) {
  if (!existsSync(path.join(root, "src", "gen", "streamweaver"))) {
    console.error(`generate: neither ${protoDir} nor the committed src/gen exists`);
    process.exit(1);
  }
  console.log(`generate: ${protoDir} not found; using the committed src/gen`);
  process.exit(0);
}
execFileSync("npx", ["--no-install", "buf", "generate"], { cwd: root, stdio: "inherit" });
console.log("generate: src/gen is up to date with ../proto");
