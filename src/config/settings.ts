import path from 'node:path';

/**
 * Module settings = the module twin's desired properties (lva-spec §3), or the same JSON object from
 * `--config FILE` in standalone mode. Keys are matched case-insensitively and booleans may be strings,
 * as in LVA's own deployment templates.
 */
export interface ModuleSettings {
  applicationDataDirectory: string;
  allowUnsecuredEndpoints: boolean;
  diagnosticsEventsOutputName?: string;
  operationalEventsOutputName?: string;
  logLevel: string;
  logCategories: string[];
  azureMediaServicesArmId?: string;
  /**
   * Our addition (migration aid): URL prefix → replacement applied to endpoint URLs at activation, so
   * topologies that name LVA-era hosts (e.g. `rtsp://rtspsim:554`) run unchanged against real cameras.
   */
  endpointAliases: Array<{ from: string; to: string }>;
  /**
   * Our addition: when set, sinks' absolute paths (file sink baseDirectoryPath, asset sink cache) are
   * placed beneath this directory — what a container bind does on IoT Edge, for standalone hosts.
   */
  outputRootDirectory?: string;
  /** All desired properties as given (canonical key spelling where known). Contains secrets: never echo. */
  raw: Record<string, unknown>;
}

const KNOWN_KEYS = [
  'applicationDataDirectory', 'azureMediaServicesArmId', 'aadTenantId', 'aadServicePrincipalAppId',
  'aadServicePrincipalSecret', 'aadServicePrincipalPassword', 'aadServicePrincipalCertificate', 'aadEndpoint',
  'aadResourceId', 'armEndpoint', 'diagnosticsEventsOutputName', 'operationalEventsOutputName',
  'diagnosticsLevel', 'logLevel', 'logCategories', 'debugLogsDirectory', 'allowUnsecuredEndpoints',
  'telemetryOptOut', 'endpointAliases', 'outputRootDirectory',
  'assetStorageConnectionString', 'assetStorageContainerSasUrl', 'assetStorageContainerName',
];
const CANONICAL = new Map(KNOWN_KEYS.map((k) => [k.toLowerCase(), k]));
/** A misspelling found in LVA's own templates. */
CANONICAL.set('operationalmetricsoutputname', 'operationalEventsOutputName');

export const SECRET_SETTING_KEYS = new Set(['aadServicePrincipalSecret', 'aadServicePrincipalPassword', 'aadServicePrincipalCertificate',
  'assetStorageConnectionString', 'assetStorageContainerSasUrl']);

export function parseBool(v: unknown, dflt: boolean): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
  }
  return dflt;
}

export function canonicalizeSettings(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input)) {
    if (k.startsWith('$')) continue; // $version, $metadata from the twin
    out[CANONICAL.get(k.toLowerCase()) ?? k] = v;
  }
  return out;
}

export function resolveSettings(input: Record<string, unknown> = {}, defaults: { dataDir?: string } = {}): ModuleSettings {
  const raw = canonicalizeSettings(input);
  const str = (k: string): string | undefined => (typeof raw[k] === 'string' && (raw[k] as string).length > 0 ? (raw[k] as string) : undefined);
  const categories = str('logCategories') ?? 'Application,Events';
  return {
    applicationDataDirectory: path.resolve(str('applicationDataDirectory') ?? defaults.dataDir ?? './var/lib'),
    allowUnsecuredEndpoints: parseBool(raw.allowUnsecuredEndpoints, true),
    diagnosticsEventsOutputName: str('diagnosticsEventsOutputName'),
    operationalEventsOutputName: str('operationalEventsOutputName'),
    logLevel: str('logLevel') ?? 'Information',
    logCategories: categories.split(',').map((s) => s.trim()).filter(Boolean),
    azureMediaServicesArmId: str('azureMediaServicesArmId'),
    endpointAliases: parseAliases(raw.endpointAliases),
    outputRootDirectory: str('outputRootDirectory') ? path.resolve(str('outputRootDirectory')!) : undefined,
    raw,
  };
}

function parseAliases(v: unknown): Array<{ from: string; to: string }> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return [];
  const out: Array<{ from: string; to: string }> = [];
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    // {"<prefix>": "<replacement>"}, or the twin-safe {"<name>": {"from", "to"}} (no '.' in keys).
    if (typeof value === 'string' && key.length > 0) out.push({ from: key, to: value });
    else if (typeof value === 'object' && value !== null) {
      const { from, to } = value as Record<string, unknown>;
      if (typeof from === 'string' && from.length > 0 && typeof to === 'string') out.push({ from, to });
    }
  }
  return out.sort((a, b) => b.from.length - a.from.length); // longest prefix wins
}

/** Applies the first matching endpoint alias (longest prefix) to a URL. */
export function applyEndpointAliases(url: string, aliases: Array<{ from: string; to: string }>): string {
  for (const a of aliases) if (url.startsWith(a.from)) return a.to + url.slice(a.from.length);
  return url;
}
