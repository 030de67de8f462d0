/** A minimal SSE reader for tests: collects events from a broker stream over HTTPS. */
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';

export interface SseEvent {
  event: string;
  data: Record<string, unknown>;
  receivedAt: number;
}

export interface SseStream {
  events: SseEvent[];
  /** Resolves with the first event of `type` matching `match`, or rejects after `ms`. */
  next(type: string, match: (data: Record<string, unknown>) => boolean, ms: number): Promise<SseEvent>;
  close(): void;
}

export function openSse(url: string, token: string, ca?: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const events: SseEvent[] = [];
    const waiters = new Set<() => void>();
    const send = url.startsWith('https:') ? request : httpRequest;
    const req = send(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, ca }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE answered ${res.statusCode}`));
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: ?(.*)$/m.exec(block)?.[1];
          const data = /^data: ?(.*)$/m.exec(block)?.[1];
          if (!type || data === undefined) continue;
          events.push({ event: type, data: JSON.parse(data), receivedAt: Date.now() });
          for (const wake of waiters) wake();
          if (type === 'ready') resolve(stream);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (error) => reject(error));
    req.end();
    const stream: SseStream = {
      events,
      next(type, match, ms) {
        return new Promise((done, fail) => {
          const check = () => {
            const found = events.find((e) => e.event === type && match(e.data));
            if (!found) return false;
            waiters.delete(check as () => void);
            clearTimeout(timer);
            done(found);
            return true;
          };
          const timer = setTimeout(() => {
            waiters.delete(check as () => void);
            fail(new Error(`no ${type} event within ${ms} ms`));
          }, ms);
          if (!check()) waiters.add(check as () => void);
        });
      },
      close() {
        req.destroy();
      },
    };
  });
}
