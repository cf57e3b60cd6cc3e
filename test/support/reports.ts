// Reading ConcurrencyReports the way a person does (kubectl), for e2e tests that wait on what the agent
// or the controller wrote.
import type { ConcurrencyReport } from '../../src/api/index.ts';
import { waitUntil, type Cluster } from './cluster.ts';

export async function getReport(cluster: Cluster, namespace: string, name: string): Promise<ConcurrencyReport | undefined> {
  const result = await cluster.kubectl(['get', 'concurrencyreport', name, '-n', namespace, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as ConcurrencyReport) : undefined;
}

export function reportCondition(report: ConcurrencyReport | undefined, type: string): { status: string; reason: string; message: string } | undefined {
  return report?.status?.conditions?.find((c) => c.type === type);
}

/** Polls every 300 ms until the report exists and passes `check`; returns it. */
export async function waitForReport(
  cluster: Cluster, namespace: string, name: string, check: (r: ConcurrencyReport) => boolean, timeoutMs = 60_000,
): Promise<ConcurrencyReport> {
  let last: ConcurrencyReport | undefined;
  await waitUntil(`report ${name}`, async () => {
    last = await getReport(cluster, namespace, name);
    return last !== undefined && check(last);
  }, timeoutMs, 300);
  return last as ConcurrencyReport;
}
