// https fakes for Entra ID (token endpoint) and ARM (Media Services assets), with a throwaway CA made by
// openssl into os.tmpdir() at test time. The Azure SDKs refuse bearer tokens over http and an http
// authorityHost, so the fakes must be https; this process is told to trust the CA by trustCaInProcess()
// (NODE_EXTRA_CA_CERTS is only read at process start-up). listContainerSas creates the asset's container in
// Azurite and answers a real container SAS for it, as Media Services did.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY, type Azurite } from './azurite.js';

export interface TestCa {
  dir: string;
  caPem: string;
  keyPem: string;
  certPem: string;
  remove(): void;
}

/** A CA and a server certificate for 127.0.0.1/localhost (openssl, as in environment.md §4). */
export function makeTestCa(): TestCa {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-fake-azure-ca-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=lva-edge test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return { dir, caPem: read('ca.pem'), keyPem: read('server.key'), certPem: read('server.pem'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Makes TLS connections of this process to 127.0.0.1/localhost trust `caPem` in addition to the
 * system roots (what NODE_EXTRA_CA_CERTS does for a fresh process). Returns the undo function.
 */
export function trustCaInProcess(caPem: string): () => void {
  const original = tls.connect;
  const ca = [...tls.rootCertificates, caPem];
  const patched = function (this: unknown, ...args: unknown[]) {
    const opts = args.find((a) => typeof a === 'object' && a !== null) as tls.ConnectionOptions | undefined;
    if (opts && !opts.ca && (opts.host === '127.0.0.1' || opts.host === 'localhost' || opts.servername === 'localhost')) opts.ca = ca;
    return (original as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
  };
  (tls as { connect: unknown }).connect = patched;
  return () => {
    (tls as { connect: unknown }).connect = original;
  };
}

export interface FakeAzureOptions {
  tenantId: string;
  clientId: string;
  clientSecret: string;
  subscriptionId: string;
  resourceGroup: string;
  accountName: string;
  azurite: Azurite;
}

export interface FakeAzure {
  url: string;
  /** Requests seen, as `METHOD path` (no query, no bodies: secrets stay out). */
  requests: string[];
  tokensIssued: number;
  /** Scopes the credential asked for. */
  scopes: string[];
  /** Asset name → container name. */
  assets: Map<string, string>;
  armId: string;
  /** Module twin desired properties for this fake (Media Services path). */
  settings(): Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startFakeAzure(ca: TestCa, o: FakeAzureOptions): Promise<FakeAzure> {
  const tokens = new Set<string>();
  const state = { requests: [] as string[], tokensIssued: 0, scopes: [] as string[], assets: new Map<string, string>() };
  let base = '';
  const sharedKey = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const server: Server = createServer({ key: ca.keyPem, cert: ca.certPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handle(req.method ?? 'GET', new URL(req.url ?? '/', base), Buffer.concat(chunks).toString('utf8'), req.headers.authorization)
        .then(({ status, body }) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(body));
        }, (err: Error) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { code: 'FakeFailure', message: err.message } }));
        });
    });
  });
  const json = (status: number, body: unknown) => ({ status, body });
  const armPrefix = `/subscriptions/${o.subscriptionId}/resourceGroups/${o.resourceGroup}/providers/Microsoft.Media/mediaServices/${o.accountName}`;

  async function handle(method: string, url: URL, body: string, auth: string | undefined): Promise<{ status: number; body: unknown }> {
    const p = url.pathname;
    state.requests.push(`${method} ${p}`);
    // Entra ID
    if (method === 'GET' && p === `/${o.tenantId}/v2.0/.well-known/openid-configuration`) {
      return json(200, {
        token_endpoint: `${base}/${o.tenantId}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/${o.tenantId}/oauth2/v2.0/authorize`,
        issuer: `${base}/${o.tenantId}/v2.0`,
        jwks_uri: `${base}/${o.tenantId}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
        subject_types_supported: ['pairwise'],
        id_token_signing_alg_values_supported: ['RS256'],
        scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
        tenant_region_scope: 'EU',
      });
    }
    if (method === 'POST' && p === `/${o.tenantId}/oauth2/v2.0/token`) {
      const form = new URLSearchParams(body);
      if (form.get('client_id') !== o.clientId || form.get('client_secret') !== o.clientSecret || form.get('grant_type') !== 'client_credentials') {
        return json(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' });
      }
      state.scopes.push(form.get('scope') ?? '');
      const token = `fake-token-${randomUUID()}`;
      tokens.add(token);
      state.tokensIssued++;
      return json(200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, access_token: token });
    }
    // ARM
    if (!p.startsWith(`${armPrefix}/assets/`)) return json(404, { error: { code: 'NotFound', message: `no route ${method} ${p}` } });
    if (!auth?.startsWith('Bearer ') || !tokens.has(auth.slice(7))) {
      return json(401, { error: { code: 'AuthenticationFailed', message: 'missing or unknown bearer token' } });
    }
    const rest = decodeURIComponent(p.slice(armPrefix.length + '/assets/'.length));
    const [assetName, action] = rest.split('/');
    const asset = (name: string) => ({
      id: `${armPrefix}/assets/${name}`, name, type: 'Microsoft.Media/mediaservices/assets',
      properties: { assetId: randomUUID(), container: state.assets.get(name), storageAccountName: AZURITE_ACCOUNT, created: new Date().toISOString(), lastModified: new Date().toISOString() },
    });
    if (method === 'PUT' && !action) {
      const existed = state.assets.has(assetName!);
      if (!existed) state.assets.set(assetName!, `asset-${randomUUID()}`);
      return json(existed ? 200 : 201, asset(assetName!));
    }
    if (method === 'GET' && !action) return state.assets.has(assetName!) ? json(200, asset(assetName!)) : json(404, { error: { code: 'ResourceNotFound', message: 'no such asset' } });
    if (method === 'POST' && action === 'listContainerSas') {
      const containerName = state.assets.get(assetName!);
      if (!containerName) return json(404, { error: { code: 'ResourceNotFound', message: 'no such asset' } });
      const req = JSON.parse(body || '{}') as { permissions?: string; expiryTime?: string };
      await o.azurite.service().getContainerClient(containerName).createIfNotExists();
      const sas = generateBlobSASQueryParameters({
        containerName,
        permissions: ContainerSASPermissions.parse(req.permissions === 'ReadWriteDelete' ? 'racwdl' : req.permissions === 'Read' ? 'rl' : 'racwl'),
        expiresOn: req.expiryTime ? new Date(req.expiryTime) : new Date(Date.now() + 3600_000),
      }, sharedKey).toString();
      return json(200, { assetContainerSasUrls: [`${o.azurite.blobEndpoint}/${containerName}?${sas}`] });
    }
    return json(404, { error: { code: 'NotFound', message: `no route ${method} ${p}` } });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  base = `https://127.0.0.1:${port}`;
  const armId = armPrefix;
  return {
    url: base,
    get requests() { return state.requests; },
    get tokensIssued() { return state.tokensIssued; },
    get scopes() { return state.scopes; },
    assets: state.assets,
    armId,
    settings: () => ({
      azureMediaServicesArmId: armId,
      aadTenantId: o.tenantId,
      aadServicePrincipalAppId: o.clientId,
      aadServicePrincipalSecret: o.clientSecret,
      aadEndpoint: base,
      aadResourceId: 'https://management.core.windows.net/',
      armEndpoint: base,
    }),
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
