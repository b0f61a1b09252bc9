// One rtnetlink request, synchronously, on a throwaway socket: for the moments that must not
// await, inside withNetnsSync (bringing `lo` up in a namespace being created). The kernel handles
// a route request inside sendmsg itself, so its ACK is already queued when send returns and the
// receive never blocks (MSG_DONTWAIT makes sure of it).
import { AF_NETLINK, MSG_DONTWAIT, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, type Sys } from '../netns/sys.js';
import { NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST, decodeMessages, encodeMessage, errorCode } from './codec.js';
import { kernelError } from './errors.js';
import type { Request } from './requests.js';

const SEQ = 1;

/** Sends `req` on a new socket in the calling thread's namespace; throws the kernel's refusal. */
export function requestSync(sys: Sys, req: Request, step: string): void {
  const fd = sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  try {
    sys.send(fd, encodeMessage({ type: req.type, flags: req.flags | NLM_F_REQUEST | NLM_F_ACK, seq: SEQ, port: 0, data: req.body }), 0);
    const buf = Buffer.alloc(8192);
    for (;;) {
      const n = sys.recv(fd, buf, MSG_DONTWAIT);
      for (const m of decodeMessages(buf.subarray(0, Math.min(n, buf.length)))) {
        if (m.seq !== SEQ || m.type !== NLMSG_ERROR) continue;
        const errno = errorCode(m.data);
        if (errno !== 0) throw kernelError(step, errno);
        return;
      }
    }
  } finally {
    sys.close(fd);
  }
}
