// Loads the compiled engine: build/Release/bsx_native.node through node-gyp-build, or the
// file named by BSX_NATIVE_PATH (a build kept elsewhere, e.g. one packed for a GPU machine).
'use strict';
module.exports = process.env.BSX_NATIVE_PATH
  ? require(require('node:path').resolve(process.env.BSX_NATIVE_PATH))
  : require('node-gyp-build')(__dirname);
