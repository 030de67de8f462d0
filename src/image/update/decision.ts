/**
 * What a switch means for the running device, decided per target by comparing the releases'
 * targets by name (a target changed when its image digest did, or it appeared or went away):
 *
 *   - a changed `uki` (kernel, initrd, command line) or `host-root` target → `reboot`: only a
 *     reboot runs the new kernel or root, and the services come back from the new release;
 *   - otherwise changed `container` targets → `restart` those (and `stop` the removed ones);
 *   - nothing changed → `none`.
 *
 * The decision is JSON ("sigil.update-decision.v1"), written to <state>/decision.json, printed by
 * the CLI and handed to the configured hook: `sh -c "$hook"` with the decision on stdin and in
 * SIGIL_UPDATE_DECISION (file path) / SIGIL_UPDATE_ACTION / SIGIL_UPDATE_CURRENT.
 */
import { spawn } from 'node:child_process';
import type { TargetRow } from './database.ts';

export const DECISION_FORMAT = 'sigil.update-decision.v1';

export interface TargetChange {
  name: string;
  type: string;
  from: { version: string; digest: string } | null;
  to: { version: string; digest: string } | null;
}

export interface UpdateDecision {
  format: typeof DECISION_FORMAT;
  operation: 'apply' | 'rollback';
  action: 'none' | 'restart' | 'reboot';
  from: { id: string; release: number } | null;
  to: { id: string; release: number };
  /** Container services to (re)start: changed or new. */
  restart: string[];
  /** Container services no longer in the release. */
  stop: string[];
  /** Host-level targets (uki, host-root) whose change needs a reboot. */
  reboot: string[];
  changes: TargetChange[];
  /** Path of the release now current. */
  current: string;
}

const REBOOT_TYPES = new Set(['uki', 'host-root']);

export function decide(operation: 'apply' | 'rollback', from: { id: string; release: number; targets: TargetRow[] } | null, to: { id: string; release: number; targets: TargetRow[] }, current: string): UpdateDecision {
  const before = new Map((from?.targets ?? []).map((t) => [t.name, t]));
  const after = new Map(to.targets.map((t) => [t.name, t]));
  const changes: TargetChange[] = [];
  for (const name of [...new Set([...before.keys(), ...after.keys()])].sort()) {
    const a = before.get(name);
    const b = after.get(name);
    if (a && b && a.digest === b.digest && a.type === b.type) continue;
    changes.push({
      name,
      type: b?.type ?? a!.type,
      from: a ? { version: a.version, digest: a.digest } : null,
      to: b ? { version: b.version, digest: b.digest } : null,
    });
  }
  const isHost = (c: TargetChange) => REBOOT_TYPES.has(before.get(c.name)?.type ?? '') || REBOOT_TYPES.has(after.get(c.name)?.type ?? '');
  const reboot = changes.filter(isHost).map((c) => c.name);
  const restart = changes.filter((c) => !isHost(c) && c.to !== null).map((c) => c.name);
  const stop = changes.filter((c) => !isHost(c) && c.to === null).map((c) => c.name);
  const action = reboot.length > 0 ? 'reboot' : restart.length + stop.length > 0 ? 'restart' : 'none';
  return {
    format: DECISION_FORMAT,
    operation,
    action,
    from: from ? { id: from.id, release: from.release } : null,
    to: { id: to.id, release: to.release },
    restart,
    stop,
    reboot,
    changes,
    current,
  };
}

export interface HookResult {
  command: string;
  exitCode: number | null;
  signal: string | null;
  /** The hook's last output (stdout and stderr), for the operation record. */
  output: string;
}

const OUTPUT_LIMIT = 4096;
const HOOK_TIMEOUT_MS = 10 * 60 * 1000;

export function runHook(command: string, decision: UpdateDecision, decisionFile: string): Promise<HookResult> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SIGIL_UPDATE_DECISION: decisionFile, SIGIL_UPDATE_ACTION: decision.action, SIGIL_UPDATE_CURRENT: decision.current },
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.stdin.on('error', () => undefined); // a hook that does not read its stdin
    child.stdin.end(`${JSON.stringify(decision)}\n`);
    const timer = setTimeout(() => child.kill('SIGKILL'), HOOK_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ command, exitCode: null, signal: null, output: `cannot run the hook: ${error.message}` });
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ command, exitCode, signal, output });
    });
  });
}
