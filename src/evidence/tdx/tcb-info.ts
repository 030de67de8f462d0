import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { JsonFields, parseJson } from './json-fields.ts';
import { IDENTITY_LEVEL_STATUSES, TCB_LEVEL_STATUSES, type TcbStatus } from './tcb-status.ts';

/**
 * TDX TCB Info, version 3 (Intel PCS API v4, "TDX TCB Info" / "tcbInfo" JSON):
 *
 *   { id: "TDX", version: 3, issueDate, nextUpdate, fmspc (hex 6), pceId (hex 2), tcbType: 0,
 *     tcbEvaluationDataNumber,
 *     tdxModule: { mrsigner (hex 48), attributes (hex 8), attributesMask (hex 8) },
 *     tdxModuleIdentities?: [ { id: "TDX_01", mrsigner, attributes, attributesMask,
 *                               tcbLevels: [ { tcb: { isvsvn }, tcbDate, tcbStatus, advisoryIDs? } ] } ],
 *     tcbLevels: [ { tcb: { sgxtcbcomponents: [16 × { svn, category?, type? }], pcesvn,
 *                           tdxtcbcomponents: [16 × { svn, ... }] },
 *                    tcbDate, tcbStatus, advisoryIDs? } ] }       ordered newest first
 */
export interface TcbLevel {
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface IdentityTcbLevel {
  isvSvn: number;
  tcbDate: string;
  status: TcbStatus;
  advisoryIds: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  tcbLevels: IdentityTcbLevel[];
}

export interface TcbInfo {
  id: string;
  version: number;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: string;
  pceId: string;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tdxModule: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array };
  tdxModuleIdentities: TdxModuleIdentity[];
  tcbLevels: TcbLevel[];
}

const CODE = 'tdx.tcb_info_malformed';

function status(fields: JsonFields, allowed: readonly TcbStatus[]): TcbStatus {
  const value = fields.string('tcbStatus');
  if (!(allowed as readonly string[]).includes(value)) {
    throw new SigilError('tdx.tcb_status_unrecognized', `${fields.path}.tcbStatus "${value}" is not a recognized TCB status`, { status: value });
  }
  return value as TcbStatus;
}

function components(fields: JsonFields, name: string): number[] {
  const list = fields.objects(name, 64);
  // Intel's QVL and dcap-qvl reject a component array of any other length ("component count mismatch").
  if (list.length !== 16) fields.fail(name, `has ${list.length} components, expected 16`);
  return list.map((component) => component.integer('svn', 255));
}

export function readIdentityLevel(level: JsonFields): IdentityTcbLevel {
  return {
    isvSvn: level.child('tcb').integer('isvsvn', 0xffff),
    tcbDate: level.string('tcbDate'),
    status: status(level, IDENTITY_LEVEL_STATUSES),
    advisoryIds: level.strings('advisoryIDs'),
  };
}

/** Parse the signed tcbInfo JSON text (the object under "tcbInfo" in a PCS response). */
export function parseTcbInfo(text: string): TcbInfo {
  const info = new JsonFields(parseJson(text, CODE, 'TCB info'), CODE, 'tcbInfo');
  const id = info.string('id');
  const version = info.integer('version');
  if (id !== 'TDX' || version !== 3) {
    throw new SigilError('tdx.tcb_info_unsupported', `TCB info id "${id}" version ${version} is not TDX TCB info v3`, { id, version });
  }
  const module = info.child('tdxModule');
  return {
    id,
    version,
    issueDate: info.date('issueDate'),
    nextUpdate: info.date('nextUpdate'),
    fmspc: toHex(info.hex('fmspc', 6)),
    pceId: toHex(info.hex('pceId', 2)),
    tcbType: info.integer('tcbType'),
    tcbEvaluationDataNumber: info.integer('tcbEvaluationDataNumber'),
    tdxModule: { mrSigner: module.hex('mrsigner', 48), attributes: module.hex('attributes', 8), attributesMask: module.hex('attributesMask', 8) },
    tdxModuleIdentities: info.has('tdxModuleIdentities')
      ? info.objects('tdxModuleIdentities', 64).map((identity) => ({
          id: identity.string('id'),
          mrSigner: identity.hex('mrsigner', 48),
          attributes: identity.hex('attributes', 8),
          attributesMask: identity.hex('attributesMask', 8),
          tcbLevels: identity.objects('tcbLevels').map(readIdentityLevel),
        }))
      : [],
    tcbLevels: info.objects('tcbLevels').map((level) => {
      const tcb = level.child('tcb');
      return {
        sgxComponents: components(tcb, 'sgxtcbcomponents'),
        pceSvn: tcb.integer('pcesvn', 0xffff),
        tdxComponents: components(tcb, 'tdxtcbcomponents'),
        tcbDate: level.string('tcbDate'),
        status: status(level, TCB_LEVEL_STATUSES),
        advisoryIds: level.strings('advisoryIDs'),
      };
    }),
  };
}
