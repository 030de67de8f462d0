/**
 * Build a dm-verity hash tree in memory, in parallel: level 0 (the digests of every data block,
 * all but all of the work) is split into units that the main thread and `threads - 1` workers
 * claim from a shared counter, so a worker that starts late simply takes fewer units. The upper
 * levels (1/128 of level 0 each for SHA-256 in 4 KiB blocks) are hashed on the main thread.
 */
import { closeSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SigilError } from '../../core/errors.ts';
import { blockDigest, hashClaimedUnits } from './leaf-hasher.ts';
import type { LeafWorkerData } from './leaf-worker.ts';
import { digestOffsetInLevel, verityGeometry, type VerityGeometry, type VerityParams } from './params.ts';

export interface BuildOptions {
  /** Threads hashing level 0, the main thread included (default: the machine's parallelism). */
  threads?: number;
  /** Called on the main thread as units finish. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface VerityTree {
  params: VerityParams;
  geometry: VerityGeometry;
  rootHash: Uint8Array;
  /** levels[i]: every hash block of level i, as stored in the hash file. */
  levels: Buffer[];
}

/** Data per unit of work: big enough to amortise claiming, small enough to balance two threads. */
const UNIT_BYTES = 8 << 20;
/** Below this, starting a worker (~30 ms) costs more than it saves. */
const PARALLEL_MIN_BYTES = 48 << 20;

function workerFailure(error: { code: string; message: string; details: Record<string, unknown> }): SigilError {
  return new SigilError(error.code, error.message, error.details);
}

function runWorker(data: LeafWorkerData): { done: Promise<number>; worker: Worker } {
  const worker = new Worker(new URL('./leaf-worker.ts', import.meta.url), { workerData: data });
  const done = new Promise<number>((resolve, reject) => {
    let settled = false;
    worker.once('message', (message: { units?: number; error?: { code: string; message: string; details: Record<string, unknown> } }) => {
      settled = true;
      if (message.error) reject(workerFailure(message.error));
      else resolve(message.units ?? 0);
    });
    worker.once('error', (error) => {
      settled = true;
      reject(new SigilError('verity.worker_failed', `tree worker failed: ${error.message}`, {}, { cause: error }));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new SigilError('verity.worker_failed', `tree worker exited with code ${code}`, { code }));
    });
  });
  done.catch(() => {}); // a failure is reported through Promise.all; never as an unhandled rejection
  return { done, worker };
}

function allocateShared(bytes: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes);
  } catch (error) {
    throw new SigilError('verity.too_large', `cannot hold a ${bytes}-byte hash level in memory`, { bytes }, { cause: error });
  }
}

/** Hash every data block of `dataPath` into a level-0 area (digest slots, zero padding). */
async function hashLevel0(dataPath: string, params: VerityParams, geometry: VerityGeometry, blocksInLevel0: number, options: BuildOptions): Promise<Buffer> {
  const shared = allocateShared(blocksInLevel0 * params.hashBlockSize);
  const counter = new SharedArrayBuffer(8);
  const groupBytes = geometry.hashPerBlock * params.dataBlockSize;
  const unitBlocks = geometry.hashPerBlock * Math.max(1, Math.round(UNIT_BYTES / groupBytes));
  const units = Math.ceil(params.dataBlocks / unitBlocks);
  const totalBytes = params.dataBlocks * params.dataBlockSize;
  const wanted = options.threads ?? (totalBytes >= PARALLEL_MIN_BYTES ? availableParallelism() : 1);
  const threads = Math.max(1, Math.min(wanted, units));
  const common = {
    hash: params.hash,
    dataBlockSize: params.dataBlockSize,
    hashBlockSize: params.hashBlockSize,
    salt: params.salt,
    hashPerBlock: geometry.hashPerBlock,
    digestSlot: geometry.digestSlot,
    dataBlocks: params.dataBlocks,
    unitBlocks,
  };
  const workers = Array.from({ length: threads - 1 }, () => runWorker({ ...common, dataPath, level0: shared, counter }));
  const counts = new Int32Array(counter);
  const fd = openSync(dataPath, 'r');
  try {
    const report = options.onProgress;
    hashClaimedUnits({ ...common, fd, level0: Buffer.from(shared), counter: counts }, report && (() => report(Math.min(totalBytes, Atomics.load(counts, 1) * unitBlocks * params.dataBlockSize), totalBytes)));
    await Promise.all(workers.map((w) => w.done));
  } catch (error) {
    Atomics.store(counts, 0, units); // stop the others from claiming more
    await Promise.allSettled(workers.map((w) => w.worker.terminate()));
    throw error;
  } finally {
    closeSync(fd);
  }
  if (Atomics.load(counts, 1) !== units) throw new SigilError('verity.worker_failed', 'not every unit of the tree was hashed', { units, done: Atomics.load(counts, 1) });
  options.onProgress?.(totalBytes, totalBytes);
  return Buffer.from(shared);
}

/** Hash the blocks of one level into the digest slots of the next. */
function hashUpperLevel(params: VerityParams, geometry: VerityGeometry, lower: Buffer, lowerBlocks: number, blocks: number): Buffer {
  const out = Buffer.alloc(blocks * params.hashBlockSize);
  const size = params.hashBlockSize;
  for (let i = 0; i < lowerBlocks; i++) {
    const digest = blockDigest(params.hash, params.salt, lower.subarray(i * size, (i + 1) * size));
    out.set(digest, digestOffsetInLevel(geometry, size, i));
  }
  return out;
}

export async function buildTree(dataPath: string, params: VerityParams, options: BuildOptions = {}): Promise<VerityTree> {
  const geometry = verityGeometry(params);
  const levels: Buffer[] = [];
  // With one data block there is no tree: the root is that block's digest, which we still
  // compute through the level-0 path (into a one-block scratch area).
  const level0Blocks = geometry.levels > 0 ? geometry.levelBlocks[0] : 1;
  const level0 = await hashLevel0(dataPath, params, geometry, level0Blocks, options);
  if (geometry.levels === 0) return { params, geometry, rootHash: new Uint8Array(level0.subarray(0, geometry.digestSize)), levels };
  levels.push(level0);
  for (let i = 1; i < geometry.levels; i++) levels.push(hashUpperLevel(params, geometry, levels[i - 1], geometry.levelBlocks[i - 1], geometry.levelBlocks[i]));
  const top = levels[geometry.levels - 1];
  const rootHash = new Uint8Array(blockDigest(params.hash, params.salt, top.subarray(0, params.hashBlockSize)));
  return { params, geometry, rootHash, levels };
}
