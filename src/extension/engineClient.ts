// The extension's side of the engine process (src/engine/host/main.ts): forks it on first use,
// speaks JSON-RPC to it, shows its state in the status bar and its log in the "Linger" output
// channel, and starts a new one after a crash. The extension host itself never loads TF.js.
import { ChildProcess, fork } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  CancellationToken,
  createMessageConnection,
  IPCMessageReader,
  IPCMessageWriter,
  MessageConnection,
  RequestType,
  RequestType0,
  ResponseError,
} from 'vscode-jsonrpc/node';
import { JobProgress, LogNotification, ProgressNotification } from '../engine/host/protocol';

type State = 'stopped' | 'starting' | 'ready' | 'busy' | 'crashed';

export class EngineClient implements vscode.Disposable {
  private child: ChildProcess | undefined;
  private connection: MessageConnection | undefined;
  private state: State = 'stopped';
  private pending = 0;
  private lastExit: string | undefined;
  private readonly status: vscode.StatusBarItem;
  private readonly progressEmitter = new vscode.EventEmitter<JobProgress>();
  /** progress of the engine's jobs, as they run */
  readonly onProgress = this.progressEmitter.event;
  /** the long jobs running now, oldest first (the status bar offers to cancel the newest) */
  private readonly jobs: { what: string; cancel: () => void }[] = [];
  get job(): { what: string; cancel: () => void } | undefined {
    return this.jobs[this.jobs.length - 1];
  }

  constructor(
    private readonly extensionPath: string,
    private readonly output: vscode.OutputChannel,
  ) {
    this.status = vscode.window.createStatusBarItem('linger.engine', vscode.StatusBarAlignment.Left, 10);
    this.status.name = 'Linger Engine';
    this.status.command = 'linger.engineStatus';
    this.render();
    this.status.show();
  }

  /** Sends a request, starting the engine process if none runs. */
  async request<P, R>(type: RequestType<P, R, void>, params: P, what: string, token?: CancellationToken): Promise<R>;
  async request<R>(type: RequestType0<R, void>, params: undefined, what: string, token?: CancellationToken): Promise<R>;
  /** by method name (protocol.ts), untyped */
  async request(type: string, params: unknown, what: string, token?: CancellationToken): Promise<unknown>;
  async request(
    type: RequestType<unknown, unknown, void> | RequestType0<unknown, void> | string,
    params: unknown,
    what: string,
    token?: CancellationToken,
  ): Promise<unknown> {
    const connection = this.ensure();
    this.pending++;
    this.setState('busy', what);
    const t0 = Date.now();
    try {
      const r =
        typeof type === 'string'
          ? await (params === undefined ? connection.sendRequest(type, token) : connection.sendRequest(type, params, token))
          : params === undefined
            ? await connection.sendRequest(type as RequestType0<unknown, void>, token)
            : await connection.sendRequest(type as RequestType<unknown, unknown, void>, params, token);
      this.output.appendLine(`[engine] ${what}: ${Date.now() - t0} ms`);
      return r;
    } catch (e) {
      const stack = e instanceof ResponseError ? (e.data as { stack?: string } | undefined)?.stack : undefined;
      this.output.appendLine(`[engine] ${what} failed: ${(e as Error).message}${stack ? `\n${stack}` : ''}`);
      if (connection !== this.connection && this.lastExit)
        throw new Error(`the engine process stopped (${this.lastExit}); the next command starts a new one`, { cause: e });
      throw e instanceof Error ? new Error(e.message) : e;
    } finally {
      this.pending--;
      if (this.state === 'busy' && this.pending === 0) this.setState('ready');
    }
  }

  /**
   * A request that can be cancelled (a progress notification's Cancel, or the status bar): the
   * engine stops at its next step; one that does not answer within `graceMs` after the cancel (a
   * model whose forward never returns) ends with the engine process, which restarts on next use.
   */
  async cancellable<P, R>(
    type: RequestType<P, R, void>,
    params: P,
    what: string,
    token: vscode.CancellationToken,
    graceMs = 5000,
  ): Promise<R> {
    // the same job twice at once (two demos would write the same checkpoints) is refused
    if (this.jobs.some((j) => j.what === what)) throw new Error(`${what} is already running; cancel it or wait for it to finish`);
    const source = new vscode.CancellationTokenSource();
    const sub = token.onCancellationRequested(() => source.cancel());
    const job = { what, cancel: () => source.cancel() };
    this.jobs.push(job);
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<never>((_, reject) => {
      source.token.onCancellationRequested(() => {
        this.output.appendLine(`[engine] cancelling ${what}`);
        timer = setTimeout(() => {
          // this message first: ending the process also rejects the request ("connection disposed")
          reject(new Error(`${what} did not stop when cancelled: the engine process was restarted`));
          this.restart(`${what} did not stop within ${graceMs / 1000} s of the cancel`);
        }, graceMs);
      });
    });
    try {
      return await Promise.race([this.request(type, params, what, source.token as unknown as CancellationToken), hung]);
    } finally {
      if (timer) clearTimeout(timer);
      sub.dispose();
      source.dispose();
      this.jobs.splice(this.jobs.indexOf(job), 1);
      this.render();
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Ends the engine process (the next request starts a new one). */
  restart(reason: string): void {
    this.output.appendLine(`[engine] restarting: ${reason}`);
    this.stop(reason);
  }

  private ensure(): MessageConnection {
    if (this.connection && this.child) return this.connection;
    const script = path.join(this.extensionPath, 'dist', 'host.js');
    this.setState('starting');
    const backend = vscode.workspace.getConfiguration('linger').get<string>('backend', 'auto');
    this.lastExit = undefined;
    const child = fork(script, [], {
      // not the extension host's flags (an inspector port when it is being debugged)
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...(backend && backend !== 'auto' ? { LINGER_BACKEND: backend } : {}) },
    });
    child.on('error', (e) => this.output.appendLine(`[engine] process error: ${e.message}`));
    child.stdout?.on('data', (d: Buffer) => this.output.append(d.toString()));
    child.stderr?.on('data', (d: Buffer) => this.output.append(d.toString()));
    const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    connection.onNotification(ProgressNotification, (p) => this.progressEmitter.fire(p));
    connection.onNotification(LogNotification, ({ line }) => this.output.appendLine(line));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.lastExit = signal ? `signal ${signal}` : `exit code ${code}`;
      this.output.appendLine(`[engine] process ${child.pid} ended (${this.lastExit})`);
      connection.dispose();
      this.child = undefined;
      this.connection = undefined;
      this.setState(code === 0 || signal === 'SIGTERM' ? 'stopped' : 'crashed');
    });
    connection.listen();
    this.child = child;
    this.connection = connection;
    this.output.appendLine(`[engine] started process ${child.pid} (${script})`);
    this.setState('ready');
    return connection;
  }

  private stop(reason = 'the extension stopped'): void {
    const child = this.child;
    if (!child) return;
    // what requests still pending report (the connection's own message says only "disposed")
    this.lastExit = reason;
    this.connection?.dispose();
    this.child = undefined;
    this.connection = undefined;
    child.kill('SIGTERM');
    this.setState('stopped');
  }

  private setState(s: State, what?: string): void {
    this.state = s;
    this.render(what);
  }

  private render(what?: string): void {
    const icon = {
      stopped: '$(circle-outline)',
      starting: '$(loading~spin)',
      ready: '$(pass)',
      busy: '$(loading~spin)',
      crashed: '$(error)',
    }[this.state];
    this.status.text = `${icon} Linger${this.job ? `: ${this.job.what}` : ''}`;
    this.status.tooltip = {
      stopped: 'Linger engine: not running (starts with the first command that needs it)',
      starting: 'Linger engine: starting',
      ready: `Linger engine: ready (process ${this.child?.pid})`,
      busy: `Linger engine: ${this.job?.what ?? what ?? 'working'} (click to cancel or see the log)`,
      crashed: `Linger engine: stopped unexpectedly (${this.lastExit}); the next command starts it again. Click for the log.`,
    }[this.state];
  }

  dispose(): void {
    this.stop();
    this.status.dispose();
    this.progressEmitter.dispose();
  }
}
