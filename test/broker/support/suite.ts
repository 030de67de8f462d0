/**
 * The broker acceptance suite, run once against SQLite and once against a real PostgreSQL
 * (e2e-sqlite.test.ts, e2e-postgres.test.ts): a real swtpm with an EK certificate, the broker
 * in-process over HTTPS, the TypeScript client. Every refusal must be a problem-details error
 * whose trace names the failed rule.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { BrokerClient } from '../../../src/attester/client.ts';
import { generateRuntimeKey, type RuntimeKey } from '../../../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../../../src/attester/software-quoter.ts';
import { enrolTpm, tpmEvidence, type EnrolledTpm } from '../../../src/attester/tpm-attester.ts';
import { toHex } from '../../../src/core/hex.ts';
import { jwkThumbprint, runtimeKeyBinding } from '../../../src/policy/binding.ts';
import { TPM_ALG } from '../../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../../src/tpm/tpm.ts';
import { selectionFromSpec } from '../../../src/tpm/tpm-seal.ts';
import { decodeJwt, failedRules, refused, startTestBroker, startWebhookReceiver, type TestBroker, type WebhookReceiver } from './harness.ts';
import { openSse } from './sse.ts';

const SELECTION = 'sha256:0,7,16';
const SECRET = 'disk root key: 4f1c…correct horse battery';

export function brokerSuite(label: string, database: () => Promise<{ url?: string; skip?: string; cleanup?: () => Promise<void> }>): void {
  describe(`broker acceptance (${label})`, () => {
    let swtpm: SwtpmInstance;
    let tpm: Tpm;
    let h: TestBroker;
    let admin: BrokerClient;
    let device: EnrolledTpm;
    let cleanup: (() => Promise<void>) | undefined;
    let hook: WebhookReceiver;
    let golden: Record<string, string>;

    const attestTpm = (runtimeKey: RuntimeKey, client: BrokerClient = admin) =>
      client.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: device.deviceId, runtimeKey }, (binding) => tpmEvidence(tpm, device.ak, binding, selectionFromSpec(SELECTION)));

    before(async () => {
      const db = await database();
      cleanup = db.cleanup;
      swtpm = await startSwtpm({ ekCert: true });
      tpm = new Tpm(swtpm.transport());
      h = await startTestBroker({ db: db.url });
      admin = h.admin;
      hook = await startWebhookReceiver();
      const pcrs = await tpm.readPcrs(TPM_ALG.SHA256, [0, 7, 16]);
      golden = Object.fromEntries([...pcrs].map(([i, v]) => [String(i), toHex(v)]));
      const ca = readFileSync(swtpm.localCa!.rootCert, 'utf8') + readFileSync(swtpm.localCa!.intermediateCert, 'utf8');
      for (const tenant of ['acme', 'other']) await admin.call('PUT', `/v1/admin/tenants/${tenant}`, {});
      await admin.call('PUT', '/v1/admin/tenants/acme/ca-bundles/swtpm', { purpose: 'tpm-ek', pem: ca });
      await admin.call('PUT', '/v1/admin/tenants/acme/reference-values/firmware-1', { kind: 'tpm', values: { pcrs: { sha256: { '0': [golden['0']], '7': [golden['7']] } } } });
      await admin.call('PUT', '/v1/admin/tenants/acme/policies/golden', { kind: 'tpm', referenceValueSets: ['firmware-1'], referenceValues: { pcrs: { sha256: { '16': [golden['16']] } } }, default: true });
      await admin.call('PUT', '/v1/admin/tenants/acme/resources/disk/root-key', { value: SECRET, releasePolicy: { policies: ['golden'], kinds: ['tpm'] } });
      await admin.call('PUT', '/v1/admin/tenants/acme/webhooks/ops', { url: hook.url, secret: 'webhook-secret-0123456789' });
    });

    after(async () => {
      await hook?.close();
      if (device) await tpm.flush(device.ak.handle).catch(() => undefined);
      await tpm?.close();
      await swtpm?.stop();
      await h?.close();
      await cleanup?.();
    });

    test('enrol (EK certificate + credential activation) → attest → release on swtpm', async () => {
      device = await enrolTpm(admin, tpm, { tenant: 'acme', deviceId: 'edge-1' });
      assert.equal(device.deviceId, 'edge-1');
      const record = await admin.call<{ status: string; identity: { method: string; ekIssuer: string } }>('GET', '/v1/admin/tenants/acme/devices/edge-1');
      assert.equal(record.status, 'active');
      assert.equal(record.identity.method, 'credential-activation');
      const runtimeKey = await generateRuntimeKey();
      const result = await attestTpm(runtimeKey);
      assert.equal(result.status, 'affirming');
      assert.deepEqual(result.trace.filter((t) => t.result !== 'pass'), []);
      assert.ok(result.trace.some((t) => t.rule === 'pcr.sha256:16'));
      const claims = decodeJwt(result.ear);
      assert.equal(claims.eat_profile, 'tag:github.com,2023:veraison/ear');
      assert.equal(claims.submods.tpm['ear.status'], 'affirming');
      assert.equal(claims.submods.tpm['ear.appraisal-policy-id'], 'acme/golden');
      assert.equal(claims.submods.tpm['ear.trustworthiness-vector'].configuration, 2);
      assert.equal(claims.cnf.jkt, await jwkThumbprint(runtimeKey.publicJwk));
      assert.equal(claims['sigil.tenant'], 'acme');
      assert.equal(claims['sigil.device'], 'edge-1');
      assert.equal(claims['sigil.ak'], device.akName);
      assert.equal(claims.exp - claims.iat, 300);
      const secret = await admin.fetchResource('acme', 'disk/root-key', result.ear, runtimeKey);
      assert.equal(new TextDecoder().decode(secret), SECRET);
      // An RSA runtime key gets RSA-OAEP-256.
      const rsaKey = await generateRuntimeKey('rsa');
      const rsa = await attestTpm(rsaKey);
      const jwe = await admin.fetchResourceJwe('acme', 'disk/root-key', rsa.ear);
      assert.equal(JSON.parse(Buffer.from(jwe.split('.')[0], 'base64url').toString()).alg, 'RSA-OAEP-256');
      assert.equal(new TextDecoder().decode(await admin.fetchResource('acme', 'disk/root-key', rsa.ear, rsaKey)), SECRET);
    });

    test('a replayed nonce is refused (rule nonce.fresh)', async () => {
      const runtimeKey = await generateRuntimeKey();
      const challenge = await admin.challenge('acme', 'tpm', 'edge-1');
      const evidence = await tpmEvidence(tpm, device.ak, await runtimeKeyBinding(challenge.nonceBytes, runtimeKey.publicJwk), selectionFromSpec(SELECTION));
      const request = { tenant: 'acme', kind: 'tpm', nonce: challenge.nonce, evidence, runtimeKey: runtimeKey.publicJwk, deviceId: 'edge-1' };
      assert.equal((await admin.attest(request)).status, 'affirming');
      const error = await refused(admin.attest(request), 'broker.nonce_invalid', 403);
      assert.deepEqual(failedRules(error), ['nonce.fresh']);
      // A nonce issued for another tenant cannot be used here either.
      const foreign = await admin.challenge('other', 'tpm');
      assert.deepEqual(failedRules(await refused(admin.attest({ ...request, nonce: foreign.nonce }), 'broker.nonce_invalid', 403)), ['nonce.session']);
    });

    test('evidence bound to a different runtime key is refused (rule binding.runtime-key)', async () => {
      const quoted = await generateRuntimeKey();
      const presented = await generateRuntimeKey();
      const challenge = await admin.challenge('acme', 'tpm', 'edge-1');
      const evidence = await tpmEvidence(tpm, device.ak, await runtimeKeyBinding(challenge.nonceBytes, quoted.publicJwk), selectionFromSpec(SELECTION));
      const error = await refused(admin.attest({ tenant: 'acme', kind: 'tpm', nonce: challenge.nonce, evidence, runtimeKey: presented.publicJwk, deviceId: 'edge-1' }), 'broker.binding_mismatch', 403);
      assert.deepEqual(failedRules(error), ['binding.runtime-key']);
    });

    test('an expired token is refused (rule token.exp)', async () => {
      const runtimeKey = await generateRuntimeKey();
      const { ear } = await attestTpm(runtimeKey);
      h.clock.offset = 301_000;
      try {
        const error = await refused(admin.fetchResource('acme', 'disk/root-key', ear, runtimeKey), 'broker.token_expired', 401);
        assert.deepEqual(failedRules(error), ['token.exp']);
      } finally {
        h.clock.offset = 0;
      }
    });

    test('a token from another tenant is refused (rule token.tenant)', async () => {
      const runtimeKey = await generateRuntimeKey();
      const { ear } = await attestTpm(runtimeKey);
      await admin.call('PUT', '/v1/admin/tenants/other/resources/disk/root-key', { value: 'other tenant secret', releasePolicy: {} });
      const error = await refused(admin.fetchResource('other', 'disk/root-key', ear, runtimeKey), 'broker.token_wrong_tenant', 403);
      assert.deepEqual(failedRules(error), ['token.tenant']);
    });

    test('wrong PCRs are refused (rule pcr.sha256:16); a reference-value update admits them', async () => {
      await tpm.extendEvent(16, new TextEncoder().encode('unexpected boot component'));
      const error = await refused(attestTpm(await generateRuntimeKey()), 'broker.appraisal_failed', 403);
      assert.deepEqual(failedRules(error), ['pcr.sha256:16']);
      const entry = (error.details.trace as { rule: string; expected: string[]; actual: string }[]).find((t) => t.rule === 'pcr.sha256:16')!;
      assert.deepEqual(entry.expected, [golden['16']]);
      const now16 = toHex((await tpm.readPcrs(TPM_ALG.SHA256, [16])).get(16)!);
      assert.equal(entry.actual, now16);
      // The problem details carry the attestation id; a dry run of a fixed policy on that stored
      // evidence passes before the policy is changed for real.
      const attestationId = (error.details.problem as { attestationId: string }).attestationId;
      const fixed = { kind: 'tpm', referenceValueSets: ['firmware-1'], referenceValues: { pcrs: { sha256: { '16': [golden['16'], now16] } } } };
      const dry = await admin.call<{ status: string; failedRule: string | null }>('POST', '/v1/admin/tenants/acme/dry-run', { attestationId, policy: fixed });
      assert.equal(dry.status, 'affirming');
      const stored = await admin.call<{ status: string; failedRule: string }>('POST', '/v1/admin/tenants/acme/dry-run', { attestationId });
      assert.equal(stored.failedRule, 'pcr.sha256:16');
      await admin.call('PUT', '/v1/admin/tenants/acme/policies/golden', { ...fixed, default: true });
      assert.equal((await attestTpm(await generateRuntimeKey())).status, 'affirming');
    });

    test('a policy without reference values fails closed (rule tpm.reference-values)', async () => {
      const runtimeKey = await generateRuntimeKey();
      const result = await admin.call<{ status: string; failedRule: string }>('POST', '/v1/admin/tenants/acme/dry-run', {
        kind: 'tpm',
        policy: { kind: 'tpm', referenceValues: {} },
        deviceId: 'edge-1',
        evidence: await tpmEvidence(tpm, device.ak, new Uint8Array(32), selectionFromSpec(SELECTION)),
        runtimeKey: runtimeKey.publicJwk,
      });
      assert.equal(result.status, 'contraindicated');
      assert.equal(result.failedRule, 'tpm.reference-values');
    });

    test('stateless /v1/verify for a relying party; its EAR releases nothing', async () => {
      const { token } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'verifier', tenant: 'acme', name: 'rp' });
      const rp = h.client(token);
      const runtimeKey = await generateRuntimeKey();
      const nonce = new Uint8Array(32).fill(7);
      const evidence = await tpmEvidence(tpm, device.ak, await runtimeKeyBinding(nonce, runtimeKey.publicJwk), selectionFromSpec(SELECTION));
      const result = await rp.call<{ ear: string; status: string }>('POST', '/v1/verify', { tenant: 'acme', kind: 'tpm', deviceId: 'edge-1', evidence, nonce: Buffer.from(nonce).toString('base64url'), runtimeKey: runtimeKey.publicJwk });
      assert.equal(result.status, 'affirming');
      assert.equal(decodeJwt(result.ear)['sigil.use'], 'verify');
      assert.deepEqual(failedRules(await refused(rp.fetchResource('acme', 'disk/root-key', result.ear, runtimeKey), 'broker.token_wrong_use', 403)), ['token.use']);
      // Same evidence against another nonce: a contraindicated result, not an error.
      const other = await rp.call<{ status: string; trace: { rule: string; result: string }[] }>('POST', '/v1/verify', { tenant: 'acme', kind: 'tpm', deviceId: 'edge-1', evidence, nonce: Buffer.alloc(32).toString('base64url'), runtimeKey: runtimeKey.publicJwk });
      assert.equal(other.status, 'contraindicated');
      assert.ok(other.trace.some((t) => t.rule === 'binding.runtime-key' && t.result === 'fail'));
      // A verifier token is no admin token.
      await refused(rp.call('GET', '/v1/admin/tenants/acme/devices'), 'broker.forbidden', 403);
    });

    test('admin API without a token, with a wrong role, and the resource API without a token: refused', async () => {
      const anonymous = h.client();
      await refused(anonymous.call('GET', '/v1/admin/tenants'), 'broker.unauthorized', 401);
      await refused(h.client('sigil_not-a-real-token').call('GET', '/v1/admin/tenants'), 'broker.unauthorized', 401);
      const { token: otherAdmin } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'tenant-admin', tenant: 'other', name: 'other-ops' });
      const { token: auditor } = await admin.call<{ token: string }>('POST', '/v1/admin/tokens', { role: 'auditor', name: 'audit' });
      await refused(h.client(otherAdmin).call('PUT', '/v1/admin/tenants/acme/resources/x', { value: 'x', releasePolicy: {} }), 'broker.forbidden', 403);
      await refused(h.client(otherAdmin).call('POST', '/v1/admin/tokens', { role: 'admin', name: 'escalate' }), 'broker.forbidden', 403);
      await refused(h.client(auditor).call('DELETE', '/v1/admin/tenants/acme/policies/golden'), 'broker.forbidden', 403);
      assert.ok((await h.client(auditor).call<{ items: unknown[] }>('GET', '/v1/admin/audit?limit=5')).items.length > 0);
      assert.equal((await h.client(otherAdmin).call<{ items: { id: string }[] }>('GET', '/v1/admin/tenants')).items[0].id, 'other');
      const error = await refused(anonymous.fetchResourceJwe('acme', 'disk/root-key', undefined), 'broker.token_missing', 401);
      assert.deepEqual(failedRules(error), ['token.present']);
      // The problem document itself.
      const raw = await anonymous.http.request('GET', '/v1/admin/tenants');
      assert.equal(raw.headers['content-type'], 'application/problem+json');
      const problem = JSON.parse(raw.body.toString());
      assert.equal(problem.type, 'urn:sigil:problem:broker.unauthorized');
      assert.equal(problem.status, 401);
      assert.equal(problem.title, 'Unauthorized');
    });

    test('AK revocation refuses a re-enrolled key; tenant revocation refuses every token of the tenant', async () => {
      const quoter = await SoftwareQuoter.create();
      await admin.call('PUT', '/v1/admin/tenants/other/policies/any', { kind: 'tpm', referenceValues: { pcrs: { sha256: { '7': ['00'.repeat(32)] } } } });
      await admin.call('PUT', '/v1/admin/tenants/other/devices/soft-1', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
      const attestSoft = (runtimeKey: RuntimeKey, deviceId = 'soft-1') =>
        admin.attestWith({ tenant: 'other', kind: 'tpm', deviceId, runtimeKey }, (binding) => quoter.quote(binding, { sha256: { '7': '00'.repeat(32) } }));
      const key = await generateRuntimeKey();
      const first = await attestSoft(key);
      assert.equal(new TextDecoder().decode(await admin.fetchResource('other', 'disk/root-key', first.ear, key)), 'other tenant secret');
      await admin.call('POST', `/v1/admin/tenants/other/aks/${quoter.akName}/revoke`, { reason: 'key compromise' });
      assert.deepEqual(failedRules(await refused(admin.fetchResource('other', 'disk/root-key', first.ear, key), 'broker.revoked', 403)), ['revocation.ak']);
      await admin.call('PUT', '/v1/admin/tenants/other/devices/soft-2', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
      assert.deepEqual(failedRules(await refused(attestSoft(key, 'soft-2'), 'broker.revoked', 403)), ['revocation.ak']);
      const fresh = await SoftwareQuoter.create();
      await admin.call('PUT', '/v1/admin/tenants/other/devices/soft-3', { kind: 'tpm', material: { akPublic: fresh.akPublicHex() } });
      const ok = await admin.attestWith({ tenant: 'other', kind: 'tpm', deviceId: 'soft-3', runtimeKey: key }, (binding) => fresh.quote(binding, { sha256: { '7': '00'.repeat(32) } }));
      await admin.call('POST', '/v1/admin/tenants/other/revoke', { reason: 'contract ended' });
      assert.deepEqual(failedRules(await refused(admin.fetchResource('other', 'disk/root-key', ok.ear, key), 'broker.revoked', 403)), ['revocation.tenant']);
      await refused(admin.challenge('other', 'tpm'), 'broker.revoked', 403);
    });

    test('revoking the device: outstanding tokens refused at once, SSE and webhook within 2 s', async () => {
      const runtimeKey = await generateRuntimeKey();
      const { ear } = await attestTpm(runtimeKey);
      const sse = await openSse(`${h.broker.url}/v1/admin/events?tenant=acme`, h.adminToken, h.broker.caPem);
      try {
        const started = Date.now();
        await admin.call('POST', '/v1/admin/tenants/acme/devices/edge-1/revoke', { reason: 'stolen' });
        const event = await sse.next('revocation', (d) => d.subject === 'edge-1', 2000);
        const webhook = await hook.next((b) => (b.data as { subject?: string }).subject === 'edge-1', 2000);
        assert.ok(event.receivedAt - started < 2000 && webhook.at - started < 2000);
        assert.equal(event.data.subjectType, 'device');
        const [t, v1] = webhook.signature.split(',').map((p) => p.split('=')[1]);
        assert.equal(v1, createHmac('sha256', 'webhook-secret-0123456789').update(`${t}.${JSON.stringify(webhook.body)}`).digest('hex'));
      } finally {
        sse.close();
      }
      const error = await refused(admin.fetchResource('acme', 'disk/root-key', ear, runtimeKey), 'broker.revoked', 403);
      assert.deepEqual(failedRules(error), ['revocation.device']);
      assert.deepEqual(failedRules(await refused(attestTpm(await generateRuntimeKey()), 'broker.revoked', 403)), ['revocation.device']);
      // Reinstating admits new attestations; the token from before the revocation stays refused.
      await admin.call('POST', '/v1/admin/tenants/acme/devices/edge-1/reinstate', {});
      await new Promise((resolve) => setTimeout(resolve, 1100)); // a token of the revocation's second would be refused too
      const again = await attestTpm(runtimeKey);
      assert.equal(new TextDecoder().decode(await admin.fetchResource('acme', 'disk/root-key', again.ear, runtimeKey)), SECRET);
      await refused(admin.fetchResource('acme', 'disk/root-key', ear, runtimeKey), 'broker.revoked', 403);
    });

    test('operations: healthz, readyz, metrics, OpenAPI, JWKS; the audit chain verifies', async () => {
      const anonymous = h.client();
      assert.equal((await anonymous.call<{ status: string }>('GET', '/healthz')).status, 'ok');
      assert.equal((await anonymous.call<{ status: string }>('GET', '/readyz')).status, 'ready');
      const metrics = (await anonymous.http.request('GET', '/metrics')).body.toString();
      assert.match(metrics, /sigil_attestations_total\{kind="tpm",status="affirming",type="attestation"\} \d+/);
      assert.match(metrics, /sigil_releases_total\{result="released"\} \d+/);
      const openapi = await anonymous.call<{ openapi: string; paths: Record<string, unknown> }>('GET', '/openapi.json');
      assert.equal(openapi.openapi, '3.1.0');
      assert.ok(openapi.paths['/v1/attest']);
      assert.equal((await anonymous.call<{ keys: { kty: string }[] }>('GET', '/.well-known/jwks.json')).keys[0].kty, 'EC');
      const audit = await admin.call<{ ok: boolean; entries: number; problems: unknown[] }>('GET', '/v1/admin/audit/verify');
      assert.deepEqual(audit.problems, []);
      assert.ok(audit.entries > 20);
    });

    test('a restart keeps every policy, resource and device: attest and release without re-pushing', async () => {
      await h.restart();
      const runtimeKey = await generateRuntimeKey();
      const result = await attestTpm(runtimeKey);
      assert.equal(new TextDecoder().decode(await admin.fetchResource('acme', 'disk/root-key', result.ear, runtimeKey)), SECRET);
      const policies = await admin.call<{ items: { id: string; version: number }[] }>('GET', '/v1/admin/tenants/acme/policies');
      assert.deepEqual(policies.items.map((p) => [p.id, p.version]), [['golden', 2]]);
    });
  });
}

