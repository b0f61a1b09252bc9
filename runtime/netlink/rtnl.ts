// Rtnl: one rtnetlink socket bound to one network namespace (netavark's model). The socket is
// opened inside the namespace in a synchronous section; afterwards every method is an ordinary
// async call from anywhere, and nothing ever needs to switch namespaces again. Drivers hold two:
// one for the host and one for the container. Each exchange is made synchronously underneath
// (sync-socket.ts: the kernel answers inside sendmsg); the methods stay async for their callers.
//
// Close it when done: an open socket keeps its namespace alive after the last process has left.
import { NotFoundError, SystemError } from '../../config/errors.js';
import { withNetnsSync } from '../netns/netns.js';
import { NLM_F_ECHO, RTM, type NlMessage } from './codec.js';
import { kernelError } from './errors.js';
import { parseAddress, parseFdb, parseLink, parseNeighbour, parseRoute } from './parse.js';
import * as rq from './requests.js';
import { NetlinkRefusal } from './refusal.js';
import { SyncNlSocket, type NlTransport } from './sync-socket.js';
import type {
  Address, BridgeOptions, FdbEntry, FdbSpec, IpFamily, IpvlanOptions, Link, LinkRef, MacvlanOptions, Neighbour, NeighbourSpec, Route,
  RouteSpec, VethOptions, VxlanOptions,
} from './types.js';

const ENOENT = 2;
const EEXIST = 17;
const ENODEV = 19;
const EOPNOTSUPP = 95;

const linkName = (ref: LinkRef): string => (typeof ref === 'number' ? `link #${ref}` : `link "${ref}"`);

const defined = <T>(x: T | undefined): x is T => x !== undefined;

export class Rtnl {
  private constructor(
    private readonly sock: NlTransport,
    /** The namespace this socket acts in (undefined: the one the process was in when opened). */
    readonly nsPath: string | undefined,
  ) {}

  /** Opens a socket inside the namespace at `nsPath` (a pin or /proc/PID/ns/net), or here. */
  static open(nsPath?: string): Rtnl {
    const sock = nsPath === undefined ? new SyncNlSocket() : withNetnsSync(nsPath, () => new SyncNlSocket());
    return new Rtnl(sock, nsPath);
  }

  /** Over a given transport (tests: a fake; the asynchronous NlSocket). */
  static over(sock: NlTransport, nsPath?: string): Rtnl {
    return new Rtnl(sock, nsPath);
  }

  close(): void {
    this.sock.close();
  }

  // ------------------------------------------------------------ links

  /** The link, or undefined when there is none by that name or index. */
  async getLink(ref: LinkRef): Promise<Link | undefined> {
    try {
      const [m] = await this.send(rq.getLink(ref), `get ${linkName(ref)}`);
      return m && parseLink(m);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** True when there is no link by that name or index, from the kernel's errno (no error built):
   * what an attach asks of the name it is about to give its veth (linux-bridge.ts attachVeth). */
  async linkAbsent(ref: LinkRef): Promise<boolean> {
    const errno = await this.requestErrno(rq.getLink(ref));
    if (errno === ENODEV) return true;
    if (errno !== 0) throw this.wrap(new NetlinkRefusal(errno), `get ${linkName(ref)}`, []);
    return false;
  }

  async listLinks(): Promise<Link[]> {
    return (await this.dump(rq.dumpLinks(), 'list links')).map(parseLink);
  }

  /**
   * A veth pair; with `peerNsFd` the peer is born inside that namespace (no rename dance on the
   * host). Returns this end as the kernel reports it right after creating it (NLM_F_ECHO: its
   * index and its peer's, what a GETLINK would answer), or undefined from a kernel that does not
   * echo link creations (before 6.3): ask with getLink then.
   */
  async createVeth(o: VethOptions): Promise<Link | undefined> {
    const req = rq.createVeth(o);
    const replies = await this.send({ ...req, flags: req.flags | NLM_F_ECHO }, `create veth "${o.name}"`);
    await this.aliasNew(o.name, o.alias);
    const echoed = replies.find((m) => m.type === RTM.NEWLINK);
    const link = echoed && parseLink(echoed);
    return link && link.name === o.name ? link : undefined;
  }

  async createBridge(o: BridgeOptions): Promise<void> {
    await this.send(rq.createBridge(o), `create bridge "${o.name}"`);
    await this.aliasNew(o.name, o.alias);
  }

  async createMacvlan(o: MacvlanOptions): Promise<void> {
    await this.send(rq.createMacvlan(o), `create macvlan "${o.name}"`);
  }

  async createIpvlan(o: IpvlanOptions): Promise<void> {
    await this.send(rq.createIpvlan(o), `create ipvlan "${o.name}"`);
  }

  /**
   * Whether this kernel has link kind `kind` (module loaded on demand). Creates nothing: see
   * requests.probeLinkKind. False only on EOPNOTSUPP, the kernel's "unknown link kind".
   */
  async linkKindSupported(kind: 'macvlan' | 'ipvlan'): Promise<boolean> {
    const name = `tsprobe${process.pid.toString(16).slice(-6)}`;
    const req = rq.probeLinkKind(kind, name);
    try {
      await this.sock.request(req.type, req.flags, req.body);
    } catch (err) {
      if (err instanceof NetlinkRefusal) return err.errno !== EOPNOTSUPP;
      throw new SystemError(`probe link kind ${kind}`, err);
    }
    await this.deleteLink(name); // not expected: a kernel that accepted a parentless link
    return true;
  }

  async createVxlan(o: VxlanOptions): Promise<void> {
    await this.send(rq.createVxlan(o), `create vxlan "${o.name}"`);
    await this.aliasNew(o.name, o.alias);
  }

  async setUp(ref: LinkRef): Promise<void> {
    await this.send(rq.setUp(ref, true), `set ${linkName(ref)} up`);
  }

  /** Enslave to the bridge `masterIndex`; 0 releases the link from its bridge. */
  async setMaster(ref: LinkRef, masterIndex: number): Promise<void> {
    await this.send(rq.setMaster(ref, masterIndex), `set master of ${linkName(ref)} to #${masterIndex}`);
  }

  /** Down and released from its bridge, in one request. */
  async setDownUnslaved(ref: LinkRef): Promise<void> {
    await this.send(rq.setDownUnslaved(ref), `set ${linkName(ref)} down and off its bridge`);
  }

  async rename(index: number, newName: string): Promise<void> {
    await this.send(rq.rename(index, newName), `rename ${linkName(index)} to "${newName}"`);
  }

  async setAlias(ref: LinkRef, alias: string): Promise<void> {
    await this.send(rq.setAlias(ref, alias), `set alias of ${linkName(ref)}`);
  }

  /** Hairpin and isolation flags of a bridge port, in one request. */
  async setBridgePort(index: number, flags: { hairpin?: boolean; isolated?: boolean }): Promise<void> {
    await this.send(rq.setBridgePort(index, flags), `set bridge port ${linkName(index)} ${JSON.stringify(flags)}`);
  }

  /** Deletes the link; false when there was none (teardown counts that as done). */
  async deleteLink(ref: LinkRef): Promise<boolean> {
    return this.sendDelete(rq.deleteLink(ref), `delete ${linkName(ref)}`);
  }

  // ------------------------------------------------------------ addresses

  /** "10.0.0.2/24" or "fd00::2/64" (v6 without duplicate address detection: usable at once). */
  async addAddress(ifindex: number, cidr: string): Promise<void> {
    await this.send(rq.addAddress(ifindex, cidr), `add address ${cidr} to ${linkName(ifindex)}`);
  }

  /**
   * addAddress where "already there" is the usual answer (an attach re-adding its bridge's
   * gateway): false then, taken from the kernel's errno without building the three wrapped errors
   * a refusal makes (measured: ~20-50 µs of every attach). True when it was added.
   */
  async addAddressIfAbsent(ifindex: number, cidr: string): Promise<boolean> {
    const req = rq.addAddress(ifindex, cidr);
    const errno = await this.requestErrno(req);
    if (errno === EEXIST) return false;
    if (errno !== 0) throw this.wrap(new NetlinkRefusal(errno), `add address ${cidr} to ${linkName(ifindex)}`, []);
    return true;
  }

  async deleteAddress(ifindex: number, cidr: string): Promise<boolean> {
    return this.sendDelete(rq.deleteAddress(ifindex, cidr), `delete address ${cidr} from ${linkName(ifindex)}`, ['EADDRNOTAVAIL']);
  }

  /** `family`: that family's only (a dump of both carries every container veth's IPv6 link-local). */
  async listAddresses(ifindex?: number, family?: 4 | 6): Promise<Address[]> {
    const all = (await this.dump(rq.dumpAddresses(family), 'list addresses')).map(parseAddress).filter(defined);
    return ifindex === undefined ? all : all.filter((a) => a.ifindex === ifindex);
  }

  // ------------------------------------------------------------ routes (main table)

  async addRoute(r: RouteSpec): Promise<void> {
    await this.send(rq.addRoute(r), `add route ${describeRoute(r)}`);
  }

  async deleteRoute(r: RouteSpec): Promise<boolean> {
    return this.sendDelete(rq.deleteRoute(r), `delete route ${describeRoute(r)}`);
  }

  async listRoutes(family: IpFamily): Promise<Route[]> {
    return (await this.dump(rq.dumpRoutes(family), `list IPv${family} routes`)).map(parseRoute).filter(defined);
  }

  // ------------------------------------------------------------ neighbours and FDB

  /** Adds or replaces the neighbour entry (re-applying the same entry is not an error). */
  async addNeighbour(n: NeighbourSpec): Promise<void> {
    await this.send(rq.addNeighbour(n), `add neighbour ${n.ip} lladdr ${n.mac} on ${linkName(n.ifindex)}`);
  }

  async deleteNeighbour(n: { ifindex: number; ip: string }): Promise<boolean> {
    return this.sendDelete(rq.deleteNeighbour(n), `delete neighbour ${n.ip} on ${linkName(n.ifindex)}`);
  }

  /**
   * deleteNeighbour for a path where "no such entry" is the common answer (an attach dropping a
   * stale entry the host mostly does not have): that answer is taken from the kernel's refusal as
   * is, without building the wrapped errors (measured: ~35 µs a request instead of ~50).
   */
  async forgetNeighbour(n: { ifindex: number; ip: string }): Promise<boolean> {
    const req = rq.deleteNeighbour(n);
    let errno: number;
    try {
      errno = await this.requestErrno(req);
    } catch (err) {
      throw this.wrap(err, `delete neighbour ${n.ip} on ${linkName(n.ifindex)}`, []);
    }
    if (errno === ENOENT) return false;
    if (errno !== 0) throw this.wrap(new NetlinkRefusal(errno), `delete neighbour ${n.ip} on ${linkName(n.ifindex)}`, []);
    return true;
  }

  async listNeighbours(ifindex?: number): Promise<Neighbour[]> {
    const all = (await this.dump(rq.dumpNeighbours(), 'list neighbours')).map(parseNeighbour).filter(defined);
    return ifindex === undefined ? all : all.filter((n) => n.ifindex === ifindex);
  }

  /** `bridge fdb append`: one MAC may point at several VTEPs (00:00:00:00:00:00 = flood list). */
  async addFdb(f: FdbSpec): Promise<void> {
    await this.send(rq.addFdb(f), `add fdb ${f.mac}${f.dst ? ` dst ${f.dst}` : ''} on ${linkName(f.ifindex)}`);
  }

  /**
   * False when the device has no entry for the MAC. (When it has the MAC but not that `dst`, the
   * kernel reports success: true is all it tells us.)
   */
  async deleteFdb(f: FdbSpec): Promise<boolean> {
    return this.sendDelete(rq.deleteFdb(f), `delete fdb ${f.mac}${f.dst ? ` dst ${f.dst}` : ''} on ${linkName(f.ifindex)}`);
  }

  /** FDB entries (all links, or one). The kernel ignores a dump filter without strict checking, so this filters here. */
  async listFdb(ifindex?: number): Promise<FdbEntry[]> {
    const all = (await this.dump(rq.dumpFdb(), 'list fdb')).map(parseFdb).filter(defined);
    return ifindex === undefined ? all : all.filter((e) => e.ifindex === ifindex);
  }

  // ------------------------------------------------------------ plumbing

  /** Tags a link just created; if that fails the link goes again, so a create stays all-or-nothing. */
  private async aliasNew(name: string, alias: string | undefined): Promise<void> {
    if (alias === undefined) return;
    try {
      await this.setAlias(name, alias);
    } catch (err) {
      await this.deleteLink(name).catch(() => undefined);
      throw err;
    }
  }

  /** The kernel's errno for `req` (0: done); other failures (the socket's own) are thrown. */
  private async requestErrno(req: rq.Request): Promise<number> {
    if (this.sock.requestErrno) return this.sock.requestErrno(req.type, req.flags, req.body);
    try {
      await this.sock.request(req.type, req.flags, req.body);
      return 0;
    } catch (err) {
      if (err instanceof NetlinkRefusal) return err.errno;
      throw err;
    }
  }

  private async send(req: rq.Request, step: string, notFound: readonly string[] = []): Promise<NlMessage[]> {
    try {
      return await this.sock.request(req.type, req.flags, req.body);
    } catch (err) {
      throw this.wrap(err, step, notFound);
    }
  }

  private async sendDelete(req: rq.Request, step: string, notFound: readonly string[] = []): Promise<boolean> {
    try {
      await this.send(req, step, notFound);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  private async dump(req: rq.Request, step: string): Promise<NlMessage[]> {
    try {
      return await this.sock.dump(req.type, req.flags, req.body);
    } catch (err) {
      throw this.wrap(err, step, []);
    }
  }

  private wrap(err: unknown, step: string, notFound: readonly string[]): Error {
    if (err instanceof NetlinkRefusal) return kernelError(step, err.errno, notFound);
    return new SystemError(step, err);
  }
}

function describeRoute(r: RouteSpec): string {
  return [r.dst, r.gateway && `via ${r.gateway}`, r.ifindex !== undefined && `dev #${r.ifindex}`].filter(Boolean).join(' ');
}
