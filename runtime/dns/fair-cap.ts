// A cap on what the resolver holds for its clients at once (forwarded queries in flight, TCP
// connections), per client and overall, fair between clients: each forwarded query holds a
// socket until its answer or its deadline, so without a cap one container flooding names
// forwarded to a dead server grew the resolver's descriptors without bound, to the open-file
// limit, and then every container's forwarded queries failed.
//
// A client (one source address; the resolver's caller decides what counts as one) holds at most
// `perClient` places. When all `total` places are taken, a newcomer that holds fewer than the
// client holding the most takes that client's OLDEST place (`evict` ends it: a SERVFAIL, a closed
// connection); otherwise the newcomer is refused. So a flood holds at most its fair share once
// others need places, and what it loses is its own stalest work. dnsmasq caps forwarded queries
// overall (--dns-forward-max, 150, beyond it they are dropped), CoreDNS's forward plugin too
// (max_concurrent), systemd-resolved at 2048; none of them per client.

export class FairCap<T> {
  /** Each client's places, oldest first (a Set keeps insertion order). */
  private readonly byClient = new Map<string, Set<T>>();
  private count = 0;

  constructor(
    readonly total: number,
    readonly perClient: number,
    /** Ends an item taken from its client to make room; must release() it. */
    private readonly evict: (item: T, client: string) => void,
  ) {}

  /** Places taken now. */
  get size(): number {
    return this.count;
  }

  /** Places `client` holds now. */
  heldBy(client: string): number {
    return this.byClient.get(client)?.size ?? 0;
  }

  /** Takes a place for `item` of `client`: false when refused (nothing was taken). */
  take(client: string, item: T): boolean {
    const held = this.heldBy(client);
    if (held >= this.perClient) return false;
    if (this.count >= this.total) {
      let heaviest: string | undefined;
      let most = 0;
      for (const [c, items] of this.byClient) {
        if (items.size > most) {
          most = items.size;
          heaviest = c;
        }
      }
      // Only from a client that would still hold at least as many as the newcomer.
      if (heaviest === undefined || most <= held + 1) return false;
      const victim = this.byClient.get(heaviest)!.values().next().value as T;
      this.evict(victim, heaviest);
      this.release(heaviest, victim); // no-op when evict released it
    }
    let mine = this.byClient.get(client);
    if (!mine) this.byClient.set(client, (mine = new Set()));
    mine.add(item);
    this.count++;
    return true;
  }

  /** Gives back `item`'s place (no-op when it holds none). */
  release(client: string, item: T): void {
    const mine = this.byClient.get(client);
    if (!mine?.delete(item)) return;
    this.count--;
    if (mine.size === 0) this.byClient.delete(client);
  }
}
