/**
 * `npm run bench:tpm`: quote, seal+unseal and PCR_Extend on one swtpm, three ways each:
 *   - Sigil in-process (the high-level API, what callers use);
 *   - tpm2-tools, one process per command as a shell script would run them;
 *   - the floor: the same TPM command bytes Sigil sent, replayed raw over the same transport
 *     (TPM work + round trips, no marshaling, sessions or crypto on our side).
 * Also the raw round-trip floor TPM2_GetRandom(8). Ratios: Sigil ops/s ÷ tpm2-tools ops/s
 * (`_vs_tpm2tools`, goal ≥ 10) and Sigil time ÷ floor time (`_vs_floor`, goal ≤ 1.2).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../src/core/hex.ts';
import { auth } from '../src/tpm/command.ts';
import { evictControl } from '../src/tpm/commands/context.ts';
import { create, load, unseal as unsealCommand } from '../src/tpm/commands/object.ts';
import { TPM_ALG, TPM_RH } from '../src/tpm/constants.ts';
import { PolicySession } from '../src/tpm/session/policy.ts';
import { startSwtpm } from '../src/tpm/swtpm-process.ts';
import { sealedDataTemplate } from '../src/tpm/templates.ts';
import { Tpm } from '../src/tpm/tpm.ts';
import { quote } from '../src/tpm/tpm-attest.ts';
import { createAttestationKey, provisionStorageKey, SRK_PERSISTENT_HANDLE, type LoadedKey } from '../src/tpm/tpm-keys.ts';
import { seal, selectionFromSpec, unseal } from '../src/tpm/tpm-seal.ts';
import { PolicyCalculator } from '../src/tpm/policy/calculator.ts';
import { RecordingTransport } from '../src/tpm/transport/recording.ts';
import type { SwtpmTransport } from '../src/tpm/transport/swtpm.ts';
import { measure, printResult, round, run, type Rate } from './support.ts';

const AK_PERSISTENT = 0x81000002;
const budget = Number(process.env.BENCH_MS ?? 1500);
const toolRuns = Number(process.env.BENCH_TOOL_RUNS ?? 15);

const swtpm = await startSwtpm({ pcrBanks: ['sha256'] });
const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${swtpm.serverPort}` };
const work = mkdtempSync(join(tmpdir(), 'sigil-bench-'));
const figures: Record<string, number> = {};
const ratios: Record<string, number> = {};

/** Replay recorded command bytes raw; every response must be a success, or the floor is invalid. */
async function replay(transport: SwtpmTransport, commands: Uint8Array[]): Promise<void> {
  for (const command of commands) {
    const response = await transport.send(command);
    const rc = new DataView(response.buffer, response.byteOffset).getUint32(6);
    if (rc !== 0) throw new Error(`replayed command 0x${toHex(command.subarray(6, 10))} answered rc 0x${rc.toString(16)}`);
  }
}

/**
 * The command bytes one run of `op` sends, recorded after a warm-up run. Commands the TPM answered
 * with TPM_RC_RETRY (libtpms does so on a key's first use) are dropped: the client resent them.
 */
async function recordCommands(op: (tpm: Tpm) => Promise<unknown>): Promise<Uint8Array[]> {
  const recorder = new RecordingTransport(swtpm.transport());
  const tpm = new Tpm(recorder);
  try {
    await op(tpm);
    recorder.clear();
    await op(tpm);
    const done = recorder.exchanges.filter((e) => new DataView(e.response.buffer, e.response.byteOffset).getUint32(6) !== 0x922);
    console.log(`  floor replays ${done.length} commands: ${done.map((e) => `0x${toHex(e.command.subarray(8, 10))}`).join(' ')}`);
    return done.map((e) => e.command);
  } finally {
    await tpm.close();
  }
}

/** Measure `op` on a fresh connection, then the raw replay of its commands. */
async function sigilAndFloor(op: (tpm: Tpm) => Promise<unknown>): Promise<[Rate, Rate]> {
  const tpm = new Tpm(swtpm.transport());
  const sigil = await measure(() => op(tpm), budget);
  await tpm.close();
  const commands = await recordCommands(op);
  const raw = swtpm.transport();
  const floor = await measure(() => replay(raw, commands), budget);
  await raw.close();
  return [sigil, floor];
}

function report(name: string, sigil: Rate, tools: Rate, floor: Rate): void {
  figures[`${name}_sigil_ops_per_s`] = round(sigil.opsPerSecond, 1);
  figures[`${name}_tpm2tools_ops_per_s`] = round(tools.opsPerSecond, 1);
  figures[`${name}_floor_ops_per_s`] = round(floor.opsPerSecond, 1);
  ratios[`${name}_vs_tpm2tools`] = round(sigil.opsPerSecond / tools.opsPerSecond);
  ratios[`${name}_vs_floor`] = round(sigil.msPerOp / floor.msPerOp);
  console.log(
    `${name.padEnd(12)} sigil ${sigil.opsPerSecond.toFixed(1).padStart(7)}/s (${sigil.msPerOp.toFixed(2)} ms)  ` +
      `tpm2-tools ${tools.opsPerSecond.toFixed(1).padStart(6)}/s  floor ${floor.opsPerSecond.toFixed(1).padStart(7)}/s  ` +
      `→ ${(sigil.opsPerSecond / tools.opsPerSecond).toFixed(1)}× tpm2-tools, ${(sigil.msPerOp / floor.msPerOp).toFixed(2)}× floor`,
  );
}

try {
  // Provision as a device would: a persistent SRK and a persistent AK, shared by both tools.
  const tpm = new Tpm(swtpm.transport());
  const srk = await provisionStorageKey(tpm);
  const transientAk = await createAttestationKey(tpm, srk, 'ecc');
  await tpm.client.run(evictControl(auth(TPM_RH.OWNER), transientAk.handle, AK_PERSISTENT));
  await tpm.flush(transientAk.handle);
  const ak: LoadedKey = { ...transientAk, handle: AK_PERSISTENT, transient: false };
  const selection = selectionFromSpec('sha256:0,1,2,3,4,5,6,7,16');
  const sealSelection = selectionFromSpec('sha256:16');
  const secret = new TextEncoder().encode('benchmark secret');
  writeFileSync(join(work, 'secret.bin'), secret);

  // Raw round-trip floor.
  const raw = swtpm.transport();
  const getRandom = new Uint8Array([0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08]);
  await tpm.close();
  const roundTrip = await measure(() => raw.send(getRandom), budget);
  figures.getrandom_roundtrip_ops_per_s = round(roundTrip.opsPerSecond, 1);
  figures.getrandom_roundtrip_us = round(roundTrip.msPerOp * 1000, 1);
  console.log(`raw GetRandom(8) round trip: ${roundTrip.opsPerSecond.toFixed(0)}/s (${(roundTrip.msPerOp * 1000).toFixed(0)} µs)`);
  await raw.close();

  // PCR_Extend.
  const digest = new Uint8Array(32).fill(7);
  const [extendSigil, extendFloor] = await sigilAndFloor((t) => t.extend(16, [{ hashAlg: TPM_ALG.SHA256, digest }]));
  const extendTools = await measure(() => run('tpm2_pcrextend', [`16:sha256=${toHex(digest)}`], env), 0, toolRuns, 1);
  report('pcr_extend', extendSigil, extendTools, extendFloor);

  // Quote (+ reading the quoted PCR values, which a verifier needs and tpm2_quote -o also does).
  const nonce = new Uint8Array(20).fill(9);
  const [quoteSigil, quoteFloor] = await sigilAndFloor((t) => quote(t, ak, nonce, selection));
  const quoteArgs = ['-c', `0x${AK_PERSISTENT.toString(16)}`, '-l', 'sha256:0,1,2,3,4,5,6,7,16', '-q', toHex(nonce), '-m', join(work, 'q.msg'), '-s', join(work, 'q.sig'), '-o', join(work, 'q.pcrs'), '-g', 'sha256'];
  const quoteTools = await measure(() => run('tpm2_quote', quoteArgs, env), 0, toolRuns, 1);
  report('quote', quoteSigil, quoteTools, quoteFloor);

  // Seal + unseal under a PCR policy, persistent SRK as parent. The like-for-like run uses no
  // salt and no parameter encryption (as tpm2-tools' defaults here), and a policy of
  // PolicyPCR + PolicyPassword so its Unseal carries no HMAC and the floor can replay it.
  const srkKey: LoadedKey = { ...srk, handle: SRK_PERSISTENT_HANDLE, transient: false };
  const plainOp = async (t: Tpm) => {
    const values = await t.readSelection(sealSelection);
    const policyDigest = await new PolicyCalculator(TPM_ALG.SHA256).policyPCR(sealSelection, [values.get(TPM_ALG.SHA256)!.get(16)!]).policyPassword().digest();
    const created = await t.client.run(create(auth(srkKey.handle), { inSensitive: { data: secret }, inPublic: sealedDataTemplate({ authPolicy: policyDigest }) }));
    const loaded = await t.client.run(load(auth(srkKey.handle), created.outPrivate, created.outPublic));
    const policy = await PolicySession.start(t.client, { continueSession: false });
    await policy.policyPCR(sealSelection);
    await policy.policyPassword();
    await t.client.run(unsealCommand({ handle: loaded.handle, name: loaded.name, session: policy }));
    await t.flush(loaded.handle);
  };
  const [sealPlain, sealFloor] = await sigilAndFloor(plainOp);
  const protectedTpm = new Tpm(swtpm.transport());
  const sealProtected = await measure(async () => unseal(protectedTpm, await seal(protectedTpm, { secret, selection: sealSelection })), budget);
  await protectedTpm.close();
  const sealTools = await measure(
    async () => {
      await run('tpm2_createpolicy', ['--policy-pcr', '-l', 'sha256:16', '-L', join(work, 'pol.bin')], env);
      await run('tpm2_flushcontext', ['-l'], env);
      await run('tpm2_create', ['-C', `0x${SRK_PERSISTENT_HANDLE.toString(16)}`, '-L', join(work, 'pol.bin'), '-a', 'fixedtpm|fixedparent', '-i', join(work, 'secret.bin'), '-u', join(work, 's.pub'), '-r', join(work, 's.priv')], env);
      await run('tpm2_load', ['-C', `0x${SRK_PERSISTENT_HANDLE.toString(16)}`, '-u', join(work, 's.pub'), '-r', join(work, 's.priv'), '-c', join(work, 's.ctx')], env);
      await run('tpm2_unseal', ['-c', join(work, 's.ctx'), '-p', 'pcr:sha256:16'], env);
      await run('tpm2_flushcontext', ['-t'], env);
    },
    0,
    Math.max(5, Math.round(toolRuns / 2)),
    1,
  );
  report('seal_unseal', sealPlain, sealTools, sealFloor);
  figures.seal_unseal_protected_ops_per_s = round(sealProtected.opsPerSecond, 1);
  ratios.seal_unseal_protected_vs_tpm2tools = round(sealProtected.opsPerSecond / sealTools.opsPerSecond);
  console.log(`seal_unseal with salted, encrypted sessions (Sigil's default): ${sealProtected.opsPerSecond.toFixed(1)}/s (${sealProtected.msPerOp.toFixed(2)} ms)`);
} finally {
  rmSync(work, { recursive: true, force: true });
  await swtpm.stop();
}
printResult('tpm', figures, ratios);
