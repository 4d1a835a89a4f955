// The notebook kernel process: the extension forks one per notebook (cwd = the notebook's folder)
// and speaks JSON-RPC to it over the IPC channel. Cells run on its kernel thread (session.ts), so
// this thread answers interrupts and streams outputs while a cell trains.
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, ResponseError } from 'vscode-jsonrpc/node';
import {
  EventNotification,
  ExecuteRequest,
  InterruptRequest,
  KernelLogNotification,
  ListModulesRequest,
  LoadCheckpointRequest,
  OutputNotification,
  RestartRequest,
  StartRequest,
} from './kernelProtocol';
import { KernelSession } from './session';

const connection = createMessageConnection(new IPCMessageReader(process), new IPCMessageWriter(process));
const session = new KernelSession({
  notebookDir: process.cwd(),
  onEvent: (e) => void connection.sendNotification(EventNotification, e),
  onLog: (line) => void connection.sendNotification(KernelLogNotification, { line }),
});
const answer =
  <R>(fn: () => Promise<R>) =>
  async (): Promise<R> => {
    try {
      return await fn();
    } catch (e) {
      throw new ResponseError(1, (e as Error).message);
    }
  };

connection.onRequest(
  StartRequest,
  answer(async () => ({ backend: await session.start(), pid: process.pid })),
);
connection.onRequest(ExecuteRequest, (p) =>
  session.execute(p.source, {
    cell: p.cell,
    onOutput: (output) => void connection.sendNotification(OutputNotification, { execId: p.execId, output }),
  }),
);
connection.onRequest(InterruptRequest, () => session.interrupt());
connection.onRequest(
  RestartRequest,
  answer(async () => {
    await session.restart();
    return { backend: session.backend ?? '' };
  }),
);
connection.onRequest(
  ListModulesRequest,
  answer(() => session.listModules()),
);
connection.onRequest(LoadCheckpointRequest, (p) => answer(() => session.loadCheckpoint(p.name, p.file))());
connection.listen();
process.on('disconnect', () => {
  void session.dispose().finally(() => process.exit(0));
});
