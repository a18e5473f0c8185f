/**
 * Value-level checks of every node and construction of the typed configs of graph/model.ts.
 * The same code runs twice: at GraphTopologySet in 'topology' mode, where any value that still holds
 * a `${param}` token is skipped (it is checked once substituted), and at instance resolution in
 * 'resolved' mode, where every value is known and the configs are returned.
 * Errors are 400 InvalidResource with detail ModuleValidationError (or LVA's specific codes
 * RtspEndpointUrlInvalidScheme / PropertyValueInvalidPattern) and target the node, as LVA's own
 * example does (`$.Properties.Sources[0]`); the message names the property.
 */

import { LvaError, moduleValidationError } from '../api/errors.js';
import { tryParseDuration } from './duration.js';
import {
  NodeTypes,
  type ApiVersion,
  type AssetSinkConfig,
  type Credentials,
  type EndpointConfig,
  type ExtensionConfig,
  type FileSinkConfig,
  type ImageConfig,
  type NodeConfig,
  type NodeSpec,
  type RawPixelFormat,
  type ResolvedNode,
  type TopologyProperties,
} from './model.js';
import { isPlainObject, quote } from './normalize.js';
import { hasUnresolvedTokens, substituteTokens } from './params.js';

export type CheckMode = 'topology' | 'resolved';

export interface NodeCheckContext {
  allowUnsecuredEndpoints: boolean;
  mode: CheckMode;
  apiVersion: ApiVersion;
}

/** Defaults for values LVA leaves undocumented (see the decision list in validate.ts). */
export const NodeDefaults = {
  motionSensitivity: 'Medium',
  outputMotionRegion: true,
  eventAggregationWindowMs: 1000,
  imageScaleMode: 'Pad',
  skipSamplesWithoutAnnotation: false,
  fileSinkMaximumSizeMiBV1: 10240,
  assetSinkCacheMaximumSizeMiBV1: 2048,
} as const;

const AssetNamePattern = /^[^<>%&:\\/?*+.']{1,260}$/;
const SECOND = 1000;
const SignalGateLimits = {
  activationEvaluationWindow: { min: 0, max: 10 * SECOND },
  activationSignalOffset: { min: -60 * SECOND, max: 60 * SECOND },
  minimumActivationTime: { min: SECOND, max: 3600 * SECOND },
  maximumActivationTime: { min: SECOND, max: 3600 * SECOND },
} as const;

export const ExtensionTypes: ReadonlySet<string> = new Set([
  NodeTypes.HttpExtension,
  NodeTypes.GrpcExtension,
  NodeTypes.CognitiveServicesVisionExtension,
]);

/** Reads and checks the values of one node. */
class NodeChecker {
  constructor(
    readonly node: NodeSpec,
    readonly target: string,
    readonly ctx: NodeCheckContext,
  ) {}

  fail(message: string, code = 'ModuleValidationError'): never {
    const full = `Node '${this.node.name}' (${this.target}): ${message}`;
    if (code === 'ModuleValidationError') throw moduleValidationError(full, this.target);
    throw new LvaError(400, 'InvalidResource', full, [{ code, message: full, target: this.target }]);
  }

  /** True when the value cannot be checked yet (topology time, holds a parameter token). */
  deferred(v: unknown): boolean {
    return this.ctx.mode === 'topology' && typeof v === 'string' && hasUnresolvedTokens(v);
  }

  get(path: string): unknown {
    let cur: unknown = this.node;
    for (const key of path.split('.')) cur = isPlainObject(cur) ? cur[key] : undefined;
    return cur;
  }

  str(path: string): string | undefined {
    const v = this.get(path);
    return typeof v === 'string' ? v : undefined;
  }

  number(path: string, rule: { integer?: boolean; min?: number; max?: number; positive?: boolean }): number | undefined {
    const v = this.str(path);
    if (v === undefined || this.deferred(v)) return undefined;
    const n = Number(v.trim());
    if (v.trim() === '' || !Number.isFinite(n)) this.fail(`'${path}' must be a number, got ${quote(v)}.`);
    if (rule.integer && !Number.isInteger(n)) this.fail(`'${path}' must be an integer, got ${quote(v)}.`);
    if (rule.positive && !(n > 0)) this.fail(`'${path}' must be greater than 0, got ${quote(v)}.`);
    if (rule.min !== undefined && n < rule.min) this.fail(`'${path}' must be at least ${rule.min}, got ${quote(v)}.`);
    if (rule.max !== undefined && n > rule.max) this.fail(`'${path}' must be at most ${rule.max}, got ${quote(v)}.`);
    return n;
  }

  bool(path: string): boolean | undefined {
    const v = this.str(path);
    if (v === undefined || this.deferred(v)) return undefined;
    const t = v.trim().toLowerCase();
    if (t !== 'true' && t !== 'false') this.fail(`'${path}' must be true or false, got ${quote(v)}.`);
    return t === 'true';
  }

  durationMs(path: string, range?: { min: number; max: number }): number | undefined {
    const v = this.str(path);
    if (v === undefined || this.deferred(v)) return undefined;
    const ms = tryParseDuration(v);
    if (ms === undefined) this.fail(`'${path}' must be an ISO 8601 duration such as PT30S, got ${quote(v)}.`);
    if (range && (ms < range.min || ms > range.max)) {
      this.fail(`'${path}' must be between ${fmtMs(range.min)} and ${fmtMs(range.max)}, got ${v}.`);
    }
    return ms;
  }

  /** Enum values are canonical after normalisation; returns undefined while deferred. */
  enumValue<T extends string>(path: string, allowed: readonly T[]): T | undefined {
    const v = this.str(path);
    if (v === undefined || this.deferred(v)) return undefined;
    if (!(allowed as readonly string[]).includes(v)) this.fail(`'${path}' must be one of ${allowed.join(', ')}, got ${quote(v)}.`);
    return v as T;
  }

  endpoint(kind: 'rtsp' | 'http' | 'grpc'): EndpointConfig {
    const type = this.str('endpoint.@type');
    const url = this.str('endpoint.url') ?? '';
    const tls = type === '#Microsoft.Media.MediaGraphTlsEndpoint';
    if (!tls && !this.ctx.allowUnsecuredEndpoints) {
      this.fail("unsecured endpoints are not allowed (module twin 'allowUnsecuredEndpoints' is false); use #Microsoft.Media.MediaGraphTlsEndpoint.");
    }
    if (!this.deferred(url)) this.checkUrl(kind, url, tls);

    const credentials = this.credentials(kind);
    const config: EndpointConfig = { url };
    if (credentials) config.credentials = credentials;
    if (tls) {
      const ignoreHostname = this.bool('endpoint.validationOptions.ignoreHostname') ?? false;
      const ignoreSignature = this.bool('endpoint.validationOptions.ignoreSignature') ?? false;
      if (kind === 'grpc' && (ignoreHostname || ignoreSignature)) {
        this.fail('gRPC TLS endpoints do not support validationOptions ignoreHostname/ignoreSignature; the certificate must match the host.');
      }
      const certs = this.get('endpoint.trustedCertificates.certificates');
      config.tls = {
        ignoreHostname,
        ignoreSignature,
        ...(Array.isArray(certs) ? { trustedCertificates: certs.filter((c): c is string => typeof c === 'string') } : {}),
      };
    }
    return config;
  }

  private checkUrl(kind: 'rtsp' | 'http' | 'grpc', rawUrl: string, tls: boolean): void {
    // Error messages quote the URL: never with its password.
    const url = redactUserinfo(rawUrl);
    let parsed: URL;
    try {
      parsed = new URL(rawUrl);
    } catch {
      if (kind === 'rtsp' && !/^rtsps?:\/\//i.test(rawUrl)) {
        this.fail(`the RTSP endpoint URL ${quote(url)} must use the rtsp:// or rtsps:// scheme.`, 'RtspEndpointUrlInvalidScheme');
      }
      this.fail(`endpoint.url ${quote(url)} is not a valid URL.`);
    }
    // The URL becomes one ffmpeg argument (or an HTTP request line): whitespace and control characters
    // have no business there (WHATWG parsing would silently drop some of them, ffmpeg would not).
    // eslint-disable-next-line no-control-regex
    if (/[\s\u0000-\u001f\u007f]/.test(rawUrl)) this.fail('endpoint.url must not contain whitespace or control characters.');
    if (/%00/.test(rawUrl)) this.fail('endpoint.url must not contain an encoded NUL (%00).');
    const scheme = parsed.protocol.slice(0, -1).toLowerCase();
    if (kind === 'rtsp') {
      if (scheme !== 'rtsp' && scheme !== 'rtsps') {
        this.fail(`the RTSP endpoint URL must use the rtsp:// or rtsps:// scheme, got '${scheme}://'.`, 'RtspEndpointUrlInvalidScheme');
      }
      if (tls && scheme !== 'rtsps') this.fail('a TLS endpoint needs an rtsps:// URL.');
    } else if (kind === 'http') {
      if (scheme !== 'http' && scheme !== 'https') this.fail(`the HTTP extension URL must use http:// or https://, got '${scheme}://'.`);
      if (tls && scheme !== 'https') this.fail('a TLS endpoint needs an https:// URL.');
    } else {
      if (scheme !== 'tcp') this.fail(`the gRPC extension URL must have the form tcp://host:port, got '${scheme}://'.`);
      if (parsed.port === '') this.fail(`the gRPC extension URL ${quote(url)} needs a port (tcp://host:port).`);
    }
    if (parsed.hostname === '') this.fail(`endpoint.url ${quote(url)} has no host.`);
  }

  private credentials(kind: 'rtsp' | 'http' | 'grpc'): Credentials | undefined {
    const c = this.get('endpoint.credentials');
    if (!isPlainObject(c)) return undefined;
    if (c['@type'] === '#Microsoft.Media.MediaGraphHttpHeaderCredentials') {
      if (kind === 'rtsp') this.fail('RTSP sources only support #Microsoft.Media.MediaGraphUsernamePasswordCredentials.');
      return { kind: 'httpHeader', headerName: c.headerName as string, ...(typeof c.headerValue === 'string' ? { headerValue: c.headerValue } : {}) };
    }
    return { kind: 'usernamePassword', username: c.username as string, ...(typeof c.password === 'string' ? { password: c.password } : {}) };
  }

  image(): ImageConfig {
    const image: ImageConfig = { format: { encoding: 'Jpeg' } };
    const scale = this.get('image.scale');
    if (isPlainObject(scale)) {
      const mode = this.enumValue('image.scale.mode', ['PreserveAspectRatio', 'Pad', 'Stretch'] as const) ?? (scale.mode === undefined ? NodeDefaults.imageScaleMode : undefined);
      const width = this.number('image.scale.width', { integer: true, positive: true, max: 16384 });
      const height = this.number('image.scale.height', { integer: true, positive: true, max: 16384 });
      const known = (k: string) => scale[k] !== undefined;
      if (mode === 'PreserveAspectRatio' && !known('width') && !known('height')) {
        this.fail("image.scale with mode PreserveAspectRatio needs 'width' or 'height'.");
      }
      if ((mode === 'Pad' || mode === 'Stretch') && (!known('width') || !known('height'))) {
        this.fail(`image.scale with mode ${mode} needs both 'width' and 'height'.`);
      }
      image.scale = { mode: mode ?? 'Pad', ...(width !== undefined ? { width } : {}), ...(height !== undefined ? { height } : {}) };
    }
    const formatType = this.str('image.format.@type');
    switch (formatType) {
      case undefined: // not documented; JPEG is what every sample that omits quality expects
      case '#Microsoft.Media.MediaGraphImageFormatJpeg': {
        const quality = this.number('image.format.quality', { integer: true, min: 0, max: 100 });
        image.format = { encoding: 'Jpeg', ...(quality !== undefined ? { quality } : {}) };
        break;
      }
      case '#Microsoft.Media.MediaGraphImageFormatBmp':
        image.format = { encoding: 'Bmp' };
        break;
      case '#Microsoft.Media.MediaGraphImageFormatPng':
        image.format = { encoding: 'Png' };
        break;
      case '#Microsoft.Media.MediaGraphImageFormatRaw': {
        const pixelFormat = this.str('image.format.pixelFormat') as RawPixelFormat;
        image.format = { encoding: 'Raw', pixelFormat };
        break;
      }
      case '#Microsoft.Media.MediaGraphImageFormatEncoded': {
        const encoding = this.enumValue('image.format.encoding', ['Jpeg', 'Bmp', 'Png'] as const) ?? 'Jpeg';
        const quality = this.number('image.format.quality', { integer: true, min: 0, max: 100 });
        image.format = encoding === 'Jpeg' ? { encoding, ...(quality !== undefined ? { quality } : {}) } : { encoding };
        break;
      }
      default:
        this.fail(`unsupported image format ${quote(formatType)}.`);
    }
    return image;
  }

  /** Checks a file/asset name pattern: `${System.*}` stand-ins replaced, parameters too at topology time. */
  patternText(path: string): string {
    const v = this.str(path) ?? '';
    return substituteTokens(v, (name) => (this.ctx.mode === 'topology' || name.startsWith('System.') ? 'x' : undefined));
  }

  absolutePath(path: string): string {
    const v = this.str(path) ?? '';
    if (this.deferred(v)) return v;
    if (!v.startsWith('/')) this.fail(`'${path}' must be an absolute path, got ${quote(v)}.`);
    if (v.split('/').includes('..')) this.fail(`'${path}' must not contain '..' segments.`);
    if (/[\u0000-\u001f]/.test(v)) this.fail(`'${path}' must not contain control characters.`);
    return v;
  }
}

/** `scheme://user:***@host…`: the URL with any password masked, for error messages. */
export function redactUserinfo(url: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  if (!m) return url;
  const start = m[0].length;
  const rest = url.slice(start);
  // The authority ends at the first '/', '?' or '#'; the userinfo at its last '@' (as URL parsers read it).
  const authority = rest.slice(0, rest.search(/[/?#]|$/));
  const at = authority.lastIndexOf('@');
  if (at < 0) return url;
  const colon = authority.indexOf(':');
  if (colon < 0 || colon > at) return url;
  return url.slice(0, start + colon + 1) + '***' + url.slice(start + at);
}

function fmtMs(ms: number): string {
  return `${ms / 1000} s`;
}

/** Strips one trailing `.mp4`: the file sink appends it (lva-spec §2.3). */
function withoutMp4(name: string): string {
  return name.toLowerCase().endsWith('.mp4') ? name.slice(0, -4) : name;
}

function checkFileNamePattern(c: NodeChecker, path: string, text: string): void {
  if (text === '' || text === '.' || text === '..') c.fail(`'${path}' must name a file, got ${quote(text)}.`);
  if (/[/\\]/.test(text)) c.fail(`'${path}' must be a file name without '/' or '\\' (the directory is baseDirectoryPath).`);
  if (text.includes('..')) c.fail(`'${path}' must not contain '..'.`);
  if (/[\u0000-\u001f]/.test(text)) c.fail(`'${path}' must not contain control characters.`);
  if (text.length > 200) c.fail(`'${path}' is too long (at most 200 characters after expansion).`);
}

function buildOne(c: NodeChecker): NodeConfig {
  const node = c.node;
  const name = node.name;
  switch (node['@type']) {
    case NodeTypes.RtspSource: {
      const endpoint = c.endpoint('rtsp');
      const transport = c.enumValue('transport', ['Tcp', 'Http'] as const) ?? 'Tcp';
      return { type: NodeTypes.RtspSource, name, endpoint, transport };
    }
    case NodeTypes.IoTHubMessageSource:
      return { type: NodeTypes.IoTHubMessageSource, name, hubInputName: c.str('hubInputName') ?? '' };
    case NodeTypes.MotionDetection: {
      const aggregation = c.durationMs('eventAggregationWindow', { min: 0, max: 3600 * SECOND });
      return {
        type: NodeTypes.MotionDetection,
        name,
        sensitivity: c.enumValue('sensitivity', ['Low', 'Medium', 'High'] as const) ?? NodeDefaults.motionSensitivity,
        outputMotionRegion: c.bool('outputMotionRegion') ?? NodeDefaults.outputMotionRegion,
        eventAggregationWindowMs: aggregation ?? NodeDefaults.eventAggregationWindowMs,
      };
    }
    case NodeTypes.FrameRateFilter:
      return { type: NodeTypes.FrameRateFilter, name, maximumFps: c.number('maximumFps', { positive: true, max: 1000 }) ?? NaN };
    case NodeTypes.SignalGate: {
      const ms = (k: keyof typeof SignalGateLimits) => c.durationMs(k, SignalGateLimits[k]);
      const window = ms('activationEvaluationWindow');
      const offset = ms('activationSignalOffset');
      const min = ms('minimumActivationTime');
      const max = ms('maximumActivationTime');
      if (min !== undefined && max !== undefined && min > max) {
        c.fail(`minimumActivationTime (${fmtMs(min)}) must not exceed maximumActivationTime (${fmtMs(max)}).`);
      }
      if (offset !== undefined && min !== undefined && offset > 0 && offset >= min) {
        c.fail(`a positive activationSignalOffset (${fmtMs(offset)}) must be shorter than minimumActivationTime (${fmtMs(min)}), otherwise a single event records an empty clip.`);
      }
      return {
        type: NodeTypes.SignalGate,
        name,
        activationEvaluationWindowMs: window ?? NaN,
        activationSignalOffsetMs: offset ?? NaN,
        minimumActivationTimeMs: min ?? NaN,
        maximumActivationTimeMs: max ?? NaN,
      };
    }
    case NodeTypes.HttpExtension:
    case NodeTypes.GrpcExtension:
    case NodeTypes.CognitiveServicesVisionExtension: {
      const type = node['@type'] as ExtensionConfig['type'];
      const endpoint = c.endpoint(type === NodeTypes.HttpExtension ? 'http' : 'grpc');
      const image = c.image();
      const maximumSamplesPerSecond = c.number('samplingOptions.maximumSamplesPerSecond', { positive: true, max: 1000 });
      const config: ExtensionConfig = {
        type,
        name,
        endpoint,
        image,
        samplingOptions: {
          skipSamplesWithoutAnnotation: c.bool('samplingOptions.skipSamplesWithoutAnnotation') ?? NodeDefaults.skipSamplesWithoutAnnotation,
          ...(maximumSamplesPerSecond !== undefined ? { maximumSamplesPerSecond } : {}),
        },
      };
      if (isPlainObject(node.dataTransfer)) {
        const mode = c.enumValue('dataTransfer.mode', ['Embedded', 'SharedMemory'] as const);
        const size = c.number('dataTransfer.sharedMemorySizeMiB', { integer: true, positive: true, max: 65536 });
        if (mode === 'SharedMemory' && node.dataTransfer.sharedMemorySizeMiB === undefined) {
          c.fail("dataTransfer mode SharedMemory needs 'sharedMemorySizeMiB'.");
        }
        config.dataTransfer = { mode: mode ?? 'Embedded', ...(size !== undefined ? { sharedMemorySizeMiB: size } : {}) };
      }
      const extensionConfiguration = c.str('extensionConfiguration');
      if (extensionConfiguration !== undefined) config.extensionConfiguration = extensionConfiguration;
      return config;
    }
    case NodeTypes.IoTHubMessageSink:
      return { type: NodeTypes.IoTHubMessageSink, name, hubOutputName: c.str('hubOutputName') ?? '' };
    case NodeTypes.FileSink:
      return fileSink(c);
    case NodeTypes.AssetSink: {
      const pattern = c.patternText('assetNamePattern');
      if (!AssetNamePattern.test(pattern)) {
        c.fail(
          `assetNamePattern ${quote(c.str('assetNamePattern'))} must match ^[^<>%&:\\\\/?*+.']{1,260}$ (system variables excepted).`,
          'PropertyValueInvalidPattern',
        );
      }
      const segmentLengthMs = c.durationMs('segmentLength', { min: 30 * SECOND, max: 24 * 3600 * SECOND });
      if (segmentLengthMs !== undefined && segmentLengthMs % (30 * SECOND) !== 0) {
        c.fail(`segmentLength must be a multiple of 30 seconds, got ${c.str('segmentLength')}.`);
      }
      const cacheSize = c.number('localMediaCacheMaximumSizeMiB', { integer: true, positive: true });
      const config: AssetSinkConfig = {
        type: NodeTypes.AssetSink,
        name,
        assetNamePattern: c.str('assetNamePattern') ?? '',
        segmentLengthMs: segmentLengthMs ?? NaN,
        localMediaCachePath: c.absolutePath('localMediaCachePath'),
        localMediaCacheMaximumSizeMiB: cacheSize ?? (node.localMediaCacheMaximumSizeMiB === undefined ? NodeDefaults.assetSinkCacheMaximumSizeMiBV1 : NaN),
      };
      return config;
    }
    default:
      return c.fail(`unsupported node type ${quote(node['@type'])}.`);
  }
}

function fileSink(c: NodeChecker): FileSinkConfig {
  const node = c.node;
  let baseDirectoryPath: string;
  let fileNamePattern: string;
  let patternForCheck: string;
  const filePathPattern = c.str('filePathPattern');
  if (filePathPattern !== undefined) {
    // API 1.0: one absolute path pattern; its directory becomes the base directory.
    const path = c.absolutePath('filePathPattern');
    const slash = path.lastIndexOf('/');
    baseDirectoryPath = slash <= 0 ? '/' : path.slice(0, slash);
    fileNamePattern = withoutMp4(path.slice(slash + 1));
    const checkText = c.patternText('filePathPattern');
    patternForCheck = withoutMp4(checkText.slice(checkText.lastIndexOf('/') + 1));
    checkFileNamePattern(c, 'filePathPattern', patternForCheck);
  } else {
    baseDirectoryPath = c.absolutePath('baseDirectoryPath');
    fileNamePattern = withoutMp4(c.str('fileNamePattern') ?? '');
    patternForCheck = withoutMp4(c.patternText('fileNamePattern'));
    checkFileNamePattern(c, 'fileNamePattern', patternForCheck);
  }
  const size = c.number('maximumSizeMiB', { integer: true, positive: true });
  return {
    type: NodeTypes.FileSink,
    name: node.name,
    baseDirectoryPath,
    fileNamePattern,
    maximumSizeMiB: size ?? (node.maximumSizeMiB === undefined ? NodeDefaults.fileSinkMaximumSizeMiBV1 : NaN),
  };
}

export interface NodeEntry {
  role: ResolvedNode['role'];
  node: NodeSpec;
  target: string;
}

/** Every node of a topology with its role and its `$.Properties.<Collection>[i]` target. */
export function listNodes(props: TopologyProperties): NodeEntry[] {
  const out: NodeEntry[] = [];
  const add = (role: NodeEntry['role'], list: NodeSpec[], label: string) =>
    list.forEach((node, i) => out.push({ role, node, target: `$.Properties.${label}[${i}]` }));
  add('source', props.sources, 'Sources');
  add('processor', props.processors, 'Processors');
  add('sink', props.sinks, 'Sinks');
  return out;
}

/**
 * Checks every node's values; in 'resolved' mode returns the typed nodes for the runtime.
 * (In 'topology' mode the returned configs may hold NaN/empty placeholders and must be ignored.)
 */
export function buildNodeConfigs(props: TopologyProperties, ctx: NodeCheckContext): ResolvedNode[] {
  return listNodes(props).map(({ role, node, target }) => ({
    role,
    config: buildOne(new NodeChecker(node, target, ctx)),
    inputs: (node.inputs ?? []).map((i) => ({ nodeName: i.nodeName, outputSelectors: i.outputSelectors ?? [] })),
    target,
  }));
}
