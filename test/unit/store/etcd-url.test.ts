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
    ['http://h:1', /not an etcd:\/\/ URL/],
  ])('refuses %s', (url, why) => {
    expect(() => parseEtcdUrl(url)).toThrow(why);
  });
});
