#!/usr/bin/env node
// Builds enforcers/dist/pii_guard.wasm from src/component.js with componentize-js, as a pure
// component: every WASI feature of the embedded JS engine is disabled, and the result is checked
// to import nothing but portcullis:policy/host@0.1.0.
//
//   node build.mjs [--force] [--wit PATH] [--out PATH]
//
// Skips the build ("up to date") when the output is newer than every input: the sources under
// src/, package-lock.json, this script and the WIT file. Runs unattended (no TTY needed).
// Exit code 0 on success or up to date, 1 on any failure.

import { componentize } from '@bytecodealliance/componentize-js';
import { componentWit } from '@bytecodealliance/jco';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const WORLD = 'policy-enforcer';
const HOST_IMPORT = 'portcullis:policy/host@0.1.0';
const ENFORCER_EXPORT = 'portcullis:policy/enforcer@0.1.0';
// Every feature componentize-js can disable (its DEFAULT_FEATURES): with all of them off the
// engine links no WASI at all (no stdio, random, clocks, http or fetch-event handler).
const DISABLED_FEATURES = ['stdio', 'random', 'clocks', 'http', 'fetch-event'];

const { values: opts } = parseArgs({
  options: {
    force: { type: 'boolean', default: false },
    wit: { type: 'string', default: resolve(HERE, '../../wit/policy.wit') },
    out: { type: 'string', default: resolve(HERE, '../dist/pii_guard.wasm') },
  },
});
const witPath = resolve(opts.wit);
const outPath = resolve(opts.out);
const START_DIR = process.cwd();
const rel = (p) => relative(START_DIR, p) || '.';

async function filesUnder(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

async function mtime(p) {
  try {
    return (await stat(p)).mtimeMs;
  } catch {
    return null;
  }
}

/** The component's world as WIT, and its import and export names. */
export async function componentInterfaces(bytes) {
  const wit = await componentWit(bytes);
  const names = (kw) => [...wit.matchAll(new RegExp(`^\\s*${kw}\\s+([^;\\s]+)\\s*;`, 'gm'))].map((m) => m[1]);
  return { wit, imports: names('import'), exports: names('export') };
}

async function main() {
  const inputs = [
    ...(await filesUnder(join(HERE, 'src'))),
    join(HERE, 'package-lock.json'),
    fileURLToPath(import.meta.url),
    witPath,
  ];
  const missing = [];
  let newestInput = 0;
  for (const p of inputs) {
    const t = await mtime(p);
    if (t === null) missing.push(p);
    else newestInput = Math.max(newestInput, t);
  }
  if (missing.length) throw new Error(`missing input(s): ${missing.map(rel).join(', ')}`);

  const outTime = await mtime(outPath);
  if (!opts.force && outTime !== null && outTime > newestInput) {
    console.log(`pii_guard: ${rel(outPath)} is up to date`);
    return;
  }

  const started = Date.now();
  console.log(`pii_guard: componentizing src/component.js against ${rel(witPath)} (world ${WORLD})...`);
  // componentize-js maps the source's folder into the engine relative to the working
  // directory; run from this folder so relative imports (./enforcer.js) resolve the same way
  // every time, whatever directory the build was started from.
  process.chdir(HERE);
  let component;
  try {
    ({ component } = await componentize({
      sourcePath: join(HERE, 'src', 'component.js'),
      // The WIT goes in as text: componentize-js reads a witPath through a WASI sandbox that
      // sees only the working directory, so a path outside it (or through ..) fails.
      witWorld: await readFile(witPath, 'utf8'),
      worldName: WORLD,
      disableFeatures: DISABLED_FEATURES,
    }));
  } catch (e) {
    throw new Error(`componentize-js failed: ${e?.message ?? e}`);
  }

  const { wit, imports, exports } = await componentInterfaces(component);
  const wasi = imports.filter((i) => i.startsWith('wasi:'));
  const unexpected = imports.filter((i) => i !== HOST_IMPORT);
  if (wasi.length || unexpected.length || exports.join() !== ENFORCER_EXPORT) {
    throw new Error(
      `the component is not a pure enforcer: imports [${imports.join(', ')}] (allowed: ${HOST_IMPORT}), ` +
        `exports [${exports.join(', ')}] (expected: ${ENFORCER_EXPORT})\n${wit}`,
    );
  }

  await mkdir(dirname(outPath), { recursive: true });
  // Write then rename, so a watcher never sees a half-written component.
  const tmp = `${outPath}.tmp`;
  await writeFile(tmp, component);
  await rename(tmp, outPath).catch(async (e) => {
    await rm(tmp, { force: true });
    throw e;
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  const mib = (component.length / (1024 * 1024)).toFixed(1);
  console.log(`pii_guard: wrote ${rel(outPath)} (${component.length} bytes, ${mib} MiB) in ${secs} s`);
  console.log(`pii_guard: imports ${imports.join(', ')}; exports ${exports.join(', ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`pii_guard: build failed: ${e?.message ?? e}`);
    process.exit(1);
  });
}
