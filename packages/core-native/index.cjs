// Loads the compiled engine (build/Release/bsx_native.node) through node-gyp-build.
'use strict';
module.exports = require('node-gyp-build')(__dirname);
