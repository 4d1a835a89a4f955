// Identity: its input.
import { def } from '../registry';

def({ op: 'Identity', run: ({ ins }) => [ins[0]!], fold: ({ need }) => [need(0)] });
