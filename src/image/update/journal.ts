/**
 * The operation journal's state machine: finishing a switch and recovering after a crash.
 *
 * The `current` symlink decides whether a switch happened — its rename(2) is the one atomic
 * step — and the journal row says which switch was under way:
 *
 *   download / verify   nothing changed: mark `interrupted`, remove partial downloads, keep the
 *                       staged blobs for the next apply to resume from.
 *   switching           `current` → the new release: the switch happened; roll forward (release
 *                       states, floor, hook). Otherwise it did not: move the release folder back
 *                       to staging and mark `interrupted`.
 *   switched            roll forward: floor, clean-up, hook, `done`.
 *
 * With no operation under way, the database's current release is the truth and a `current`
 * symlink that disagrees is put back.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import type { ReleaseFloor } from '../manifest/floor.ts';
import type { ProductManifest } from '../manifest/product-manifest.ts';
import type { OperationRow, TargetRow, UpdateDatabase } from './database.ts';
import { decide, runHook, type HookResult, type UpdateDecision } from './decision.ts';
import { pausePoint } from './pause.ts';
import { writeFileAtomic } from './staging.ts';
import type { StateDir } from './state-dir.ts';
import { releaseSummary, type ReleaseSummary } from './status.ts';

export interface Recovery {
  operation: number;
  kind: string;
  phase: string;
  /** kept-current: nothing had switched; completed-switch: the switch had happened and was finished. */
  outcome: 'kept-current' | 'completed-switch' | 'completed-commit';
  hook?: HookResult | null;
}

export interface CompletedSwitch {
  status: 'switched';
  operation: number;
  current: ReleaseSummary | null;
  decision: UpdateDecision | null;
  floor: number;
  hook: HookResult | null;
}

/** "<release>-<first 12 hex digits of the document digest>": readable and unique. */
export function releaseId(release: number, documentDigest: string): string {
  return `${release}-${documentDigest.slice('sha256:'.length, 'sha256:'.length + 12)}`;
}

export function targetRows(manifest: ProductManifest): TargetRow[] {
  return manifest.targets.map((t) => ({ name: t.name, type: t.type, version: t.version, digest: t.digest }));
}

export class Journal {
  private readonly state: StateDir;
  private readonly db: UpdateDatabase;
  private readonly floor: ReleaseFloor;
  private readonly hook: string | undefined;

  constructor(state: StateDir, db: UpdateDatabase, floor: ReleaseFloor, hook: string | undefined) {
    this.state = state;
    this.db = db;
    this.floor = floor;
    this.hook = hook;
  }

  private operation(id: number): OperationRow {
    const op = this.db.operation(id);
    if (!op) throw new SigilError('update.state_invalid', `operation ${id} is not in the journal`);
    return op;
  }

  /** Release states after the symlink moved, and the decision — one transaction. */
  private finishSwitch(op: OperationRow): void {
    const to = op.toRelease ? this.db.release(op.toRelease) : undefined;
    if (!to) throw new SigilError('update.state_invalid', `operation ${op.id} switched to an unknown release`, { operation: op.id });
    const from = op.fromRelease ? this.db.release(op.fromRelease) : undefined;
    this.db.transaction(() => {
      if (op.kind === 'apply') {
        const oldPrevious = this.db.releaseInState('previous');
        if (oldPrevious) this.db.setReleaseState(oldPrevious.id, 'retired');
        if (from) this.db.setReleaseState(from.id, 'previous');
      } else if (from) {
        this.db.setReleaseState(from.id, 'rolled-back');
      }
      this.db.setReleaseState(to.id, 'current');
      const decision = decide(
        op.kind === 'rollback' ? 'rollback' : 'apply',
        from ? { id: from.id, release: from.release, targets: this.db.targets(from.id) } : null,
        { id: to.id, release: to.release, targets: this.db.targets(to.id) },
        this.state.releaseDir(to.id),
      );
      this.db.updateOperation(op.id, { phase: 'switched', decision: JSON.stringify(decision) });
    });
  }

  /**
   * After a switch: raise the floor to the oldest release still kept (the previous one, so a
   * rollback stays possible; `commit` raises it to the current one), drop releases no longer
   * kept, run the hook, mark the operation done. Every step may be replayed.
   */
  async complete(id: number): Promise<CompletedSwitch> {
    let op = this.operation(id);
    if (op.phase === 'switching') {
      this.finishSwitch(op);
      op = this.operation(id);
    }
    const decision = op.decision ? (JSON.parse(op.decision) as UpdateDecision) : null;
    if (decision) writeFileAtomic(this.state.decisionPath, `${JSON.stringify(decision, null, 2)}\n`);
    let floor = await this.floor.read();
    if (op.kind === 'apply') {
      const kept = this.db.releaseInState('previous') ?? this.db.releaseInState('current');
      if (kept && kept.release > floor) floor = await this.floor.advance(kept.release);
      this.collectGarbage();
    }
    await pausePoint('hook');
    const hook = this.hook && decision ? await runHook(this.hook, decision, this.state.decisionPath) : null;
    const hookFailed = hook !== null && hook.exitCode !== 0;
    this.db.updateOperation(id, { phase: 'done', ...(hookFailed ? { error: `update.hook_failed: the hook exited with ${hook.exitCode ?? hook.signal}` } : {}) });
    const current = this.db.releaseInState('current');
    return { status: 'switched', operation: id, current: current ? releaseSummary(this.state, this.db, current) : null, decision, floor, hook };
  }

  /** Remove release folders that are neither current nor previous, and every staging folder. */
  collectGarbage(): void {
    const kept = new Set([this.db.releaseInState('current')?.id, this.db.releaseInState('previous')?.id]);
    for (const row of this.db.releases()) {
      if (kept.has(row.id)) continue;
      if (row.state !== 'retired') this.db.setReleaseState(row.id, 'retired');
    }
    for (const name of readdirSync(join(this.state.root, 'releases'))) {
      if (!kept.has(name)) rmSync(this.state.releaseDir(name), { recursive: true, force: true });
    }
    for (const dir of this.state.stagingDirs()) rmSync(dir, { recursive: true, force: true });
  }

  async recover(): Promise<Recovery | undefined> {
    this.state.cleanTemporaries();
    const op = this.db.activeOperation();
    if (!op) {
      this.repairCurrentLink();
      return undefined;
    }
    const base = { operation: op.id, kind: op.kind, phase: op.phase };
    if (op.kind === 'commit') {
      // Raising the floor and retiring the previous release are both idempotent: redo them.
      const current = this.db.releaseInState('current');
      if (current && current.release > (await this.floor.read())) await this.floor.advance(current.release);
      const previous = this.db.releaseInState('previous');
      if (previous) this.db.setReleaseState(previous.id, 'retired');
      this.collectGarbageOf(previous?.id);
      this.db.updateOperation(op.id, { phase: 'done' });
      return { ...base, outcome: 'completed-commit' };
    }
    if (op.phase === 'download' || op.phase === 'verify') {
      if (op.staging) this.state.cleanTemporaries(op.staging);
      this.db.updateOperation(op.id, { phase: 'interrupted', error: `interrupted during ${op.phase}; nothing was switched` });
      return { ...base, outcome: 'kept-current' };
    }
    if (op.phase === 'switching' && this.state.currentId() !== op.toRelease) {
      if (op.kind === 'apply' && op.toRelease) {
        const dir = this.state.releaseDir(op.toRelease);
        if (existsSync(dir) && op.staging && !existsSync(op.staging)) renameSync(dir, op.staging);
        if (this.db.release(op.toRelease)?.state === 'installed') this.db.setReleaseState(op.toRelease, 'retired');
      }
      this.db.updateOperation(op.id, { phase: 'interrupted', error: 'interrupted before the switch; the current release was kept' });
      return { ...base, outcome: 'kept-current' };
    }
    const completed = await this.complete(op.id);
    return { ...base, outcome: 'completed-switch', hook: completed.hook };
  }

  private collectGarbageOf(id: string | undefined): void {
    if (id) rmSync(this.state.releaseDir(id), { recursive: true, force: true });
  }

  private repairCurrentLink(): void {
    const current = this.db.releaseInState('current');
    if (!current || !existsSync(this.state.releaseDir(current.id))) return;
    let linked: string | undefined;
    try {
      linked = this.state.currentId();
    } catch {
      linked = undefined;
    }
    if (linked !== current.id) this.state.switchCurrent(current.id);
  }
}
