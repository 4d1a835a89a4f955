// One notebook's kernel process (src/engine/notebook/kernelMain.ts), forked in the notebook's
// folder on its first cell, spoken to over JSON-RPC. A crash ends only that process: what was
// running fails with why, and the next cell starts a fresh one.
import { ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { createMessageConnection, IPCMessageReader, IPCMessageWriter, MessageConnection } from 'vscode-jsonrpc/node';
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
} from '../../engine/notebook/kernelProtocol';
import type { KernelEvent, ModuleVariable, NbOutput } from '../../engine/notebook/messages';
import type { ExecuteResult } from '../../engine/notebook/session';

export class KernelProcess implements vscode.Disposable {
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  private execs = 0;
  private readonly sinks = new Map<number, (o: NbOutput) => void>();
  private exited: string | undefined;
  private readonly exitListeners: ((why: string) => void)[] = [];
  /** the interpreter of linger.importPythonModel in this kernel (LINGER_PYTHON), set before it starts */
  python?: string;

  constructor(
    private readonly extensionPath: string,
    readonly cwd: string,
    private readonly label: string,
    private readonly output: vscode.OutputChannel,
    private readonly onEvent: (e: KernelEvent) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get running(): boolean {
    return !!this.child && !this.exited;
  }

  private ensure(): MessageConnection {
    if (this.connection && this.child && !this.exited) return this.connection;
    const script = path.join(this.extensionPath, 'dist', 'kernel.js');
    const backend = vscode.workspace.getConfiguration('linger').get<string>('backend', 'auto');
    const child = fork(script, [], {
      cwd: this.cwd,
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: {
        ...process.env,
        ...(backend && backend !== 'auto' ? { LINGER_BACKEND: backend } : {}),
        ...(this.python ? { LINGER_PYTHON: this.python } : {}),
      },
    });
    this.exited = undefined;
    const log = (d: Buffer | string) => this.output.append(`[kernel ${this.label}] ${d.toString()}`);
    child.stdout?.on('data', log);
    child.stderr?.on('data', log);
    const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    connection.onNotification(OutputNotification, ({ execId, output }) => this.sinks.get(execId)?.(output));
    connection.onNotification(EventNotification, (e) => this.onEvent(e));
    connection.onNotification(KernelLogNotification, ({ line }) => log(line.endsWith('\n') ? line : `${line}\n`));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const why = signal ? `signal ${signal}` : `exit code ${code}`;
      this.exited = why;
      this.output.appendLine(`[kernel ${this.label}] process ${child.pid} ended (${why})`);
      connection.dispose();
      this.child = undefined;
      this.connection = undefined;
      for (const l of this.exitListeners.splice(0)) l(why);
    });
    connection.listen();
    this.child = child;
    this.connection = connection;
    this.output.appendLine(`[kernel ${this.label}] started process ${child.pid} in ${this.cwd}`);
    return connection;
  }

  /** Races a request against the process's end (a crash rejects with why). */
  private async call<R>(fn: (c: MessageConnection) => Promise<R>): Promise<R> {
    const c = this.ensure();
    let listener: ((why: string) => void) | undefined;
    const died = new Promise<never>((_, reject) => {
      listener = (why) => reject(new KernelDiedError(why));
      this.exitListeners.push(listener);
    });
    try {
      return await Promise.race([fn(c), died]);
    } catch (e) {
      if (e instanceof KernelDiedError) throw e;
      // the IPC channel closes a moment before the process's exit is reported: a request the
      // connection rejected because of that is the crash
      const why = await Promise.race([
        died.then(
          () => undefined,
          (d: KernelDiedError) => d.why,
        ),
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000)),
      ]);
      throw why ? new KernelDiedError(why) : e;
    } finally {
      const i = this.exitListeners.indexOf(listener!);
      if (i >= 0) this.exitListeners.splice(i, 1);
    }
  }

  start(): Promise<{ backend: string; pid: number }> {
    return this.call((c) => c.sendRequest(StartRequest));
  }

  async execute(source: string, cell: string, onOutput: (o: NbOutput) => void): Promise<ExecuteResult> {
    const execId = ++this.execs;
    this.sinks.set(execId, onOutput);
    try {
      return await this.call((c) => c.sendRequest(ExecuteRequest, { execId, source, cell }));
    } finally {
      this.sinks.delete(execId);
    }
  }

  async interrupt(): Promise<void> {
    if (this.running) await this.connection!.sendRequest(InterruptRequest);
  }

  restart(): Promise<{ backend: string }> {
    return this.call((c) => c.sendRequest(RestartRequest));
  }

  listModules(): Promise<ModuleVariable[]> {
    return this.call((c) => c.sendRequest(ListModulesRequest));
  }

  loadCheckpoint(name: string, file: string): Promise<{ stage: string; missingKeys: string[]; unexpectedKeys: string[] }> {
    return this.call((c) => c.sendRequest(LoadCheckpointRequest, { name, file }));
  }

  /** Ends the process (tests use it to simulate a crash). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child?.kill(signal);
  }

  dispose(): void {
    const child = this.child;
    this.connection?.dispose();
    this.child = undefined;
    this.connection = undefined;
    child?.kill('SIGTERM');
  }
}

/** The kernel process ended while a request was pending. */
export class KernelDiedError extends Error {
  constructor(readonly why: string) {
    super(`the kernel process ended (${why})`);
    this.name = 'KernelDied';
  }
}
