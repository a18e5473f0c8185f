import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LvaError } from '../../src/api/errors.js';
import { resolveInstance, validateInstanceSet, validateTopologySet, type ValidationContext } from '../../src/graph/validate.js';

/**
 * One mistake per row. The base payloads are valid (asserted below); each row changes one thing and
 * states the status, top-level code, detail code and target it must produce.
 */

const U = '#Microsoft.Media.MediaGraphUnsecuredEndpoint';
const video = [{ property: 'mediaType', operator: 'is', value: 'video' }];

function baseTopology(): any {
  return {
    '@apiVersion': '2.0',
    name: 'EvrTest',
    properties: {
      parameters: [
        { name: 'rtspUrl', type: 'String' },
        { name: 'rtspPassword', type: 'SecretString', default: 'pw' },
        { name: 'inferencingUrl', type: 'String', default: 'http://ext:8080/score' },
        { name: 'sens', type: 'String', default: 'medium' },
        { name: 'quality', type: 'Int', default: '90' },
        { name: 'fps', type: 'Double', default: '5' },
        { name: 'regions', type: 'Bool', default: 'true' },
        { name: 'clipPrefix', type: 'String', default: 'clip' },
      ],
      sources: [
        {
          '@type': '#Microsoft.Media.MediaGraphRtspSource',
          name: 'rtspSource',
          endpoint: {
            '@type': U,
            url: '${rtspUrl}',
            credentials: { '@type': '#Microsoft.Media.MediaGraphUsernamePasswordCredentials', username: 'u', password: '${rtspPassword}' },
          },
        },
      ],
      processors: [
        {
          '@type': '#Microsoft.Media.MediaGraphMotionDetectionProcessor',
          name: 'motion',
          sensitivity: '${sens}',
          outputMotionRegion: '${regions}',
          inputs: [{ nodeName: 'rtspSource', outputSelectors: video }],
        },
        {
          '@type': '#Microsoft.Media.MediaGraphSignalGateProcessor',
          name: 'gate',
          activationEvaluationWindow: 'PT1S',
          activationSignalOffset: '-PT5S',
          minimumActivationTime: 'PT20S',
          maximumActivationTime: 'PT40S',
          inputs: [{ nodeName: 'motion' }, { nodeName: 'rtspSource', outputSelectors: video }],
        },
        {
          '@type': '#Microsoft.Media.MediaGraphHttpExtension',
          name: 'ext',
          endpoint: { '@type': U, url: '${inferencingUrl}' },
          image: {
            scale: { mode: 'Pad', width: '416', height: '416' },
            format: { '@type': '#Microsoft.Media.MediaGraphImageFormatJpeg', quality: '${quality}' },
          },
          samplingOptions: { skipSamplesWithoutAnnotation: 'false', maximumSamplesPerSecond: '${fps}' },
          inputs: [{ nodeName: 'rtspSource', outputSelectors: video }],
        },
      ],
      sinks: [
        {
          '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSink',
          name: 'hubSink',
          hubOutputName: 'inferenceOutput',
          inputs: [{ nodeName: 'motion' }, { nodeName: 'ext' }],
        },
        {
          '@type': '#Microsoft.Media.MediaGraphFileSink',
          name: 'fileSink',
          baseDirectoryPath: '/var/media',
          fileNamePattern: '${clipPrefix}-${System.DateTime}',
          maximumSizeMiB: '512',
          inputs: [{ nodeName: 'gate', outputSelectors: video }],
        },
        {
          '@type': '#Microsoft.Media.MediaGraphAssetSink',
          name: 'assetSink',
          assetNamePattern: 'rec-${System.DateTime}',
          segmentLength: 'PT30S',
          localMediaCachePath: '/var/lib/azuremediaservices/tmp/',
          localMediaCacheMaximumSizeMiB: '2048',
          inputs: [{ nodeName: 'gate' }],
        },
      ],
    },
  };
}

function baseInstance(values: Record<string, string> = {}): any {
  const parameters = Object.entries({ rtspUrl: 'rtsp://cam:554/live', ...values }).map(([name, value]) => ({ name, value }));
  return { '@apiVersion': '2.0', name: 'camera-1', properties: { topologyName: 'EvrTest', parameters } };
}

const grpcExt = (url = 'tcp://ext:5001', extra: Record<string, unknown> = {}) => ({
  '@type': '#Microsoft.Media.MediaGraphGrpcExtension',
  name: 'ext',
  endpoint: { '@type': U, url, ...extra },
  image: { format: { '@type': '#Microsoft.Media.MediaGraphImageFormatBmp' } },
  dataTransfer: { mode: 'Embedded' },
  inputs: [{ nodeName: 'rtspSource' }],
});

type Expect = [status: number, code: string, detail: string, target: string];
interface Row {
  name: string;
  /** Mutates a fresh base topology, or returns a whole payload. */
  topology?: (t: any) => unknown;
  /** Mutates a fresh base instance (the topology stays the base one). */
  instance?: (i: any) => unknown;
  ctx?: ValidationContext;
  expect: Expect;
}

const P = (i: number) => `$.Properties.Processors[${i}]`;
const S = (i: number) => `$.Properties.Sinks[${i}]`;
const SRC = (i: number) => `$.Properties.Sources[${i}]`;
const GVE = (target: string): Expect => [400, 'InvalidResource', 'GraphValidationError', target];
const MVE = (target: string): Expect => [400, 'InvalidResource', 'ModuleValidationError', target];
const IR = (detail: string, target: string): Expect => [400, 'InvalidResource', detail, target];

const rows: Row[] = [
  // --- envelope and version ---
  { name: 'payload is an array', topology: () => [], expect: [400, 'BadRequest', 'InvalidRequestPayload', '$'] },
  { name: 'payload is null', topology: () => null, expect: [400, 'BadRequest', 'InvalidRequestPayload', '$'] },
  { name: 'payload is a string', topology: () => 'GraphTopologySet', expect: [400, 'BadRequest', 'InvalidRequestPayload', '$'] },
  { name: '@apiVersion missing', topology: (t) => { delete t['@apiVersion']; }, expect: [400, 'InvalidVersion', 'ApiVersionNotSupported', '$.@apiVersion'] },
  { name: '@apiVersion 3.0', topology: (t) => { t['@apiVersion'] = '3.0'; }, expect: [400, 'InvalidVersion', 'ApiVersionNotSupported', '$.@apiVersion'] },
  { name: '@apiVersion as a number', topology: (t) => { t['@apiVersion'] = 2; }, expect: [400, 'InvalidVersion', 'ApiVersionNotSupported', '$.@apiVersion'] },
  // --- resource shape ---
  { name: 'name missing', topology: (t) => { delete t.name; }, expect: IR('PropertyRequired', '$.Name') },
  { name: 'name with a space', topology: (t) => { t.name = 'my topology'; }, expect: IR('PropertyValueInvalidPattern', '$.Name') },
  { name: 'name starting with a dash', topology: (t) => { t.name = '-abc'; }, expect: IR('PropertyValueInvalidPattern', '$.Name') },
  { name: 'name ending with a dash', topology: (t) => { t.name = 'abc-'; }, expect: IR('PropertyValueInvalidPattern', '$.Name') },
  { name: 'name of 33 characters', topology: (t) => { t.name = 'a'.repeat(33); }, expect: IR('PropertyValueInvalidPattern', '$.Name') },
  { name: 'properties missing', topology: (t) => { delete t.properties; }, expect: IR('PropertyRequired', '$.Properties') },
  { name: 'unknown top-level property', topology: (t) => { t.foo = 1; }, expect: IR('PropertyNotAllowed', '$.Foo') },
  { name: 'unknown node property', topology: (t) => { t.properties.sources[0].frobnicate = 'x'; }, expect: IR('PropertyNotAllowed', '$.Properties.Sources[0].Frobnicate') },
  { name: 'same key twice in different case', topology: (t) => { t.properties.sources[0].Name = 'other'; }, expect: IR('PropertyDuplicate', '$.Properties.Sources[0].Name') },
  { name: 'description is an object', topology: (t) => { t.properties.description = {}; }, expect: IR('PropertyValueInvalid', '$.Properties.Description') },
  { name: 'sources is not an array', topology: (t) => { t.properties.sources = {}; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources') },
  { name: 'node name with a slash', topology: (t) => { t.properties.sinks[0].name = 'hub/sink'; }, expect: IR('PropertyValueInvalidPattern', '$.Properties.Sinks[0].Name') },
  // --- node types ---
  { name: 'source without @type', topology: (t) => { delete t.properties.sources[0]['@type']; }, expect: IR('PropertyRequired', '$.Properties.Sources[0].@type') },
  { name: 'unknown source @type', topology: (t) => { t.properties.sources[0]['@type'] = '#Microsoft.Media.MediaGraphWebcamSource'; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].@type') },
  { name: 'a sink type among processors', topology: (t) => { t.properties.processors[2]['@type'] = '#Microsoft.Media.MediaGraphFileSink'; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[2].@type') },
  { name: 'FrameRateFilter in a 2.0 payload', topology: (t) => { t.properties.processors.push({ '@type': '#Microsoft.Media.MediaGraphFrameRateFilterProcessor', name: 'frf', maximumFps: '5', inputs: [{ nodeName: 'rtspSource' }] }); }, expect: MVE(P(3)) },
  { name: 'ImageFormatEncoded in a 2.0 payload', topology: (t) => { t.properties.processors[2].image.format = { '@type': '#Microsoft.Media.MediaGraphImageFormatEncoded', encoding: 'jpeg' }; }, expect: MVE(P(2)) },
  { name: 'filePathPattern in a 2.0 payload', topology: (t) => { t.properties.sinks[1].filePathPattern = '/var/media/x-${System.DateTime}'; }, expect: MVE(S(1)) },
  { name: 'unknown endpoint @type', topology: (t) => { t.properties.sources[0].endpoint['@type'] = '#Microsoft.Media.MediaGraphVpnEndpoint'; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].Endpoint.@type') },
  { name: 'unknown credentials @type', topology: (t) => { t.properties.sources[0].endpoint.credentials['@type'] = '#Microsoft.Media.MediaGraphTokenCredentials'; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].Endpoint.Credentials.@type') },
  // --- required properties and enums ---
  { name: 'RTSP source without endpoint', topology: (t) => { delete t.properties.sources[0].endpoint; }, expect: IR('PropertyRequired', '$.Properties.Sources[0].Endpoint') },
  { name: 'endpoint without url', topology: (t) => { delete t.properties.sources[0].endpoint.url; }, expect: IR('PropertyRequired', '$.Properties.Sources[0].Endpoint.Url') },
  { name: 'transport udp', topology: (t) => { t.properties.sources[0].transport = 'udp'; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].Transport') },
  { name: 'sensitivity extreme', topology: (t) => { t.properties.processors[0].sensitivity = 'extreme'; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[0].Sensitivity') },
  { name: 'selector operator contains', topology: (t) => { t.properties.processors[0].inputs[0].outputSelectors = [{ property: 'mediaType', operator: 'contains', value: 'video' }]; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[0].Inputs[0].OutputSelectors[0].Operator') },
  { name: 'selector property codec', topology: (t) => { t.properties.processors[0].inputs[0].outputSelectors = [{ property: 'codec', operator: 'is', value: 'video' }]; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[0].Inputs[0].OutputSelectors[0].Property') },
  { name: 'processor without inputs', topology: (t) => { delete t.properties.processors[0].inputs; }, expect: IR('PropertyRequired', '$.Properties.Processors[0].Inputs') },
  { name: 'raw format without pixelFormat', topology: (t) => { t.properties.processors[2].image.format = { '@type': '#Microsoft.Media.MediaGraphImageFormatRaw' }; }, expect: IR('PropertyRequired', '$.Properties.Processors[2].Image.Format.PixelFormat') },
  { name: 'raw pixelFormat rgb48', topology: (t) => { t.properties.processors[2].image.format = { '@type': '#Microsoft.Media.MediaGraphImageFormatRaw', pixelFormat: 'rgb48' }; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[2].Image.Format.PixelFormat') },
  { name: 'skipSamplesWithoutAnnotation yes', topology: (t) => { t.properties.processors[2].samplingOptions.skipSamplesWithoutAnnotation = 'yes'; }, expect: IR('PropertyValueInvalid', '$.Properties.Processors[2].SamplingOptions.SkipSamplesWithoutAnnotation') },
  { name: 'scale width not a number', topology: (t) => { t.properties.processors[2].image.scale.width = 'wide'; }, expect: IR('PropertyValueInvalidPattern', '$.Properties.Processors[2].Image.Scale.Width') },
  { name: 'gRPC extension without dataTransfer', topology: (t) => { const g: any = grpcExt(); delete g.dataTransfer; t.properties.processors[2] = g; }, expect: IR('PropertyRequired', '$.Properties.Processors[2].DataTransfer') },
  { name: 'dataTransfer on an HTTP extension', topology: (t) => { t.properties.processors[2].dataTransfer = { mode: 'Embedded' }; }, expect: IR('PropertyNotAllowed', '$.Properties.Processors[2].DataTransfer') },
  { name: 'empty hubOutputName', topology: (t) => { t.properties.sinks[0].hubOutputName = ''; }, expect: IR('PropertyValueInvalid', '$.Properties.Sinks[0].HubOutputName') },
  { name: 'TLS ignoreHostname maybe', topology: (t) => { t.properties.sources[0].endpoint = { '@type': '#Microsoft.Media.MediaGraphTlsEndpoint', url: 'rtsps://cam', validationOptions: { ignoreHostname: 'maybe' } }; }, expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].Endpoint.ValidationOptions.IgnoreHostname') },
  { name: 'duration in words', topology: (t) => { t.properties.processors[1].activationEvaluationWindow = '1 second'; }, expect: IR('PropertyValueInvalidPattern', '$.Properties.Processors[1].ActivationEvaluationWindow') },
  { name: 'duration in years', topology: (t) => { t.properties.processors[1].maximumActivationTime = 'P1Y'; }, expect: IR('PropertyValueInvalidPattern', '$.Properties.Processors[1].MaximumActivationTime') },
  // --- parameters ---
  { name: 'parameter type Integer', topology: (t) => { t.properties.parameters[0].type = 'Integer'; }, expect: IR('PropertyValueInvalid', '$.Properties.Parameters[0].Type') },
  { name: 'parameter name with a space', topology: (t) => { t.properties.parameters[7].name = 'clip prefix'; }, expect: IR('PropertyValueInvalidPattern', '$.Properties.Parameters[7].Name') },
  { name: 'parameter declared twice', topology: (t) => { t.properties.parameters.push({ name: 'sens', type: 'String' }); }, expect: IR('ParameterDeclarationDuplicate', '$.Properties.Parameters[8]') },
  { name: 'Int parameter default not an integer', topology: (t) => { t.properties.parameters[4].default = 'high'; }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[4]') },
  { name: 'Bool parameter default yes', topology: (t) => { t.properties.parameters[6].default = 'yes'; }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[6]') },
  { name: 'undeclared ${param}', topology: (t) => { t.properties.sources[0].endpoint.url = '${cameraUrl}'; }, expect: IR('ParameterNotDeclared', '$.Properties.Sources[0].Endpoint.Url') },
  { name: 'unknown ${System.*} variable', topology: (t) => { t.properties.sinks[2].assetNamePattern = 'rec-${System.Date}'; }, expect: IR('ParameterNotDeclared', '$.Properties.Sinks[2].AssetNamePattern') },
  // --- graph shape ---
  { name: 'no sources', topology: (t) => { t.properties.sources = []; }, expect: GVE('$.Properties.Sources') },
  { name: 'no sinks', topology: (t) => { t.properties.sinks = []; }, expect: GVE('$.Properties.Sinks') },
  { name: 'duplicate node names', topology: (t) => { t.properties.sinks[2].name = 'gate'; }, expect: GVE(S(2)) },
  { name: 'input names an unknown node', topology: (t) => { t.properties.sinks[0].inputs.push({ nodeName: 'nowhere' }); }, expect: GVE(S(0)) },
  { name: 'source with inputs', topology: (t) => { t.properties.sources[0].inputs = [{ nodeName: 'motion' }]; }, expect: GVE(SRC(0)) },
  { name: 'sink with empty inputs', topology: (t) => { t.properties.sinks[0].inputs = []; }, expect: GVE(S(0)) },
  { name: 'node is its own input', topology: (t) => { t.properties.processors[2].inputs.push({ nodeName: 'ext' }); }, expect: GVE(P(2)) },
  { name: 'same input twice', topology: (t) => { t.properties.sinks[0].inputs.push({ nodeName: 'ext' }); }, expect: GVE(S(0)) },
  { name: 'a sink used as an input', topology: (t) => { t.properties.processors[2].inputs.push({ nodeName: 'hubSink' }); }, expect: GVE(P(2)) },
  {
    name: 'cycle between two extensions',
    topology: (t) => {
      t.properties.processors[2].inputs.push({ nodeName: 'ext2' });
      t.properties.processors.push({ ...structuredClone(t.properties.processors[2]), name: 'ext2', inputs: [{ nodeName: 'ext' }] });
    },
    expect: GVE(P(3)),
  },
  { name: 'disconnected second RTSP source', topology: (t) => { t.properties.sources.push({ ...structuredClone(t.properties.sources[0]), name: 'rtsp2' }); }, expect: GVE(SRC(1)) },
  {
    name: 'two RTSP sources',
    topology: (t) => {
      t.properties.sources.push({ ...structuredClone(t.properties.sources[0]), name: 'rtsp2' });
      t.properties.processors[2].inputs = [{ nodeName: 'rtsp2' }];
    },
    expect: GVE(SRC(1)),
  },
  { name: 'two file sinks', topology: (t) => { t.properties.sinks.push({ ...structuredClone(t.properties.sinks[1]), name: 'fileSink2' }); }, expect: GVE(S(3)) },
  { name: 'two asset sinks', topology: (t) => { t.properties.sinks.push({ ...structuredClone(t.properties.sinks[2]), name: 'assetSink2' }); }, expect: GVE(S(3)) },
  { name: 'motion detector after an extension', topology: (t) => { t.properties.processors[0].inputs = [{ nodeName: 'ext' }]; }, expect: GVE(P(0)) },
  { name: 'signal gate without RTSP media input', topology: (t) => { t.properties.processors[1].inputs = [{ nodeName: 'motion' }, { nodeName: 'ext' }]; }, expect: GVE(P(1)) },
  { name: 'signal gate without trigger', topology: (t) => { t.properties.processors[1].inputs = [{ nodeName: 'rtspSource' }]; }, expect: GVE(P(1)) },
  {
    name: 'signal gate triggered by another signal gate',
    topology: (t) => {
      t.properties.processors.push({ ...structuredClone(t.properties.processors[1]), name: 'gate2' });
      t.properties.processors[1].inputs = [{ nodeName: 'gate2' }, { nodeName: 'rtspSource' }];
    },
    expect: GVE(P(1)),
  },
  { name: 'file sink after the motion detector', topology: (t) => { t.properties.sinks[1].inputs = [{ nodeName: 'motion' }]; }, expect: GVE(S(1)) },
  { name: 'asset sink after an extension', topology: (t) => { t.properties.sinks[2].inputs = [{ nodeName: 'ext' }]; }, expect: GVE(S(2)) },
  {
    name: 'hub sink directly after an IoT Hub source',
    topology: (t) => {
      t.properties.sources.push({ '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSource', name: 'hubIn', hubInputName: 'trigger' });
      t.properties.sinks[0].inputs.push({ nodeName: 'hubIn' });
    },
    expect: GVE(S(0)),
  },
  {
    name: 'IoT Hub source feeding an extension',
    topology: (t) => {
      t.properties.sources.push({ '@type': '#Microsoft.Media.MediaGraphIoTHubMessageSource', name: 'hubIn', hubInputName: 'trigger' });
      t.properties.processors[2].inputs.push({ nodeName: 'hubIn' });
    },
    expect: GVE(P(2)),
  },
  // --- node values ---
  { name: 'RTSP URL with http scheme', topology: (t) => { t.properties.sources[0].endpoint.url = 'http://cam/stream'; }, expect: IR('RtspEndpointUrlInvalidScheme', SRC(0)) },
  { name: 'RTSP URL that is not a URL', topology: (t) => { t.properties.sources[0].endpoint.url = 'camera one'; }, expect: IR('RtspEndpointUrlInvalidScheme', SRC(0)) },
  { name: 'unsecured endpoint not allowed', topology: () => undefined, ctx: { allowUnsecuredEndpoints: false }, expect: MVE(SRC(0)) },
  { name: 'TLS endpoint with rtsp://', topology: (t) => { t.properties.sources[0].endpoint['@type'] = '#Microsoft.Media.MediaGraphTlsEndpoint'; t.properties.sources[0].endpoint.url = 'rtsp://cam'; }, expect: MVE(SRC(0)) },
  { name: 'header credentials on RTSP', topology: (t) => { t.properties.sources[0].endpoint.credentials = { '@type': '#Microsoft.Media.MediaGraphHttpHeaderCredentials', headerName: 'Authorization', headerValue: 'x' }; }, expect: MVE(SRC(0)) },
  { name: 'HTTP extension with ftp URL', topology: (t) => { t.properties.processors[2].endpoint.url = 'ftp://ext/score'; }, expect: MVE(P(2)) },
  { name: 'gRPC URL without port', topology: (t) => { t.properties.processors[2] = grpcExt('tcp://ext'); }, expect: MVE(P(2)) },
  { name: 'gRPC URL with http scheme', topology: (t) => { t.properties.processors[2] = grpcExt('http://ext:5001'); }, expect: MVE(P(2)) },
  {
    name: 'gRPC TLS ignoring the host name',
    topology: (t) => { t.properties.processors[2] = grpcExt('tcp://ext:5001', { '@type': '#Microsoft.Media.MediaGraphTlsEndpoint', validationOptions: { ignoreHostname: 'true' } }); },
    expect: MVE(P(2)),
  },
  { name: 'gRPC shared memory without size', topology: (t) => { const g: any = grpcExt(); g.dataTransfer = { mode: 'sharedMemory' }; t.properties.processors[2] = g; }, expect: MVE(P(2)) },
  { name: "gate window 11 s", topology: (t) => { t.properties.processors[1].activationEvaluationWindow = "PT11S"; }, expect: MVE(P(1)) },
  { name: 'gate offset -61 s', topology: (t) => { t.properties.processors[1].activationSignalOffset = '-PT61S'; }, expect: MVE(P(1)) },
  { name: 'gate minimum 0.5 s', topology: (t) => { t.properties.processors[1].minimumActivationTime = 'PT0.5S'; }, expect: MVE(P(1)) },
  { name: 'gate maximum 2 h', topology: (t) => { t.properties.processors[1].maximumActivationTime = 'PT2H'; }, expect: MVE(P(1)) },
  { name: 'gate minimum above maximum', topology: (t) => { t.properties.processors[1].minimumActivationTime = 'PT50S'; }, expect: MVE(P(1)) },
  { name: 'gate positive offset not below minimum', topology: (t) => { t.properties.processors[1].activationSignalOffset = 'PT20S'; }, expect: MVE(P(1)) },
  { name: 'motion aggregation window negative', topology: (t) => { t.properties.processors[0].eventAggregationWindow = '-PT1S'; }, expect: MVE(P(0)) },
  { name: 'JPEG quality 101', topology: (t) => { t.properties.processors[2].image.format.quality = '101'; }, expect: MVE(P(2)) },
  { name: 'scale width 0', topology: (t) => { t.properties.processors[2].image.scale.width = 0; }, expect: MVE(P(2)) },
  { name: 'Pad scale with width only', topology: (t) => { delete t.properties.processors[2].image.scale.height; }, expect: MVE(P(2)) },
  { name: 'maximumSamplesPerSecond 0', topology: (t) => { t.properties.processors[2].samplingOptions.maximumSamplesPerSecond = '0'; }, expect: MVE(P(2)) },
  { name: 'relative baseDirectoryPath', topology: (t) => { t.properties.sinks[1].baseDirectoryPath = 'media'; }, expect: MVE(S(1)) },
  { name: 'baseDirectoryPath climbing with ..', topology: (t) => { t.properties.sinks[1].baseDirectoryPath = '/var/media/../../etc'; }, expect: MVE(S(1)) },
  { name: 'fileNamePattern with a slash', topology: (t) => { t.properties.sinks[1].fileNamePattern = 'sub/clip-${System.DateTime}'; }, expect: MVE(S(1)) },
  { name: 'fileNamePattern with ..', topology: (t) => { t.properties.sinks[1].fileNamePattern = '..${System.DateTime}'; }, expect: MVE(S(1)) },
  { name: 'file sink maximumSizeMiB 0', topology: (t) => { t.properties.sinks[1].maximumSizeMiB = '0'; }, expect: MVE(S(1)) },
  { name: 'file sink maximumSizeMiB negative', topology: (t) => { t.properties.sinks[1].maximumSizeMiB = -5; }, expect: MVE(S(1)) },
  { name: 'asset name with a colon', topology: (t) => { t.properties.sinks[2].assetNamePattern = 'rec:${System.DateTime}'; }, expect: IR('PropertyValueInvalidPattern', S(2)) },
  { name: 'segmentLength 45 s', topology: (t) => { t.properties.sinks[2].segmentLength = 'PT45S'; }, expect: MVE(S(2)) },
  { name: 'segmentLength 10 s', topology: (t) => { t.properties.sinks[2].segmentLength = 'PT10S'; }, expect: MVE(S(2)) },
  { name: 'relative localMediaCachePath', topology: (t) => { t.properties.sinks[2].localMediaCachePath = 'tmp'; }, expect: MVE(S(2)) },
  // --- instances ---
  { name: 'instance payload is a number', instance: () => 42, expect: [400, 'BadRequest', 'InvalidRequestPayload', '$'] },
  { name: 'instance without @apiVersion', instance: (i) => { delete i['@apiVersion']; }, expect: [400, 'InvalidVersion', 'ApiVersionNotSupported', '$.@apiVersion'] },
  { name: 'instance name with underscore', instance: (i) => { i.name = 'camera_1'; }, expect: IR('PropertyValueInvalidPattern', '$.Name') },
  { name: 'instance without topologyName', instance: (i) => { delete i.properties.topologyName; }, expect: IR('PropertyRequired', '$.Properties.TopologyName') },
  { name: 'instance parameter with a type', instance: (i) => { i.properties.parameters[0].type = 'String'; }, expect: IR('PropertyNotAllowed', '$.Properties.Parameters[0].Type') },
  { name: 'instance parameter given twice', instance: (i) => { i.properties.parameters.push({ name: 'rtspUrl', value: 'rtsp://b' }); }, expect: IR('ParameterValueDuplicate', '$.Properties.Parameters[1]') },
  { name: 'instance parameter not declared', instance: (i) => { i.properties.parameters.push({ name: 'cameraName', value: 'x' }); }, expect: IR('ParameterNotDeclared', '$.Properties.Parameters[1]') },
  { name: 'required parameter missing', instance: (i) => { i.properties.parameters = []; }, expect: IR('ParameterValueMissing', '$.Properties.Parameters') },
  { name: 'required parameter without value', instance: (i) => { delete i.properties.parameters[0].value; }, expect: IR('ParameterValueMissing', '$.Properties.Parameters') },
  { name: 'Int value not an integer', instance: (i) => { i.properties.parameters.push({ name: 'quality', value: 'ninety' }); }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[1]') },
  { name: 'Int value beyond 32 bits', instance: (i) => { i.properties.parameters.push({ name: 'quality', value: '2147483648' }); }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[1]') },
  { name: 'Double value not a number', instance: (i) => { i.properties.parameters.push({ name: 'fps', value: 'fast' }); }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[1]') },
  { name: 'Bool value yes', instance: (i) => { i.properties.parameters.push({ name: 'regions', value: 'yes' }); }, expect: IR('ParameterValueInvalid', '$.Properties.Parameters[1]') },
  { name: 'substituted JPEG quality 101', instance: () => baseInstance({ quality: '101' }), expect: MVE(P(2)) },
  { name: 'substituted sensitivity extreme', instance: () => baseInstance({ sens: 'extreme' }), expect: IR('PropertyValueInvalid', '$.Properties.Processors[0].Sensitivity') },
  { name: 'substituted RTSP URL with http scheme', instance: () => baseInstance({ rtspUrl: 'http://cam/live' }), expect: IR('RtspEndpointUrlInvalidScheme', SRC(0)) },
  { name: 'substituted empty RTSP URL', instance: () => baseInstance({ rtspUrl: '' }), expect: IR('PropertyValueInvalid', '$.Properties.Sources[0].Endpoint.Url') },
  { name: 'substituted extension URL with tcp scheme', instance: () => baseInstance({ inferencingUrl: 'tcp://ext:5001' }), expect: MVE(P(2)) },
  { name: 'substituted sampling rate 0', instance: () => baseInstance({ fps: '0' }), expect: MVE(P(2)) },
  { name: 'substituted file name with path traversal', instance: () => baseInstance({ clipPrefix: '../../etc/x' }), expect: MVE(S(1)) },
  { name: 'substituted parameter token left in an enum', instance: () => baseInstance({ sens: '${sens}' }), expect: IR('PropertyValueInvalid', '$.Properties.Processors[0].Sensitivity') },
  { name: 'instance of another topology', instance: (i) => { i.properties.topologyName = 'Other'; }, expect: MVE('$.Properties.TopologyName') },
];

function run(row: Row): unknown {
  const ctx = row.ctx ?? { allowUnsecuredEndpoints: true };
  if (row.topology) {
    const t = baseTopology();
    const replaced = row.topology(t);
    return validateTopologySet(replaced === undefined ? t : replaced, ctx);
  }
  const topology = validateTopologySet(baseTopology(), ctx);
  const i = baseInstance();
  const replaced = row.instance!(i);
  const instance = validateInstanceSet(replaced === undefined ? i : replaced);
  return resolveInstance(topology, instance, ctx, '2.0');
}

describe('invalid payloads: one mistake each → status, code, detail code, target', () => {
  test('the base payloads are valid', () => {
    const topology = validateTopologySet(baseTopology(), { allowUnsecuredEndpoints: true });
    const graph = resolveInstance(topology, validateInstanceSet(baseInstance()), { allowUnsecuredEndpoints: true });
    assert.equal(graph.nodes.length, 7);
  });

  test('the table has at least 60 distinct mistakes', () => {
    assert.ok(rows.length >= 60, `${rows.length} rows`);
    assert.equal(new Set(rows.map((r) => r.name)).size, rows.length);
  });

  for (const row of rows) {
    test(row.name, () => {
      let caught: unknown;
      try {
        run(row);
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof LvaError, `expected an LvaError, got ${caught === undefined ? 'success' : String(caught)}`);
      const [status, code, detail, target] = row.expect;
      assert.deepEqual(
        { status: caught.status, code: caught.code, detail: caught.details[0]?.code, target: caught.details[0]?.target },
        { status, code, detail, target },
        caught.message,
      );
      assert.ok(caught.message.length > 10, 'the message says what is wrong');
    });
  }
});
