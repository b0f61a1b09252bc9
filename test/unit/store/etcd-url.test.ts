import { describe, expect, it } from '@jest/globals';
import { parseEtcdUrl } from '../../../runtime/store/etcd.js';

describe('parseEtcdUrl', () => {
  it('takes one or more HOST:PORT endpoints and an optional key prefix', () => {
    expect(parseEtcdUrl('etcd://10.0.0.1:2379')).toEqual({ endpoints: ['10.0.0.1:2379'], prefix: '/tsrun/', display: '10.0.0.1:2379' });
    expect(parseEtcdUrl('etcd://a.example:2379,10.0.0.2:2379,[fd00::1]:2379')).toEqual({
      endpoints: ['a.example:2379', '10.0.0.2:2379', '[fd00::1]:2379'],
      prefix: '/tsrun/',
      display: 'a.example:2379,10.0.0.2:2379,[fd00::1]:2379',
    });
    expect(parseEtcdUrl('etcd://10.0.0.1:2379/prod/east/').prefix).toBe('/prod/east/');
  });

  it.each([
    ['etcd://', /no endpoint/],
    ['etcd://host', /endpoint "host" is not HOST:PORT/],
    ['etcd://host:0', /is not HOST:PORT/],
    ['etcd://host:2379,', /endpoint "" is not HOST:PORT/],
    ['etcd://h:1/a b', /prefix "a b"/],
    ['http://h:1', /not an etcd:\/\/ or etcds:\/\/ URL/],
    ['etcds://h:1', /etcds:\/\/ needs ca=FILE/],
    ['etcd://h:1?ca=/ca.pem', /ca, cert and key need etcds:\/\//],
    ['etcds://h:1?ca=/ca.pem&cert=/c.pem', /cert and key go together/],
    ['etcds://h:1?ca=ca.pem', /ca must be an absolute path/],
    ['etcds://h:1?ca=/ca.pem&user=u', /user and password-file go together/],
    ['etcds://h:1?ca=/ca.pem&pass=x', /unknown parameter "pass"/],
  ])('refuses %s', (url, why) => {
    expect(() => parseEtcdUrl(url)).toThrow(why);
  });
});

describe('parseEtcdUrl with TLS and authentication', () => {
  it('reads the CA, client certificate, user and password file from the etcds:// URL', () => {
    expect(parseEtcdUrl('etcds://10.0.0.1:2379/east?ca=/etc/tsrun/ca.pem&cert=/etc/tsrun/c.pem&key=/etc/tsrun/c.key&user=tsrun&password-file=/etc/tsrun/pw')).toEqual({
      endpoints: ['10.0.0.1:2379'],
      prefix: '/east/',
      display: '10.0.0.1:2379',
      tls: { ca: '/etc/tsrun/ca.pem', cert: '/etc/tsrun/c.pem', key: '/etc/tsrun/c.key' },
      auth: { user: 'tsrun', passwordFile: '/etc/tsrun/pw' },
    });
    expect(parseEtcdUrl('etcd://h:1?user=u&password-file=/pw').auth).toEqual({ user: 'u', passwordFile: '/pw' });
  });
});
