export type {
  Engine,
  WaitCondition,
  WaitHandle,
  AttachOptions,
  StreamSession,
  LogsOptions,
  LogsStream,
  StopOptions,
  ImportOptions,
  EventsOptions,
  EventSubscription,
} from './contract.js';
