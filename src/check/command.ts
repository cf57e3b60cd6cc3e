// `concurrency-guard check`: the policy engine run offline over manifest files.
import type { Command } from 'commander';
import { runCheck } from './run.ts';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Adds the `check` subcommand to the CLI program. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('evaluate manifests against ConcurrencyPolicies offline (exit 0 clean or warnings, 1 deny, 2 bad input)')
    .requiredOption('-f, --filename <file>', 'manifest file (multi-document YAML; "-" for stdin); repeatable', collect, [])
    .option('--policy <file>', 'ConcurrencyPolicy file; repeatable (also read: policies among the inputs; with none at all, a built-in Deny policy)', collect, [])
    .option('--namespace-labels <labels>', 'labels k=v,... for namespaces not given as Namespace documents (LimitRange documents apply to their namespace)')
    .option('-o, --output <format>', 'output format: text or json', 'text')
    .option('--fix', 'write every input document to stdout with each mechanical fix applied (comments kept); the report goes to stderr and the exit code reflects what is left')
    .action(async (options: CheckCommandOptions) => {
      process.exitCode = await runCheck(options, { stdout: process.stdout, stderr: process.stderr });
    });
}

export interface CheckCommandOptions {
  filename: string[];
  policy: string[];
  namespaceLabels?: string;
  output: string;
  fix?: boolean;
}
