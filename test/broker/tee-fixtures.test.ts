/**
 * Acceptance (issue 4): the SNP, TDX and Azure fixtures of ../shared/fixtures attest through the
 * broker's HTTP API (`sigil serve --collateral DIR`, a real child process) against policies that
 * name their README-stated measurements, with the verification time pinned; with one reference
 * value changed each is contraindicated and the trace names the rule. Runs on SQLite and on a
 * real PostgreSQL.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerClient } from '../../src/attester/client.ts';
import { fixture, fixtureText, fixturesAvailable } from '../support/fixtures.ts';
import { postgresBinDir, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { decodeJwt, refused } from './support/harness.ts';
import { spawnBroker, type BrokerProcess } from './support/process.ts';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const zero = (bytes: number) => '00'.repeat(bytes);
/** One value changed: the last hex digit of a reference value. */
const changed = (hex: string) => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');

/** The times the fixtures README (and the verifier tests in test/evidence) pin. */
const AT = {
  gosevguest: '2022-09-24T01:00:00Z', // go-sev-guest verify_test.go
  trusteeVlek: '2025-06-01T00:00:00Z', // the VLEK is valid 2024-12-10..2025-12-10 only
  dcapqvl: '2025-07-19T10:00:34Z', // dcap-qvl: last second of the collateral window (1752919234)
  azure: '2025-06-01T00:00:00Z', // inside every Azure SNP certificate's validity
};

interface TeeCase {
  name: string;
  kind: string;
  evidence: () => Record<string, unknown>;
  at: string;
  /** The evidence's caller data (README): report_data, or the vTPM quote's nonce for Azure. */
  binding: string;
  policy: Record<string, unknown>;
  /** The same policy with one reference value changed, and the rule that must then fail. */
  broken: Record<string, unknown>;
  failingRule: string;
  status: 'affirming' | 'warning';
  /** Why a warning, when it is one (rule → result). */
  warnings?: string[];
  claims: Record<string, unknown>;
}

const GOSEV_MEASUREMENT = 'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01';
const VLEK_MEASUREMENT = '8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0';
const QVL = {
  mrTd: '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7',
  mrSeam: '5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1',
  rtmr0: '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0',
  rtmr1: '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378',
  rtmr2: 'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132',
};
const COS113 = {
  mrTd: 'dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a',
  rtmr0: '3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6',
  rtmr1: 'f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1',
  rtmr2: '4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1',
};
const AZURE = {
  v2Pcr0: '84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7',
  genoaPcr0: 'afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338',
  genoaMeasurement: 'f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae',
  tdxPcr0: '782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273',
  tdxMrTd: '024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b',
};

const CASES: TeeCase[] = [
  {
    name: 'SNP Milan v2, VCEK from the collateral directory (go-sev-guest)',
    kind: 'snp',
    // Only the report travels: the VCEK and the ASK/ARK come from `--collateral`.
    evidence: () => ({ report: b64(fixture('snp/gosevguest_milan_attestation.bin')), product: 'Milan' }),
    at: AT.gosevguest,
    binding: '0102030405' + zero(59),
    // The guest runs with Debug + SMT (policy 0xB0000); the policy must say it accepts that.
    policy: { measurements: [GOSEV_MEASUREMENT], guestPolicy: { allowDebug: true }, vmpl: [0], minimumTcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 } },
    broken: { measurements: [changed(GOSEV_MEASUREMENT)], guestPolicy: { allowDebug: true }, vmpl: [0] },
    failingRule: 'snp.measurement',
    status: 'affirming',
    claims: { product: 'Milan', signingKey: 'vcek', measurement: GOSEV_MEASUREMENT, reportedTcb: '4405000000000002', debug: true, crlChecked: false },
  },
  {
    name: 'SNP Milan v3 signed by a VLEK, ASVK chain from the collateral directory (Trustee)',
    kind: 'snp',
    evidence: () => ({ report: b64(fixture('snp/trustee_milan_vlek_report.bin')), vlek: b64(fixture('snp/trustee_milan_vlek.der')) }),
    at: AT.trusteeVlek,
    binding: '819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca',
    policy: { measurements: [VLEK_MEASUREMENT], vmpl: [1], signingKeys: ['vlek'] },
    broken: { measurements: [VLEK_MEASUREMENT], vmpl: [0], signingKeys: ['vlek'] },
    failingRule: 'snp.vmpl',
    // Its REPORTED_TCB (d918…04) is older than the committed one: SNP appraisal warns about that.
    status: 'warning',
    warnings: ['snp.tcb_reported_is_committed'],
    claims: { product: 'Milan', signingKey: 'vlek', measurement: VLEK_MEASUREMENT, vmpl: 1 },
  },
  {
    name: 'TDX quote v4 with full Intel collateral from the directory: TCB UpToDate (dcap-qvl)',
    kind: 'tdx',
    evidence: () => ({ quote: b64(fixture('tdx/dcapqvl_tdx_quote_v4.dat')) }),
    at: AT.dcapqvl,
    binding: '9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20',
    policy: { mrTd: [QVL.mrTd], mrSeam: [QVL.mrSeam], rtmr: { 0: [QVL.rtmr0], 1: [QVL.rtmr1], 2: [QVL.rtmr2], 3: [zero(48)] }, xfam: ['e702060000000000'], tdAttributes: ['0000001000000000'] },
    broken: { mrTd: [QVL.mrTd], mrSeam: [QVL.mrSeam], rtmr: { 0: [QVL.rtmr0], 1: [changed(QVL.rtmr1)], 2: [QVL.rtmr2] } },
    failingRule: 'tdx.rtmr1',
    status: 'affirming',
    claims: { mrTd: QVL.mrTd, tcbStatus: 'UpToDate', fmspc: 'b0c06f000000', debug: false },
  },
  {
    name: 'TDX quote v4 with its CCEL event log replayed to the RTMRs (go-tdx-guest COS 113)',
    kind: 'tdx',
    evidence: () => ({ quote: b64(fixture('tdx/gotdxguest_cos113_quote.dat')), eventLog: b64(fixture('tdx/gotdxguest_cos113_ccel_data.bin')) }),
    at: AT.dcapqvl,
    binding: zero(64),
    // No TCB info for FMSPC 00806f050000 is among the fixtures: the TCB stays unevaluated (a warning).
    policy: { mrTd: [COS113.mrTd], rtmr: { 0: [COS113.rtmr0], 1: [COS113.rtmr1], 2: [COS113.rtmr2] }, requireEventLog: true, requireTcbEvaluation: false },
    broken: { mrTd: [changed(COS113.mrTd)], rtmr: { 0: [COS113.rtmr0], 1: [COS113.rtmr1], 2: [COS113.rtmr2] }, requireEventLog: true, requireTcbEvaluation: false },
    failingRule: 'tdx.mr_td',
    status: 'warning',
    warnings: ['tdx.tcb_status'],
    claims: { mrTd: COS113.mrTd, fmspc: '00806f050000' },
  },
  {
    name: 'Azure SNP evidence v2 (Milan): PCR 0 and the HCL-bound report_data',
    kind: 'azure-snp',
    evidence: () => JSON.parse(fixtureText('azure/trustee_azsnp_evidence_v2.json')),
    at: AT.azure,
    binding: '982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef',
    policy: { pcrs: { 0: AZURE.v2Pcr0 }, requireUserDataBound: true },
    broken: { pcrs: { 0: changed(AZURE.v2Pcr0) }, requireUserDataBound: true },
    failingRule: 'azure.pcr',
    status: 'affirming',
    claims: { tee: 'snp', product: 'Milan' },
  },
  {
    name: 'Azure SNP on Genoa: PCR 0 and the SNP launch measurement',
    kind: 'azure-snp',
    evidence: () => JSON.parse(fixtureText('azure/trustee_azsnp_genoa_evidence.json')),
    at: AT.azure,
    binding: '0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f',
    policy: { pcrs: { 0: AZURE.genoaPcr0 }, snp: { measurements: [AZURE.genoaMeasurement] } },
    broken: { pcrs: { 0: AZURE.genoaPcr0 }, snp: { measurements: [changed(AZURE.genoaMeasurement)] } },
    failingRule: 'snp.measurement',
    status: 'affirming',
    claims: { tee: 'snp', product: 'Genoa', measurement: AZURE.genoaMeasurement },
  },
  {
    name: 'Azure TDX: PCR 0 and MRTD; QE identity and CRLs from the directory',
    kind: 'azure-tdx',
    evidence: () => ({
      version: 1,
      tpm_quote: JSON.parse(fixtureText('azure/trustee_aztdx_tpm_quote.json')),
      hcl_report: b64url(fixture('azure/trustee_aztdx_hcl_report.bin')),
      td_quote: b64url(fixture('azure/trustee_aztdx_td_quote.bin')),
    }),
    // The PCK leaf is valid until 2030; the directory's QE identity and CRLs are current at this instant.
    at: AT.dcapqvl,
    binding: '6368616c6c656e6765',
    policy: { pcrs: { 0: AZURE.tdxPcr0 }, tdx: { mrTd: [AZURE.tdxMrTd], requireTcbEvaluation: false } },
    broken: { pcrs: { 0: changed(AZURE.tdxPcr0) }, tdx: { mrTd: [AZURE.tdxMrTd], requireTcbEvaluation: false } },
    failingRule: 'azure.pcr',
    status: 'warning',
    warnings: ['tdx.tcb_status'],
    claims: { tee: 'tdx', mrTd: AZURE.tdxMrTd },
  },
];

/** The offline bundle `sigil serve --collateral` reads (src/evidence/collateral/README.md names). */
function writeCollateralDirectory(dir: string): void {
  const put = (name: string, content: string | Uint8Array) => {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  };
  const report = fixture('snp/gosevguest_milan_attestation.bin');
  const chipId = Buffer.from(report.subarray(0x1a0, 0x1e0)).toString('hex');
  put('snp/Milan/cert_chain.pem', fixtureText('snp/amd_milan_vcek_ask_ark.pem'));
  put('snp/Milan/vlek_cert_chain.pem', fixtureText('snp/amd_milan_vlek_asvk_ark.pem'));
  put('snp/Genoa/cert_chain.pem', fixtureText('snp/amd_genoa_vcek_ask_ark.pem'));
  put(`snp/Milan/vcek/${chipId}-4405000000000002.der`, fixture('snp/gosevguest_milan_vcek.der'));
  const qvl = JSON.parse(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json'));
  put('tdx/tcbinfo/b0c06f000000.json', `{"tcbInfo":${qvl.tcb_info},"signature":"${qvl.tcb_info_signature}"}`);
  put('tdx/tcbinfo/b0c06f000000.issuer_chain.pem', qvl.tcb_info_issuer_chain);
  put('tdx/qe_identity.json', `{"enclaveIdentity":${qvl.qe_identity},"signature":"${qvl.qe_identity_signature}"}`);
  put('tdx/qe_identity.issuer_chain.pem', qvl.qe_identity_issuer_chain);
  put('tdx/pck_crl_platform.der', Buffer.from(qvl.pck_crl, 'hex'));
  put('tdx/pck_crl_platform.issuer_chain.pem', qvl.pck_crl_issuer_chain);
  put('tdx/root_ca_crl.der', Buffer.from(qvl.root_ca_crl, 'hex'));
}

interface VerifyAnswer {
  ear: string;
  status: string;
  claims: Record<string, unknown>;
  trace: { rule: string; result: string; expected: unknown; actual: unknown }[];
}

const failed = (trace: VerifyAnswer['trace']) => trace.filter((t) => t.result === 'fail').map((t) => t.rule);

function teeSuite(label: string, database: () => Promise<string | undefined>): void {
  describe(`TEE fixtures through the broker (${label})`, () => {
    let dir: string;
    let broker: BrokerProcess;
    let admin: BrokerClient;
    const verify = (body: Record<string, unknown>, client = admin) => client.call<VerifyAnswer>('POST', '/v1/verify', { tenant: 'tee', ...body });

    before(async () => {
      dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-tee-'));
      writeCollateralDirectory(path.join(dir, 'collateral'));
      const db = await database();
      broker = await spawnBroker({ dataDir: path.join(dir, 'data'), db, extra: ['--collateral', path.join(dir, 'collateral')] });
      admin = new BrokerClient(broker.url, { ca: broker.caPem, token: broker.bootstrapToken });
      await admin.call('PUT', '/v1/admin/tenants/tee', {});
      for (const [i, c] of CASES.entries()) {
        await admin.call('PUT', `/v1/admin/tenants/tee/policies/case-${i}`, { kind: c.kind, referenceValues: c.policy });
        await admin.call('PUT', `/v1/admin/tenants/tee/policies/case-${i}-changed`, { kind: c.kind, referenceValues: c.broken });
      }
    });

    after(async () => {
      admin?.close();
      await broker?.kill('SIGTERM');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    for (const [i, c] of CASES.entries()) {
      test(`${c.name}: attests against its measurements; one changed value fails ${c.failingRule}`, async () => {
        const good = await verify({ kind: c.kind, evidence: c.evidence(), policyId: `case-${i}`, expectedBinding: c.binding, at: c.at });
        assert.equal(good.status, c.status, JSON.stringify(good.trace.filter((t) => t.result !== 'pass')));
        assert.deepEqual(good.trace.filter((t) => t.result === 'fail'), []);
        assert.deepEqual(good.trace.filter((t) => t.result === 'warn').map((t) => t.rule), c.warnings ?? []);
        assert.ok(good.trace.some((t) => t.rule === 'binding.runtime-key' && t.result === 'pass'), 'the evidence carries the expected caller data');
        for (const [claim, value] of Object.entries(c.claims)) assert.deepEqual(good.claims[claim], value, claim);
        const ear = decodeJwt(good.ear);
        assert.equal(ear.submods[c.kind]['ear.status'], c.status);
        assert.equal(ear.submods[c.kind]['ear.appraisal-policy-id'], `tee/case-${i}`);
        assert.equal(ear['sigil.use'], 'verify');
        assert.equal(ear['sigil.verification-time'], new Date(c.at).toISOString());

        const bad = await verify({ kind: c.kind, evidence: c.evidence(), policyId: `case-${i}-changed`, expectedBinding: c.binding, at: c.at });
        assert.equal(bad.status, 'contraindicated');
        assert.deepEqual(failed(bad.trace), [c.failingRule]);
        assert.equal(decodeJwt(bad.ear).submods[c.kind]['ear.status'], 'contraindicated');
      });
    }

    test('changed evidence fails verification by name; a different expected binding fails binding.runtime-key', async () => {
      const report = fixture('snp/gosevguest_milan_attestation.bin');
      report[0x90] ^= 0x01; // first byte of MEASUREMENT, inside the signed part
      const tampered = await verify({ kind: 'snp', evidence: { report: b64(report), product: 'Milan' }, policyId: 'case-0', at: AT.gosevguest });
      assert.equal(tampered.status, 'contraindicated');
      assert.deepEqual(failed(tampered.trace), ['evidence.verify']);
      assert.equal(tampered.trace.find((t) => t.rule === 'evidence.verify')!.actual, 'snp.signature_invalid');
      const rebound = await verify({ kind: 'snp', evidence: CASES[0].evidence(), policyId: 'case-0', expectedBinding: changed(CASES[0].binding), at: AT.gosevguest });
      assert.deepEqual(failed(rebound.trace), ['binding.runtime-key']);
    });

    test('a policy that names no measurement fails closed for every TEE kind', async () => {
      for (const kind of ['snp', 'tdx', 'azure-snp', 'azure-tdx']) {
        const c = CASES.find((x) => x.kind === kind)!;
        const dry = await admin.call<{ status: string; failedRule: string }>('POST', '/v1/admin/tenants/tee/dry-run', { policy: { kind, referenceValues: {} }, evidence: c.evidence(), at: c.at });
        assert.equal(dry.status, 'contraindicated', kind);
        assert.equal(dry.failedRule, `${kind}.reference-values`, kind);
      }
    });

    test('pinning the verification time: admin `at` only; an admin-set tenant verificationTime for recorded evidence, logged', async () => {
      const qvl = CASES[2];
      // Now (not pinned) the 2025 Intel collateral has expired: the quote is refused by name.
      const current = await verify({ kind: 'tdx', evidence: qvl.evidence(), policyId: 'case-2' });
      assert.equal(current.status, 'contraindicated');
      assert.deepEqual(failed(current.trace), ['evidence.verify']);
      assert.equal(decodeJwt(current.ear)['sigil.verification-time'], undefined);
      // A relying party's verifier token may not move the clock.
      const { token: verifierToken } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'verifier', tenant: 'tee', name: 'rp' });
      const rp = new BrokerClient(broker.url, { ca: broker.caPem, token: verifierToken });
      const { token: tenantAdminToken } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'tenant-admin', tenant: 'tee', name: 'tee-ops' });
      const tenantAdmin = new BrokerClient(broker.url, { ca: broker.caPem, token: tenantAdminToken });
      try {
        await refused(verify({ kind: 'tdx', evidence: qvl.evidence(), policyId: 'case-2', at: qvl.at }, rp), 'broker.forbidden', 403);
        await refused(verify({ kind: 'tdx', evidence: qvl.evidence(), policyId: 'case-2', at: qvl.at }, tenantAdmin), 'broker.forbidden', 403);
        // Nor may a tenant admin pin its own tenant's clock: tenant settings are an admin's.
        await refused(tenantAdmin.call('PUT', '/v1/admin/tenants/tee', { settings: { verificationTime: qvl.at } }), 'broker.forbidden', 403);
        // An admin pins a tenant for recorded evidence; its relying party then verifies without `at`.
        await admin.call('PUT', '/v1/admin/tenants/recorded', { settings: { verificationTime: qvl.at } });
        await admin.call('PUT', '/v1/admin/tenants/recorded/policies/qvl', { kind: 'tdx', referenceValues: qvl.policy });
        const { token: recordedToken } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'verifier', tenant: 'recorded', name: 'replay' });
        const replay = new BrokerClient(broker.url, { ca: broker.caPem, token: recordedToken });
        try {
          const answer = await replay.call<VerifyAnswer>('POST', '/v1/verify', { tenant: 'recorded', kind: 'tdx', evidence: qvl.evidence(), expectedBinding: qvl.binding });
          assert.equal(answer.status, 'affirming');
          assert.equal(decodeJwt(answer.ear)['sigil.verification-time'], new Date(qvl.at).toISOString());
        } finally {
          replay.close();
        }
      } finally {
        rp.close();
        tenantAdmin.close();
      }
      const log = broker.output.join('');
      assert.match(log, /tenant verificationTime set/);
      assert.match(log, /VERIFICATION AT A PINNED TIME[^\n]*"source":"tenant setting verificationTime"/);
      assert.match(log, /VERIFICATION AT A PINNED TIME[^\n]*"source":"request"/);
    });
  });
}

let cluster: PostgresCluster | undefined;
after(async () => cluster?.stop());

if (!fixturesAvailable()) {
  test('TEE fixtures through the broker', { skip: 'the fixtures folder ../shared/fixtures is absent' }, () => {});
} else {
  teeSuite('SQLite', async () => undefined);
  if (postgresBinDir()) {
    teeSuite('PostgreSQL', async () => {
      cluster = await startPostgres();
      return cluster.createDatabase('tee');
    });
  } else {
    test('TEE fixtures through the broker (PostgreSQL)', { skip: 'PostgreSQL binaries are not installed (apt-get install postgresql, or npm run setup)' }, () => {});
  }
}
