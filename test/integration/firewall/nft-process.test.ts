// The nft process backend (the fallback when libnftables cannot be loaded) through exactly the
// same tests as the in-process one: nft.test.ts, loaded with the backend switched.
process.env.TSRUN_TEST_NFT_BACKEND = 'process';
await import('./nft.test.js');
