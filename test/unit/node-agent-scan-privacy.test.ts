// Privacy of the scan: a real process in a kubelet-layout cgroup keeps secrets in its environment, its
// command line and the path of a file it holds open; nothing the scan or the evaluation returns may
// contain them — nor any path at all. Each secret is first shown to be really there.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_PRESSURE } from '../../src/api/v1alpha1.ts';
import { evaluatePod, PodHistory, Scanner } from '../../src/node-agent/index.ts';
import { createKubeletPodCgroups, isCgroupV1Available, randomContainerID, type KubeletPodCgroups } from '../support/cgroups.ts';

const available = isCgroupV1Available();
if (!available && process.env.REQUIRE_E2E === '1') throw new Error('REQUIRE_E2E=1 but cgroup v1 as root is not available');

const tag = randomBytes(6).toString('hex');
const SECRETS = { environment: `env-secret-${tag}`, commandLine: `argv-secret-${tag}`, openFilePath: `path-secret-${tag}` };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cg-scan-privacy-'));
let pod: KubeletPodCgroups | undefined;
afterAll(() => {
  pod?.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!available)('scan privacy', () => {
  it('returns no environment value, command line or path, though the process holds all three', async () => {
    const id = randomContainerID();
    pod = createKubeletPodCgroups({ podPidsMax: 100, containers: [{ id, cpuLimitMillicores: 500 }] });
    const secretFile = path.join(tmp, SECRETS.openFilePath);
    fs.writeFileSync(secretFile, 'x');
    const script = `import sys\nf = open(${JSON.stringify(secretFile)})\nprint("ready", flush=True)\nsys.stdin.read()\n`;
    const child = pod.spawnInContainer(id, 'python3', ['-c', script, SECRETS.commandLine], {
      env: { ...process.env, TOKEN: SECRETS.environment },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    await new Promise((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
    const pid = child.pid!;
    expect(fs.readFileSync(`/proc/${pid}/environ`, 'latin1')).toContain(SECRETS.environment);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1')).toContain(SECRETS.commandLine);
    const links = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(links.some((link) => link.includes(SECRETS.openFilePath))).toBe(true);

    const scanner = new Scanner();
    const history = new PodHistory();
    const target = { uid: pod.uid, containers: [{ name: 'app', containerID: `containerd://${id}` }] };
    const outputs: unknown[] = [];
    for (let tick = 0; tick < 2; tick++) {
      const scan = scanner.tick([target], tick * 10_000);
      outputs.push(scan, evaluatePod(scan.pods[0]!, scan.node, scan.time, DEFAULT_PRESSURE, history));
    }
    scanner.close();
    const json = JSON.stringify(outputs, (_key, value: unknown) => (value instanceof Map ? [...value] : value));
    expect(json).toContain(`"pid":${pid}`); // the process is in there
    for (const secret of Object.values(SECRETS)) expect(json).not.toContain(secret);
    expect(json).not.toContain('/'); // no path of any kind: not the cgroup's, not a file's
    child.kill('SIGKILL');
  });
});
