/**
 * The update engine: check, apply, rollback, commit, status — each under the state folder's lock,
 * each starting with recovery (journal.ts) so a device killed mid-update is consistent again
 * before anything else happens.
 *
 * apply: fetch the release manifest and verify it (signature, product, floor, expiry) →
 *   journal `download`: pull every target into staging →
 *   journal `verify`: verify the staged release from its own files (again the signature, then
 *   every image digest and every layer's whole verity tree) →
 *   journal `switching` + the release row (one transaction) → move staging to releases/<id> →
 *   rename a new `current` symlink over the old one →
 *   journal `switched` + release states (one transaction) →
 *   raise the anti-rollback floor to the release kept for rollback, drop older releases, run the
 *   hook with the decision → journal `done`.
 * Nothing before the symlink rename changes what runs; everything after it is replayed by
 * recovery until the journal says `done`.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import type { VendorTrust } from '../../device/trust.ts';
import type { ReleaseFloor } from '../manifest/floor.ts';
import { fetchProductManifest } from '../manifest/registry.ts';
import { verifyAnySignature, verifyProductManifest, verifyTargetImages, type ManifestCheck, type VerifiedProductManifest } from '../manifest/verify.ts';
import { OciLayout } from '../oci/layout.ts';
import { UpdateDatabase, type ReleaseRow } from './database.ts';
import { decide, type HookResult, type UpdateDecision } from './decision.ts';
import { Journal, releaseId, targetRows, type Recovery } from './journal.ts';
import { pausePoint } from './pause.ts';
import { downloadRelease, LAYOUT_DIR, verifyStagedRelease, type Progress, type UpdateSource } from './staging.ts';
import { fsyncPath, StateDir, syncTree } from './state-dir.ts';
import { releaseSummary, updateStatus, type ReleaseSummary, type UpdateStatus } from './status.ts';

export type { UpdateSource } from './staging.ts';

export interface UpdateEngineOptions {
  stateDir: string;
  trust: VendorTrust;
  /** The product in this device's verified certificate. */
  productId: string;
  floor: ReleaseFloor;
  /** Needed by check and apply. */
  source?: UpdateSource;
  /** Shell command run after every switch with the decision (decision.ts). */
  hook?: string;
  now?: () => Date;
  threads?: number;
  onProgress?: Progress;
}

export interface CheckResult {
  /** available: newer than the current release; up-to-date: the same; older / conflict: refused by apply. */
  status: 'available' | 'up-to-date' | 'older' | 'conflict';
  current: ReleaseSummary | null;
  candidate: { id: string; release: number; documentDigest: string; manifestDigest: string; expires: string; targets: { name: string; type: string; version: string; digest: string }[] };
  decision: UpdateDecision | null;
}

export interface SwitchResult {
  status: 'switched' | 'up-to-date';
  operation: number | null;
  current: ReleaseSummary | null;
  decision: UpdateDecision | null;
  floor: number;
  hook: HookResult | null;
}

function compare(current: ReleaseRow | undefined, candidate: VerifiedProductManifest): CheckResult['status'] {
  if (!current) return 'available';
  if (current.documentDigest === candidate.documentDigest) return 'up-to-date';
  if (candidate.manifest.release > current.release) return 'available';
  return candidate.manifest.release === current.release ? 'conflict' : 'older';
}

export class UpdateEngine {
  readonly state: StateDir;
  readonly db: UpdateDatabase;
  /** What the start-up recovery did, when there was an interrupted operation. */
  recovery: Recovery | undefined;
  private readonly options: UpdateEngineOptions;
  private readonly journal: Journal;

  private constructor(state: StateDir, db: UpdateDatabase, options: UpdateEngineOptions) {
    this.state = state;
    this.db = db;
    this.options = options;
    this.journal = new Journal(state, db, options.floor, options.hook);
  }

  /** Lock the state folder, open the database and recover from any interrupted operation. */
  static async open(options: UpdateEngineOptions): Promise<UpdateEngine> {
    const state = new StateDir(options.stateDir);
    state.ensure();
    state.lock();
    let engine: UpdateEngine;
    try {
      engine = new UpdateEngine(state, UpdateDatabase.open(state.databasePath), options);
    } catch (error) {
      state.unlock();
      throw error;
    }
    try {
      engine.recovery = await engine.journal.recover();
    } catch (error) {
      engine.close();
      throw error;
    }
    return engine;
  }

  close(): void {
    this.db.close();
    this.state.unlock();
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private async manifestCheck(ignoreExpiry = false): Promise<ManifestCheck> {
    return { trust: this.options.trust, deviceProductId: this.options.productId, floor: await this.options.floor.read(), now: this.now(), ignoreExpiry };
  }

  private source(): UpdateSource {
    if (!this.options.source) throw new SigilError('update.not_configured', 'no registry is configured for updates (sigil update init --registry … --repository …)');
    return this.options.source;
  }

  private async candidate(): Promise<{ verified: VerifiedProductManifest; manifestDigest: string }> {
    const source = this.source();
    const fetched = await fetchProductManifest(source.client(), source.reference);
    return { verified: await verifyAnySignature(fetched.document, fetched.signatures, await this.manifestCheck()), manifestDigest: fetched.descriptor.digest };
  }

  async check(): Promise<CheckResult> {
    const { verified, manifestDigest } = await this.candidate();
    const current = this.db.releaseInState('current');
    const status = compare(current, verified);
    const id = releaseId(verified.manifest.release, verified.documentDigest);
    const targets = targetRows(verified.manifest);
    const from = current ? { id: current.id, release: current.release, targets: this.db.targets(current.id) } : null;
    return {
      status,
      current: current ? releaseSummary(this.state, this.db, current) : null,
      candidate: { id, release: verified.manifest.release, documentDigest: verified.documentDigest, manifestDigest, expires: verified.manifest.expires, targets },
      decision: status === 'available' ? decide('apply', from, { id, release: verified.manifest.release, targets }, this.state.releaseDir(id)) : null,
    };
  }

  async apply(): Promise<SwitchResult> {
    const source = this.source();
    const { verified, manifestDigest } = await this.candidate();
    const current = this.db.releaseInState('current');
    const status = compare(current, verified);
    const release = verified.manifest.release;
    if (status === 'up-to-date') return { status, operation: null, current: releaseSummary(this.state, this.db, current!), decision: null, floor: await this.options.floor.read(), hook: null };
    if (status !== 'available') {
      throw new SigilError(status === 'older' ? 'update.not_newer' : 'update.release_conflict', `release ${release} is not newer than the current release ${current!.release}`, { release, current: current!.release });
    }
    const id = releaseId(release, verified.documentDigest);
    const staging = this.state.stagingDir(verified.documentDigest);
    const operation = this.db.startOperation({ kind: 'apply', phase: 'download', release, documentDigest: verified.documentDigest, staging, fromRelease: current?.id ?? null, toRelease: id });
    let phase: 'download' | 'verify' = 'download';
    try {
      this.reuseEarlierCopy(id, staging);
      this.state.cleanTemporaries(staging);
      await downloadRelease({ source, verified, staging, seedLayout: current ? join(this.state.releaseDir(current.id), LAYOUT_DIR) : undefined, onProgress: this.options.onProgress });
      phase = 'verify';
      this.db.updateOperation(operation, { phase });
      const staged = await verifyStagedRelease(staging, await this.manifestCheck(), { threads: this.options.threads, onProgress: this.options.onProgress });
      if (staged.documentDigest !== verified.documentDigest) throw new SigilError('update.staging_invalid', 'the staged manifest is not the one being applied');
      syncTree(staging);
    } catch (error) {
      this.db.updateOperation(operation, { phase: 'failed', error: describe(error) });
      // A release that failed verification will never pass: do not keep it for a resume.
      if (phase === 'verify') rmSync(staging, { recursive: true, force: true });
      throw error;
    }
    this.db.transaction(() => {
      this.db.putRelease(
        { id, productId: verified.manifest.productId, release, documentDigest: verified.documentDigest, source: `${source.location}@${manifestDigest}`, document: verified.document, signature: verified.signature },
        targetRows(verified.manifest),
      );
      this.db.updateOperation(operation, { phase: 'switching' });
    });
    try {
      rmSync(this.state.releaseDir(id), { recursive: true, force: true });
      renameSync(staging, this.state.releaseDir(id));
      fsyncPath(join(this.state.root, 'releases'));
      fsyncPath(join(this.state.root, 'staging'));
      await pausePoint('switch');
      this.state.switchCurrent(id);
    } catch (error) {
      await this.journal.recover();
      throw error;
    }
    await pausePoint('switched');
    return this.journal.complete(operation);
  }

  /** A release seen before (rolled back, or its switch undone) is still on disk: resume from it. */
  private reuseEarlierCopy(id: string, staging: string): void {
    const earlier = this.db.release(id);
    if (existsSync(staging) || !earlier || earlier.state === 'current' || earlier.state === 'previous' || !existsSync(this.state.releaseDir(id))) return;
    renameSync(this.state.releaseDir(id), staging);
    this.db.setReleaseState(id, 'retired');
  }

  /** Switch back to the previous release, after verifying it again (its expiry aside). */
  async rollback(): Promise<SwitchResult> {
    const previous = this.db.releaseInState('previous');
    const current = this.db.releaseInState('current');
    if (!previous || !current) throw new SigilError('update.no_previous', 'there is no previous release to roll back to');
    const operation = this.db.startOperation({ kind: 'rollback', phase: 'verify', release: previous.release, documentDigest: previous.documentDigest, fromRelease: current.id, toRelease: previous.id });
    try {
      const verified = await verifyProductManifest(previous.document, previous.signature, await this.manifestCheck(true));
      const layout = await OciLayout.open(join(this.state.releaseDir(previous.id), LAYOUT_DIR));
      await verifyTargetImages(verified.manifest, layout, {
        threads: this.options.threads,
        onProgress: (done, total) => this.options.onProgress?.('verify', done, total),
        beforeTarget: () => pausePoint('verify'),
      });
    } catch (error) {
      this.db.updateOperation(operation, { phase: 'failed', error: describe(error) });
      throw error;
    }
    this.db.updateOperation(operation, { phase: 'switching' });
    try {
      await pausePoint('switch');
      this.state.switchCurrent(previous.id);
    } catch (error) {
      await this.journal.recover();
      throw error;
    }
    await pausePoint('switched');
    return this.journal.complete(operation);
  }

  /** Accept the current release for good: raise the floor to it and drop the previous one. */
  async commit(): Promise<{ floor: number; retired: string | null; current: ReleaseSummary }> {
    const current = this.db.releaseInState('current');
    if (!current) throw new SigilError('update.no_current', 'no release is installed');
    const operation = this.db.startOperation({ kind: 'commit', phase: 'switched', release: current.release, documentDigest: current.documentDigest, toRelease: current.id });
    let floor = await this.options.floor.read();
    if (current.release > floor) floor = await this.options.floor.advance(current.release);
    const previous = this.db.releaseInState('previous');
    if (previous) {
      this.db.setReleaseState(previous.id, 'retired');
      rmSync(this.state.releaseDir(previous.id), { recursive: true, force: true });
    }
    this.db.updateOperation(operation, { phase: 'done' });
    return { floor, retired: previous?.id ?? null, current: releaseSummary(this.state, this.db, current) };
  }

  async status(): Promise<UpdateStatus> {
    return updateStatus(this.state, this.db, this.options.floor, this.recovery);
  }
}

export function describe(error: unknown): string {
  return error instanceof SigilError ? `${error.code}: ${error.message}` : String(error);
}
