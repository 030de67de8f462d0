/**
 * Bounded fuzzing of the firmware parsers that read untrusted images: the OVMF footer table, the
 * SEV metadata, the TDVF metadata (and MRTD over what parses) and the ACPI tables walk. Each
 * mutant must parse or be refused with a SigilError; nothing else may escape. Mutations aim at
 * the structures (the footer at the end, the metadata headers) as well as anywhere.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SigilError } from '../../../src/core/errors.ts';
import { guidBytes, OVMF_TABLE_FOOTER_GUID, parseFooterTable } from '../../../src/measure/snp/ovmf-footer.ts';
import { OVMF_SEV_METADATA_GUID, parseSevFirmware, SEV_ES_RESET_BLOCK_GUID, SEV_HASH_TABLE_RV_GUID } from '../../../src/measure/snp/ovmf.ts';
import { acpiBlobs } from '../../../src/measure/tdx/acpi.ts';
import { mrtd, parseTdvf, TDX_METADATA_OFFSET_GUID } from '../../../src/measure/tdx/tdvf.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { fixture, fixturesAvailable } from '../../support/fixtures.ts';

const ITERATIONS = 100_000;
const SIZE = 0x4000;

/** A small image with everything the parsers read: footer table, SEV metadata, TDVF metadata. */
function syntheticFirmware(): Uint8Array {
  const fw = new Uint8Array(SIZE);
  const v = new DataView(fw.buffer);
  // TDVF descriptor at 0x1000: BFV (measured), CFV, TD_HOB.
  fw.set(new TextEncoder().encode('TDVF'), 0x1000);
  v.setUint32(0x1004, 16 + 3 * 32, true);
  v.setUint32(0x1008, 1, true);
  v.setUint32(0x100c, 3, true);
  const section = (i: number, dataOffset: number, raw: number, addr: number, size: number, type: number, attr: number) => {
    const at = 0x1010 + 32 * i;
    v.setUint32(at, dataOffset, true);
    v.setUint32(at + 4, raw, true);
    v.setBigUint64(at + 8, BigInt(addr), true);
    v.setBigUint64(at + 16, BigInt(size), true);
    v.setUint32(at + 24, type, true);
    v.setUint32(at + 28, attr, true);
  };
  section(0, 0x2000, 0x1000, 0xffffc000, 0x1000, 0, 1);
  section(1, 0x3000, 0x1000, 0xffffd000, 0x1000, 1, 0);
  section(2, 0, 0, 0x809000, 0x2000, 2, 0);
  // SEV metadata at 0x1800.
  fw.set(new TextEncoder().encode('ASEV'), 0x1800);
  v.setUint32(0x1804, 16 + 2 * 12, true);
  v.setUint32(0x1808, 1, true);
  v.setUint32(0x180c, 2, true);
  [
    [0x800000, 0x9000, 1],
    [0x80d000, 0x1000, 2],
  ].forEach(([gpa, size, type], i) => {
    v.setUint32(0x1810 + 12 * i, gpa, true);
    v.setUint32(0x1814 + 12 * i, size, true);
    v.setUint32(0x1818 + 12 * i, type, true);
  });
  // Footer table, built backwards from the footer GUID at size-48.
  const entries: [string, Uint8Array][] = [
    [TDX_METADATA_OFFSET_GUID, new Uint8Array(new Uint32Array([SIZE - 0x1000]).buffer)],
    [OVMF_SEV_METADATA_GUID, new Uint8Array(new Uint32Array([SIZE - 0x1800]).buffer)],
    [SEV_HASH_TABLE_RV_GUID, new Uint8Array(new Uint32Array([0x810c00, 0x400]).buffer)],
    [SEV_ES_RESET_BLOCK_GUID, new Uint8Array(new Uint32Array([0x80b004]).buffer)],
  ];
  let end = SIZE - 48;
  fw.set(guidBytes(OVMF_TABLE_FOOTER_GUID), end);
  end -= 2;
  const footerLengthAt = end;
  for (const [guid, data] of entries) {
    fw.set(guidBytes(guid), end - 16);
    v.setUint16(end - 18, data.length + 18, true);
    fw.set(data, end - 18 - data.length);
    end -= data.length + 18;
  }
  v.setUint16(footerLengthAt, SIZE - 32 - end, true);
  return fw;
}

/** Mutate where the structures are most of the time, anywhere the rest. */
function targeted(input: Uint8Array, random: () => number): Uint8Array {
  if (random() < 0.3) return mutate(input, random);
  const out = input.slice();
  const regions = [
    [SIZE - 160, SIZE - 30],
    [0x1000, 0x1080],
    [0x1800, 0x1830],
  ];
  const rounds = 1 + Math.floor(random() * 4);
  for (let i = 0; i < rounds; i++) {
    const [lo, hi] = regions[Math.floor(random() * regions.length)];
    const at = lo + Math.floor(random() * (hi - lo));
    const r = random();
    if (r < 0.4) out[at] ^= 1 << Math.floor(random() * 8);
    else if (r < 0.7) out[at] = [0, 0xff, 0x7f, 0x80, 0x01, 0x12, 0x10][Math.floor(random() * 7)];
    else out[at] = Math.floor(random() * 256);
  }
  return out;
}

function onlySigilErrors(run: () => void, input: Uint8Array): boolean {
  try {
    run();
    return true;
  } catch (error) {
    if (error instanceof SigilError) return false;
    throw new Error(`a non-SigilError escaped for input ${Buffer.from(input).toString('base64')}`, { cause: error });
  }
}

test('the synthetic firmware parses as built (so mutants start from a valid image)', async () => {
  const fw = syntheticFirmware();
  assert.equal(parseFooterTable(fw).size, 4);
  const sev = parseSevFirmware(fw);
  assert.deepEqual([sev.sevEsResetEip, sev.sevHashesTableGpa, sev.sections.length], [0x80b004, 0x810c00, 2]);
  const tdvf = parseTdvf(fw);
  assert.equal(tdvf.sections.length, 3);
  assert.equal((await mrtd(tdvf)).length, 48);
});

test(`fuzz: ${ITERATIONS} mutated images through the OVMF footer, SEV metadata and TDVF parsers`, async () => {
  const random = prng(0x5eed_0f0f);
  const seeds = [syntheticFirmware(), ...(fixturesAvailable() ? [fixture('measure/snp/ovmf_AmdSev_suffix.bin'), fixture('measure/snp/ovmf_OvmfX64_suffix.bin')] : [])];
  const outcomes = { sevParsed: 0, sevRefused: 0, tdvfParsed: 0, tdvfRefused: 0, mrtd: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const seed = seeds[i % seeds.length];
    const input = seed.length === SIZE ? targeted(seed, random) : mutate(seed, random);
    if (onlySigilErrors(() => parseSevFirmware(input), input)) outcomes.sevParsed++;
    else outcomes.sevRefused++;
    let tdvf;
    if (onlySigilErrors(() => (tdvf = parseTdvf(input)), input)) outcomes.tdvfParsed++;
    else outcomes.tdvfRefused++;
    // MRTD over what parsed, when it is small enough to keep the loop bounded.
    if (tdvf && i % 16 === 0 && (tdvf as ReturnType<typeof parseTdvf>).sections.reduce((n, s) => n + s.memoryDataSize, 0) <= 0x10000) {
      try {
        await mrtd(tdvf);
        outcomes.mrtd++;
      } catch (error) {
        if (!(error instanceof SigilError)) throw error;
      }
    }
  }
  // Both outcomes happen: the mutations reach past the first checks.
  for (const [k, n] of Object.entries(outcomes)) assert.ok(n > 100, `${k}: ${n}`);
});

test('fuzz: mutated ACPI table blobs derive their loader or are refused with a SigilError', { skip: fixturesAvailable() ? false : 'no fixtures' }, () => {
  const random = prng(0xac91);
  const blob = fixture('measure/tdx/q35-with-hpet/acpi_tables.bin').slice(0, 0x2800);
  let derived = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = mutate(blob, random);
    if (onlySigilErrors(() => acpiBlobs(input), input)) derived++;
  }
  assert.ok(derived > 100 && derived < 20_000, `derived ${derived}`);
});
