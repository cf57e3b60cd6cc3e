// `check`: read multi-document YAML, evaluate every Pod and workload with the same decision the webhook
// makes on CREATE (Namespace and LimitRange documents in the input are used), print the findings, and
// with --fix write every document back with each mechanical fix applied. Exit 0 clean or warnings only,
// 1 when a finding denies, 2 for bad input (like `kyverno apply`).
import { readFile } from 'node:fs/promises';
import type { V1LimitRange } from '@kubernetes/client-node';
import type { ConcurrencyPolicy } from '../api/index.ts';
import { POLICY_KIND } from '../api/index.ts';
import { compilePolicies, decide, podLocationOf, type CompiledPolicies } from '../policy/index.ts';
import type { Decision, Finding } from '../policy/index.ts';
import type { CheckCommandOptions } from './command.ts';
import type { InputDocument } from './documents.ts';
import { BadInput, parseDocuments, parseLabels } from './documents.ts';
import { applyFixes } from './fix.ts';

export interface CheckStreams {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Read "-" from here (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
}

export const EXIT_CLEAN = 0;
export const EXIT_DENY = 1;
export const EXIT_BAD_INPUT = 2;
const MAX_FIX_ROUNDS = 4;

/**
 * Used when neither --policy nor the inputs carry a ConcurrencyPolicy: every rule family on, at the
 * settings a kubelet with default flags implies (no unsafe sysctl allowed, no ulimit floor), denying.
 */
export const BUILTIN_POLICY: ConcurrencyPolicy = {
  apiVersion: 'concurrencyguard.io/v1alpha1',
  kind: POLICY_KIND,
  metadata: { name: 'builtin-default' },
  spec: { enforcement: 'Deny', gomaxprocs: { maxOverCPULimit: 0 }, ulimits: { onUndeclared: 'Ignore' }, sysctls: { allowedUnsafe: [] } },
};

export interface CheckedDocument {
  file: string;
  /** Position of the document in its file, from 0. */
  document: number;
  kind: string;
  namespace: string;
  name: string;
  decision: Decision;
  source: InputDocument;
}

async function readInput(file: string, streams: CheckStreams): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of streams.stdin ?? process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function loadFiles(files: readonly string[], streams: CheckStreams): Promise<InputDocument[]> {
  const documents: InputDocument[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readInput(file, streams);
    } catch (error) {
      throw new BadInput(`${file}: ${(error as Error).message}`);
    }
    documents.push(...parseDocuments(file, text));
  }
  return documents;
}

/** Evaluates every Pod and workload among the documents. */
export function checkDocuments(documents: readonly InputDocument[], compiled: CompiledPolicies, defaultNamespaceLabels: Record<string, string> | undefined): CheckedDocument[] {
  const namespaceLabels = new Map<string, Record<string, string>>();
  const limitRanges = new Map<string, V1LimitRange[]>();
  for (const doc of documents) {
    if (doc.kind === 'Namespace') namespaceLabels.set(doc.name, { ...doc.labels });
    if (doc.kind === 'LimitRange') {
      const list = limitRanges.get(doc.namespace) ?? [];
      list.push(doc.object);
      limitRanges.set(doc.namespace, list);
    }
  }
  const results: CheckedDocument[] = [];
  for (const doc of documents) {
    if (!podLocationOf(doc.kind)) continue;
    const decision = decide(compiled, {
      kind: doc.kind,
      operation: 'CREATE',
      object: doc.object,
      namespace: doc.namespace,
      namespaceLabels: namespaceLabels.get(doc.namespace) ?? defaultNamespaceLabels,
      limitRanges: limitRanges.get(doc.namespace),
    });
    results.push({ file: doc.file, document: doc.index, kind: doc.kind, namespace: doc.namespace, name: doc.name, decision, source: doc });
  }
  return results;
}

const LABEL: Readonly<Record<Finding['enforcement'], string>> = { Deny: 'DENY ', Warn: 'WARN ', Audit: 'AUDIT' };

function renderText(results: readonly CheckedDocument[], usedBuiltin: boolean): string {
  const lines: string[] = [];
  if (usedBuiltin) lines.push('note: no ConcurrencyPolicy given; using the built-in default (every rule family, Deny)');
  let deny = 0;
  let warn = 0;
  let audit = 0;
  for (const result of results) {
    for (const f of result.decision.findings) {
      if (f.enforcement === 'Deny') deny++;
      else if (f.enforcement === 'Warn') warn++;
      else audit++;
      const where = `${result.file}#${result.document} ${result.kind} ${result.namespace}/${result.name}${f.container ? ` [${f.container}]` : ''}`;
      lines.push(`${LABEL[f.enforcement]} ${where}: ${f.rule}: ${f.message}`);
      lines.push(`       at ${f.path}; fix: ${f.fix}${f.patch ? ' (--fix applies it)' : ''}`);
    }
  }
  lines.push(`${results.length} object(s) checked: ${deny} deny, ${warn} warn, ${audit} audit`);
  return `${lines.join('\n')}\n`;
}

function renderJson(results: readonly CheckedDocument[]): string {
  const summary = { objects: results.length, deny: 0, warn: 0, audit: 0 };
  const out = results.map((r) => {
    for (const f of r.decision.findings) {
      if (f.enforcement === 'Deny') summary.deny++;
      else if (f.enforcement === 'Warn') summary.warn++;
      else summary.audit++;
    }
    return {
      file: r.file, document: r.document, kind: r.kind, namespace: r.namespace, name: r.name,
      allowed: r.decision.allowed,
      findings: r.decision.findings.map((f) => ({
        rule: f.rule, enforcement: f.enforcement, ...(f.container !== undefined ? { container: f.container } : {}),
        path: f.path, values: f.values, message: f.message, fix: f.fix, policies: f.policies, ...(f.patch ? { patch: f.patch } : {}),
      })),
    };
  });
  return `${JSON.stringify({ results: out, summary }, null, 2)}\n`;
}

export async function runCheck(options: CheckCommandOptions, streams: CheckStreams): Promise<number> {
  try {
    if (options.output !== 'text' && options.output !== 'json') throw new BadInput(`--output must be text or json, not ${JSON.stringify(options.output)}`);
    if (options.filename.length === 0) throw new BadInput('at least one -f FILE is required');
    const defaultLabels = options.namespaceLabels === undefined ? undefined : parseLabels(options.namespaceLabels);
    const documents = await loadFiles(options.filename, streams);
    const policyDocuments = await loadFiles(options.policy, streams);
    const policies = [...policyDocuments, ...documents].filter((d) => d.kind === POLICY_KIND).map((d) => d.object as unknown as ConcurrencyPolicy);
    const usedBuiltin = policies.length === 0;
    if (usedBuiltin) policies.push(BUILTIN_POLICY);

    // Compiled once: --fix checks the documents again after each round of fixes.
    const compiled = compilePolicies(policies);
    const results = checkDocuments(documents, compiled, defaultLabels);
    if (options.fix) {
      // Each patch is relative to the object it was computed on, so two fixes of one field (the nofile
      // and the nproc entry of one NRI annotation) can overwrite each other: fix, check again, repeat.
      let current = documents;
      let currentResults = results;
      let fixedText = '';
      for (let round = 0; round < MAX_FIX_ROUNDS; round++) {
        fixedText = applyFixes(current, currentResults);
        current = parseDocuments('(fixed)', fixedText);
        currentResults = checkDocuments(current, compiled, defaultLabels);
        if (!currentResults.some((r) => r.decision.findings.some((f) => f.patch))) break;
      }
      streams.stdout.write(fixedText);
      // What is left after fixing decides the exit code; the report goes to stderr, off the manifests.
      const remaining = currentResults;
      streams.stderr.write(options.output === 'json' ? renderJson(remaining) : renderText(remaining, usedBuiltin));
      return remaining.some((r) => !r.decision.allowed) ? EXIT_DENY : EXIT_CLEAN;
    }
    streams.stdout.write(options.output === 'json' ? renderJson(results) : renderText(results, usedBuiltin));
    return results.some((r) => !r.decision.allowed) ? EXIT_DENY : EXIT_CLEAN;
  } catch (error) {
    if (error instanceof BadInput) {
      streams.stderr.write(`check: ${error.message}\n`);
      return EXIT_BAD_INPUT;
    }
    throw error;
  }
}
