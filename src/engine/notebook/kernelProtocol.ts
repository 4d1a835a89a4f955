// The notebook kernel process's JSON-RPC protocol (kernelMain.ts ↔ the extension's controller).
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';
import type { KernelEvent, ModuleVariable, NbOutput } from './messages';
import type { ExecuteResult } from './session';

export interface ExecuteParams {
  execId: number;
  source: string;
  cell: string;
}
export const ExecuteRequest = new RequestType<ExecuteParams, ExecuteResult, void>('kernel/execute');
export const InterruptRequest = new RequestType0<void, void>('kernel/interrupt');
export const RestartRequest = new RequestType0<{ backend: string }, void>('kernel/restart');
export const StartRequest = new RequestType0<{ backend: string; pid: number }, void>('kernel/start');
export const ListModulesRequest = new RequestType0<ModuleVariable[], void>('kernel/listModules');
export const LoadCheckpointRequest = new RequestType<
  { name: string; file: string },
  { stage: string; missingKeys: string[]; unexpectedKeys: string[] },
  void
>('kernel/loadCheckpoint');
/** an output of a running execution, as it happens */
export const OutputNotification = new NotificationType<{ execId: number; output: NbOutput }>('kernel/output');
export const EventNotification = new NotificationType<KernelEvent>('kernel/event');
export const KernelLogNotification = new NotificationType<{ line: string }>('kernel/log');
