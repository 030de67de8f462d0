/**
 * Start and stop private swtpm instances for tests, benchmarks and demos.
 *
 * Each instance owns a temporary folder (TPM state, logs, its own swtpm-localca CA), listens on a
 * free 127.0.0.1 port pair, and is always stopped: stop() shuts it down, and handlers on process
 * exit, SIGINT and SIGTERM kill any instance still running, so no swtpm outlives its owner.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { readU32 } from './transport/framing.ts';
import { SwtpmControl, SwtpmTransport } from './transport/swtpm.ts';

export interface StartSwtpmOptions {
  /** Manufacture the TPM with swtpm_setup: RSA + ECC EKs, EK and platform certificates in NV. */
  ekCert?: boolean;
  /** Active PCR banks; default sha1 and sha256, so code is exercised against two banks. */
  pcrBanks?: string[];
  /** How long to wait for swtpm to listen; default 10 s. */
  startTimeoutMs?: number;
  /** Executables, when not the ones on PATH. */
  swtpmBinary?: string;
  swtpmSetupBinary?: string;
}

export interface SwtpmInstance {
  readonly pid: number;
  readonly serverPort: number;
  readonly controlPort: number;
  /** Everything the instance owns; stop() removes it. */
  readonly dir: string;
  /** swtpm's --tpmstate folder, inside `dir`. */
  readonly stateDir: string;
  /** swtpm://127.0.0.1:<serverPort>, for openTransport(). */
  readonly uri: string;
  readonly pcrBanks: readonly string[];
  readonly control: SwtpmControl;
  /** With ekCert: the private swtpm-localca folder and its CA certificates (PEM paths). */
  readonly localCaDir?: string;
  readonly localCa?: { rootCert: string; intermediateCert: string };
  /** A new transport on the data port. swtpm serves one client at a time: close it when done. */
  transport(options?: { timeoutMs?: number }): SwtpmTransport;
  stop(): Promise<void>;
}

/** TPM_ALG_ID of each PCR bank libtpms implements. */
const PCR_BANK_ALGORITHMS: Record<string, number> = { sha1: 0x0004, sha256: 0x000b, sha384: 0x000c, sha512: 0x000d };
const DEFAULT_PCR_BANKS = ['sha1', 'sha256'];

interface LiveInstance {
  child: ChildProcess;
  dir: string;
}
const live = new Set<LiveInstance>();
let handlersInstalled = false;

export async function startSwtpm(options: StartSwtpmOptions = {}): Promise<SwtpmInstance> {
  const pcrBanks = checkPcrBanks(options.pcrBanks ?? DEFAULT_PCR_BANKS);
  installExitHandlers();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-swtpm-'));
  const stateDir = path.join(dir, 'tpm');
  try {
    // swtpm's option syntax is comma-separated key=value pairs, with no quoting.
    if (dir.includes(',')) throw new SigilError('tpm.swtpm_start_failed', `swtpm options cannot carry a path with a comma: ${dir}`, { dir });
    await mkdir(stateDir);
    const localCaDir = options.ekCert ? await manufacture(dir, stateDir, pcrBanks, options.swtpmSetupBinary ?? 'swtpm_setup') : undefined;
    const started = await spawnListening(dir, stateDir, options);
    const instance = makeInstance(started, dir, stateDir, pcrBanks, localCaDir);
    if (!options.ekCert) {
      try {
        await allocatePcrBanks(instance, pcrBanks);
      } catch (error) {
        await instance.stop();
        throw error;
      }
    }
    return instance;
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

interface Started {
  child: ChildProcess;
  entry: LiveInstance;
  exited: Promise<void>;
  serverPort: number;
}

function makeInstance(started: Started, dir: string, stateDir: string, pcrBanks: string[], localCaDir: string | undefined): SwtpmInstance {
  const { child, entry, exited, serverPort } = started;
  const controlPort = serverPort + 1;
  const transports = new Set<SwtpmTransport>();
  let stopping: Promise<void> | undefined;
  const hasExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const waitExit = (ms: number): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      exited.then(() => {
        clearTimeout(timer); // a pending timer would keep the process alive for nothing
        resolve(true);
      });
    });
  return {
    pid: child.pid!,
    serverPort,
    controlPort,
    dir,
    stateDir,
    uri: `swtpm://127.0.0.1:${serverPort}`,
    pcrBanks,
    control: new SwtpmControl({ port: controlPort }),
    localCaDir,
    localCa: localCaDir
      ? { rootCert: path.join(localCaDir, 'swtpm-localca-rootca-cert.pem'), intermediateCert: path.join(localCaDir, 'issuercert.pem') }
      : undefined,
    transport(options = {}) {
      const transport = new SwtpmTransport({ port: serverPort, timeoutMs: options.timeoutMs });
      transports.add(transport);
      return transport;
    },
    stop() {
      stopping ??= (async () => {
        await Promise.allSettled([...transports].map((t) => t.close()));
        if (!hasExited()) {
          // CMD_SHUTDOWN lets swtpm exit cleanly; SIGTERM if the control channel does not answer.
          await new SwtpmControl({ port: controlPort, timeoutMs: 1000 }).shutdown().catch(() => child.kill('SIGTERM'));
          if (!(await waitExit(2000))) {
            child.kill('SIGKILL');
            await waitExit(2000);
          }
        }
        live.delete(entry);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/** Spawn swtpm on a free port pair; retry with new ports if another process took them first. */
async function spawnListening(dir: string, stateDir: string, options: StartSwtpmOptions): Promise<Started> {
  const binary = options.swtpmBinary ?? 'swtpm';
  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  for (let attempt = 1; ; attempt++) {
    const serverPort = await freePortPair();
    const args = [
      'socket', '--tpm2',
      '--server', `type=tcp,port=${serverPort},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${serverPort + 1},bindaddr=127.0.0.1`,
      '--tpmstate', `dir=${stateDir}`,
      '--flags', 'not-need-init,startup-clear',
      '--log', `file=${path.join(dir, 'swtpm.log')}`,
    ];
    const child = spawn(binary, args, { stdio: 'ignore', detached: false });
    child.unref(); // a forgotten instance must not keep the process alive; the exit handler kills it
    const entry: LiveInstance = { child, dir };
    live.add(entry);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    const polling = { cancelled: false };
    const outcome = await Promise.race([
      waitListening(serverPort, deadline, polling).then((ok) => (ok ? 'ready' : 'timeout')),
      exited.then(() => 'exited'),
      spawnError.then((error) => error),
    ]);
    polling.cancelled = true;
    if (outcome === 'ready') return { child, entry, exited, serverPort };
    live.delete(entry);
    child.kill('SIGKILL');
    if (outcome instanceof Error) {
      const code = (outcome as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new SigilError('tpm.swtpm_missing', `${binary} is not installed: install the swtpm and swtpm-tools packages (npm run setup)`, {
          binary,
          category: 'environment',
        });
      }
      throw new SigilError('tpm.swtpm_start_failed', `cannot run ${binary}: ${outcome.message}`, { binary, code }, { cause: outcome });
    }
    const log = await readLog(path.join(dir, 'swtpm.log'));
    if (outcome === 'exited' && attempt < 3 && Date.now() < deadline) continue; // most likely a port race
    throw new SigilError('tpm.swtpm_start_failed', `swtpm did not start listening (${outcome}): ${log || 'no log output'}`, {
      serverPort,
      exitCode: child.exitCode,
      log,
    });
  }
}

/** Ask the OS for a free port whose successor is free too (data port, then control port). */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = await listen(0);
    if (!first) continue;
    const port = (first.address() as net.AddressInfo).port;
    const second = port < 65535 ? await listen(port + 1) : undefined;
    await Promise.all([close(first), second && close(second)]);
    if (second) return port;
  }
  throw new SigilError('tpm.swtpm_start_failed', 'found no free pair of adjacent TCP ports on 127.0.0.1');
}

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Poll until both ports accept connections, or the deadline passes. */
async function waitListening(serverPort: number, deadline: number, polling: { cancelled: boolean }): Promise<boolean> {
  while (Date.now() < deadline && !polling.cancelled) {
    if ((await canConnect(serverPort)) && (await canConnect(serverPort + 1))) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function readLog(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-10).join('\n');
}

/**
 * Run swtpm_setup with a private swtpm-localca configuration, so the CA lands in our folder and
 * no system directory (/var/lib/swtpm-localca) is touched. NV stays unlocked: tests define indices.
 */
async function manufacture(dir: string, stateDir: string, pcrBanks: string[], binary: string): Promise<string> {
  const caDir = path.join(dir, 'ca');
  await mkdir(caDir);
  const localcaConf = path.join(dir, 'swtpm-localca.conf');
  const localcaOptions = path.join(dir, 'swtpm-localca.options');
  const setupConf = path.join(dir, 'swtpm_setup.conf');
  await writeFile(
    localcaConf,
    [`statedir = ${caDir}`, `signingkey = ${caDir}/signkey.pem`, `issuercert = ${caDir}/issuercert.pem`, `certserial = ${caDir}/certserial`, ''].join('\n'),
  );
  await writeFile(localcaOptions, ['--platform-manufacturer Sigil', '--platform-version 2.1', '--platform-model swtpm', ''].join('\n'));
  await writeFile(
    setupConf,
    ['create_certs_tool = swtpm_localca', `create_certs_tool_config = ${localcaConf}`, `create_certs_tool_options = ${localcaOptions}`, ''].join('\n'),
  );
  const logFile = path.join(dir, 'swtpm_setup.log');
  const args = [
    '--tpm2', '--tpmstate', stateDir,
    '--create-ek-cert', '--create-platform-cert', '--overwrite',
    '--pcr-banks', pcrBanks.join(','),
    '--config', setupConf,
    '--logfile', logFile,
  ];
  // TMPDIR and XDG_CONFIG_HOME keep swtpm_setup's scratch files and config lookups in our folder.
  const env = { ...process.env, TMPDIR: dir, XDG_CONFIG_HOME: dir };
  await new Promise<void>((resolve, reject) => {
    execFile(binary, args, { env, timeout: 60_000 }, (error) => {
      if (!error) return resolve();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new SigilError('tpm.swtpm_missing', `${binary} is not installed: install the swtpm-tools package (npm run setup)`, {
          binary,
          category: 'environment',
        }));
      }
      readLog(logFile).then((log) =>
        reject(new SigilError('tpm.swtpm_setup_failed', `swtpm_setup failed: ${log || error.message}`, { log }, { cause: error })),
      );
    });
  });
  return caDir;
}

/**
 * Select the PCR banks of a fresh TPM (which starts with all four). The bytes are written here
 * rather than with the command layer so the launcher stands alone:
 * TPM2_PCR_Allocate(TPM_RH_PLATFORM, empty password session), then _TPM_Init and
 * TPM2_Startup(CLEAR), because a new allocation takes effect only after a power cycle.
 */
async function allocatePcrBanks(instance: SwtpmInstance, banks: string[]): Promise<void> {
  const selections = Object.entries(PCR_BANK_ALGORITHMS).map(([name, alg]) => {
    const select = banks.includes(name) ? 'ffffff' : '000000'; // all 24 PCRs or none
    return alg.toString(16).padStart(4, '0') + '03' + select;
  });
  const parameters =
    '4000000c' + // TPM_RH_PLATFORM
    '00000009' + '40000009' + '0000' + '00' + '0000' + // auth area: TPM_RS_PW, no nonce, no attributes, empty password
    selections.length.toString(16).padStart(8, '0') + selections.join('');
  const command = fromHex('8002' + (10 + parameters.length / 2).toString(16).padStart(8, '0') + '0000012b' + parameters);
  const transport = instance.transport();
  try {
    const response = await transport.send(command);
    // Response: header, u32 parameterSize, TPMI_YES_NO allocationSuccess, ...
    if (readU32(response, 6) !== 0 || response[14] !== 1) {
      throw new SigilError('tpm.swtpm_start_failed', `TPM2_PCR_Allocate failed: ${toHex(response.subarray(0, 16))}`, { banks });
    }
    await instance.control.init();
    const startup = await transport.send(fromHex('80010000000c000001440000')); // TPM2_Startup(CLEAR)
    if (readU32(startup, 6) !== 0) {
      throw new SigilError('tpm.swtpm_start_failed', `TPM2_Startup failed after selecting PCR banks: ${toHex(startup)}`, { banks });
    }
  } finally {
    await transport.close();
  }
}

function checkPcrBanks(banks: string[]): string[] {
  const unique = [...new Set(banks)];
  if (unique.length === 0 || unique.length !== banks.length || unique.some((bank) => !(bank in PCR_BANK_ALGORITHMS))) {
    throw new SigilError('tpm.pcr_bank_invalid', `PCR banks must be distinct names from ${Object.keys(PCR_BANK_ALGORITHMS).join(', ')}`, { banks });
  }
  return unique;
}

/** Synchronous, so it works inside 'exit': kill every instance still running and drop its folder. */
function killAllSync(): void {
  for (const instance of live) {
    try {
      instance.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    rmSync(instance.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      const gone = [...live].map(({ child }) => new Promise((resolve) => (child.exitCode ?? child.signalCode) !== null ? resolve(undefined) : child.once('exit', resolve)));
      killAllSync();
      // A listener replaces Node's default "exit on signal"; when ours is the only one, restore
      // the default and re-raise so the process still ends the way the signal asked. Waiting
      // for the children first lets Node reap them, so none is left as a zombie.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, handler);
        const reraise = (): boolean => process.kill(process.pid, signal);
        Promise.race([Promise.all(gone), new Promise((resolve) => setTimeout(resolve, 1000))]).then(reraise, reraise);
      }
    };
    process.on(signal, handler);
  }
}
