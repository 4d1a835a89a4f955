// A model file with a type error the compiler cannot get past: the Model view shows the error.
import { nn } from 'linger-studio';
export const inputShape = [1, 4];
export function createModel(): nn.Module {
  return new nn.Linear(4, 2) +;
}
