import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** A self-signed CA and a server certificate for 127.0.0.1/localhost, made by openssl at test time. */
export interface TestPki {
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A different CA that did not sign the server certificate. */
  otherCaCert: string;
}

/** `san`: the server certificate's subjectAltName (default localhost + 127.0.0.1). */
export function makeTestPki(san = 'DNS:localhost,IP:127.0.0.1'): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lva-pki-'));
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    for (const ca of ['ca', 'other']) {
      run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=lva-edge test ${ca}`,
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    }
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    const ext = path.join(dir, 'ext.cnf');
    execFileSync('sh', ['-c', `printf 'subjectAltName=${san}\\nbasicConstraints=CA:FALSE\\n' > ${ext}`]);
    run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', ext);
    const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
    return { caCert: read('ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), otherCaCert: read('other.pem') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface LoopbackServer {
  url: string;
  port: number;
  requests: Array<{ headers: http.IncomingHttpHeaders; body: Buffer; url: string }>;
  close(): Promise<void>;
}

/** An HTTP(S) server on 127.0.0.1 whose reply the test decides per request. */
export async function startLoopbackServer(
  reply: (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse, n: number) => void,
  tls?: { cert: string; key: string },
): Promise<LoopbackServer> {
  const requests: LoopbackServer['requests'] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ headers: req.headers, body, url: req.url ?? '' });
      reply(req, body, res, requests.length - 1);
    });
  };
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/score?camera=1`,
    port,
    requests,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}
