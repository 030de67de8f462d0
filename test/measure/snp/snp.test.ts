/**
 * SEV/SNP prediction beyond the upstream vectors: sev-snp-measure's option rules through
 * measureSev, refusals of malformed metadata, and Debian's own OVMF.fd end to end.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { toHex } from '../../../src/core/hex.ts';
import { LaunchDigest } from '../../../src/measure/snp/gctx.ts';
import { snpLaunchDigest } from '../../../src/measure/snp/launch-digest.ts';
import { parseFooterTable } from '../../../src/measure/snp/ovmf-footer.ts';
import { OVMF_SEV_METADATA_GUID, parseSevFirmware } from '../../../src/measure/snp/ovmf.ts';
import { measureSev } from '../../../src/measure/snp/request.ts';
import { cpuSignature, VCPU_SIGNATURES } from '../../../src/measure/snp/vcpu-types.ts';
import { resetVmsa } from '../../../src/measure/snp/vmsa.ts';
import { fixture, fixturesAvailable } from '../../support/fixtures.ts';

const DEBIAN_OVMF = '/usr/share/ovmf/OVMF.fd';
const debian = existsSync(DEBIAN_OVMF) ? new Uint8Array(readFileSync(DEBIAN_OVMF)) : undefined;
const noFixtures = fixturesAvailable() ? false : 'no fixtures';

test('vCPU signatures: QEMU EPYC models and the family/model/stepping formula', () => {
  assert.equal(cpuSignature(23, 1, 2), 0x800f12);
  assert.equal(VCPU_SIGNATURES['EPYC-Milan'], 0xa00f11);
  assert.equal(VCPU_SIGNATURES['EPYC-Genoa'], 0xa10f10);
  assert.equal(VCPU_SIGNATURES['EPYC-Rome'], 0x830f10);
  assert.equal(VCPU_SIGNATURES['EPYC-Turin'], 0xb00f00);
});

test('VMSA: register values at their APM offsets for QEMU, EC2 and GCE', () => {
  const read = (page: Uint8Array) => {
    const v = new DataView(page.buffer);
    return { csBase: Number(v.getBigUint64(0x18, true)), csAttr: v.getUint16(0x12, true), rip: Number(v.getBigUint64(0x178, true)), rdx: Number(v.getBigUint64(0x310, true)), features: v.getBigUint64(0x3b0, true), gpat: v.getBigUint64(0x268, true), mxcsr: v.getUint32(0x408, true), fcw: v.getUint16(0x410, true) };
  };
  const ap = read(resetVmsa({ eip: 0x80b004, sevFeatures: 0x21n, vcpuSignature: 0x800f12, vmmType: 'QEMU' }));
  assert.deepEqual(ap, { csBase: 0x800000, csAttr: 0x9b, rip: 0xb004, rdx: 0x800f12, features: 0x21n, gpat: 0x0007040600070406n, mxcsr: 0x1f80, fcw: 0x37f });
  const ec2 = read(resetVmsa({ eip: 0xfffffff0, sevFeatures: 1n, vcpuSignature: 0x800f12, vmmType: 'ec2' }));
  assert.deepEqual([ec2.csBase, ec2.csAttr, ec2.rip, ec2.rdx, ec2.mxcsr, ec2.fcw], [0xffff0000, 0x9a, 0xfff0, 0x600, 0, 0]);
  const gce = read(resetVmsa({ eip: 0xfffffff0, sevFeatures: 1n, vcpuSignature: 0x800f12, vmmType: 'gce' }));
  assert.deepEqual([gce.rdx, gce.gpat, gce.mxcsr], [0x600, 0x70106n, 0]);
});

test('sev-snp-measure option rules, refused as measure.usage', { skip: noFixtures }, async () => {
  const ovmf = fixture('measure/snp/ovmf_AmdSev_suffix.bin');
  const usage = async (request: Parameters<typeof measureSev>[0], message: RegExp) => assert.rejects(measureSev(request), (e: any) => e.code === 'measure.usage' && message.test(e.message));
  await usage({ mode: 'snp', ovmf, vcpuType: 'EPYC' }, /missing --vcpus N in guest mode 'snp'/);
  await usage({ mode: 'snp', ovmf, vcpus: 1 }, /missing --vcpu-type or --vcpu-sig or --vcpu-family/);
  await usage({ mode: 'seves', ovmf, vcpus: 1, snpOvmfHash: '00'.repeat(48) }, /SNP OVMF hash only works with SNP/);
  await usage({ mode: 'snp', ovmf, vcpus: 1, vcpuType: 'EPYC', initrd: new Uint8Array() }, /need --kernel/);
  await usage({ mode: 'snp', ovmf, vcpus: 1, vcpuType: 'EPYC', vmmType: 'xen' }, /unknown VMM type/);
  await usage({ mode: 'snp:svsm', ovmf, vcpus: 1, vcpuType: 'EPYC' }, /needs --svsm/);
  await usage({ mode: 'tdx' as never, ovmf }, /unknown mode/);
  await usage({ mode: 'snp', vcpus: 1, vcpuType: 'EPYC' }, /--ovmf is required/);
  await assert.rejects(measureSev({ mode: 'snp', ovmf, vcpus: 1, vcpuType: 'EPYC-v9' }), { code: 'measure.vcpu_type_unknown' });
  // family/model/stepping wins over --vcpu-sig, which wins over --vcpu-type.
  const a = await measureSev({ mode: 'snp', ovmf, vcpus: 1, vcpuFamily: 25, vcpuModel: 1, vcpuStepping: 1, vcpuSig: 1, vcpuType: 'EPYC' });
  const b = await measureSev({ mode: 'snp', ovmf, vcpus: 1, vcpuType: 'EPYC-Milan' });
  assert.equal(toHex(a.measurement), toHex(b.measurement));
  assert.equal(b.referenceValue!.kind, 'snp-measurement');
  assert.deepEqual(b.referenceValue!.sources, [{ name: 'ovmf', sha256: createHash('sha256').update(ovmf).digest('hex') }]);
  assert.equal((await measureSev({ mode: 'snp:ovmf-hash', ovmf })).referenceValue, undefined, 'an OVMF hash is a seed, not a reference value');
});

test('malformed SEV metadata and impossible launches are refused with typed errors', { skip: noFixtures }, async () => {
  const base = fixture('measure/snp/ovmf_AmdSev_suffix.bin');
  const metadataAt = 4096 - new DataView(parseFooterTable(base).get(OVMF_SEV_METADATA_GUID)!.buffer).getUint32(0, true);
  assert.equal(new TextDecoder().decode(base.subarray(metadataAt, metadataAt + 4)), 'ASEV');
  const edit = (at: number, bytes: number[]) => {
    const copy = base.slice();
    copy.set(bytes, at);
    return copy;
  };
  assert.throws(() => parseSevFirmware(edit(metadataAt, [0x42])), { code: 'measure.ovmf_metadata_invalid' });
  assert.throws(() => parseSevFirmware(edit(metadataAt + 8, [2])), { code: 'measure.ovmf_metadata_invalid' }, 'version 2');
  assert.throws(() => parseSevFirmware(edit(metadataAt + 4, [0x20, 0, 0, 0])), { code: 'measure.ovmf_metadata_invalid' }, 'size too small for the items');
  assert.throws(() => parseSevFirmware(edit(metadataAt + 12, [0xff, 0xff, 0, 0])), { code: 'measure.ovmf_metadata_invalid' }, 'too many items');
  // Leniency shared with dstack: a zero size field is read by the item count.
  assert.equal(parseSevFirmware(edit(metadataAt + 4, [0, 0, 0, 0])).sections.length, 7);
  assert.throws(() => parseSevFirmware(base.subarray(0, 4000)), { code: 'measure.ovmf_size_invalid' });
  assert.throws(() => parseSevFirmware(edit(4096 - 50, [0x05, 0])), { code: 'measure.ovmf_footer_invalid' });
  // An unknown section type is refused when measured; unaligned sizes too.
  const unknownType = parseSevFirmware(edit(metadataAt + 16 + 8, [0x77]));
  await assert.rejects(snpLaunchDigest({ firmware: unknownType, vcpus: 1, vcpuSignature: 0x800f12, guestFeatures: 1n }), { code: 'measure.ovmf_section_unknown' });
  const unaligned = parseSevFirmware(edit(metadataAt + 16 + 4, [0x01, 0x90]));
  await assert.rejects(snpLaunchDigest({ firmware: unaligned, vcpus: 1, vcpuSignature: 0x800f12, guestFeatures: 1n }), { code: 'measure.snp_unaligned' });
  const noResetBlock = { ...parseSevFirmware(base), sevEsResetEip: undefined };
  await assert.rejects(snpLaunchDigest({ firmware: noResetBlock, vcpus: 2, vcpuSignature: 0x800f12, guestFeatures: 1n }), { code: 'measure.sev_no_reset_block' });
  await assert.rejects(snpLaunchDigest({ firmware: parseSevFirmware(base), vcpus: 0, vcpuSignature: 1, guestFeatures: 1n }), { code: 'measure.vcpus_invalid' });
  assert.throws(() => new LaunchDigest(new Uint8Array(32)), { code: 'measure.snp_seed_invalid' });
});

test("Debian's OVMF.fd: SEV digest is its SHA-256; SNP from its OVMF hash equals SNP from its pages", { skip: debian ? false : `${DEBIAN_OVMF} is absent` }, async () => {
  const sev = await measureSev({ mode: 'sev', ovmf: debian! });
  assert.equal(toHex(sev.measurement), createHash('sha256').update(debian!).digest('hex'));
  const fw = parseSevFirmware(debian!);
  assert.equal(fw.sevEsResetEip, 0x80b004);
  assert.equal(fw.sevHashesTableGpa, 0, 'the generic build has no measured direct boot');
  const seed = await measureSev({ mode: 'snp:ovmf-hash', ovmf: debian! });
  const full = await measureSev({ mode: 'snp', ovmf: debian!, vcpus: 4, vcpuType: 'EPYC-Milan', guestFeatures: 0x21n });
  const seeded = await measureSev({ mode: 'snp', ovmf: debian!, vcpus: 4, vcpuType: 'EPYC-Milan', guestFeatures: 0x21n, snpOvmfHash: toHex(seed.measurement) });
  assert.equal(toHex(seeded.measurement), toHex(full.measurement));
  await assert.rejects(measureSev({ mode: 'sev', ovmf: debian!, kernel: new Uint8Array(1) }), (e: any) => e.message === "Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement");
});
