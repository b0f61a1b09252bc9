import { describe, expect, it } from '@jest/globals';
import { SystemError } from '../../../config/errors.js';
import { NftFirewall, NoneFirewall, createFirewall } from '../../../runtime/firewall/backend.js';
import { NftError, applyBatch, isNftError } from '../../../runtime/firewall/nft.js';

describe('createFirewall', () => {
  it('builds the backend asked for', () => {
    expect(createFirewall('none')).toBeInstanceOf(NoneFirewall);
    expect(createFirewall('nft')).toBeInstanceOf(NftFirewall);
    expect(createFirewall('nft').kind).toBe('nft');
  });
});

describe('NoneFirewall', () => {
  it('accepts everything and does nothing', async () => {
    const fw = new NoneFirewall();
    await fw.ensureBase();
    await fw.addNetwork();
    await fw.attach();
    await fw.removeEndpoint();
    await fw.removeEndpoint();
    await fw.removeNetwork();
    expect(await fw.listOwners()).toEqual({ containers: [], networks: [] });
    expect(await fw.purge()).toBe(0);
  });
});

describe('NftError', () => {
  it('keeps the first line of stderr and classifies the errno', () => {
    const e = new NftError('publish ports of container a', 'internal:0:0-0: Error: Could not process rule: File exists\n\n', new Error('x'));
    expect(e).toBeInstanceOf(SystemError);
    expect(e.shortMessage).toBe('publish ports of container a: Error: Could not process rule: File exists');
    expect(e.reason).toBe('exists');
    expect(isNftError(e, 'exists')).toBe(true);
    expect(isNftError(e, 'not-found')).toBe(false);
    expect(new NftError('s', 'Error: No such file or directory\nlist table inet tsrun\n', null).reason).toBe('not-found');
    expect(new NftError('s', '', null).shortMessage).toBe('s: nft failed without a message');
  });
});

describe('applyBatch', () => {
  it('runs nothing for an empty batch', async () => {
    await expect(applyBatch({ nftables: [] }, { nftBinary: '/nonexistent/nft', backend: 'process' })).resolves.toBeUndefined();
  });

  it('reports a missing nft binary as a tsrun error', async () => {
    await expect(applyBatch({ nftables: [{ add: { table: { family: 'inet', name: 'tsrun' } } }] }, { nftBinary: '/nonexistent/nft', backend: 'process' })).rejects.toThrow(/nonexistent\/nft is not installed/);
  });

  it('refuses bad input before running nft', async () => {
    const fw = new NftFirewall({ nftBinary: '/nonexistent/nft', backend: 'process' });
    const net = { name: 'n', bridge: 'br0', subnets4: ['10.0.0.0/24'], subnets6: [], internal: false, icc: true };
    await expect(fw.attach(net, { containerId: 'a', ipv4: 'x', ports: [] })).rejects.toThrow(/ipv4: "x" is not an IP address/);
  });
});
