/**
 * `sigil update status`: which release runs, which one a rollback would return to, the floor,
 * the last operation, and whether the state folder is consistent (the `current` symlink, the
 * database and the release folders agree, no operation left half done).
 */
import { existsSync } from 'node:fs';
import type { ReleaseFloor } from '../manifest/floor.ts';
import { parseProductManifest } from '../manifest/product-manifest.ts';
import type { OperationRow, ReleaseRow, TargetRow, UpdateDatabase } from './database.ts';
import type { Recovery } from './journal.ts';
import type { StateDir } from './state-dir.ts';

export interface ReleaseSummary {
  id: string;
  release: number;
  productId: string;
  documentDigest: string;
  state: string;
  source: string;
  installedAt: string;
  activatedAt: string | null;
  expires: string | null;
  path: string;
  targets: TargetRow[];
}

export interface OperationSummary {
  id: number;
  kind: string;
  phase: string;
  release: number | null;
  from: string | null;
  to: string | null;
  error: string | null;
  startedAt: string;
  updatedAt: string;
}

export interface UpdateStatus {
  stateDir: string;
  consistent: boolean;
  problems: string[];
  current: ReleaseSummary | null;
  previous: ReleaseSummary | null;
  floor: { kind: string; location: string; value: number | null; error?: string };
  lastOperation: OperationSummary | null;
  recovered: Recovery | null;
  releases: { id: string; release: number; state: string }[];
}

export function releaseSummary(state: StateDir, db: UpdateDatabase, row: ReleaseRow): ReleaseSummary {
  let expires: string | null = null;
  try {
    expires = parseProductManifest(row.document).expires;
  } catch {
    expires = null;
  }
  return {
    id: row.id,
    release: row.release,
    productId: row.productId,
    documentDigest: row.documentDigest,
    state: row.state,
    source: row.source,
    installedAt: row.installedAt,
    activatedAt: row.activatedAt,
    expires,
    path: state.releaseDir(row.id),
    targets: db.targets(row.id),
  };
}

export function operationSummary(op: OperationRow): OperationSummary {
  return { id: op.id, kind: op.kind, phase: op.phase, release: op.release, from: op.fromRelease, to: op.toRelease, error: op.error, startedAt: op.startedAt, updatedAt: op.updatedAt };
}

export async function updateStatus(state: StateDir, db: UpdateDatabase, floor: ReleaseFloor, recovered: Recovery | undefined): Promise<UpdateStatus> {
  const problems: string[] = [];
  const current = db.releaseInState('current');
  const previous = db.releaseInState('previous');
  let linked: string | undefined;
  try {
    linked = state.currentId();
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (current && linked !== current.id) problems.push(`the current symlink points at ${linked ?? 'nothing'}, the database says ${current.id}`);
  if (!current && linked) problems.push(`the current symlink points at ${linked}, but the database has no current release`);
  for (const row of [current, previous]) {
    if (row && !existsSync(state.releaseDir(row.id))) problems.push(`the folder of ${row.state} release ${row.id} is missing`);
  }
  const active = db.activeOperation();
  if (active) problems.push(`operation ${active.id} (${active.kind}) is still in phase ${active.phase}`);
  let floorValue: number | null = null;
  let floorError: string | undefined;
  try {
    floorValue = await floor.read();
  } catch (error) {
    floorError = (error as Error).message;
  }
  if (current && floorValue !== null && current.release < floorValue) problems.push(`the current release ${current.release} is below the anti-rollback floor ${floorValue}`);
  const last = db.lastOperation();
  return {
    stateDir: state.root,
    consistent: problems.length === 0,
    problems,
    current: current ? releaseSummary(state, db, current) : null,
    previous: previous ? releaseSummary(state, db, previous) : null,
    floor: { kind: floor.kind, location: floor.location, value: floorValue, ...(floorError ? { error: floorError } : {}) },
    lastOperation: last ? operationSummary(last) : null,
    recovered: recovered ?? null,
    releases: db.releases().map((r) => ({ id: r.id, release: r.release, state: r.state })),
  };
}
