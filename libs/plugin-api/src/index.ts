export { ChangeKind, isDriverSkip, graphDriverMethods } from './graph.js';
export type {
  DriverLogFn,
  DriverLogger,
  CreateOpts,
  Change,
  GraphDriverCapabilities,
  GraphDriver,
  GraphDriverDeps,
  DriverSkip,
  GraphDriverDescriptor,
  GraphDriverWireRequest,
  GraphDriverWireResponse,
  GraphDriverWireInit,
} from './graph.js';
