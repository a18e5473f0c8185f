// Registers every implemented node type (imported for its side effects by the daemon and replay).
import { registerNodeFactory } from './registry.js';
import { rtspSourceFactory } from './sources/rtsp-source.js';
import { iotHubMessageSourceFactory } from './sources/iot-hub-message-source.js';
import { motionDetectorFactory } from './processors/motion-detector.js';
import { signalGateFactory } from './processors/signal-gate.js';
import { httpExtensionFactory } from './processors/http-extension.js';
import { grpcExtensionFactory } from './processors/grpc-extension.js';
import { frameRateFilterFactory } from './processors/frame-rate-filter.js';
import { fileSinkFactory } from './sinks/file-sink.js';
import { iotHubMessageSinkFactory } from './sinks/iot-hub-message-sink.js';

for (const f of [rtspSourceFactory, iotHubMessageSourceFactory, motionDetectorFactory, signalGateFactory, httpExtensionFactory, grpcExtensionFactory, frameRateFilterFactory, fileSinkFactory, iotHubMessageSinkFactory]) {
  registerNodeFactory(f);
}
import { assetSinkFactory } from './sinks/asset-sink.js'; registerNodeFactory(assetSinkFactory);
