// libnftables for every batch, element batches included (TSRUN_NFT_BACKEND=lib), through exactly
// the same tests as the default backend: nft.test.ts, loaded with the backend switched.
process.env.TSRUN_TEST_NFT_BACKEND = 'lib';
await import('./nft.test.js');
