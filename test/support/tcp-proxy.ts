// A TCP proxy in front of the API server whose faults are real to the client's kernel: `blackhole()`
// keeps every connection open but forwards nothing (a half-open peer, as after a NAT or node loss),
// `reset()` destroys connections (ECONNRESET), `heal()` returns to plain forwarding.
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'blackhole';

export class TcpProxy {
  readonly targetPort: number;
  private server: Server | undefined;
  private mode: ProxyMode = 'forward';
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  port = 0;
  connectionsAccepted = 0;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get openConnections(): number {
    return this.pairs.size;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  /** Stop forwarding, keep sockets open: the client sees silence, never a FIN or RST. */
  blackhole(): void {
    this.mode = 'blackhole';
  }

  /** Back to forwarding; connections that lived through the blackhole lost bytes, so they are reset. */
  heal(): void {
    if (this.mode === 'blackhole') this.reset();
    this.mode = 'forward';
  }

  reset(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    this.connectionsAccepted++;
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (this.mode === 'forward' && !to.destroyed) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.pairs.delete(pair);
      if (this.mode === 'blackhole') return; // a blackholed peer never tells the client anything
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  }
}
