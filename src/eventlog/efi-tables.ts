import { Reader } from '../core/bytes.ts';
import { readGuid, u32le, u64le, utf16le } from './le.ts';

/**
 * Platform event data (TCG PC Client PFP 1.06, section 10.2):
 *
 * UEFI_PLATFORM_FIRMWARE_BLOB (10.2.4):  0 BlobBase u64 | 8 BlobLength u64
 * UEFI_PLATFORM_FIRMWARE_BLOB2 (10.2.5): 0 BlobDescriptionSize u8 | 1 BlobDescription[] | BlobBase u64 | BlobLength u64
 * UEFI_GPT_DATA (10.2.7): UEFIPartitionHeader (EFI_PARTITION_TABLE_HEADER, 92 bytes: DiskGUID at 56,
 *   NumberOfPartitionEntries at 80, SizeOfPartitionEntry at 84), NumberOfPartitions u64, then
 *   Partitions[]: EFI_PARTITION_ENTRY (UEFI 2.10, 5.3.3) { PartitionTypeGUID 16, UniquePartitionGUID 16,
 *   StartingLBA u64, EndingLBA u64, Attributes u64, PartitionName CHAR16[36] }
 */
export interface FirmwareBlob {
  description?: string;
  base: bigint;
  length: bigint;
}

export function parseFirmwareBlob(bytes: Uint8Array, version: 1 | 2): FirmwareBlob {
  const r = new Reader(bytes, { errorCode: 'eventlog.firmware_blob_invalid', what: 'UEFI_PLATFORM_FIRMWARE_BLOB' });
  const description = version === 2 ? new TextDecoder().decode(r.take(r.u8())).replace(/\0+$/, '') : undefined;
  const base = u64le(r);
  const length = u64le(r);
  r.end();
  return { description, base, length };
}

export interface GptPartition {
  typeGuid: string;
  uniqueGuid: string;
  /** Decimal strings: JSON-safe, and u64 does not fit a number. */
  startingLba: string;
  endingLba: string;
  name: string;
}

export interface GptData {
  diskGuid: string;
  partitions: GptPartition[];
}

export function parseGptEvent(bytes: Uint8Array): GptData {
  const r = new Reader(bytes, { errorCode: 'eventlog.gpt_event_invalid', what: 'UEFI_GPT_DATA' });
  const signature = new TextDecoder().decode(r.borrow(8));
  if (signature !== 'EFI PART') r.fail(`partition header signature "${signature}"`);
  r.skip(48); // Revision, HeaderSize, CRC32, Reserved, MyLBA, AlternateLBA, First/LastUsableLBA
  const diskGuid = readGuid(r);
  r.skip(8); // PartitionEntryLBA
  r.skip(4); // NumberOfPartitionEntries (in the on-disk array, not the ones logged)
  const entrySize = u32le(r);
  r.skip(4); // PartitionEntryArrayCRC32
  const count = u64le(r);
  if (entrySize < 128 || count * BigInt(entrySize) !== BigInt(r.remaining)) r.fail(`${count} partition entries of ${entrySize} bytes do not fill the event`);
  const partitions: GptPartition[] = [];
  for (let i = 0n; i < count; i++) {
    const entry = new Reader(r.borrow(entrySize), { errorCode: 'eventlog.gpt_event_invalid', what: 'EFI_PARTITION_ENTRY' });
    const typeGuid = readGuid(entry);
    const uniqueGuid = readGuid(entry);
    const startingLba = u64le(entry).toString();
    const endingLba = u64le(entry).toString();
    entry.skip(8);
    partitions.push({ typeGuid, uniqueGuid, startingLba, endingLba, name: utf16le(entry.borrow(72)) });
  }
  return { diskGuid, partitions };
}
