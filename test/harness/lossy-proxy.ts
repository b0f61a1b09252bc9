// A byte proxy on a unix socket that can lose one answer: armed, it forwards the next request to
// the server as usual, holds back whatever the server sends in reply, and after `holdMs` cuts both
// connections. The server has then done the work (an etcd transaction committed) while the client
// sees a dropped connection: the "uncertain outcome" a retry must resolve. Unix sockets only, so
// the test process needs no link into any namespace.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export class LossyProxy {
  /** Replies held back and connections cut so far. */
  dropped = 0;
  private armed: { holdMs: number } | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly dir: string, readonly socketPath: string) {}

  /** Listens in a temp dir of its own and forwards each connection to the unix socket `target`. */
  static async start(target: string, name = 'ovl-proxy'): Promise<LossyProxy> {
    const dir = mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    const socketPath = path.join(dir, 'proxy.sock');
    let self: LossyProxy | undefined;
    const server = net.createServer((client) => self!.forward(client, target));
    self = new LossyProxy(server, dir, socketPath);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    return self;
  }

  /** grpc target of the proxy. */
  get target(): string {
    return `unix:${this.socketPath}`;
  }

  /** The next request is delivered, its answer lost: both sides are cut `holdMs` after it. */
  dropNextReply(holdMs = 400): void {
    this.armed = { holdMs };
  }

  private forward(client: net.Socket, target: string): void {
    const upstream = net.connect(target);
    this.sockets.add(client).add(upstream);
    let holding = false;
    client.on('data', (d) => {
      upstream.write(d);
      if (this.armed && !holding) {
        holding = true;
        const { holdMs } = this.armed;
        this.armed = undefined;
        setTimeout(() => {
          this.dropped++;
          client.destroy();
          upstream.destroy();
        }, holdMs);
      }
    });
    upstream.on('data', (d) => {
      if (!holding) client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
