// The two errors of a netlink exchange, in a module of their own: the synchronous socket
// (sync-socket.ts) and Rtnl use them without importing socket.ts, whose `netlink` package loads a
// native addon (~1.7 ms of dlopen in every cold process) that only the asynchronous socket needs.

/** The kernel refused a request: `errno` > 0. */
export class NetlinkRefusal extends Error {
  constructor(readonly errno: number) {
    super(`netlink request refused (errno ${errno})`);
  }
}

/** The dump changed while being read (NLM_F_DUMP_INTR) more often than we retry. */
export class DumpInterrupted extends Error {}
