// Lints the Dockerfile with dockerfile-utils (the validator of the VS Code Docker language service;
// hadolint is not installable offline here) — any diagnostic fails — and holds it to the rules that
// tie the image to CI: the Node LTS slim base pinned to a major, Debian's ffmpeg exactly as
// scripts/ensure-system-deps.mjs installs it for running, npm ci + the TypeScript build, a non-root
// user, a health check on /healthz, lean apt layers, nothing fetched from URLs.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from 'dockerfile-utils';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');

/**
 * Node.js's Active LTS line when this was last checked (2026-11-27: 26 "Lithium", LTS since
 * 2026-10; 24 in maintenance). Bump it together with the Dockerfile.
 */
const ACTIVE_LTS_MAJOR = 26;

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Instructions with continuation lines joined and comments dropped. */
export function parseDockerfile(src: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = src.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    const start = i + 1;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      const next = lines[++i]!;
      if (/^\s*#/.test(next)) continue;
      l = `${l.replace(/\\\s*$/, ' ')}${next}`;
    }
    const m = /^\s*(\w+)\s+(.*)$/.exec(l);
    assert.ok(m, `unparsable line ${start}: ${l}`);
    out.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
  }
  return out;
}

const instructions = parseDockerfile(text);
const stages: Instruction[][] = [];
for (const ins of instructions) {
  if (ins.keyword === 'FROM') stages.push([]);
  stages[stages.length - 1]?.push(ins);
}
const final = stages[stages.length - 1]!;
const all = (k: string, of: Instruction[] = instructions) => of.filter((i) => i.keyword === k);

/** The runtime apt packages of scripts/ensure-system-deps.mjs (what `npm run demo` installs, not the test extras). */
function runtimeAptPackages(): string[] {
  const src = readFileSync(path.join(ROOT, 'scripts/ensure-system-deps.mjs'), 'utf8');
  const body = src.slice(src.indexOf('function findMissing'));
  const runtimePart = body.slice(0, body.indexOf('if (forTests)'));
  const pkgs = [...runtimePart.matchAll(/packages:\s*\[([^\]]*)\]/g)].flatMap((m) => [...m[1]!.matchAll(/'([^']+)'/g)].map((x) => x[1]!));
  assert.ok(pkgs.length > 0, 'found the runtime packages in ensure-system-deps.mjs');
  return [...new Set(pkgs)].sort();
}

describe('Dockerfile', () => {
  test('dockerfile-utils reports no problem at all', () => {
    const diagnostics = validate(text);
    assert.deepEqual(diagnostics.map((d) => `line ${d.range.start.line + 1}: ${d.message}`), []);
  });

  test('multi-stage; every stage is the Active LTS Node slim image on Debian, pinned to a major', () => {
    assert.ok(stages.length >= 2, 'build stage + runtime stage');
    for (const from of all('FROM')) {
      const m = /^node:(\d+)-(bookworm|trixie)-slim(?:\s+AS\s+\w+)?$/i.exec(from.args);
      assert.ok(m, `FROM ${from.args}: expected node:<major>-<debian>-slim`);
      assert.equal(Number(m[1]), ACTIVE_LTS_MAJOR, `FROM ${from.args}: Node ${ACTIVE_LTS_MAJOR} is the Active LTS line`);
    }
    assert.equal(new Set(all('FROM').map((f) => f.args.split(/\s+/)[0])).size, 1, 'build and runtime use the same base');
  });

  test('the same steps as CI: npm ci (never npm install) and npm run build', () => {
    const runs = all('RUN').map((r) => r.args);
    assert.ok(runs.some((r) => /\bnpm ci\b/.test(r)), 'npm ci');
    assert.ok(runs.some((r) => /\bnpm run build\b/.test(r)), 'npm run build (tsc)');
    assert.ok(!runs.some((r) => /\bnpm (install|i)\b/.test(r)), 'no npm install');
    const ci = readFileSync(path.join(ROOT, '.ci/run'), 'utf8');
    assert.match(ci, /npm ci\b/, 'CI installs with npm ci as well');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.match(pkg.scripts.build, /^tsc\b/, 'npm run build is the TypeScript build');
  });

  test('apt installs exactly the runtime packages of ensure-system-deps.mjs, without recommends, in one cleaned layer', () => {
    const aptRuns = all('RUN').filter((r) => /apt-get\s+install/.test(r.args));
    assert.equal(aptRuns.length, 1, 'one apt layer');
    for (const r of aptRuns) {
      assert.ok(stages.indexOf(stages.find((s) => s.includes(r))!) === stages.length - 1, 'apt only in the runtime stage');
      assert.match(r.args, /apt-get update\s*&&/, 'update in the same layer');
      assert.match(r.args, /--no-install-recommends/);
      assert.match(r.args, /\s-y\s/);
      assert.match(r.args, /rm -rf \/var\/lib\/apt\/lists\/\*/, 'apt lists cleaned in the same layer');
      const install = /apt-get\s+install\s+([^&;]*)/.exec(r.args)![1]!;
      const pkgs = install.split(/\s+/).filter((w) => w && !w.startsWith('-')).sort();
      assert.deepEqual(pkgs, runtimeAptPackages());
    }
  });

  test('runs as a non-root user, with a HEALTHCHECK on the local API\'s /healthz', () => {
    const users = all('USER', final);
    assert.ok(users.length > 0, 'USER in the final stage');
    const user = users[users.length - 1]!;
    assert.ok(!/^(root|0)(:|$)/.test(user.args), `USER ${user.args} is not root`);
    const entry = all('ENTRYPOINT', final)[0] ?? all('CMD', final)[0];
    assert.ok(entry && entry.line > user.line, 'the entrypoint runs after USER');
    const hc = all('HEALTHCHECK', final);
    assert.equal(hc.length, 1);
    const env = all('ENV', final).map((e) => e.args).join(' ');
    const port = /LVA_HTTP=[\d.]+:(\d+)/.exec(env)?.[1];
    assert.ok(port, 'LVA_HTTP set in the image');
    assert.ok(hc[0]!.args.includes(`127.0.0.1:${port}/healthz`), 'the health check calls /healthz on the LVA_HTTP port');
  });

  test('the entrypoint is the CLI\'s run command; metrics on LVA\'s port 9600', () => {
    const entry = JSON.parse(all('ENTRYPOINT', final)[0]!.args) as string[];
    assert.deepEqual(entry.slice(0, 3), ['node', 'bin/lva-edge.js', 'run']);
    assert.ok(existsSync(path.join(ROOT, 'bin/lva-edge.js')));
    const env = all('ENV', final).map((e) => e.args).join(' ');
    const metricsPort = /LVA_METRICS=[\d.]+:(\d+)/.exec(env)?.[1];
    assert.equal(metricsPort, '9600');
    assert.ok(all('EXPOSE', final).some((e) => e.args.split(/\s+/).includes(metricsPort!)));
  });

  test('hadolint\'s rules that apply here: JSON-form ENTRYPOINT/CMD/HEALTHCHECK, no cd, sudo or latest, no consecutive RUNs', () => {
    for (const i of instructions.filter((x) => ['ENTRYPOINT', 'CMD'].includes(x.keyword))) {
      assert.doesNotThrow(() => JSON.parse(i.args), `${i.keyword} in JSON form (DL3025)`);
    }
    const hcCmd = /\bCMD\s+(\[.*\])\s*$/.exec(all('HEALTHCHECK')[0]!.args);
    assert.ok(hcCmd && Array.isArray(JSON.parse(hcCmd[1]!)), 'HEALTHCHECK CMD in JSON form (no shell needed)');
    for (const r of all('RUN')) {
      assert.ok(!/(^|&&|;)\s*cd\s/.test(r.args), `use WORKDIR, not cd (DL3003): line ${r.line}`);
      assert.ok(!/\bsudo\b/.test(r.args), `no sudo (DL3004): line ${r.line}`);
      assert.ok(!/\|/.test(r.args.replace(/\|\|/g, '')), `no pipes without pipefail (DL4006): line ${r.line}`);
    }
    assert.ok(!/:latest\b/.test(text), 'no latest tag (DL3007)');
    for (const st of stages) {
      st.forEach((ins, k) => {
        if (k > 0) assert.ok(!(ins.keyword === 'RUN' && st[k - 1]!.keyword === 'RUN'), `consecutive RUN at line ${ins.line} (DL3059)`);
      });
    }
  });

  test('nothing is fetched from a URL; every COPY source exists and is not excluded by .dockerignore', () => {
    assert.equal(all('ADD').length, 0, 'COPY, not ADD');
    assert.ok(!/\b(curl|wget)\b/.test(text), 'no downloads in RUN');
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const must of ['.git', 'node_modules']) assert.ok(ignore.includes(must), `.dockerignore excludes ${must}`);
    for (const c of all('COPY')) {
      if (/--from=/.test(c.args)) continue;
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        assert.ok(existsSync(path.join(ROOT, src)), `COPY source ${src} exists`);
        const top = src.replace(/^\.\//, '').split('/')[0]!;
        assert.ok(!ignore.includes(top), `COPY source ${src} is not excluded by .dockerignore`);
      }
    }
  });
});
