import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { authenticodeDigest, authenticodeDigests, authenticodeRanges, certificateTable } from '../../../src/measure/pe/authenticode.ts';
import { parsePe, peChecksum, putU32 } from '../../../src/measure/pe/pe-file.ts';
import { fixture, fixturesAvailable, fixtureTest, fixtureText } from '../../support/fixtures.ts';

interface Case {
  file: string;
  size: number;
  sha256: string;
  expected?: Record<string, string>;
  expected_DERIVED?: Record<string, string>;
  listed_not_asserted?: Record<string, string>;
}

const cases: Case[] = fixturesAvailable() ? JSON.parse(fixtureText('measure/authenticode-vectors.json')).cases : [];

test('every Authenticode vector is reproduced exactly (sha1, sha256; padded and unpadded)', fixtureTest(), async () => {
  let checked = 0;
  for (const c of cases) {
    const bytes = fixture(`measure/${c.file}`);
    assert.equal(bytes.length, c.size, c.file);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), c.sha256, `${c.file} is the recorded file`);
    const values = { ...c.expected, ...c.expected_DERIVED, ...c.listed_not_asserted };
    for (const [key, expected] of Object.entries(values)) {
      const hash = key.includes('sha1') ? 'SHA-1' : 'SHA-256';
      const padTo8 = key.includes('padded_to_8');
      assert.equal(toHex(await authenticodeDigest(bytes, hash, { padTo8 })), expected, `${c.file} ${key}`);
      checked++;
    }
  }
  assert.equal(checked, 11);
});

test('firmware hashes an unsigned file unpadded; sbsign-style padding only on request', fixtureTest(), async () => {
  const unsigned = fixture('measure/authenticode/gouefi_test.pecoff');
  const signed = fixture('measure/authenticode/gouefi_test.pecoff.signed');
  const firmware = toHex(await authenticodeDigest(unsigned, 'SHA-256'));
  const padded = toHex(await authenticodeDigest(unsigned, 'SHA-256', { padTo8: true }));
  assert.equal(firmware, '9f2b505ce20bc20c2ce7f7a33cb93ca97d1465735ce6821a6fc8e8c7b1e0e60a');
  assert.notEqual(firmware, padded);
  // The signed file carries the 7 pad bytes as data before its certificate table: firmware's
  // algorithm over it gives the padded digest without any option.
  assert.equal(toHex(await authenticodeDigest(signed, 'SHA-256')), padded);
  const pe = parsePe(signed);
  assert.deepEqual(pe.certificateTable, { offset: 3832, size: 2232 });
  // Trailing data: from SUM_OF_BYTES_HASHED to the certificate table, not past it.
  const ranges = authenticodeRanges(pe);
  assert.equal(ranges[ranges.length - 1][1], 3832);
});

test('the ranges hashed skip exactly CheckSum and the Certificate Table entry', fixtureTest(), () => {
  const pe = parsePe(fixture('measure/authenticode/authenticoders_tiny64.signed.efi'));
  const ranges = authenticodeRanges(pe);
  assert.deepEqual(ranges[0], [0, pe.checksumOffset]);
  assert.deepEqual(ranges[1], [pe.checksumOffset + 4, pe.securityDirectoryOffset]);
  assert.deepEqual(ranges[2], [pe.securityDirectoryOffset! + 8, pe.sizeOfHeaders]);
  // Changing CheckSum or the certificate entry does not change the digest; changing a byte that is
  // hashed does.
  const tweaked = pe.bytes.slice();
  putU32(tweaked, pe.checksumOffset, 0xdeadbeef);
  assert.deepEqual(authenticodeRanges(parsePe(tweaked)), ranges);
});

test('sha384 and several banks at once agree with hashing the ranges directly', fixtureTest(), async () => {
  const bytes = fixture('measure/authenticode/authenticoders_tiny32.signed.efi');
  const pe = parsePe(bytes);
  const direct = createHash('sha384');
  for (const [start, end] of authenticodeRanges(pe)) direct.update(bytes.subarray(start, end));
  const all = await authenticodeDigests(pe, ['SHA-1', 'SHA-256', 'SHA-384']);
  assert.equal(toHex(all['SHA-384']), direct.digest('hex'));
  assert.equal(toHex(all['SHA-1']), '49f239f1cd5083912880e03982bb54528f2c358d');
  assert.equal(toHex(all['SHA-256']), '4f5b3633fc51d9447beb5c546e9ae6e58d6eb42d1e96d623dc168d97013c08a8');
});

test('certificate table: one WIN_CERTIFICATE with PKCS#7 (type 2, revision 0x200)', fixtureTest(), () => {
  const [cert, ...rest] = certificateTable(parsePe(fixture('measure/authenticode/authenticoders_tiny64.signed.efi')));
  assert.equal(rest.length, 0);
  assert.equal(cert.offset, 2048);
  assert.equal(cert.revision, 0x200);
  assert.equal(cert.certificateType, 2);
  assert.equal(cert.certificate[0], 0x30, 'DER SEQUENCE');
});

/** authenticode-rs's corrupted variants of tiny64.signed.efi must fail (fixtures README, section 4). */
test('a corrupted certificate table is refused (authenticode-rs out-of-bounds / invalid size / dwLength cases)', fixtureTest(), async () => {
  const original = fixture('measure/authenticode/authenticoders_tiny64.signed.efi');
  const pe = parsePe(original);
  const entry = pe.securityDirectoryOffset! + 4;
  const variant = (edit: (b: Uint8Array) => void) => {
    const b = original.slice();
    edit(b);
    return b;
  };
  const bad = {
    'size +100': variant((b) => putU32(b, entry, pe.certificateTable.size + 100)),
    'size -1': variant((b) => putU32(b, entry, pe.certificateTable.size - 1)),
    'dwLength 7': variant((b) => putU32(b, pe.certificateTable.offset, 7)),
    'dwLength 100000': variant((b) => putU32(b, pe.certificateTable.offset, 100000)),
  };
  for (const [name, bytes] of Object.entries(bad)) {
    await assert.rejects(authenticodeDigest(bytes, 'SHA-256'), (e) => isSigilError(e) && e.code.startsWith('pe.certificate'), name);
  }
  // Firmware's measurement does not parse the table: dwLength edits change nothing it hashes.
  assert.equal(toHex(await authenticodeDigest(bad['dwLength 7'], 'SHA-256', { verifyCertificateTable: false })), 'a82d7e4f091c44ec75d97746b3461c8ea9151e2313f8e9a4330432ee5f25b2ae');
  // ...but a table that runs past the end of the file is refused even then, as EDK2 refuses it.
  await assert.rejects(authenticodeDigest(bad['size +100'], 'SHA-256', { verifyCertificateTable: false }), (e) => isSigilError(e, 'pe.certificate_table_out_of_bounds'));
});

test('sections are hashed in PointerToRawData order, not table order', fixtureTest(), async () => {
  const bytes = fixture('measure/authenticode/gouefi_test.pecoff');
  const pe = parsePe(bytes);
  // Swap the first two section headers: the header bytes change (they are hashed), the order in
  // which section data is hashed must not.
  const swapped = bytes.slice();
  const a = pe.sections[0].headerOffset;
  const b = pe.sections[1].headerOffset;
  swapped.set(bytes.subarray(b, b + 40), a);
  swapped.set(bytes.subarray(a, a + 40), b);
  const swappedPe = parsePe(swapped);
  assert.notEqual(swappedPe.sections[0].name, pe.sections[0].name);
  assert.deepEqual(authenticodeRanges(swappedPe).slice(3), authenticodeRanges(pe).slice(3));
  const expected = createHash('sha256');
  for (const [start, end] of authenticodeRanges(pe)) expected.update(swapped.subarray(start, end));
  assert.equal(toHex(await authenticodeDigest(swapped, 'SHA-256')), expected.digest('hex'));
});

test('the PE checksum matches the one a linker wrote (systemd-stub)', { skip: fixturesAvailable() ? false : 'no fixtures' }, async () => {
  const { existsSync, readFileSync } = await import('node:fs');
  const stub = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
  if (!existsSync(stub)) return;
  const pe = parsePe(new Uint8Array(readFileSync(stub)));
  assert.equal(peChecksum(pe.bytes, pe.checksumOffset), pe.checksum);
});

test('not a PE file, or headers pointing outside the file: SigilError pe.*', async () => {
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array()],
    ['ELF', new Uint8Array([0x7f, 0x45, 0x4c, 0x46, ...new Uint8Array(60)])],
    ['MZ only', new Uint8Array([0x4d, 0x5a, ...new Uint8Array(62)])],
  ];
  const far = new Uint8Array(64);
  far.set([0x4d, 0x5a]);
  putU32(far, 0x3c, 0xfffffff0);
  cases.push(['e_lfanew past the end', far]);
  for (const [name, bytes] of cases) {
    await assert.rejects(authenticodeDigest(bytes, 'SHA-256'), (e) => isSigilError(e) && e.code.startsWith('pe.'), name);
  }
});
