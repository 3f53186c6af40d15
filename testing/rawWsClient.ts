import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';

interface Message {
  id?: string;
  type: string;
  payload?: { data?: unknown; errors?: { extensions?: { code?: string } }[] } | { extensions?: { code?: string } }[];
}

/**
 * A graphql-transport-ws client by hand, so that the test decides when its messages leave (all in one
 * write) and whether it reads the answers.
 */
export async function rawWsClient(url: string) {
  const socket = new WebSocket(url, 'graphql-transport-ws');
  const messages: Message[] = [];
  socket.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString('utf8')) as Message));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ type: 'connection_init' }));
  for (let waited = 0; !messages.some((m) => m.type === 'connection_ack'); waited += 20) {
    if (waited > 10_000) throw new Error('no connection_ack');
    await sleep(20);
  }
  const raw = (socket as unknown as { _socket: Socket })._socket;
  return {
    socket,
    messages,
    sendTogether(operations: { id: string; query: string }[]) {
      raw.cork();
      for (const { id, query } of operations) socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query } }));
      raw.uncork();
    },
    /** Reads nothing more from the socket: the server's answers stay unread. */
    stopReading() {
      raw.pause();
    },
    /** Each operation's outcome so far: 'data', its first error's code, or undefined. */
    outcome(id: string): string | undefined {
      const message = messages.find((m) => m.id === id && (m.type === 'next' || m.type === 'error'));
      if (!message) return undefined;
      const errors = Array.isArray(message.payload) ? message.payload : message.payload?.errors;
      return errors?.[0]?.extensions?.code ?? 'data';
    },
  };
}
