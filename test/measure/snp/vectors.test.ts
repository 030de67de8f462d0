/**
 * Every case of ../shared/fixtures/measure/snp-vectors.json (sev-snp-measure, virtee/sev and dstack
 * assertions), reproduced exactly: SEV, SEV-ES, SNP (QEMU, EC2 current and legacy, GCE), the OVMF
 * hash and its seed, SVSM, SNP from hashes, one PAGE_INFO step and the ID block.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { SigilError } from '../../../src/core/errors.ts';
import { digest } from '../../../src/core/hash.ts';
import { fromBase64, fromHex, toBase64, toHex } from '../../../src/core/hex.ts';
import { LaunchDigest } from '../../../src/measure/snp/gctx.ts';
import { amdKeyDigest, idBlock } from '../../../src/measure/snp/id-block.ts';
import { sevEsLaunchDigest, sevLaunchDigest, snpLaunchDigest, snpOvmfHash, svsmLaunchDigest } from '../../../src/measure/snp/launch-digest.ts';
import { parseSevFirmware, SEV_SECTION_NAMES } from '../../../src/measure/snp/ovmf.ts';
import { cmdlineBytes, kernelHashes, type KernelHashes } from '../../../src/measure/snp/sev-hashes.ts';
import { vcpuSignatureOf } from '../../../src/measure/snp/vcpu-types.ts';
import type { VmmType } from '../../../src/measure/snp/vmsa.ts';
import { fixture, fixturesAvailable, fixtureText } from '../../support/fixtures.ts';

interface FileInput {
  content: string;
  bytes_hex: string;
}
interface VectorCase {
  id: string;
  mode: string;
  vcpus?: number | null;
  vcpu_type?: string | null;
  vcpu_sig?: string | null;
  vmm_type?: string;
  guest_features?: string | null;
  ovmf?: string;
  kernel?: FileInput | null;
  initrd?: FileInput | null;
  append?: string | null;
  snp_ovmf_hash?: string | null;
  ec2_vmsa_rdx?: string;
  svsm_file?: string;
  ovmf_vars_size?: number;
  ovmf_not_included?: { size: number; substitute_seed_DERIVED: string };
  inputs?: Record<string, any>;
  expected?: any;
  expected_error?: string;
  expected_parse?: { gpa: string; sev_hashes_table_gpa: string; sev_es_reset_eip: string; sections: [string, string, string][] };
}

const available = fixturesAvailable();
const vectors: { cases: VectorCase[]; fixtures: Record<string, any> } = available ? JSON.parse(fixtureText('measure/snp-vectors.json')) : { cases: [], fixtures: {} };
const hex = (n: number) => `0x${n.toString(16)}`;

function vcpuSignature(c: VectorCase): number {
  if (c.vcpu_sig) return Number(c.vcpu_sig);
  if (c.vcpu_type) return vcpuSignatureOf(c.vcpu_type);
  return 0;
}

async function directBoot(c: VectorCase): Promise<KernelHashes | undefined> {
  if (!c.kernel) return undefined;
  return kernelHashes(fromHex(c.kernel.bytes_hex), c.initrd ? fromHex(c.initrd.bytes_hex) : undefined, c.append ?? undefined);
}

async function compute(c: VectorCase): Promise<Uint8Array> {
  switch (c.mode) {
    case 'snp:ovmf-hash':
      return snpOvmfHash(parseSevFirmware(fixture(`measure/${c.ovmf}`)));
    case 'sev':
      return sevLaunchDigest({ firmware: parseSevFirmware(fixture(`measure/${c.ovmf}`)), kernel: await directBoot(c) });
    case 'seves':
      return sevEsLaunchDigest({ firmware: parseSevFirmware(fixture(`measure/${c.ovmf}`)), kernel: await directBoot(c), vcpus: c.vcpus!, vcpuSignature: vcpuSignature(c), vmmType: c.vmm_type as VmmType });
    case 'snp':
      return snpLaunchDigest({
        firmware: parseSevFirmware(fixture(`measure/${c.ovmf}`)),
        kernel: await directBoot(c),
        vcpus: c.vcpus!,
        vcpuSignature: vcpuSignature(c),
        guestFeatures: BigInt(c.guest_features!),
        vmmType: c.vmm_type as VmmType,
        ovmfHash: c.snp_ovmf_hash ? fromHex(c.snp_ovmf_hash) : undefined,
        ec2LegacyRdxZero: c.ec2_vmsa_rdx === '0x0',
      });
    case 'snp:svsm':
      return svsmLaunchDigest({
        ovmf: { hash: fromHex(c.ovmf_not_included!.substitute_seed_DERIVED), size: c.ovmf_not_included!.size },
        svsm: new Uint8Array(gunzipSync(fixture(`measure/${c.svsm_file}`))),
        ovmfVarsSize: c.ovmf_vars_size!,
        vcpus: c.vcpus!,
        vcpuSignature: vcpuSignature(c),
      });
    case 'snp-from-hashes': {
      const i = c.inputs!;
      // dstack hashes its command line trimmed, with the terminating NUL.
      const kernel = { kernel: fromHex(i.kernel_hash), initrd: fromHex(i.initrd_hash), cmdline: await digest('SHA-256', cmdlineBytes(i.base_cmdline.trim())) };
      const sections = i.ovmf_sections.map((s: any) => ({ gpa: s.gpa, size: s.size, type: s.section_type }));
      return snpLaunchDigest({
        firmware: { size: 0, gpa: 0, sections, sevHashesTableGpa: i.sev_hashes_table_gpa, sevEsResetEip: i.sev_es_reset_eip },
        kernel,
        ovmfHash: fromHex(i.ovmf_hash),
        vcpus: i.vcpus,
        vcpuSignature: vcpuSignatureOf(i.vcpu_type),
        guestFeatures: BigInt(i.guest_features),
      });
    }
    case 'gctx-primitive': {
      const gctx = new LaunchDigest(fromHex(c.inputs!.initial_ld));
      assert.equal(toHex(await digest('SHA-384', new TextEncoder().encode('page'))), c.inputs!.contents_hex);
      await gctx.update(c.inputs!.page_type, Number(c.inputs!.gpa), fromHex(c.inputs!.contents_hex));
      return gctx.value;
    }
    default:
      throw new Error(`no runner for mode ${c.mode}`);
  }
}

test('the vector file is present and has every case kind', { skip: available ? false : 'no fixtures' }, () => {
  assert.equal(vectors.cases.length, 34);
  assert.deepEqual(new Set(vectors.cases.map((c) => c.mode)), new Set(['snp:ovmf-hash', 'snp', 'seves', 'sev', 'snp:svsm', 'snp-from-hashes', 'gctx-primitive', 'snp-id-block']));
});

for (const c of vectors.cases.filter((v) => v.mode !== 'snp-id-block')) {
  test(`SNP vector ${c.id} (${c.mode})`, async () => {
    if (c.expected_error) {
      await assert.rejects(compute(c), (error: unknown) => error instanceof SigilError && error.message === c.expected_error);
      return;
    }
    assert.equal(toHex(await compute(c)), c.expected);
  });
}

for (const c of vectors.cases.filter((v) => v.mode === 'snp-id-block')) {
  test(`SNP vector ${c.id}: ID block and key digests`, async () => {
    const i = c.inputs!;
    assert.equal(toHex(fromBase64(i.launch_digest_b64)), i.launch_digest_hex);
    const block = idBlock({ launchDigest: fromHex(i.launch_digest_hex), version: i.version, guestSvn: i.guest_svn, policy: BigInt(i.policy) });
    assert.equal(toBase64(block), c.expected.id_block_b64);
    assert.equal(toBase64(await amdKeyDigest(fixtureText(`measure/${i.id_key_public}`))), c.expected.id_key_digest_b64);
    assert.equal(toBase64(await amdKeyDigest(fixtureText(`measure/${i.author_key_public}`))), c.expected.author_key_digest_b64);
  });
}

test('the OVMF fixtures parse to the recorded metadata', { skip: available ? false : 'no fixtures' }, () => {
  for (const [file, info] of Object.entries(vectors.fixtures)) {
    const parsed = info.parsed_DERIVED;
    if (!parsed) continue;
    const fw = parseSevFirmware(fixture(`measure/${file}`));
    assert.equal(hex(fw.gpa), parsed.gpa);
    assert.equal(hex(fw.sevEsResetEip!), parsed.sev_es_reset_eip);
    assert.equal(hex(fw.sevHashesTableGpa!), parsed.sev_hashes_table_gpa.split(' ')[0]);
    assert.deepEqual(fw.sections.map((s) => [hex(s.gpa), hex(s.size), SEV_SECTION_NAMES[s.type]]), parsed.metadata_sections);
  }
  const synthetic = vectors.cases.find((c) => c.id === 'dstack.synthetic_ovmf_launch_digest')!;
  const fw = parseSevFirmware(fixture(`measure/${synthetic.ovmf}`));
  const p = synthetic.expected_parse!;
  assert.equal(hex(fw.gpa), p.gpa);
  assert.equal(hex(fw.sevHashesTableGpa!), p.sev_hashes_table_gpa);
  assert.equal(hex(fw.sevEsResetEip!), p.sev_es_reset_eip);
  assert.deepEqual(fw.sections.map((s) => [hex(s.gpa), hex(s.size), SEV_SECTION_NAMES[s.type]]), p.sections);
});
