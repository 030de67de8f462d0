/**
 * One private swtpm per test file, a TpmClient on it, and the checks every TPM test needs:
 * flush what you load, prove nothing is left loaded, and hand the TPM to tpm2-tools (swtpm serves
 * one client at a time) when a test compares against them.
 */
import { execFile } from 'node:child_process';
import assert from 'node:assert/strict';
import { TpmClient } from '../../../src/tpm/client.ts';
import { TPM_CAP, TPM_HT } from '../../../src/tpm/constants.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { getCapability } from '../../../src/tpm/commands/startup.ts';
import { startSwtpm, type StartSwtpmOptions, type SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';

export class TpmFixture {
  readonly swtpm: SwtpmInstance;
  private client: TpmClient;

  private constructor(swtpm: SwtpmInstance) {
    this.swtpm = swtpm;
    this.client = new TpmClient(swtpm.transport());
  }

  static async start(options: StartSwtpmOptions = {}): Promise<TpmFixture> {
    return new TpmFixture(await startSwtpm(options));
  }

  get tpm(): TpmClient {
    return this.client;
  }

  /** Run tpm2-tools with this TPM as TCTI; the Sigil connection is closed meanwhile. */
  async tools(...commands: string[][]): Promise<string[]> {
    await this.client.close();
    const outputs: string[] = [];
    try {
      for (const args of commands) outputs.push(await runTool(this.swtpm.serverPort, args));
    } finally {
      this.client = new TpmClient(this.swtpm.transport());
    }
    return outputs;
  }

  /** Handles of loaded transient objects (tests end with none). */
  async transientHandles(): Promise<number[]> {
    return handlesOf(this.client, TPM_HT.TRANSIENT);
  }

  /** Loaded and saved sessions (HMAC/policy handles). */
  async sessionHandles(): Promise<number[]> {
    return [...(await handlesOf(this.client, 0x02)), ...(await handlesOf(this.client, 0x03))];
  }

  /** Assert the test left nothing loaded, then stop swtpm. */
  async stop(): Promise<void> {
    try {
      assert.deepEqual(await this.transientHandles(), [], 'every transient object was flushed');
      assert.deepEqual(await this.sessionHandles(), [], 'every session was flushed');
    } finally {
      await this.client.close();
      await this.swtpm.stop();
    }
  }
}

async function handlesOf(tpm: TpmClient, handleType: number): Promise<number[]> {
  const { data } = await tpm.run(getCapability(TPM_CAP.HANDLES, handleType << 24, 64));
  assert.equal(data.capability, TPM_CAP.HANDLES);
  return data.capability === TPM_CAP.HANDLES ? data.handles : [];
}

function runTool(port: number, args: string[]): Promise<string> {
  const [tool, ...rest] = args;
  return new Promise((resolve, reject) => {
    execFile(tool, rest, { env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` }, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${args.join(' ')} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

/** Run `body` with a loaded object, flushing it afterwards whatever happens. */
export async function withLoaded<T extends { handle: number }, R>(tpm: TpmClient, load: Promise<T>, body: (loaded: T) => Promise<R>): Promise<R> {
  const loaded = await load;
  try {
    return await body(loaded);
  } finally {
    await tpm.run(flushContext(loaded.handle));
  }
}
