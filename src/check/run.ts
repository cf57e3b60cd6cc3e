// Placeholder until the engine lands; replaced in the next commits.
import type { CheckCommandOptions } from './command.ts';

export interface CheckStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export function runCheck(_options: CheckCommandOptions, streams: CheckStreams): Promise<number> {
  streams.stderr.write('check: not implemented yet\n');
  return Promise.resolve(2);
}
