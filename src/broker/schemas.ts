import { z } from 'zod';
import { SigilError } from '../core/errors.ts';
import { AppraisalPolicySchema, NAME, ReferenceValueSetSchema, ReleasePolicySchema } from '../policy/document.ts';
import { ROLES } from './auth.ts';

/**
 * Request and response bodies, validated with zod at the edge and turned into the OpenAPI
 * document (openapi.ts), so the two cannot drift. Binary values travel base64url; digests hex.
 */
const B64 = z.string().regex(/^[A-Za-z0-9_\-+/]+={0,2}$/, 'base64 or base64url').max(65536);
const Jwk = z.object({ kty: z.enum(['EC', 'RSA']) }).catchall(z.unknown()).describe('public JWK (EC P-256/384/521 or RSA ≥ 2048)');
const Evidence = z.record(z.string(), z.unknown()).describe('kind-specific evidence (TPM: {quote, signature, pcrs})');
const TraceEntry = z.object({ rule: z.string(), claim: z.string(), expected: z.unknown(), actual: z.unknown(), result: z.enum(['pass', 'fail', 'warn', 'skip']), message: z.string().optional() });
export const Tenant = NAME.describe('tenant id');
const PathName = z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/).max(512);

export const ChallengeRequest = z.object({ tenant: Tenant, kind: z.string(), deviceId: NAME.optional() }).strict();
export const ChallengeResponse = z.object({ nonce: z.string(), expiresAt: z.string(), binding: z.string() });

export const AttestRequest = z
  .object({ tenant: Tenant, kind: z.string(), nonce: B64, evidence: Evidence, runtimeKey: Jwk, deviceId: NAME.optional(), policyId: NAME.optional() })
  .strict();
export const AttestResponse = z.object({
  ear: z.string().describe('EAR (JWT)'),
  expiresAt: z.string(),
  status: z.enum(['affirming', 'warning', 'contraindicated', 'none']),
  attestationId: z.string(),
  claims: z.record(z.string(), z.unknown()),
  trace: z.array(TraceEntry),
});

export const VerifyRequest = z
  .object({
    tenant: Tenant,
    kind: z.string(),
    evidence: Evidence,
    policyId: NAME.optional(),
    deviceId: NAME.optional(),
    nonce: B64.optional().describe('the relying party\'s own nonce'),
    runtimeKey: Jwk.optional(),
    expectedBinding: z.string().regex(/^[0-9a-fA-F]*$/).optional().describe('hex bytes the evidence must carry, instead of nonce + runtimeKey'),
    at: z.iso.datetime().optional().describe('validation time for recorded evidence: admin tokens only; the EAR then carries sigil.verification-time'),
  })
  .strict();
export const VerifyResponse = AttestResponse.omit({ attestationId: true });

export const EnrolTpmStartRequest = z
  .object({ tenant: Tenant, deviceId: NAME.optional(), ekCertificate: B64.describe('DER'), ekPublic: B64.describe('TPMT_PUBLIC'), akPublic: B64.describe('TPMT_PUBLIC') })
  .strict();
export const EnrolTpmStartResponse = z.object({ enrolmentId: z.string(), deviceId: z.string(), credentialBlob: z.string(), encryptedSecret: z.string(), expiresAt: z.string() });
export const EnrolTpmFinishRequest = z.object({ enrolmentId: z.string().uuid(), secret: B64 }).strict();
export const EnrolAkCertificateRequest = z.object({ tenant: Tenant, deviceId: NAME.optional(), akCertificate: B64.describe('DER'), akPublic: B64.describe('TPMT_PUBLIC') }).strict();
export const DeviceResponse = z.object({
  tenant: z.string(),
  deviceId: z.string(),
  kind: z.string(),
  status: z.enum(['active', 'revoked']),
  material: z.record(z.string(), z.string()),
  identity: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const TokenCreateRequest = z.object({ role: z.enum(ROLES), tenant: Tenant.optional(), name: z.string().min(1).max(200) }).strict();
export const TokenCreateResponse = z.object({ id: z.string(), token: z.string().describe('shown once') });
export const TenantSettings = z
  .object({
    earTtlSeconds: z.number().int().min(10).max(86400).optional(),
    verificationTime: z.iso
      .datetime()
      .optional()
      .describe('FOR RECORDED EVIDENCE AND TESTS ONLY: /v1/verify and dry runs in this tenant check certificates, CRLs and TCB data at this instant instead of now (never /v1/attest). Admin only; logged at every use; EARs carry sigil.verification-time.'),
  })
  .strict();
export const TenantPutRequest = z.object({ settings: TenantSettings.default({}) }).strict();
export const CaBundlePutRequest = z.object({ purpose: z.string().regex(/^[a-z0-9-]+$/), pem: z.string().min(1).max(1_000_000) }).strict();
export const WebhookPutRequest = z.object({ url: z.url({ protocol: /^https?$/ }), secret: z.string().min(16).max(512) }).strict();
export const PolicyPutRequest = AppraisalPolicySchema;
export const ReferenceValuePutRequest = ReferenceValueSetSchema;
export const ResourcePutRequest = z
  .object({
    value: z.string().max(1_000_000).optional().describe('UTF-8 secret'),
    valueBase64: B64.optional().describe('binary secret'),
    contentType: z.string().max(200).optional(),
    releasePolicy: ReleasePolicySchema,
  })
  .strict()
  .refine((r) => (r.value === undefined) !== (r.valueBase64 === undefined), 'give exactly one of value and valueBase64');
export const DevicePutRequest = z.object({ kind: z.string(), material: z.record(z.string(), z.string()), identity: z.record(z.string(), z.unknown()).default({}) }).strict();
export const RevokeRequest = z.object({ reason: z.string().max(1000).default('unspecified') }).strict();
export const DryRunRequest = z
  .object({
    policyId: NAME.optional().describe('a stored policy (default: the tenant default for the kind)'),
    policy: AppraisalPolicySchema.optional().describe('an inline policy, e.g. one not stored yet'),
    kind: z.string().optional(),
    attestationId: z.string().optional().describe('re-appraise a stored attestation'),
    evidence: Evidence.optional(),
    deviceId: NAME.optional(),
    nonce: B64.optional(),
    runtimeKey: Jwk.optional(),
    at: z.iso.datetime().optional(),
  })
  .strict()
  .refine((r) => (r.attestationId === undefined) !== (r.evidence === undefined), 'give exactly one of attestationId and evidence');
export const DryRunResponse = z.object({ policyId: z.string(), status: z.string(), trace: z.array(TraceEntry), trustVector: z.record(z.string(), z.number()) });
export { PathName };

/** Validate a body; every problem becomes one entry of the problem's `errors`. */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new SigilError('broker.invalid_request', `the request body is invalid: ${result.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`, {
    status: 400,
    errors: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}
