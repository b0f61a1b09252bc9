// Tests are compiled by tsc into dist/ and run as native ES modules: no transform step, so what
// the tests exercise is exactly the JavaScript that ships.
// Integration tests start containers and namespaces, hence the generous timeout. jest 29 reads
// testTimeout from the top level only (it is a global option; in a project it is an unknown one).
const common = { transform: {}, testEnvironment: 'node', rootDir: 'dist' };
export default {
  testTimeout: 90_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.js'] },
  ],
};
