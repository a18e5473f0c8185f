// deployment.template.json: a valid IoT Edge deployment for the module — binds for LVA's media and
// application-data folders matching the image's VOLUMEs, routes that carry every output to IoT Hub,
// and desired properties under LVA's names that the module's own twin validation accepts.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDesired } from '../../src/hub/twin-settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const manifestText = readFileSync(path.join(ROOT, 'deployment.template.json'), 'utf8');
const manifest = JSON.parse(manifestText);
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const twinSchema = JSON.parse(readFileSync(path.join(ROOT, 'schemas/twin.json'), 'utf8'));

/** Example values for the template's ${VARIABLES} (what a .env file supplies to the IoT Edge tooling). */
const EXAMPLE_ENV: Record<string, string> = {
  LVA_EDGE_IMAGE: 'myregistry.azurecr.io/lva-edge:0.1.0',
  AMS_ARM_ID: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/microsoft.media/mediaservices/ams',
  AAD_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  AAD_SERVICE_PRINCIPAL_ID: '11111111-2222-3333-4444-555555555555',
  AAD_SERVICE_PRINCIPAL_SECRET: 'example-secret',
};

const norm = (p: string) => p.replace(/\/+$/, '');
const agent = manifest.modulesContent.$edgeAgent['properties.desired'];
const moduleEntries = Object.entries(agent.modules as Record<string, any>);
const [moduleName, lvaModule] = moduleEntries[0]!;
const desired = manifest.modulesContent[moduleName]['properties.desired'] as Record<string, unknown>;

describe('deployment.template.json', () => {
  test('is a deployment of exactly one lva-edge module, always restarted, with the edge runtime modules', () => {
    assert.equal(moduleEntries.length, 1);
    assert.equal(lvaModule.type, 'docker');
    assert.equal(lvaModule.status, 'running');
    assert.equal(lvaModule.restartPolicy, 'always');
    assert.equal(lvaModule.settings.image, '${LVA_EDGE_IMAGE}');
    assert.match(agent.systemModules.edgeAgent.settings.image, /^mcr\.microsoft\.com\/azureiotedge-agent:1\.\d+$/);
    assert.match(agent.systemModules.edgeHub.settings.image, /^mcr\.microsoft\.com\/azureiotedge-hub:1\.\d+$/);
    assert.equal(agent.systemModules.edgeAgent.settings.image.split(':')[1], agent.systemModules.edgeHub.settings.image.split(':')[1]);
  });

  test('every ${VARIABLE} of the template is documented with an example', () => {
    const vars = [...new Set([...manifestText.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!))].sort();
    assert.deepEqual(vars, Object.keys(EXAMPLE_ENV).sort());
  });

  test('binds: LVA\'s media and application-data folders, exactly the image\'s VOLUMEs; app data is applicationDataDirectory', () => {
    const binds = lvaModule.settings.createOptions.HostConfig.Binds as string[];
    const containerPaths = binds.map((b) => norm(b.split(':')[1]!)).sort();
    const volume = /^VOLUME\s+(\[.*\])\s*$/m.exec(dockerfile);
    assert.ok(volume, 'the Dockerfile declares its VOLUMEs');
    assert.deepEqual(containerPaths, (JSON.parse(volume[1]!) as string[]).map(norm).sort());
    assert.ok(containerPaths.includes('/var/media'), 'file sink output (LVA samples write to /var/media)');
    assert.ok(containerPaths.includes(norm(String(desired.applicationDataDirectory))), 'the twin\'s applicationDataDirectory is bound');
    for (const b of binds) assert.match(b, /^\/[^:]+:\/[^:]+(:(ro|rw))?$/, `bind ${b} is host:container with absolute paths`);
    // The image's entrypoint uses the same folder when no twin says otherwise.
    assert.ok(dockerfile.includes(`"--data-dir", "${norm(String(desired.applicationDataDirectory))}"`));
  });

  test('routes: every module output reaches IoT Hub, including the diagnostics and operational outputs', () => {
    const routes = Object.values(manifest.modulesContent.$edgeHub['properties.desired'].routes as Record<string, string>);
    assert.ok(routes.length > 0);
    const covers = (output: string) => routes.some((r) => {
      const m = /^FROM \/messages\/modules\/([^/]+)\/outputs\/(\*|[^ ]+) INTO \$upstream$/.exec(r);
      return m !== null && m[1] === moduleName && (m[2] === '*' || m[2] === output);
    });
    for (const output of [desired.diagnosticsEventsOutputName, desired.operationalEventsOutputName, 'inferenceOutput']) {
      assert.ok(covers(String(output)), `output ${output} is routed upstream`);
    }
  });

  test('desired properties use LVA\'s names only and pass the module\'s own twin validation', () => {
    const known = new Set(Object.keys(twinSchema.properties));
    for (const k of Object.keys(desired)) assert.ok(known.has(k), `${k} is a documented twin property`);
    for (const k of ['applicationDataDirectory', 'diagnosticsEventsOutputName', 'operationalEventsOutputName', 'logLevel', 'logCategories', 'allowUnsecuredEndpoints']) {
      assert.ok(k in desired, `${k} is set`);
    }
    const substituted = JSON.parse(JSON.stringify(desired).replace(/\$\{([A-Z0-9_]+)\}/g, (_, v: string) => EXAMPLE_ENV[v]!));
    const check = checkDesired(substituted);
    assert.ok(check.ok, check.ok ? '' : check.error.message);
    // LVA's samples (and most cameras) use plain rtsp:// through MediaGraphUnsecuredEndpoint, as LVA's own
    // deployment templates allowed; docs/configuration.md explains switching it off.
    assert.equal(typeof desired.allowUnsecuredEndpoints, 'boolean');
  });
});
