import { tf } from './tf';
import { guardAllocations } from '../memory';
import { installWasmSlice } from './wasmSlice';

/** Backends in the order the engine prefers them on a machine that has them. */
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
const PREFERENCE: BackendName[] = ['tensorflow', 'wasm', 'cpu'];

let selected: Promise<BackendName> | undefined;

function loadNativeBinding(): boolean {
  // @tensorflow/tfjs-node is an optional dependency: it downloads libtensorflow at install time,
  // which fails on offline machines. Where it installed, requiring it registers 'tensorflow'.
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-node');
    return tf.findBackendFactory('tensorflow') != null;
  } catch {
    return false;
  }
}

async function trySet(name: BackendName): Promise<boolean> {
  if (name === 'tensorflow' && !loadNativeBinding()) return false;
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

/**
 * Selects the TF.js backend once per process: LINGER_BACKEND (tensorflow|wasm|cpu) forces one
 * (an unknown or unavailable forced backend is an error, not a silent fallback); otherwise the
 * first that initializes of tensorflow (tfjs-node) → wasm → cpu.
 */
export function initBackend(forced: string | undefined = process.env.LINGER_BACKEND): Promise<BackendName> {
  if (!selected) {
    selected = pick(forced).then((name) => {
      guardAllocations();
      if (name === 'wasm') installWasmSlice();
      return name;
    });
    selected.catch(() => {
      selected = undefined;
    });
  }
  return selected;
}

async function pick(forced: string | undefined): Promise<BackendName> {
  // production mode skips TF.js's per-op debug checks
  tf.enableProdMode();
  if (forced) {
    const name = forced.trim().toLowerCase();
    if (!PREFERENCE.includes(name as BackendName)) {
      throw new Error(`LINGER_BACKEND=${forced}: unknown backend; use one of ${PREFERENCE.join(', ')}`);
    }
    if (!(await trySet(name as BackendName))) {
      throw new Error(
        `LINGER_BACKEND=${forced}: that backend is not available on this machine` +
          (name === 'tensorflow' ? ' (@tensorflow/tfjs-node did not install; it needs to download libtensorflow)' : ''),
      );
    }
    return name as BackendName;
  }
  for (const name of PREFERENCE) {
    if (await trySet(name)) return name;
  }
  throw new Error('no TensorFlow.js backend could be initialized');
}

/** The backend in use now (after initBackend resolved), as TF.js names it. */
export function backendName(): string {
  return tf.getBackend();
}
