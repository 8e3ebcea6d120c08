#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Compiles every src/*.sol with the pinned solc (npm package `solc`, see package.json) and
// writes build/<Contract>.json for each deployable contract (interfaces are skipped).
//
//   node build.js          compile and (re)write build/, removing stale build/*.json
//   node build.js --check  compile in memory and compare with build/; exit 1 naming every
//                          file that differs, is missing or is extra; exit 0 if all match
//
// The output is deterministic: sources are read in sorted order under stable names
// (src/X.sol), line endings are normalised to LF, and the JSON is written with 2-space
// indentation, fixed key order and a trailing newline.

'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = __dirname;
const SRC_DIR = path.join(ROOT, 'src');
const BUILD_DIR = path.join(ROOT, 'build');

// EIP-170 and EIP-3860 limits.
const MAX_DEPLOYED_SIZE = 24576;
const MAX_INIT_SIZE = 49152;

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(1);
}

function checkCompilerVersion() {
  const pinned = require(path.join(ROOT, 'package.json')).devDependencies.solc;
  const installed = require('solc/package.json').version;
  if (pinned !== installed) {
    fail(`package.json pins solc ${pinned} but ${installed} is installed; run \`npm ci\``);
  }
}

function readSources() {
  const files = fs
    .readdirSync(SRC_DIR)
    .filter((f) => f.endsWith('.sol'))
    .sort();
  if (files.length === 0) fail(`no .sol files in ${SRC_DIR}`);
  const sources = {};
  for (const f of files) {
    const content = fs.readFileSync(path.join(SRC_DIR, f), 'utf8').replace(/\r\n?/g, '\n');
    sources[`src/${f}`] = { content };
  }
  return sources;
}

function compile(sources) {
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const noImports = (p) => ({ error: `imports are not supported (tried to import ${p})` });
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: noImports }));

  const diagnostics = output.errors || [];
  const errors = diagnostics.filter((d) => d.severity === 'error');
  for (const d of diagnostics) {
    if (d.severity !== 'error') console.warn((d.formattedMessage || d.message).trimEnd());
  }
  if (errors.length > 0) {
    for (const d of errors) console.error((d.formattedMessage || d.message).trimEnd());
    fail(`compilation failed with ${errors.length} error(s)`);
  }
  return output;
}

// Returns a Map from output file name to its exact contents, in sorted order.
function render(output) {
  const version = solc.version();
  const files = new Map();
  const sizes = [];
  for (const source of Object.keys(output.contracts || {}).sort()) {
    for (const name of Object.keys(output.contracts[source]).sort()) {
      const c = output.contracts[source][name];
      const bytecode = c.evm.bytecode.object;
      const deployed = c.evm.deployedBytecode.object;
      if (bytecode.length === 0) continue; // interface or abstract contract: nothing to deploy
      if (/__\$[0-9a-fA-F]{34}\$__/.test(bytecode)) fail(`${name} needs library linking`);
      const file = `${name}.json`;
      if (files.has(file)) fail(`two contracts are named ${name}; names must be unique`);
      const artifact = {
        contract: name,
        source,
        compiler: version,
        abi: c.abi,
        bytecode: `0x${bytecode}`,
        deployedBytecode: `0x${deployed}`,
      };
      files.set(file, `${JSON.stringify(artifact, null, 2)}\n`);
      sizes.push({ name, init: bytecode.length / 2, deployed: deployed.length / 2 });
    }
  }
  sizes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { files, sizes };
}

function checkSizes(sizes) {
  let ok = true;
  console.log('contract            init code  deployed code  (bytes)');
  for (const s of sizes) {
    console.log(`${s.name.padEnd(18)} ${String(s.init).padStart(10)} ${String(s.deployed).padStart(14)}`);
    if (s.deployed > MAX_DEPLOYED_SIZE) {
      console.error(`error: ${s.name}: deployed code ${s.deployed} > ${MAX_DEPLOYED_SIZE} bytes (EIP-170)`);
      ok = false;
    }
    if (s.init > MAX_INIT_SIZE) {
      console.error(`error: ${s.name}: init code ${s.init} > ${MAX_INIT_SIZE} bytes (EIP-3860)`);
      ok = false;
    }
  }
  if (!ok) fail('contract size limits exceeded');
}

function existingArtifacts() {
  if (!fs.existsSync(BUILD_DIR)) return [];
  return fs.readdirSync(BUILD_DIR).filter((f) => f.endsWith('.json')).sort();
}

function write(files) {
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  for (const f of existingArtifacts()) {
    if (!files.has(f)) {
      fs.unlinkSync(path.join(BUILD_DIR, f));
      console.log(`removed stale build/${f}`);
    }
  }
  for (const [f, content] of files) {
    const p = path.join(BUILD_DIR, f);
    if (fs.existsSync(p) && fs.readFileSync(p, 'utf8') === content) continue;
    fs.writeFileSync(p, content);
    console.log(`wrote build/${f}`);
  }
  console.log(`${files.size} artifacts in build/ (solc ${solc.version()})`);
}

function check(files) {
  const problems = [];
  const existing = new Set(existingArtifacts());
  for (const [f, content] of files) {
    if (!existing.has(f)) problems.push(`missing: build/${f}`);
    else if (fs.readFileSync(path.join(BUILD_DIR, f), 'utf8') !== content) problems.push(`differs: build/${f}`);
  }
  for (const f of existing) {
    if (!files.has(f)) problems.push(`extra:   build/${f}`);
  }
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(`error: build/ is out of date (${problems.length} file(s)); run \`npm run build\``);
    process.exit(1);
  }
  console.log(`build/ matches the sources: ${files.size} artifacts (solc ${solc.version()})`);
}

function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) fail(`unknown argument(s): ${unknown.join(' ')} (usage: node build.js [--check])`);

  checkCompilerVersion();
  const { files, sizes } = render(compile(readSources()));
  checkSizes(sizes);
  if (args.includes('--check')) check(files);
  else write(files);
}

main();
