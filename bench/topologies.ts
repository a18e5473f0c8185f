import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Topologies the benchmarks run. */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** evr-motion-files from the LVA samples when they are next to the repo, else our example of it. */
export function evrMotionFiles(): unknown {
  const shared = path.resolve(root, '../shared/lva-samples/topologies/2.0/evr-motion-files.topology.json');
  const file = existsSync(shared) ? shared : path.join(root, 'examples/evr-motion-files.topology.json');
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Record-only path: a hub message holds the gate open for the whole clip; no decode. */
export const recordOnly = {
  '@apiVersion': '2.0', name: 'RecordOnly',
  properties: {
    sources: [
      { '@type': '#Microsoft.Media.MediaGraphRtspSource', name: 'cam', endpoint: { '@type': '#Microsoft.Media.MediaGraphUnsecuredEndpoint', url: 'rtsp://bench.invalid/x' } },
      { '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSource', name: 'trigger', hubInputName: 'go' },
    ],
    processors: [{
      '@type': '#Microsoft.Media.MediaGraphSignalGateProcessor', name: 'gate',
      activationEvaluationWindow: 'PT0S', activationSignalOffset: 'PT0S', minimumActivationTime: 'PT1H', maximumActivationTime: 'PT1H',
      inputs: [{ nodeName: 'trigger' }, { nodeName: 'cam', outputSelectors: [{ property: 'mediaType', operator: 'is', value: 'video' }] }],
    }],
    sinks: [{
      '@type': '#Microsoft.Media.MediaGraphFileSink', name: 'files', baseDirectoryPath: '/clips', fileNamePattern: 'rec-${System.DateTime}', maximumSizeMiB: '10240',
      inputs: [{ nodeName: 'gate' }],
    }],
  },
};
