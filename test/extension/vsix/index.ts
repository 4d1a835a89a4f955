// Entry point of the .vsix suite (scripts/extension-test.mjs --vsix): the same mocha runner as the
// development suite, on this folder's tests.
import { runTestsIn } from '../suite/index';

export function run(): Promise<void> {
  return runTestsIn(__dirname);
}
