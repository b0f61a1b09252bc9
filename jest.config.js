// Tests are compiled by tsc into dist/ and run as native ES modules: no transform step, so what
// the tests exercise is exactly the JavaScript that ships.
const common = { transform: {}, testEnvironment: 'node', rootDir: 'dist' };
export default {
  testTimeout: 90_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.js'] },
  ],
};
