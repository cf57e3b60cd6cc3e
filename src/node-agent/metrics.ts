// The node agent's Prometheus metrics. Labels are bounded: namespace and pod name, which are bounded
// by the pods of this node (series are removed when a pod leaves), a level or class from a fixed
// set — never a pid, port, path, comm or container ID.
import type { Registry } from 'prom-client';
import type { CrashClass, PressureLevel } from '../api/v1alpha1.ts';
import { PRESSURE_RANK } from '../api/v1alpha1.ts';
import { counterIn, gaugeIn, histogramIn } from '../kube/metrics.ts';

type PodLabel = 'namespace' | 'pod';

export interface PodMetricFigures {
  level: PressureLevel;
  fdPercent?: number;
  threadPercent?: number;
  threads?: number;
  dropsPerMinute?: number;
  gomaxprocsMismatch?: boolean;
  throttledPercent?: number;
  matched: boolean;
}

export class AgentMetrics {
  private readonly fdPercent;
  private readonly threadPercent;
  private readonly threads;
  private readonly drops;
  private readonly level;
  private readonly mismatch;
  private readonly throttled;
  private readonly matched;
  private readonly nodeDrops;
  private readonly crashes;
  private readonly writes;
  readonly tickSeconds;
  private readonly pods;
  private readonly processes;
  private readonly known = new Set<string>();

  constructor(registry: Registry) {
    const pod: PodLabel[] = ['namespace', 'pod'];
    this.fdPercent = gaugeIn(registry, 'concurrency_guard_pod_fd_percent', 'Open fds of the pod\'s worst process as a percent of its soft RLIMIT_NOFILE.', pod);
    this.threadPercent = gaugeIn(registry, 'concurrency_guard_pod_thread_limit_percent', 'Use of the binding thread limit (pids.max, RLIMIT_NPROC, Go\'s cap, kernel), percent.', pod);
    this.threads = gaugeIn(registry, 'concurrency_guard_pod_threads', 'Threads of the pod\'s processes.', pod);
    this.drops = gaugeIn(registry, 'concurrency_guard_pod_listen_drops_per_minute', 'Listen-queue drops per minute in the pod\'s network namespace.', pod);
    this.level = gaugeIn(registry, 'concurrency_guard_pod_pressure_level', 'Runtime pressure level: 0 OK, 1 Warning, 2 Critical.', pod);
    this.mismatch = gaugeIn(registry, 'concurrency_guard_pod_gomaxprocs_mismatch', '1 when a Go process\'s GOMAXPROCS exceeds its container\'s CPU quota.', pod);
    this.throttled = gaugeIn(registry, 'concurrency_guard_pod_cpu_throttled_percent', 'Share of CFS periods throttled in the pod\'s most throttled container, percent.', pod);
    this.matched = gaugeIn(registry, 'concurrency_guard_pod_policy_matched', '1 when a ConcurrencyPolicy matches the pod (only matched pods get reports).', pod);
    this.nodeDrops = gaugeIn(registry, 'concurrency_guard_node_listen_drops_per_minute', 'Listen-queue drops per minute in the node\'s network namespace (hostNetwork pods and host processes).', []);
    this.crashes = counterIn(registry, 'concurrency_guard_container_crashes_total', 'Container restarts seen, by crash class.', ['class']);
    this.writes = counterIn(registry, 'concurrency_guard_agent_report_writes_total', 'Report writes by outcome.', ['outcome']);
    this.tickSeconds = histogramIn(registry, 'concurrency_guard_agent_tick_seconds', 'Duration of one scan tick.', [], [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]);
    this.pods = gaugeIn(registry, 'concurrency_guard_agent_pods', 'Pods of this node being scanned.', []);
    this.processes = gaugeIn(registry, 'concurrency_guard_agent_processes', 'Processes of this node\'s pods being scanned.', []);
  }

  setPod(namespace: string, name: string, figures: PodMetricFigures): void {
    const labels = { namespace, pod: name };
    this.known.add(`${namespace}/${name}`);
    const set = (gauge: typeof this.fdPercent, value: number | undefined): void => {
      if (value === undefined) gauge.remove(labels);
      else gauge.set(labels, value);
    };
    set(this.fdPercent, figures.fdPercent);
    set(this.threadPercent, figures.threadPercent);
    set(this.threads, figures.threads);
    set(this.drops, figures.dropsPerMinute);
    set(this.level, PRESSURE_RANK[figures.level]);
    set(this.mismatch, figures.gomaxprocsMismatch === undefined ? undefined : Number(figures.gomaxprocsMismatch));
    set(this.throttled, figures.throttledPercent);
    set(this.matched, Number(figures.matched));
  }

  /** Removes the series of pods not in `live` (keys `namespace/name`). */
  keepPods(live: ReadonlySet<string>): void {
    for (const key of this.known) {
      if (live.has(key)) continue;
      this.known.delete(key);
      const slash = key.indexOf('/');
      const labels = { namespace: key.slice(0, slash), pod: key.slice(slash + 1) };
      for (const gauge of [this.fdPercent, this.threadPercent, this.threads, this.drops, this.level, this.mismatch, this.throttled, this.matched]) {
        gauge.remove(labels);
      }
    }
  }

  setNodeDrops(value: number | undefined): void {
    if (value === undefined) this.nodeDrops.reset();
    else this.nodeDrops.set(value);
  }

  crash(crashClass: CrashClass): void {
    this.crashes.inc({ class: crashClass });
  }

  write(outcome: string): void {
    this.writes.inc({ outcome });
  }

  scanned(pods: number, processes: number): void {
    this.pods.set(pods);
    this.processes.set(processes);
  }
}
