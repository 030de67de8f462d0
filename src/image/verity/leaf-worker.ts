/**
 * Worker-thread entry for tree building: opens the data file itself (no bytes cross threads),
 * hashes the units it claims into the shared level-0 area and reports how many it did.
 */
import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { hashClaimedUnits } from './leaf-hasher.ts';

export interface LeafWorkerData {
  dataPath: string;
  hash: string;
  dataBlockSize: number;
  hashBlockSize: number;
  salt: Uint8Array;
  hashPerBlock: number;
  digestSlot: number;
  dataBlocks: number;
  unitBlocks: number;
  level0: SharedArrayBuffer;
  counter: SharedArrayBuffer;
}

const data = workerData as LeafWorkerData;
let fd = -1;
try {
  fd = openSync(data.dataPath, 'r');
  const units = hashClaimedUnits({
    ...data,
    fd,
    level0: Buffer.from(data.level0),
    counter: new Int32Array(data.counter),
  });
  parentPort?.postMessage({ units });
} catch (error) {
  const e = error as { code?: string; message?: string; details?: unknown };
  parentPort?.postMessage({ error: { code: typeof e.code === 'string' && e.code.includes('.') ? e.code : 'verity.io', message: String(e.message ?? error), details: e.details ?? {} } });
} finally {
  if (fd >= 0) closeSync(fd);
}
