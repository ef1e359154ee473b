import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/** When to cut: after the request holding `marker` (then one holding `followedBy`, if given). */
export interface CutPlan {
  /** Bytes of the request whose reply is lost (a turn id, a line of the saved summary). */
  marker: string;
  /** A later request on the same connection to wait for, e.g. `COMMIT` of a transaction. */
  followedBy?: string;
}

/**
 * A TCP proxy in front of a database server that loses ONE reply: once a client connection has
 * sent the request of the armed {@link CutPlan}, the server's answer to it is swallowed and both
 * sockets are closed. The server has executed (and committed) the request — it answered — while
 * the client only sees its connection drop: the "stored, but the caller was told it failed" case
 * that a retry must survive. Every other byte passes through untouched.
 */
export class ReplyCutter {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #plan: CutPlan | undefined;
  #cuts = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Starts a proxy on a free 127.0.0.1 port that forwards to `target`. */
  static async start(target: { host: string; port: number }): Promise<ReplyCutter> {
    // Assigned before the server listens, so before any connection arrives.
    let cutter: ReplyCutter;
    const server = createServer((client) => cutter.#relay(client, target));
    cutter = new ReplyCutter(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return cutter;
  }

  /** The port clients connect to. */
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** How many replies were cut so far. */
  get cuts(): number {
    return this.#cuts;
  }

  /** Arms one cut: the next request matching `plan`, on any connection, loses its reply. */
  arm(plan: CutPlan): void {
    this.#plan = plan;
  }

  /** Whether the armed cut has not happened yet. */
  get armed(): boolean {
    return this.#plan !== undefined;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(client: Socket, target: { host: string; port: number }) {
    const upstream = tcpConnect(target.port, target.host);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    // How far this connection got through the armed plan: its marker, then its `followedBy`.
    let stage: 'idle' | 'marked' | 'cutting' = 'idle';
    let plan: CutPlan | undefined;
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      if (stage !== 'cutting' && this.#plan) {
        // Latin-1 keeps one character per byte; the tail catches a marker split across chunks.
        const text = tail + chunk.toString('latin1');
        tail = text.slice(-256);
        if (stage === 'idle' && text.includes(this.#plan.marker)) {
          plan = this.#plan;
          stage = plan.followedBy === undefined ? 'cutting' : 'marked';
          tail = '';
        } else if (stage === 'marked' && plan?.followedBy && text.includes(plan.followedBy)) {
          stage = 'cutting';
        }
        if (stage === 'cutting') this.#plan = undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (stage === 'cutting') {
        // The server answered, so it executed the request: the answer is lost with the connection.
        this.#cuts += 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  }
}
