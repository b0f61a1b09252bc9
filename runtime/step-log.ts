// The part of a logger that the engine's layers need (a step done, an undo that failed): runtime/log.ts's
// Logger fits, and tests pass nothing.
export interface StepLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export const silentLogger: StepLogger = { debug() {}, warn() {} };
