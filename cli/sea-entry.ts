// Entry point of the single binary: scripts/build-binary.ts bundles it as CommonJS, which has no
// top-level await (cli/bin.ts, the development entry, uses one).

import { processIo } from './io.ts';
import { main } from './main.ts';

void main(process.argv.slice(2), processIo()).then((code) => {
  process.exitCode = code;
});
