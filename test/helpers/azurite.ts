// Azurite (real Blob API) for integration tests: node_modules/.bin/azurite-blob on a free loopback port,
// in memory or on disk (`location`, so data survives stop/restart), stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { freePort } from './ports.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  port: number;
  connectionString: string;
  blobEndpoint: string;
  service(): BlobServiceClient;
  /** SIGTERM, SIGKILL after 3 s; resolves when the process is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same port (same data when `location` was given). */
  restart(): Promise<void>;
  readonly running: boolean;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startAzurite(opts: { location?: string } = {}): Promise<Azurite> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const launch = async (): Promise<void> => {
    const args = [
      ...(opts.location ? ['--location', opts.location] : ['--inMemoryPersistence']),
      '--disableTelemetry', '--skipApiVersionCheck', '--loose', '--blobHost', '127.0.0.1', '--blobPort', String(port), '--silent',
    ];
    const c = spawn(path.join(ROOT, 'node_modules/.bin/azurite-blob'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d) => (stderr += String(d)));
    child = c;
    exited = new Promise((r) => c.once('exit', () => r()));
    for (let i = 0; i < 300; i++) {
      if (c.exitCode !== null) throw new Error(`azurite exited (${c.exitCode}): ${stderr}`);
      if (await portOpen(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    c.kill('SIGKILL');
    throw new Error(`azurite did not listen on ${port}: ${stderr}`);
  };
  await launch();
  const stop = async (): Promise<void> => {
    const c = child as ChildProcess | null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
    child = null;
  };
  const connectionString = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blobEndpoint};`;
  return {
    port,
    blobEndpoint,
    connectionString,
    service: () => BlobServiceClient.fromConnectionString(connectionString),
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
    get running() {
      const c = child as ChildProcess | null;
      return !!c && c.exitCode === null && c.signalCode === null;
    },
  };
}

/** Every blob of a container (optionally under a prefix) with its content and metadata, name order. */
export async function listBlobs(container: ContainerClient, prefix?: string): Promise<Array<{ name: string; data: Buffer; metadata: Record<string, string>; contentType?: string }>> {
  const out: Array<{ name: string; data: Buffer; metadata: Record<string, string>; contentType?: string }> = [];
  for await (const b of container.listBlobsFlat({ prefix, includeMetadata: true })) {
    const data = await container.getBlobClient(b.name).downloadToBuffer();
    out.push({ name: b.name, data, metadata: b.metadata ?? {}, contentType: b.properties.contentType });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}
