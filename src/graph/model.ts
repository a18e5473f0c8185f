/**
 * The resource model of the control plane (lva-spec §1.3, §2). Resources are kept as canonical JSON:
 * property names in the swagger's camelCase spelling, enum values in the swagger's spelling, scalars as
 * the swagger types them (strings for numbers/booleans/durations). Normalisation from the lenient
 * wire forms (case-insensitive keys and enums, bare numbers) happens in graph/normalize.ts.
 */

export type ApiVersion = '1.0' | '2.0';
export const SUPPORTED_API_VERSIONS: readonly ApiVersion[] = ['1.0', '2.0'];

export interface SystemData {
  createdAt: string;
  lastModifiedAt: string;
}

export type ParameterType = 'String' | 'SecretString' | 'Int' | 'Double' | 'Bool';

export interface ParameterDeclaration {
  name: string;
  type: ParameterType;
  description?: string;
  default?: string;
}

export interface OutputSelector {
  property: 'mediaType';
  operator: 'is' | 'isNot';
  value: string;
}

export interface NodeInput {
  nodeName: string;
  outputSelectors: OutputSelector[];
}

/** A node as declared in a topology: `@type`, `name`, `inputs` plus type-specific properties. */
export interface NodeSpec {
  '@type': string;
  name: string;
  inputs?: NodeInput[];
  [property: string]: unknown;
}

export interface TopologyProperties {
  description?: string;
  parameters: ParameterDeclaration[];
  sources: NodeSpec[];
  processors: NodeSpec[];
  sinks: NodeSpec[];
}

export interface TopologyResource {
  name: string;
  systemData?: SystemData;
  properties: TopologyProperties;
}

export type InstanceState = 'Inactive' | 'Activating' | 'Active' | 'Deactivating';

export interface ParameterValue {
  name: string;
  value?: string;
}

export interface InstanceProperties {
  description?: string;
  topologyName: string;
  parameters: ParameterValue[];
  state: InstanceState;
}

export interface InstanceResource {
  name: string;
  systemData?: SystemData;
  properties: InstanceProperties;
}

/** The `@type` strings of every node kind this module knows (lva-spec §2.3). */
export const NodeTypes = {
  RtspSource: '#Microsoft.Media.MediaGraphRtspSource',
  IoTHubMessageSource: '#Microsoft.Media.MediaGraphIoTHubMessageSource',
  MotionDetection: '#Microsoft.Media.MediaGraphMotionDetectionProcessor',
  FrameRateFilter: '#Microsoft.Media.MediaGraphFrameRateFilterProcessor',
  SignalGate: '#Microsoft.Media.MediaGraphSignalGateProcessor',
  HttpExtension: '#Microsoft.Media.MediaGraphHttpExtension',
  GrpcExtension: '#Microsoft.Media.MediaGraphGrpcExtension',
  CognitiveServicesVisionExtension: '#Microsoft.Media.MediaGraphCognitiveServicesVisionExtension',
  IoTHubMessageSink: '#Microsoft.Media.MediaGraphIoTHubMessageSink',
  FileSink: '#Microsoft.Media.MediaGraphFileSink',
  AssetSink: '#Microsoft.Media.MediaGraphAssetSink',
} as const;
export type NodeType = (typeof NodeTypes)[keyof typeof NodeTypes];

// ---------------------------------------------------------------------------------------------
// Typed node configurations: what the runtime receives after parameter substitution and
// validation (graph/node-config.ts builds them). Durations are milliseconds, sizes MiB.
// `${System.*}` tokens are left in patterns; they are expanded per clip at run time.
// ---------------------------------------------------------------------------------------------

export interface Credentials {
  kind: 'usernamePassword' | 'httpHeader';
  username?: string;
  password?: string;
  headerName?: string;
  headerValue?: string;
}

export interface TlsOptions {
  trustedCertificates?: string[]; // PEM strings; undefined = platform trust store
  ignoreHostname: boolean;
  ignoreSignature: boolean;
}

export interface EndpointConfig {
  url: string;
  credentials?: Credentials;
  /** Present for TlsEndpoint. */
  tls?: TlsOptions;
}

export interface RtspSourceConfig {
  type: typeof NodeTypes.RtspSource;
  name: string;
  endpoint: EndpointConfig;
  transport: 'Tcp' | 'Http';
}

export interface IoTHubMessageSourceConfig {
  type: typeof NodeTypes.IoTHubMessageSource;
  name: string;
  hubInputName: string;
}

export interface MotionDetectionConfig {
  type: typeof NodeTypes.MotionDetection;
  name: string;
  sensitivity: 'Low' | 'Medium' | 'High';
  outputMotionRegion: boolean;
  eventAggregationWindowMs: number;
}

export interface FrameRateFilterConfig {
  type: typeof NodeTypes.FrameRateFilter;
  name: string;
  maximumFps: number;
}

export interface SignalGateConfig {
  type: typeof NodeTypes.SignalGate;
  name: string;
  activationEvaluationWindowMs: number;
  activationSignalOffsetMs: number;
  minimumActivationTimeMs: number;
  maximumActivationTimeMs: number;
}

export type ImageScaleMode = 'PreserveAspectRatio' | 'Pad' | 'Stretch';
export type RawPixelFormat =
  | 'Yuv420p' | 'Rgb565be' | 'Rgb565le' | 'Rgb555be' | 'Rgb555le'
  | 'Rgb24' | 'Bgr24' | 'Argb' | 'Rgba' | 'Abgr' | 'Bgra';

export interface ImageConfig {
  scale?: { mode: ImageScaleMode; width?: number; height?: number };
  format:
    | { encoding: 'Jpeg'; quality?: number }
    | { encoding: 'Bmp' }
    | { encoding: 'Png' }
    | { encoding: 'Raw'; pixelFormat: RawPixelFormat };
}

export interface ExtensionConfig {
  type: typeof NodeTypes.HttpExtension | typeof NodeTypes.GrpcExtension | typeof NodeTypes.CognitiveServicesVisionExtension;
  name: string;
  endpoint: EndpointConfig;
  image: ImageConfig;
  samplingOptions: { skipSamplesWithoutAnnotation: boolean; maximumSamplesPerSecond?: number };
  dataTransfer?: { mode: 'Embedded' | 'SharedMemory'; sharedMemorySizeMiB?: number };
  extensionConfiguration?: string;
}

export interface IoTHubMessageSinkConfig {
  type: typeof NodeTypes.IoTHubMessageSink;
  name: string;
  hubOutputName: string;
}

export interface FileSinkConfig {
  type: typeof NodeTypes.FileSink;
  name: string;
  baseDirectoryPath: string;
  /** Without the `.mp4` suffix; may still contain `${System.*}` tokens. */
  fileNamePattern: string;
  maximumSizeMiB: number;
}

export interface AssetSinkConfig {
  type: typeof NodeTypes.AssetSink;
  name: string;
  assetNamePattern: string;
  segmentLengthMs: number;
  localMediaCachePath: string;
  localMediaCacheMaximumSizeMiB: number;
}

export type NodeConfig =
  | RtspSourceConfig
  | IoTHubMessageSourceConfig
  | MotionDetectionConfig
  | FrameRateFilterConfig
  | SignalGateConfig
  | ExtensionConfig
  | IoTHubMessageSinkConfig
  | FileSinkConfig
  | AssetSinkConfig;

/** A node with its typed config and its inputs, ready for the runtime. */
export interface ResolvedNode {
  role: 'source' | 'processor' | 'sink';
  config: NodeConfig;
  inputs: NodeInput[];
  /** JSON path of the node in the request, e.g. `$.Properties.Processors[1]` (for error targets). */
  target: string;
}

export interface ResolvedGraph {
  topologyName: string;
  instanceName: string;
  apiVersion: ApiVersion;
  nodes: ResolvedNode[];
}
