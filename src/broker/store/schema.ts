import type { Generated } from 'kysely';

/**
 * The broker's tables, the same on SQLite and PostgreSQL. Times are integer milliseconds since
 * the epoch (int8 on PostgreSQL, read back as numbers), documents are JSON text, binary values are
 * hex or base64 text, so both dialects return the same JavaScript values.
 */
export interface Database {
  meta: { key: string; value: string };
  tenants: { id: string; status: string; settings: string; created_at: number; updated_at: number };
  admin_tokens: { id: string; token_hash: string; role: string; tenant: string | null; name: string; created_at: number; revoked_at: number | null };
  devices: {
    tenant: string;
    id: string;
    kind: string;
    status: string;
    /** Kind-specific enrolled material (JSON: TPM { akPublic, akName }). */
    material: string;
    /** How the device was admitted and what identifies it (EK certificate details...). */
    identity: string;
    created_at: number;
    updated_at: number;
  };
  enrolments: { id: string; tenant: string; device_id: string; secret_hash: string; material: string; identity: string; expires_at: number };
  ca_bundles: { tenant: string; name: string; purpose: string; pem: string; updated_at: number };
  policies: { tenant: string; id: string; kind: string; document: string; is_default: number; version: number; updated_at: number };
  reference_values: { tenant: string; name: string; kind: string; document: string; version: number; updated_at: number };
  resources: { tenant: string; path: string; envelope: string; release_policy: string; version: number; updated_at: number };
  nonces: { nonce: string; tenant: string; kind: string; device_id: string | null; expires_at: number };
  attestations: {
    id: string;
    tenant: string;
    kind: string;
    device_id: string | null;
    policy_id: string | null;
    status: string;
    evidence: string;
    nonce: string | null;
    runtime_jkt: string | null;
    trace: string;
    at: number;
  };
  revocations: { id: string; tenant: string; subject_type: string; subject: string; reason: string; revoked_at: number };
  events: { id: Generated<number>; tenant: string; type: string; data: string; created_at: number };
  webhooks: { tenant: string; id: string; url: string; secret_envelope: string; created_at: number };
  audit_log: { seq: number; at: number; type: string; tenant: string | null; actor: string; data: string; prev_hash: string; hash: string; mac: string };
  audit_head: { id: number; seq: number; hash: string; mac: string };
  signing_keys: { kid: string; alg: string; public_jwk: string; private_envelope: string; created_at: number; retired_at: number | null };
}
