import { SigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { auth } from '../tpm/command.ts';
import { load } from '../tpm/commands/object.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import type { PcrSelection } from '../tpm/structures/basic.ts';
import { TPMT_PUBLIC } from '../tpm/structures/public.ts';
import { activateCredential, quote } from '../tpm/tpm-attest.ts';
import { createAttestationKey, endorsementKey, readEkCertificate, storageKey, type AttestationKey, type KeyType } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import type { BrokerClient } from './client.ts';

/**
 * The device side of TPM attestation with the broker: enrol (EK certificate + AK by credential
 * activation) and produce quotes bound to the broker's nonce and the runtime key.
 */
const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

export interface EnrolledTpm {
  deviceId: string;
  /** The AK, loaded; the caller flushes it (tpm.flush(ak.handle)) when done. */
  ak: AttestationKey;
  akName: string;
}

/**
 * Enrol this TPM in `tenant`: create an AK under the SRK, send EK certificate + EK public + AK
 * public, activate the broker's credential with the EK, return the answer. Leaves only the AK
 * loaded (swtpm has three object slots).
 */
export async function enrolTpm(client: BrokerClient, tpm: Tpm, options: { tenant: string; deviceId?: string; ekType?: KeyType; akType?: KeyType }): Promise<EnrolledTpm> {
  const ekType = options.ekType ?? 'rsa';
  const ekCertificate = await readEkCertificate(tpm, ekType);
  if (!ekCertificate) throw new SigilError('attester.ek_cert_missing', `this TPM has no ${ekType.toUpperCase()} EK certificate in NV`);
  const srk = await storageKey(tpm);
  let ak: AttestationKey;
  try {
    ak = await createAttestationKey(tpm, srk, options.akType ?? 'ecc');
  } finally {
    if (srk.transient) await tpm.flush(srk.handle);
  }
  try {
    const ek = await endorsementKey(tpm, ekType);
    try {
      const start = await client.call<{ enrolmentId: string; deviceId: string; credentialBlob: string; encryptedSecret: string }>('POST', '/v1/enrol/tpm/start', {
        tenant: options.tenant,
        deviceId: options.deviceId,
        ekCertificate: b64url(ekCertificate),
        ekPublic: b64url(marshal(TPMT_PUBLIC, ek.publicArea)),
        akPublic: b64url(marshal(TPMT_PUBLIC, ak.publicArea)),
      }, undefined);
      const secret = await activateCredential(tpm, ak, ek, { credentialBlob: Buffer.from(start.credentialBlob, 'base64url'), secret: Buffer.from(start.encryptedSecret, 'base64url') });
      const device = await client.call<{ deviceId: string; material: { akName: string } }>('POST', '/v1/enrol/tpm/finish', { enrolmentId: start.enrolmentId, secret: b64url(secret) }, undefined);
      return { deviceId: device.deviceId, ak, akName: device.material.akName };
    } finally {
      await tpm.flush(ek.handle).catch(() => undefined);
    }
  } catch (error) {
    await tpm.flush(ak.handle).catch(() => undefined);
    throw error;
  }
}

export interface TpmEvidenceLogs {
  /** The firmware's TCG event log (binary_bios_measurements), replayed by the broker against the quote. */
  eventLog?: Uint8Array;
  /** The IMA measurement list (binary_runtime_measurements), and its template hash when not SHA-1. */
  imaLog?: Uint8Array;
  imaTemplateHash?: 'sha1' | 'sha256';
}

/**
 * TPM evidence for the broker: a quote over `selection` with `binding` as qualifying data, and the
 * logs that explain the quoted PCRs (the broker's policy can then appraise Secure Boot, the EFI
 * applications and the kernel command line, not only PCR values). Give `logs` as a function to
 * read them after quoting: IMA keeps appending, and a list read after the quote holds every entry
 * the quoted PCR 10 covers (later ones show as unverified), while one read before may miss some.
 */
export async function tpmEvidence(tpm: Tpm, ak: AttestationKey, binding: Uint8Array, selection: PcrSelection[], logs: TpmEvidenceLogs | (() => TpmEvidenceLogs) = {}): Promise<Record<string, unknown>> {
  const result = await quote(tpm, ak, binding, selection);
  const { eventLog, imaLog, imaTemplateHash } = typeof logs === 'function' ? logs() : logs;
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, values] of result.pcrValues) {
    const label = hashAlg(bank).label;
    pcrs[label] = {};
    for (const [index, value] of values) pcrs[label][String(index)] = toHex(value);
  }
  return {
    quote: b64url(result.attestBytes),
    signature: b64url(result.signatureBytes),
    pcrs,
    ...(eventLog ? { eventLog: Buffer.from(eventLog).toString('base64') } : {}),
    ...(imaLog ? { imaLog: Buffer.from(imaLog).toString('base64'), ...(imaTemplateHash ? { imaTemplateHash } : {}) } : {}),
  };
}

/** The running kernel's logs, where this machine exposes them (securityfs); absent ones are left out. */
export const LINUX_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
export const LINUX_IMA_LOG = '/sys/kernel/security/ima/binary_runtime_measurements';

/** What `sigil attest --enrol` keeps so later runs quote with the same (enrolled) AK. */
export interface SavedAk {
  format: 'sigil.ak.v1';
  deviceId: string;
  tenant: string;
  akName: string;
  /** TPMT_PUBLIC and TPM2B_PRIVATE contents (hex); the private part is the TPM's encrypted blob. */
  public: string;
  private: string;
}

export function saveAk(enrolled: EnrolledTpm, tenant: string): SavedAk {
  return { format: 'sigil.ak.v1', deviceId: enrolled.deviceId, tenant, akName: enrolled.akName, public: toHex(marshal(TPMT_PUBLIC, enrolled.ak.publicArea)), private: toHex(enrolled.ak.privateBlob) };
}

/** Load a saved AK under the SRK again; the caller flushes it. */
export async function loadAk(tpm: Tpm, saved: SavedAk): Promise<AttestationKey> {
  if (saved?.format !== 'sigil.ak.v1') throw new SigilError('attester.ak_file_invalid', 'not a Sigil AK file (format sigil.ak.v1)');
  const publicArea = unmarshal(TPMT_PUBLIC, fromHex(saved.public), 'attester.ak_file_invalid');
  const privateBlob = fromHex(saved.private);
  const srk = await storageKey(tpm);
  try {
    const loaded = await tpm.client.run(load(auth(srk.handle), privateBlob, publicArea));
    return { handle: loaded.handle, name: loaded.name, publicArea, transient: true, privateBlob };
  } finally {
    if (srk.transient) await tpm.flush(srk.handle);
  }
}
