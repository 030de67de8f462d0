import { SigilError } from '../../core/errors.ts';
import { bytesEqual } from '../../core/bytes.ts';
import { toHex } from '../../core/hex.ts';
import type { EnclaveReport } from './enclave-report.ts';
import { JsonFields, parseJson } from './json-fields.ts';
import { u32leAt } from './le.ts';
import { readIdentityLevel, type IdentityTcbLevel } from './tcb-info.ts';
import type { TcbStatus } from './tcb-status.ts';

/**
 * TD QE identity, enclave identity version 2 (Intel PCS API v4, "Enclave Identity" JSON):
 *
 *   { id: "TD_QE", version: 2, issueDate, nextUpdate, tcbEvaluationDataNumber,
 *     miscselect (hex 4), miscselectMask (hex 4), attributes (hex 16), attributesMask (hex 16),
 *     mrsigner (hex 32), isvprodid, tcbLevels: [ { tcb: { isvsvn }, tcbDate, tcbStatus, advisoryIDs? } ] }
 */
export interface QeIdentity {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscSelect: number;
  miscSelectMask: number;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: IdentityTcbLevel[];
}

const CODE = 'tdx.qe_identity_malformed';

/** Parse the signed enclaveIdentity JSON text. */
export function parseQeIdentity(text: string): QeIdentity {
  const identity = new JsonFields(parseJson(text, CODE, 'QE identity'), CODE, 'enclaveIdentity');
  const id = identity.string('id');
  const version = identity.integer('version');
  // Intel QVL 4.1.2.4.14: a TDX quote needs a version-2 identity with id TD_QE.
  if (id !== 'TD_QE' || version !== 2) {
    throw new SigilError('tdx.qe_identity_unsupported', `QE identity id "${id}" version ${version} is not a TD_QE identity v2`, { id, version });
  }
  return {
    id,
    version,
    issueDate: identity.date('issueDate'),
    nextUpdate: identity.date('nextUpdate'),
    tcbEvaluationDataNumber: identity.integer('tcbEvaluationDataNumber'),
    // MISCSELECT is a little-endian u32 in the report; Intel's QVL reads the JSON bytes the same way.
    miscSelect: u32leAt(identity.hex('miscselect', 4), 0),
    miscSelectMask: u32leAt(identity.hex('miscselectMask', 4), 0),
    attributes: identity.hex('attributes', 16),
    attributesMask: identity.hex('attributesMask', 16),
    mrSigner: identity.hex('mrsigner', 32),
    isvProdId: identity.integer('isvprodid', 0xffff),
    tcbLevels: identity.objects('tcbLevels').map(readIdentityLevel),
  };
}

export interface QeIdentityResult {
  status: TcbStatus;
  isvSvn: number;
  tcbDate: string;
  advisoryIds: string[];
  tcbEvaluationDataNumber: number;
}

function mismatch(field: string, expected: string | number, actual: string | number): never {
  throw new SigilError('tdx.qe_identity_mismatch', `the QE report's ${field} does not match the QE identity`, { field, expected, actual });
}

/**
 * Match the QE report against the identity (Intel QVL EnclaveReportVerifier, 4.1.2.9.5-10):
 * MISCSELECT and ATTRIBUTES under their masks, MRSIGNER, ISVPRODID; then the first TCB level
 * whose isvsvn the report's ISVSVN reaches gives the QE's status.
 */
export function evaluateQeIdentity(report: EnclaveReport, identity: QeIdentity): QeIdentityResult {
  if (((report.miscSelect & identity.miscSelectMask) >>> 0) !== identity.miscSelect) {
    mismatch('MISCSELECT', identity.miscSelect, (report.miscSelect & identity.miscSelectMask) >>> 0);
  }
  const masked = report.attributes.map((b, i) => b & identity.attributesMask[i]);
  if (!bytesEqual(masked, identity.attributes)) mismatch('ATTRIBUTES', toHex(identity.attributes), toHex(masked));
  if (!bytesEqual(report.mrSigner, identity.mrSigner)) mismatch('MRSIGNER', toHex(identity.mrSigner), toHex(report.mrSigner));
  if (report.isvProdId !== identity.isvProdId) mismatch('ISVPRODID', identity.isvProdId, report.isvProdId);
  const level = identity.tcbLevels.find((l) => report.isvSvn >= l.isvSvn);
  if (!level) {
    throw new SigilError('tdx.qe_identity_no_matching_level', `no QE identity TCB level covers the QE's ISVSVN ${report.isvSvn}`, { isvSvn: report.isvSvn });
  }
  return {
    status: level.status,
    isvSvn: report.isvSvn,
    tcbDate: level.tcbDate,
    advisoryIds: [...level.advisoryIds], // a copy: claims never share arrays with (cached) collateral
    tcbEvaluationDataNumber: identity.tcbEvaluationDataNumber,
  };
}
