/**
 * Where an asset sink uploads (module twin desired properties, lva-spec §3 plus lva-edge's own keys).
 *
 * 1. Direct Blob (lva-edge addition; Azure Media Services is retired), checked first:
 *    - `assetStorageConnectionString`: a storage account connection string; segments go to the container
 *      `assetStorageContainerName` (default `lva-assets`, created when missing).
 *    - `assetStorageContainerSasUrl`: a container SAS URL (permissions r, a, c, w, l at least) of an
 *      existing container. Takes precedence over the connection string when both are set.
 *    In both cases an asset is the virtual folder `<asset name>/` of the container.
 * 2. Azure Media Services (LVA's own settings): `azureMediaServicesArmId`, `aadTenantId`,
 *    `aadServicePrincipalAppId`, `aadServicePrincipalSecret` (alias `aadServicePrincipalPassword`) or
 *    `aadServicePrincipalCertificate` (PEM), optional `aadEndpoint`, `aadResourceId`, `armEndpoint`. An asset
 *    is a Media Services asset; segments go to the root of its container (SAS from listContainerSas).
 *
 * Without either, a graph with an asset sink is refused at Activate (400 ModuleValidationError).
 */

export const DEFAULT_ASSET_CONTAINER = 'lva-assets';
const DEFAULT_AAD_ENDPOINT = 'https://login.microsoftonline.com';
const DEFAULT_AAD_RESOURCE = 'https://management.core.windows.net/';
const DEFAULT_ARM_ENDPOINT = 'https://management.azure.com/';

export interface ArmId {
  subscriptionId: string;
  resourceGroup: string;
  accountName: string;
}

export type StorageTargetConfig =
  | { kind: 'containerSasUrl'; sasUrl: string }
  | { kind: 'connectionString'; connectionString: string; containerName: string }
  | {
      kind: 'mediaServices';
      arm: ArmId;
      tenantId: string;
      clientId: string;
      secret?: string;
      certificate?: string;
      aadEndpoint: string;
      aadResourceId: string;
      armEndpoint: string;
    };

export type TargetResolution = { ok: true; config: StorageTargetConfig } | { ok: false; message: string };

const ARM_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Media\/mediaServices\/([^/]+)\/?$/i;

export function parseArmId(id: string): ArmId | undefined {
  const m = ARM_ID.exec(id.trim());
  return m ? { subscriptionId: m[1]!, resourceGroup: m[2]!, accountName: m[3]! } : undefined;
}

/** Reads the storage target from the (canonicalised) desired properties. Never echoes secret values. */
export function resolveStorageTarget(raw: Record<string, unknown>): TargetResolution {
  const str = (k: string): string | undefined => {
    const v = raw[k];
    return typeof v === 'string' && v.trim().length > 0 ? v.trim() : undefined;
  };
  const sasUrl = str('assetStorageContainerSasUrl');
  if (sasUrl) {
    let u: URL;
    try {
      u = new URL(sasUrl);
    } catch {
      return { ok: false, message: 'assetStorageContainerSasUrl is not a URL.' };
    }
    if (!/^https?:$/.test(u.protocol) || !u.search.includes('sig=')) {
      return { ok: false, message: 'assetStorageContainerSasUrl must be an http(s) container URL with a SAS token (sig=…).' };
    }
    return { ok: true, config: { kind: 'containerSasUrl', sasUrl } };
  }
  const cs = str('assetStorageConnectionString');
  if (cs) {
    if (!/AccountName=|BlobEndpoint=|UseDevelopmentStorage=true/i.test(cs)) {
      return { ok: false, message: 'assetStorageConnectionString is not a storage connection string (no AccountName or BlobEndpoint).' };
    }
    const containerName = str('assetStorageContainerName') ?? DEFAULT_ASSET_CONTAINER;
    if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(containerName)) {
      return { ok: false, message: `assetStorageContainerName '${containerName}' is not a valid container name (3-63 lower-case letters, digits, single hyphens).` };
    }
    return { ok: true, config: { kind: 'connectionString', connectionString: cs, containerName } };
  }
  const armIdText = str('azureMediaServicesArmId');
  const tenantId = str('aadTenantId');
  const clientId = str('aadServicePrincipalAppId');
  const secret = str('aadServicePrincipalSecret') ?? str('aadServicePrincipalPassword');
  const certificate = str('aadServicePrincipalCertificate');
  const missing: string[] = [];
  if (!armIdText) missing.push('azureMediaServicesArmId');
  if (!tenantId) missing.push('aadTenantId');
  if (!clientId) missing.push('aadServicePrincipalAppId');
  if (!secret && !certificate) missing.push('aadServicePrincipalSecret');
  if (missing.length > 0) {
    return {
      ok: false,
      message: `An asset sink needs a storage target: set assetStorageConnectionString or assetStorageContainerSasUrl (direct Blob), ` +
        `or the Media Services settings; missing: ${missing.join(', ')}.`,
    };
  }
  const arm = parseArmId(armIdText!);
  if (!arm) {
    return { ok: false, message: 'azureMediaServicesArmId must look like /subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Media/mediaServices/{account}.' };
  }
  const aadEndpoint = str('aadEndpoint') ?? DEFAULT_AAD_ENDPOINT;
  const armEndpoint = str('armEndpoint') ?? DEFAULT_ARM_ENDPOINT;
  for (const [k, v] of [['aadEndpoint', aadEndpoint], ['armEndpoint', armEndpoint]] as const) {
    if (!/^https:\/\//i.test(v)) return { ok: false, message: `${k} must be an https URL.` };
  }
  return {
    ok: true,
    config: {
      kind: 'mediaServices', arm, tenantId: tenantId!, clientId: clientId!, secret, certificate,
      aadEndpoint, aadResourceId: str('aadResourceId') ?? DEFAULT_AAD_RESOURCE, armEndpoint,
    },
  };
}
