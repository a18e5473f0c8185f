import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEndpointAliases, resolveSettings } from '../../src/config/settings.js';
import { assertMatchesSchema } from '../../src/graph/schemas.js';

test('settings: keys are case-insensitive, booleans may be strings, LVA template misspelling accepted', () => {
  const s = resolveSettings({ AllowUnsecuredEndpoints: 'false', OperationalMetricsOutputName: 'ops', LogLevel: 'Verbose', $version: 3 });
  assert.equal(s.allowUnsecuredEndpoints, false);
  assert.equal(s.operationalEventsOutputName, 'ops');
  assert.equal(s.logLevel, 'Verbose');
  assert.equal(resolveSettings({}).allowUnsecuredEndpoints, true);
});

test('endpointAliases: plain and twin-safe forms, longest prefix wins', () => {
  const s = resolveSettings({
    endpointAliases: {
      'rtsp://rtspsim:554': 'rtsp://10.0.0.9:8554',
      cam1: { from: 'rtsp://rtspsim:554/media/camera-300s.mkv', to: 'rtsp://127.0.0.1:9/cam' },
      broken: { from: '', to: 'x' },
    },
  });
  assert.equal(s.endpointAliases.length, 2);
  assert.equal(applyEndpointAliases('rtsp://rtspsim:554/media/camera-300s.mkv', s.endpointAliases), 'rtsp://127.0.0.1:9/cam');
  assert.equal(applyEndpointAliases('rtsp://rtspsim:554/other', s.endpointAliases), 'rtsp://10.0.0.9:8554/other');
  assert.equal(applyEndpointAliases('rtsp://elsewhere/x', s.endpointAliases), 'rtsp://elsewhere/x');
});

test('twin schema accepts both endpointAliases forms and rejects others', () => {
  assert.doesNotThrow(() => assertMatchesSchema({ endpointAliases: { a: 'b', n: { from: 'rtsp://x', to: 'rtsp://y' } } }, 'twin.json'));
  assert.throws(() => assertMatchesSchema({ endpointAliases: { n: { from: 'rtsp://x' } } }, 'twin.json'));
  assert.throws(() => assertMatchesSchema({ endpointAliases: { n: 5 } }, 'twin.json'));
});
