// Stands in for the `node-gyp-build` package inside the single binary (an esbuild alias set by
// scripts/build-binary.ts): @serialport/bindings-cpp calls it once at load time for its addon, and gets
// the copy embedded in the binary. The build fails if any other package imports node-gyp-build.

import { loadNativeAddon } from './native-addons.ts';

/** node-gyp-build's call shape: `load(dir)` returns the addon; `dir` is meaningless inside the binary. */
function nodeGypBuild(_dir: string): object {
  return loadNativeAddon('serialport');
}

// A default export because the CommonJS caller does `require('node-gyp-build').default(dir)` after interop.
export default nodeGypBuild;
