/**
 * Step records for walk-throughs (`sigil demo`): what was done, what it showed, how long it took.
 * One recorder shared by every demo section, so they all time and report steps the same way.
 */
export interface DemoStep {
  step: string;
  detail: string;
  ms: number;
}

/** `record(step, detail)` times the step since the previous one, keeps it, and reports it. */
export function stepRecorder(onStep?: (step: DemoStep) => void): { steps: DemoStep[]; record: (step: string, detail: string) => void } {
  const steps: DemoStep[] = [];
  let started = performance.now();
  const record = (step: string, detail: string) => {
    const entry = { step, detail, ms: Math.round(performance.now() - started) };
    steps.push(entry);
    onStep?.(entry);
    started = performance.now();
  };
  return { steps, record };
}
