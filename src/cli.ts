#!/usr/bin/env node
// The `concurrency-guard` command: one binary and one image, one subcommand per role (DESIGN.md). This
// file only parses flags, builds the logger and the shutdown signal, and hands them to the layer that
// does the work; it is the top of the layers and may import any of them.
import { isIP } from 'node:net';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { registerCheck } from './check/index.ts';
import type { RunAgentOptions } from './node-agent/index.ts';
import {
  BatchedLineWriter,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  LOG_LEVELS,
  createLogger,
  handleShutdownSignals,
  isLogLevel,
  parseDuration,
  type LogLevel,
  type Logger,
} from './runtime/index.ts';

/** What every subcommand's implementation receives besides its own flags. */
export interface CommandContext {
  log: Logger;
  /** Aborted on SIGINT/SIGTERM: stop taking work, drain, return. */
  signal: AbortSignal;
}

/** A subcommand's implementation: resolves to the exit code (undefined = 0). */
export type CommandAction<O> = (options: O, context: CommandContext) => Promise<number | undefined>;

interface GlobalOptions {
  logLevel?: LogLevel;
}

// ---- option parsers (commander calls them with the raw string; a throw becomes a usage error) ----

function durationOption(value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function portOption(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('must be a port number 0-65535 (0 picks a free one)');
  return port;
}

function logLevelOption(value: string): LogLevel {
  if (!isLogLevel(value)) throw new InvalidArgumentError(`must be one of ${LOG_LEVELS.join(', ')}`);
  return value;
}

// ---- the flags each role takes (their implementations arrive with later issues) ----

export interface KubeClientOptions {
  /** Explicit kubeconfig; without it: in-cluster, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  context?: string;
}

export interface ControllerOptions extends KubeClientOptions {
  namespace: string;
  podName?: string;
  podUid?: string;
  leaderElect: boolean;
  reports: 'problems' | 'all';
  reportTtl: number;
  resync: number;
  certificates: 'controller' | 'cert-manager';
  webhookConfiguration: string;
  webhookService: string;
  certSecret: string;
  /** IP SANs of the serving certificate, for a webhook reached by address (out of cluster, `up`). */
  certificateIpAddresses: string[];
  metricsPort: number;
  healthPort: number;
}

export interface WebhookOptions extends KubeClientOptions {
  namespace: string;
  podName?: string;
  podUid?: string;
  port: number;
  certDir: string;
  /** webhook alone: read the certificate from this Secret instead of certDir. */
  certSecret?: string;
  failurePolicy: 'Ignore' | 'Fail';
  timeoutSeconds: number;
  metricsPort: number;
  healthPort: number;
}

export type ManagerOptions = ControllerOptions & WebhookOptions;

/** The agent's flags are its run options, one for one (a type-only import: no agent code is loaded). */
export type AgentOptions = Pick<RunAgentOptions,
  'nodeName' | 'namespace' | 'procRoot' | 'cgroupRoot' | 'podLogRoot' | 'interval' | 'reports' | 'enterNetns'
  | 'metricsPort' | 'healthPort' | 'kubeconfig' | 'context'>;

export interface UpCommandOptions extends KubeClientOptions {
  writeKubeconfig?: string;
}

const kubeClientOptions = (): Option[] => [
  new Option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)'),
  new Option('--context <name>', 'kubeconfig context (default: its current-context)'),
];

const ownNamespaceOption = (): Option =>
  new Option('--namespace <name>', "the operator's own namespace, always excluded from checks").env('POD_NAMESPACE').default('concurrency-guard');

const podNameOption = (): Option =>
  new Option('--pod-name <name>', 'this replica\'s pod name (names its Lease)').env('POD_NAME');

const podIdentityOptions = (): Option[] => [
  podNameOption(),
  new Option('--pod-uid <uid>', 'this replica\'s pod uid (its Lease is deleted with the pod)').env('POD_UID'),
];

const reportsOption = (): Option =>
  new Option('--reports <which>', 'create reports for pods with a finding or pressure, or for every matched pod').choices(['problems', 'all']).default('problems');

function nonEmptyOption(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('must not be empty');
  return value;
}

function ipListOption(value: string): string[] {
  const ips = value.split(',').map((ip) => ip.trim()).filter((ip) => ip.length > 0);
  for (const ip of ips) if (isIP(ip) === 0) throw new InvalidArgumentError(`${ip} is not an IP address`);
  return ips;
}

function secondsOption(value: string): number {
  const seconds = Number(value);
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 30) throw new InvalidArgumentError('must be a whole number of seconds from 1 to 30');
  return seconds;
}

const controllerOptions = (): Option[] => [
  new Option('--no-leader-elect', 'run the controller without a leader Lease (one replica only)'),
  reportsOption(),
  new Option('--report-ttl <duration>', 'delete a report once it has no finding and stayed at level OK this long').default(10 * 60_000, '10m').argParser(durationOption),
  new Option('--resync <duration>', 'full re-audit period (no-op writes are suppressed)').default(60 * 60_000, '1h').argParser(durationOption),
  new Option('--certificates <provider>', 'who issues and rotates the webhook certificate').choices(['controller', 'cert-manager']).default('controller'),
  new Option('--webhook-configuration <name>', 'ValidatingWebhookConfiguration whose caBundle the controller keeps current').default('concurrency-guard'),
  new Option('--webhook-service <name>', 'Service in front of the webhook (the certificate\'s DNS names)').default('concurrency-guard-webhook'),
  new Option('--cert-secret <name>', 'Secret holding the CA and serving certificate').default('concurrency-guard-webhook-tls'),
  new Option('--certificate-ip-addresses <ips>', 'comma-separated IP SANs for the serving certificate (a webhook reached by address, out of cluster)')
    .default([], 'none').argParser(ipListOption),
];

const webhookOptions = (): Option[] => [
  new Option('--port <port>', 'HTTPS port of the admission webhook').default(9443).argParser(portOption),
  new Option('--cert-dir <dir>', 'directory with tls.crt and tls.key (reloaded when they change)').default('/etc/concurrency-guard/tls'),
  new Option('--failure-policy <policy>', 'the VWC\'s failurePolicy: the answer when an evaluation cannot finish in time').choices(['Ignore', 'Fail']).default('Ignore'),
  new Option('--timeout-seconds <n>', 'the VWC\'s timeoutSeconds; the webhook answers before it').default(3).argParser(secondsOption),
];

const serverOptions = (metricsPort: number, healthPort: number): Option[] => [
  new Option('--metrics-port <port>', 'plain-HTTP port of /metrics').default(metricsPort).argParser(portOption),
  new Option('--health-port <port>', 'plain-HTTP port of /healthz and /readyz').default(healthPort).argParser(portOption),
];

// ---- commands ----

/**
 * Runs a subcommand with a logger and the shutdown signal; sets process.exitCode from its result.
 * `batchedLog`: roles that log a line per admission review write through a batched asynchronous writer
 * (a synchronous write per line costs more than the review), flushed before the process exits.
 */
function run<O>(name: string, action: CommandAction<O>, batchedLog = false): (options: O, command: Command) => Promise<void> {
  return async (options, command) => {
    const globals = command.optsWithGlobals<GlobalOptions>();
    const destination = batchedLog ? new BatchedLineWriter({ fd: 2 }) : undefined;
    const log = createLogger({
      name: `concurrency-guard-${name}`,
      ...(globals.logLevel ? { level: globals.logLevel } : {}),
      ...(destination ? { destination } : {}),
    });
    const shutdown = handleShutdownSignals({ log });
    try {
      process.exitCode = (await action(options, { log, signal: shutdown.signal })) ?? EXIT_OK;
    } catch (error) {
      log.error({ err: error }, `${name} failed`);
      process.exitCode = EXIT_FAILURE;
    } finally {
      shutdown.dispose();
      destination?.flushSync();
    }
  };
}

const kubeTarget = (options: KubeClientOptions): KubeClientOptions => ({
  ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
  ...(options.context !== undefined ? { context: options.context } : {}),
});

const controllerSettings = (options: ControllerOptions) => ({
  leaderElect: options.leaderElect,
  reportTtl: options.reportTtl,
  resync: options.resync,
  reports: options.reports,
  certificates: options.certificates,
  webhookConfiguration: options.webhookConfiguration,
  webhookService: options.webhookService,
  certSecret: options.certSecret,
  ...(options.certificateIpAddresses.length > 0 ? { certificate: { ipAddresses: options.certificateIpAddresses } } : {}),
});

const webhookSettings = (options: WebhookOptions) => ({
  port: options.port,
  certDir: options.certDir,
  failurePolicy: options.failurePolicy,
  timeoutSeconds: options.timeoutSeconds,
});

// Each role's code is loaded only when that role runs: the agent's RSS budget has no room for the
// webhook's fastify or the controller's worker, and the reverse.
const controllerAction: CommandAction<ControllerOptions> = async (options, { log, signal }) => {
  const { runController } = await import('./controllers/index.ts');
  await runController({
    ...kubeTarget(options), ...controllerSettings(options),
    namespace: options.namespace,
    ...(options.podName ? { podName: options.podName } : {}),
    metricsPort: options.metricsPort, healthPort: options.healthPort, log,
  }, signal);
  return EXIT_OK;
};

const webhookAction: CommandAction<WebhookOptions> = async (options, { log, signal }) => {
  const { runWebhook } = await import('./webhook/index.ts');
  await runWebhook({
    ...kubeTarget(options), ...webhookSettings(options),
    namespace: options.namespace,
    ...(options.podName ? { podName: options.podName } : {}),
    ...(options.podUid ? { podUid: options.podUid } : {}),
    ...(options.certSecret ? { certSecret: options.certSecret } : {}),
    metricsPort: options.metricsPort, healthPort: options.healthPort, log,
  }, signal);
  return EXIT_OK;
};

const agentAction: CommandAction<AgentOptions> = async (options, { log, signal }) => {
  const { runAgent } = await import('./node-agent/index.ts');
  await runAgent({ ...options, ...kubeTarget(options), log }, signal);
  return EXIT_OK;
};

const managerAction: CommandAction<ManagerOptions> = async (options, { log, signal }) => {
  const { runManager } = await import('./manager/index.ts');
  await runManager({
    ...kubeTarget(options),
    namespace: options.namespace,
    ...(options.podName ? { podName: options.podName } : {}),
    ...(options.podUid ? { podUid: options.podUid } : {}),
    metricsPort: options.metricsPort, healthPort: options.healthPort, log,
    webhook: webhookSettings(options),
    controller: controllerSettings(options),
  }, signal);
  return EXIT_OK;
};

/**
 * `up` touches an existing cluster only when told which one on its own command line: $KUBECONFIG and
 * ~/.kube/config are deliberately ignored, so a demo can never land on production by accident.
 */
export function resolveUpTarget(options: UpCommandOptions): { kind: 'embedded' } | { kind: 'existing'; kubeconfig?: string; context?: string } {
  if (options.kubeconfig === undefined && options.context === undefined) return { kind: 'embedded' };
  return {
    kind: 'existing',
    ...(options.kubeconfig !== undefined ? { kubeconfig: options.kubeconfig } : {}),
    ...(options.context !== undefined ? { context: options.context } : {}),
  };
}

const upAction: CommandAction<UpCommandOptions> = async (options, { log, signal }) => {
  const target = resolveUpTarget(options);
  if (target.kind === 'existing') {
    log.error({ command: 'up', target }, 'concurrency-guard up against an existing cluster is not built yet; run `up` without --kubeconfig/--context for the embedded control plane');
    return EXIT_USAGE;
  }
  // Loaded only here: the other roles never pay for the control plane's code (PKI, child processes).
  const { runEmbeddedUp } = await import('./up/index.ts');
  await runEmbeddedUp({
    logger: log,
    signal,
    ...(options.writeKubeconfig !== undefined ? { kubeconfigOut: options.writeKubeconfig } : {}),
  });
  return EXIT_OK;
};

export function buildProgram(): Command {
  const program = new Command('concurrency-guard')
    .description('Keeps pods from dying of fd, thread, listen-queue and GOMAXPROCS exhaustion: admission webhook, controller and node agent.')
    .version(packageJson.version)
    .addOption(new Option('--log-level <level>', `log level (${LOG_LEVELS.join(', ')}); logs are JSON on stderr`).env('LOG_LEVEL').argParser(logLevelOption))
    .showHelpAfterError('(run with --help for usage)')
    // Usage errors exit 2, like check's "bad input", instead of commander's default 1 (which means "failed").
    .exitOverride()
    .enablePositionalOptions();

  addOptions(
    program.command('manager').description('webhook on every replica plus the leader-elected controller, in one process (what the chart runs)'),
    [ownNamespaceOption(), ...podIdentityOptions(), ...kubeClientOptions(), ...webhookOptions(), ...controllerOptions(), ...serverOptions(8080, 8081)],
  ).action(run('manager', managerAction, true));

  addOptions(
    program.command('controller').description('policy status, audit, reports\' lifecycle, certificate and CA (leader-elected)'),
    [ownNamespaceOption(), ...podIdentityOptions(), ...kubeClientOptions(), ...controllerOptions(), ...serverOptions(8080, 8081)],
  ).action(run('controller', controllerAction));

  addOptions(
    program.command('webhook').description('the validating admission webhook alone (every replica serves)'),
    [
      ownNamespaceOption(), ...podIdentityOptions(), ...kubeClientOptions(), ...webhookOptions(),
      new Option('--cert-secret <name>', 'read the serving certificate from this kubernetes.io/tls Secret in --namespace instead of --cert-dir'),
      ...serverOptions(8080, 8081),
    ],
  ).action(run('webhook', webhookAction, true));

  addOptions(
    program.command('agent').description('node agent (DaemonSet): per-pod fd, thread, listen-queue and GOMAXPROCS pressure into reports and /metrics'),
    [
      // An empty NODE_NAME (a missing downward-API field) would select the pods with no node: refuse it.
      new Option('--node-name <name>', 'the node this agent runs on (downward API spec.nodeName)').env('NODE_NAME').makeOptionMandatory().argParser(nonEmptyOption),
      ownNamespaceOption(),
      ...kubeClientOptions(),
      new Option('--proc-root <dir>', 'the host\'s /proc').default('/proc'),
      new Option('--cgroup-root <dir>', 'the host\'s cgroup mount').default('/sys/fs/cgroup'),
      new Option('--pod-log-root <dir>', 'the kubelet\'s pod log directory (read-only)').default('/var/log/pods'),
      new Option('--interval <duration>', 'scan period').default(10_000, '10s').argParser(durationOption),
      new Option('--reports <which>', 'create reports for pods at Warning or above, or for every matched pod').choices(['problems', 'all']).default('problems'),
      new Option('--enter-netns', 'read listen backlogs and somaxconn inside pod network namespaces (needs CAP_SYS_ADMIN)').default(false),
      ...serverOptions(9090, 9091),
    ],
  ).action(run('agent', agentAction));

  registerCheck(program);

  addOptions(
    program
      .command('up')
      .description('run concurrency-guard on this machine against an embedded control plane (an existing cluster only with --kubeconfig/--context)'),
    [
      new Option('--kubeconfig <path>', 'use this existing cluster instead of the embedded control plane ($KUBECONFIG is ignored on purpose)'),
      new Option('--context <name>', 'use this context of an existing cluster instead of the embedded control plane'),
      new Option('--write-kubeconfig <path>', 'where to write the embedded control plane\'s kubeconfig'),
    ],
  ).action(run('up', upAction));

  return program;
}

function addOptions(command: Command, options: Option[]): Command {
  for (const option of options) command.addOption(option);
  return command;
}

/** Parses argv and runs; resolves to the exit code. Never calls process.exit itself. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version also end in a CommanderError under exitOverride; they succeeded.
      // A bare `concurrency-guard` prints help as an error (exitCode 1): that is a usage error too.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT_OK;
      if (error.code === 'commander.help' && error.exitCode === 0) return EXIT_OK;
      return EXIT_USAGE;
    }
    process.stderr.write(`concurrency-guard: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
