// Tests are compiled by tsc into dist/ and run as native ES modules: no transform step, so what
// the tests exercise is exactly the JavaScript that ships.
// Integration tests start containers and namespaces: generous timeouts, set per project
// because jest 29 reads testTimeout from the project, not from the top level.
const common = { transform: {}, testEnvironment: 'node', rootDir: 'dist', testTimeout: 90_000 };
export default {
  testTimeout: 90_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.js'] },
  ],
};
