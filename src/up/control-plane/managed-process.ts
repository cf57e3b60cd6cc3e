// A child process of the embedded control plane: output to a log file, killed with its parent (the
// kernel's parent-death signal via setpriv, plus an exit hook), and stopped politely before forcefully.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private readonly options: ManagedProcessOptions;

  constructor(options: ManagedProcessOptions) {
    this.options = options;
    this.name = options.name;
    this.logFile = options.logFile;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.alive) throw new Error(`${this.name} is already running`);
    installExitHook();
    const out = openSync(this.logFile, 'a');
    const { command, args } = this.options;
    const [file, argv] = existsSync(SETPRIV)
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', command, ...args]]
      : [command, args];
    const child = spawn(file, argv, {
      stdio: ['ignore', out, out],
      env: this.options.env ?? process.env,
    });
    closeSync(out);
    running.add(child);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code) => {
        running.delete(child);
        resolve(code);
      });
      child.once('error', () => {
        running.delete(child);
        resolve(null);
      });
    });
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** kill -9: what a crash looks like to everyone else. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  /** Resolves with the exit code when the process ends on its own; used to fail fast while waiting. */
  whenExited(): Promise<number | null> {
    return this.exited;
  }
}
