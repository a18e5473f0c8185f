# syntax=docker/dockerfile:1
# lva-edge IoT Edge module image.
#
#   docker build -t lva-edge .
#
# The steps are CI's (.ci/run): Debian's ffmpeg — the runtime package scripts/ensure-system-deps.mjs
# installs — then `npm ci` and the TypeScript build (`npm run build`). test/unit/dockerfile.test.ts
# lints this file and holds it to those rules.
# Base: Node.js 26, the Active LTS line since 2026-10 (the code also runs on Node >= 20), on Debian 12
# "bookworm" slim — the Debian release CI runs on, so the image gets the same ffmpeg the tests use.

FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev

FROM node:26-bookworm-slim
# Debian's ffmpeg; then LVA's container paths — file sink output and application data, bound from the
# host by the deployment manifest — owned by the image's unprivileged `node` user (uid 1000), which the
# module runs as.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/media /var/lib/azuremediaservices \
 && chown node:node /var/media /var/lib/azuremediaservices
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY schemas ./schemas
COPY protos ./protos
# Local API on loopback only (health check, `lva-edge invoke` inside the container); Prometheus
# metrics on 9600 for the whole network, as LVA did (that listener serves only /metrics and /healthz).
ENV NODE_ENV=production \
    LVA_HTTP=127.0.0.1:7070 \
    LVA_METRICS=0.0.0.0:9600
VOLUME ["/var/media", "/var/lib/azuremediaservices"]
USER node
EXPOSE 9600
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7070/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/lva-edge.js", "run", "--data-dir", "/var/lib/azuremediaservices"]
