// Strict IP address parsing for user input. ipaddr.js alone accepts inet_aton's shorthand
// ("1.2.3", "0x7f.1"), which no user means when typing an address on a command line.
import ipaddr from 'ipaddr.js';

export function parseIpStrict(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return undefined;
}
