// Tests are compiled by tsc into dist/ and run as native ES modules: no transform step, so what
// the tests exercise is exactly the JavaScript that ships.
// Integration tests start containers and namespaces, hence the generous timeout. jest 29 reads
// testTimeout from the top level only (it is a global option; in a project it is an unknown one).
// root-netns-guard fails a test file during which tsrun tables or links appeared in the machine's
// own namespace (tests run tsrun only in namespaces they made).
const common = { transform: {}, testEnvironment: 'node', rootDir: 'dist', setupFilesAfterEnv: ['<rootDir>/test/harness/root-netns-guard.js'] };
// globalTeardown kills sandbox namespace pins a failed test left behind (they would keep jest from
// exiting); forceExit is the last guard against any other handle hanging a CI run.
export default {
  testTimeout: 90_000,
  globalTeardown: '<rootDir>/dist/test/harness/reap-pins.js',
  forceExit: true,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.js'] },
  ],
};
