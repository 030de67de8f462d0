import { bytesEqual } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import type { PckExtensions } from './pck-extensions.ts';
import type { QeIdentityResult } from './qe-identity.ts';
import type { TcbInfo, TcbLevel, TdxModuleIdentity } from './tcb-info.ts';
import { convergeStatus, isConfigurationNeeded, type TcbStatus } from './tcb-status.ts';
import type { TdReport } from './td-report.ts';

/**
 * TDX TCB evaluation, following Intel's QVL (SGX-TDX-DCAP-QuoteVerificationLibrary,
 * QuoteVerifier.cpp 4.1.2.4.11 and Checks/TcbLevelCheck.cpp, TdxModuleCheck.cpp, TDRelaunchCheck.cpp):
 *
 * 1. TDX module identity: MRSIGNERSEAM and SEAMATTRIBUTES (under the mask) must match tcbInfo.tdxModule,
 *    or, when TEE_TCB_SVN[1] (the module's major version) > 0, the tdxModuleIdentities entry
 *    "TDX_<version as 2 hex digits>"; that identity's first level with isvsvn ≤ TEE_TCB_SVN[0]
 *    gives the module's status.
 * 2. TCB level: walking tcbLevels in order (newest first), the first level whose 16 SGX component
 *    SVNs and PCESVN the PCK certificate reaches is the SGX level; the first level that also
 *    matches TEE_TCB_SVN against tdxtcbcomponents is the TDX level. When the module version > 0,
 *    indexes 0 and 1 (module SVN and version) are skipped there, since step 1 judged them.
 * 3. The TDX level's status, converged with the module's, then (TD 1.5 bodies) the relaunch check
 *    on TEE_TCB_SVN2, then converged with the QE identity's status.
 */
export interface TdxModuleResult {
  /** "TDX_01" etc.; undefined for module version 0, which TCB Info's tdxModule covers. */
  id?: string;
  version: number;
  isvSvn: number;
  status: TcbStatus;
  tcbDate?: string;
  advisoryIds: string[];
}

export interface MatchedTcbLevel {
  tcbDate: string;
  status: TcbStatus;
  sgxComponents: number[];
  pceSvn: number;
  tdxComponents: number[];
  advisoryIds: string[];
}

export interface TcbEvaluation {
  /** The final status, as Intel's QVL would report it. */
  status: TcbStatus;
  /** Advisories of the matched TDX TCB level, TDX module level and QE identity level. */
  advisoryIds: string[];
  tcbLevel: MatchedTcbLevel;
  sgxTcbLevel: MatchedTcbLevel;
  tdxModule: TdxModuleResult;
  qeIdentity?: QeIdentityResult;
  tcbEvaluationDataNumber: number;
  fmspc: string;
}

function findModuleIdentity(tcbInfo: TcbInfo, version: number): TdxModuleIdentity | undefined {
  const id = `TDX_${version.toString(16).padStart(2, '0').toUpperCase()}`;
  return tcbInfo.tdxModuleIdentities.find((identity) => identity.id.toUpperCase() === id);
}

/** Step 1 (4.1.2.4.11): the module's signer and attributes, and its TCB status. */
export function evaluateTdxModule(tcbInfo: TcbInfo, body: TdReport): TdxModuleResult {
  const version = body.teeTcbSvn[1];
  const isvSvn = body.teeTcbSvn[0];
  let expected: { mrSigner: Uint8Array; attributes: Uint8Array; attributesMask: Uint8Array } = tcbInfo.tdxModule;
  let identity: TdxModuleIdentity | undefined;
  if (version > 0) {
    identity = findModuleIdentity(tcbInfo, version);
    if (!identity) {
      throw new SigilError('tdx.tdx_module_mismatch', `the TCB info has no identity for TDX module version ${version}`, { version });
    }
    expected = identity;
  }
  if (!bytesEqual(body.mrSignerSeam, expected.mrSigner)) {
    throw new SigilError('tdx.tdx_module_mismatch', 'MRSIGNERSEAM does not match the TDX module signer in the TCB info', {
      expected: toHex(expected.mrSigner),
      actual: toHex(body.mrSignerSeam),
    });
  }
  const masked = body.seamAttributes.map((b, i) => b & expected.attributesMask[i]);
  if (!bytesEqual(masked, expected.attributes)) {
    throw new SigilError('tdx.tdx_module_mismatch', 'SEAMATTRIBUTES do not match the TDX module attributes in the TCB info', {
      expected: toHex(expected.attributes),
      actual: toHex(masked),
    });
  }
  if (!identity) return { version, isvSvn, status: 'UpToDate', advisoryIds: [] };
  const level = identity.tcbLevels.find((l) => isvSvn >= l.isvSvn);
  if (!level) {
    throw new SigilError('tdx.tdx_module_no_matching_level', `no TCB level of ${identity.id} covers the TDX module ISVSVN ${isvSvn}`, { id: identity.id, isvSvn });
  }
  return { id: identity.id, version, isvSvn, status: level.status, tcbDate: level.tcbDate, advisoryIds: [...level.advisoryIds] };
}

function sgxMatches(pck: PckExtensions, level: TcbLevel): boolean {
  return pck.pceSvn >= level.pceSvn && level.sgxComponents.every((svn, i) => pck.sgxTcbComponents[i] >= svn);
}

function tdxMatches(teeTcbSvn: Uint8Array, level: TcbLevel): boolean {
  const start = teeTcbSvn[1] > 0 ? 2 : 0;
  for (let i = start; i < 16; i++) if (teeTcbSvn[i] < level.tdxComponents[i]) return false;
  return true;
}

/** Copies: claims never share arrays with the TCB info, which verifyTdxQuote keeps between calls. */
function describe(level: TcbLevel): MatchedTcbLevel {
  const { tcbDate, status, sgxComponents, pceSvn, tdxComponents, advisoryIds } = level;
  return { tcbDate, status, sgxComponents: [...sgxComponents], pceSvn, tdxComponents: [...tdxComponents], advisoryIds: [...advisoryIds] };
}

/** Step 2: the SGX and TDX TCB levels. */
export function matchTcbLevels(tcbInfo: TcbInfo, pck: PckExtensions, body: TdReport): { sgx: TcbLevel; tdx: TcbLevel } {
  let sgx: TcbLevel | undefined;
  for (const level of tcbInfo.tcbLevels) {
    if (!sgxMatches(pck, level)) continue;
    sgx ??= level;
    if (tdxMatches(body.teeTcbSvn, level)) return { sgx, tdx: level };
  }
  throw new SigilError('tdx.tcb_no_matching_level', `no matching TCB level found for the ${sgx ? 'TDX' : 'SGX'} TCB in the TCB info`, {
    stage: sgx ? 'tdx' : 'sgx',
    pckSgxComponents: pck.sgxTcbComponents,
    pckPceSvn: pck.pceSvn,
    teeTcbSvn: toHex(body.teeTcbSvn),
  });
}

/** TDRelaunchCheck.cpp: a TD 1.5 whose module was updated in place may only need relaunching. */
function relaunchStatus(tcbInfo: TcbInfo, body: TdReport, sgxStatus: TcbStatus, tdxStatus: TcbStatus, module: TdxModuleResult, qe?: QeIdentityResult): TcbStatus {
  const svn2 = body.teeTcbSvn2;
  if (!svn2) return tdxStatus;
  if (qe && qe.status !== 'UpToDate') return tdxStatus;
  if (!['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded'].includes(sgxStatus)) return tdxStatus;
  if (tdxStatus !== 'OutOfDate' && tdxStatus !== 'OutOfDateConfigurationNeeded') return tdxStatus;
  if (module.status !== 'OutOfDate') return tdxStatus;
  const latest = tcbInfo.tcbLevels[0];
  let moduleCurrent: boolean;
  if (svn2[1] === 0) {
    moduleCurrent = svn2[0] >= latest.tdxComponents[0];
  } else {
    const identity = findModuleIdentity(tcbInfo, svn2[1]);
    if (!identity) throw new SigilError('tdx.tdx_module_mismatch', `the TCB info has no identity for TDX module version ${svn2[1]} (TEE_TCB_SVN2)`);
    const latestModule = identity.tcbLevels[0];
    if (!latestModule) throw new SigilError('tdx.tdx_module_no_matching_level', `${identity.id} has no TCB levels`);
    moduleCurrent = svn2[0] >= latestModule.isvSvn;
  }
  if (!moduleCurrent || svn2[2] < latest.tdxComponents[2]) return tdxStatus;
  return isConfigurationNeeded(sgxStatus) || isConfigurationNeeded(tdxStatus) ? 'TDRelaunchAdvisedConfigurationNeeded' : 'TDRelaunchAdvised';
}

export function evaluateTcb(input: { tcbInfo: TcbInfo; pck: PckExtensions; body: TdReport; qeIdentity?: QeIdentityResult }): TcbEvaluation {
  const { tcbInfo, pck, body, qeIdentity } = input;
  if (pck.fmspc !== tcbInfo.fmspc) {
    throw new SigilError('tdx.tcb_info_mismatch', `the TCB info is for FMSPC ${tcbInfo.fmspc}, the PCK certificate's is ${pck.fmspc}`, { tcbInfo: tcbInfo.fmspc, pck: pck.fmspc });
  }
  if (pck.pceId !== tcbInfo.pceId) {
    throw new SigilError('tdx.tcb_info_mismatch', `the TCB info is for PCE-ID ${tcbInfo.pceId}, the PCK certificate's is ${pck.pceId}`, { tcbInfo: tcbInfo.pceId, pck: pck.pceId });
  }
  const tdxModule = evaluateTdxModule(tcbInfo, body);
  const { sgx, tdx } = matchTcbLevels(tcbInfo, pck, body);
  let status = convergeStatus(tdx.status, tdxModule.status);
  if (status !== 'Revoked') {
    status = relaunchStatus(tcbInfo, body, sgx.status, status, tdxModule, qeIdentity);
    if (qeIdentity) status = convergeStatus(status, qeIdentity.status);
  }
  const advisoryIds = [...new Set([...tdx.advisoryIds, ...tdxModule.advisoryIds, ...(qeIdentity?.advisoryIds ?? [])])];
  return {
    status,
    advisoryIds,
    tcbLevel: describe(tdx),
    sgxTcbLevel: describe(sgx),
    tdxModule,
    qeIdentity,
    tcbEvaluationDataNumber: tcbInfo.tcbEvaluationDataNumber,
    fmspc: tcbInfo.fmspc,
  };
}
