import { calculateJwkThumbprint } from 'jose';
import { SigilError } from '../../core/errors.ts';
import { fromBase64, fromHex } from '../../core/hex.ts';
import { TPM_ALG, TPMA_OBJECT } from '../../tpm/constants.ts';
import type { TpmPublic } from '../../tpm/structures/public.ts';

/**
 * The HCL "variable data" (runtime data) JSON, read only after its hash matched the verified
 * hardware report (az-cvm-vtpm hcl/mod.rs `VarDataKeys`; Microsoft's runtime-claims format):
 *
 *   { "keys": [ { "kid": "HCLAkPub", "kty": "RSA", "n": b64url, "e": b64url, "key_ops": ["sign"] },
 *               { "kid": "HCLEkPub", "kty": "RSA", ..., "key_ops": ["encrypt"] } ],
 *     "vm-configuration": { "console-enabled": bool, "secure-boot": bool, "tpm-enabled": bool,
 *                           "tpm-persisted": bool, "vmUniqueId": string, "root-cert-thumbprint": string },
 *     "user-data": 64 bytes as 128 hex digits }
 *
 * "HCLAkPub" is the vTPM's attestation key: the one key that turns a vTPM quote into evidence
 * rooted in the TEE. Unknown members are kept (JSON-safe) but never interpreted.
 */
export const HCL_AK_KID = 'HCLAkPub';
export const HCL_EK_KID = 'HCLEkPub';

export interface RsaJwk {
  kty: 'RSA';
  n: string;
  e: string;
}

export interface VmConfiguration {
  consoleEnabled?: boolean;
  secureBoot?: boolean;
  tpmEnabled?: boolean;
  tpmPersisted?: boolean;
  vmUniqueId?: string;
  rootCertThumbprint?: string;
  /** The whole vm-configuration object as the HCL wrote it. */
  raw: Record<string, unknown>;
}

export interface RuntimeData {
  akPublic: RsaJwk;
  akModulus: Uint8Array;
  akExponent: number;
  ekPublic?: RsaJwk;
  vmConfiguration: VmConfiguration;
  /** 64 bytes when present (Trustee evidence v2 puts the caller's report_data here). */
  userData?: Uint8Array;
}

const CODE = 'azure.runtime_data_malformed';

function fail(message: string, details: Record<string, unknown> = {}, code = CODE): never {
  throw new SigilError(code, `HCL runtime data: ${message}`, details);
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function rsaKey(key: Record<string, unknown>, kid: string): { jwk: RsaJwk; modulus: Uint8Array; exponent: number } {
  if (key.kty !== 'RSA') fail(`key "${kid}" has kty ${JSON.stringify(key.kty)}; only RSA vTPM keys are supported`, { kid }, 'azure.ak_unsupported');
  if (typeof key.n !== 'string' || typeof key.e !== 'string' || !/^[A-Za-z0-9_-]+$/.test(key.n) || !/^[A-Za-z0-9_-]+$/.test(key.e)) {
    fail(`key "${kid}" needs base64url "n" and "e"`, { kid });
  }
  let modulus: Uint8Array;
  let exponentBytes: Uint8Array;
  try {
    modulus = fromBase64(key.n);
    exponentBytes = fromBase64(key.e);
  } catch (error) {
    throw new SigilError(CODE, `HCL runtime data: key "${kid}" "n" or "e" is not base64url`, { kid }, { cause: error });
  }
  if (modulus.length < 256 || modulus.length > 512 || (modulus[0] & 0x80) === 0) fail(`key "${kid}" modulus is ${modulus.length} bytes, not a 2048-4096-bit RSA modulus`, { kid });
  if (exponentBytes.length === 0 || exponentBytes.length > 4 || exponentBytes[0] === 0) fail(`key "${kid}" exponent is not a minimal 1-4 byte integer`, { kid });
  let exponent = 0;
  for (const b of exponentBytes) exponent = exponent * 256 + b;
  if (exponent < 3 || exponent % 2 === 0) fail(`key "${kid}" exponent ${exponent} is not a valid RSA exponent`, { kid });
  return { jwk: { kty: 'RSA', n: key.n, e: key.e }, modulus, exponent };
}

function optionalBoolean(config: Record<string, unknown>, name: string): boolean | undefined {
  const value = config[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(`vm-configuration "${name}" is not a boolean`, { name });
  return value;
}

function optionalString(config: Record<string, unknown>, name: string): string | undefined {
  const value = config[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') fail(`vm-configuration "${name}" is not a string`, { name });
  return value;
}

export function parseRuntimeData(variableData: Uint8Array): RuntimeData {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(variableData));
  } catch (error) {
    throw new SigilError(CODE, 'HCL runtime data: not UTF-8 JSON', {}, { cause: error });
  }
  if (!isObject(json)) fail('not a JSON object');
  const keys = json.keys;
  if (!Array.isArray(keys) || keys.length > 16) fail('"keys" is not a list of JSON Web Keys');
  const byKid = (kid: string) => {
    const found = keys.filter((k): k is Record<string, unknown> => isObject(k) && k.kid === kid);
    if (found.length > 1) fail(`more than one key "${kid}"`, { kid });
    return found[0];
  };
  const ak = byKid(HCL_AK_KID);
  if (!ak) fail(`no "${HCL_AK_KID}" key: the vTPM attestation key is missing`, {}, 'azure.ak_missing');
  const akKey = rsaKey(ak, HCL_AK_KID);
  const ek = byKid(HCL_EK_KID);
  const config = json['vm-configuration'] ?? {};
  if (!isObject(config)) fail('"vm-configuration" is not an object');
  const vmConfiguration: VmConfiguration = { raw: config };
  const set = <K extends keyof VmConfiguration>(key: K, value: VmConfiguration[K] | undefined) => {
    if (value !== undefined) vmConfiguration[key] = value;
  };
  set('consoleEnabled', optionalBoolean(config, 'console-enabled'));
  set('secureBoot', optionalBoolean(config, 'secure-boot'));
  set('tpmEnabled', optionalBoolean(config, 'tpm-enabled'));
  set('tpmPersisted', optionalBoolean(config, 'tpm-persisted'));
  set('vmUniqueId', optionalString(config, 'vmUniqueId'));
  set('rootCertThumbprint', optionalString(config, 'root-cert-thumbprint'));
  const runtime: RuntimeData = { akPublic: akKey.jwk, akModulus: akKey.modulus, akExponent: akKey.exponent, vmConfiguration };
  if (ek) runtime.ekPublic = rsaKey(ek, HCL_EK_KID).jwk;
  const userData = json['user-data'];
  if (userData !== undefined) {
    if (typeof userData !== 'string' || !/^[0-9a-fA-F]{128}$/.test(userData)) fail('"user-data" is not 64 bytes of hex');
    runtime.userData = fromHex(userData);
  }
  return runtime;
}

/**
 * The AK as a TPMT_PUBLIC for the quote verifier: an RSA restricted signing key (RSASSA/SHA-256,
 * what the Azure vTPM's AK is). Only its modulus and exponent matter for signature checks.
 */
const AK_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

export function akPublicArea(runtime: RuntimeData): TpmPublic {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: new Uint8Array(0),
    symmetric: { algorithm: TPM_ALG.NULL },
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: runtime.akModulus.length * 8,
    exponent: runtime.akExponent === 65537 ? 0 : runtime.akExponent,
    unique: runtime.akModulus,
  };
}

/** RFC 7638 SHA-256 thumbprint (base64url) of a JWK: a stable name for the AK or EK. */
export function jwkThumbprint(jwk: RsaJwk): Promise<string> {
  return calculateJwkThumbprint(jwk, 'sha256');
}
