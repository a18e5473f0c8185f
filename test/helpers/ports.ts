// Free-port helpers: bind port 0, read the port the kernel chose, close. The port can in principle be
// taken by someone else before the caller binds it, so callers that spawn servers should retry on a
// bind failure (startRtspServer does). Never hard-code ports: 8554 is often taken on shared machines.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** A TCP port that was free on `host` a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not read the bound port'))));
    });
  });
}

/** A UDP port that was free on `host` a moment ago (e.g. for an RTP relay). */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.unref();
    socket.once('error', reject);
    socket.bind({ port: 0, address: host, exclusive: true }, () => {
      const port = socket.address().port;
      socket.close(() => resolve(port));
    });
  });
}
