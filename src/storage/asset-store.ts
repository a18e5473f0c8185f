import { AzureMediaServices } from '@azure/arm-mediaservices';
import { ClientCertificateCredential, ClientSecretCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, ContainerClient, type StoragePipelineOptions } from '@azure/storage-blob';
import type { StorageTargetConfig } from './target.js';

/**
 * Where an asset's segments are uploaded: a container and a blob-name prefix.
 *
 * - Direct Blob: one container for every asset, `prefix = "<asset>/"`.
 * - Media Services: the asset's own container (created with the asset), `prefix = ""`.
 *
 * The SDKs' own retries are turned off (one try per call): the uploader retries with its own capped
 * backoff and keeps the segment in the local cache meanwhile.
 */
export interface AssetLocation {
  container: ContainerClient;
  containerName: string;
  prefix: string;
  /** Storage account of the container. */
  accountName: string;
}

export interface AssetStore {
  readonly kind: StorageTargetConfig['kind'];
  /** For events (`storageAccountName`; Media Services: the storage account last seen, else the AMS account). */
  readonly accountName: string;
  /** Creates the asset/container if needed and tells where its blobs go. */
  locate(asset: string, signal?: AbortSignal): Promise<AssetLocation>;
  /** Forget cached access for the asset (after an authorisation failure: the SAS may have expired). */
  invalidate(asset: string): void;
}

/** Per try; a 30 s segment of a 20 Mb/s camera is 75 MB. */
const TRY_TIMEOUT_MS = Number(process.env.LVA_ASSET_TRY_TIMEOUT_MS ?? 10 * 60_000);

export const pipelineOptions: StoragePipelineOptions = {
  retryOptions: { maxTries: 1, tryTimeoutInMs: TRY_TIMEOUT_MS },
  userAgentOptions: { userAgentPrefix: 'lva-edge' },
};

export function createAssetStore(config: StorageTargetConfig): AssetStore {
  switch (config.kind) {
    case 'containerSasUrl':
      return new DirectBlobStore(config.kind, new ContainerClient(config.sasUrl, undefined, pipelineOptions), false);
    case 'connectionString': {
      const service = BlobServiceClient.fromConnectionString(config.connectionString, pipelineOptions);
      return new DirectBlobStore(config.kind, service.getContainerClient(config.containerName), true);
    }
    case 'mediaServices':
      return new MediaServicesStore(config);
  }
}

class DirectBlobStore implements AssetStore {
  readonly accountName: string;
  private created = false;

  constructor(readonly kind: StorageTargetConfig['kind'], private readonly container: ContainerClient, private readonly create: boolean) {
    this.accountName = container.accountName || new URL(container.url).hostname.split('.')[0]!;
  }

  async locate(asset: string, signal?: AbortSignal): Promise<AssetLocation> {
    if (this.create && !this.created) {
      await this.container.createIfNotExists({ abortSignal: signal });
      this.created = true;
    }
    return { container: this.container, containerName: this.container.containerName, prefix: `${asset}/`, accountName: this.accountName };
  }

  invalidate(): void {
    this.created = false;
  }
}

/** A SAS is asked for this long and renewed when less than RENEW_MS is left. */
const SAS_LIFETIME_MS = 4 * 3600_000;
const SAS_RENEW_MS = 30 * 60_000;

class MediaServicesStore implements AssetStore {
  readonly kind = 'mediaServices' as const;
  accountName: string;
  private readonly client: AzureMediaServices;
  private readonly cache = new Map<string, { location: AssetLocation; expiresAt: number }>();

  constructor(private readonly config: Extract<StorageTargetConfig, { kind: 'mediaServices' }>) {
    const credentialOptions = { authorityHost: config.aadEndpoint, disableInstanceDiscovery: true };
    const credential: TokenCredential = config.secret
      ? new ClientSecretCredential(config.tenantId, config.clientId, config.secret, credentialOptions)
      : new ClientCertificateCredential(config.tenantId, config.clientId, { certificate: config.certificate! }, credentialOptions);
    const endpoint = config.armEndpoint.replace(/\/+$/, '');
    const resource = config.aadResourceId;
    this.client = new AzureMediaServices(credential, config.arm.subscriptionId, {
      endpoint,
      $host: endpoint,
      credentialScopes: [`${resource}${resource.endsWith('/') ? '' : '/'}.default`],
      retryOptions: { maxRetries: 0 },
      userAgentOptions: { userAgentPrefix: 'lva-edge' },
    });
    this.accountName = config.arm.accountName;
  }

  async locate(asset: string, signal?: AbortSignal): Promise<AssetLocation> {
    const hit = this.cache.get(asset);
    if (hit && hit.expiresAt - Date.now() > SAS_RENEW_MS) return hit.location;
    const { resourceGroup, accountName } = this.config.arm;
    const opts = { abortSignal: signal };
    await this.client.assets.createOrUpdate(resourceGroup, accountName, asset, { description: 'Recorded by lva-edge' }, opts);
    const expiresAt = Date.now() + SAS_LIFETIME_MS;
    const sas = await this.client.assets.listContainerSas(resourceGroup, accountName, asset, { permissions: 'ReadWrite', expiryTime: new Date(expiresAt) }, opts);
    const url = sas.assetContainerSasUrls?.[0];
    if (!url) throw new Error(`Media Services returned no container SAS URL for asset '${asset}'`);
    const container = new ContainerClient(url, undefined, pipelineOptions);
    const storageAccount = container.accountName || new URL(url).hostname.split('.')[0]!;
    this.accountName = storageAccount;
    const location = { container, containerName: container.containerName, prefix: '', accountName: storageAccount };
    this.cache.set(asset, { location, expiresAt });
    return location;
  }

  invalidate(asset: string): void {
    this.cache.delete(asset);
  }
}
