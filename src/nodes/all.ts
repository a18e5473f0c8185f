// Registers every implemented node type (imported for its side effects by the daemon and replay).
import { registerNodeFactory } from './registry.js';
import { iotHubMessageSourceFactory } from './sources/iot-hub-message-source.js';
import { iotHubMessageSinkFactory } from './sinks/iot-hub-message-sink.js';

registerNodeFactory(iotHubMessageSourceFactory);
registerNodeFactory(iotHubMessageSinkFactory);
