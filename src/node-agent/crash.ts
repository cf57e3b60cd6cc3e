// Why a container's previous instance died, from what the kubelet recorded (exit code, and reason such
// as OOMKilled, from lastState.terminated) and the signature line of its previous log
// (readers/pod-logs.ts). Pure.
//
// The kubelet's OOMKilled is authoritative (the kernel killed it; nothing gets logged). Otherwise the
// log's signature decides, because exit codes do not tell these apart: a Go runtime fatal error exits 2
// whatever the cause, an uncaught Java or Python exception exits 1, a cgo abort is SIGABRT (134), and
// log.Fatal on EMFILE exits 1.
import type { CrashClass, CrashRuntime } from '../api/v1alpha1.ts';
import type { CrashSignatureKind, LogSignature } from './readers/pod-logs.ts';

export const CLASS_OF_SIGNATURE: Readonly<Record<CrashSignatureKind, CrashClass>> = {
  'too-many-open-files': 'fd-exhaustion',
  'go-failed-to-create-thread': 'thread-exhaustion',
  'pthread-create-failed': 'thread-exhaustion',
  'java-native-thread': 'thread-exhaustion',
  'python-thread': 'thread-exhaustion',
  'go-thread-limit': 'go-thread-limit',
  'go-deadlock': 'deadlock',
};

export interface CrashInputs {
  container: string;
  exitCode?: number;
  /** lastState.terminated.reason: OOMKilled, Error, … */
  reason?: string;
  /** lastState.terminated.finishedAt. */
  time?: string;
  signature?: LogSignature;
}

export function crashClass(inputs: Pick<CrashInputs, 'exitCode' | 'reason' | 'signature'>): CrashClass {
  if (inputs.reason === 'OOMKilled') return 'oom-killed';
  if (inputs.signature) return CLASS_OF_SIGNATURE[inputs.signature.kind];
  return 'other';
}

/** The report's status.runtime.lastCrash; the signature only when it explains the class. */
export function classifyCrash(inputs: CrashInputs): CrashRuntime {
  const result: CrashRuntime = { container: inputs.container, class: crashClass(inputs) };
  if (inputs.exitCode !== undefined) result.exitCode = inputs.exitCode;
  if (inputs.signature && result.class !== 'oom-killed') result.signature = inputs.signature.line;
  if (inputs.time !== undefined) result.time = inputs.time;
  return result;
}
