// A restricted unpickler for torch.save's data.pkl (docs/pt-checkpoints.md): it builds plain
// values and never runs anything. Only the globals a state dict needs are accepted
// (collections.OrderedDict, torch._utils' rebuild functions, torch's storage types, torch.Size);
// any other GLOBAL or STACK_GLOBAL is refused naming it, before anything is built from it. REDUCE
// runs only our own implementations of the allowlisted callables.

export class PickleError extends Error {}

export type PyValue =
  null | boolean | number | bigint | string | Uint8Array | PyFloat | PyValue[] | PyTuple | PyDict | PyGlobal | PyStorage | PyTensor;

export class PyFloat {
  constructor(readonly value: number) {}
}
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
export class PyDict {
  readonly keys: PyValue[] = [];
  readonly values: PyValue[] = [];
  private readonly index = new Map<string, number>();
  constructor(readonly ordered = false) {}
  set(k: PyValue, v: PyValue): void {
    const id = keyId(k);
    const i = this.index.get(id);
    if (i !== undefined) this.values[i] = v;
    else {
      this.index.set(id, this.keys.length);
      this.keys.push(k);
      this.values.push(v);
    }
  }
  get size(): number {
    return this.keys.length;
  }
}
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get path(): string {
    return `${this.module}.${this.name}`;
  }
}
/** A persistent-id storage: `numel` elements of `storageType` in the zip entry data/<key>. */
export class PyStorage {
  constructor(
    readonly storageType: string,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
  ) {}
}
export class PyTensor {
  constructor(
    readonly storage: PyStorage,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}

function keyId(k: PyValue): string {
  if (typeof k === 'string') return `s${k}`;
  if (typeof k === 'number' || typeof k === 'bigint') return `i${k}`;
  if (typeof k === 'boolean') return `i${k ? 1 : 0}`;
  if (k === null) return 'n';
  if (k instanceof PyFloat) return Number.isInteger(k.value) ? `i${k.value}` : `f${k.value}`;
  if (k instanceof Uint8Array) return `b${Buffer.from(k).toString('hex')}`;
  if (k instanceof PyTuple) return `t(${k.items.map(keyId).join(',')})`;
  throw new PickleError('a dict key that is not hashable (a list, dict, tensor or storage)');
}

/** torch's storage types, by the name torch.save writes, and the bytes of one element. */
export const STORAGE_TYPES: Readonly<Record<string, { dtype: string; size: number }>> = {
  FloatStorage: { dtype: 'F32', size: 4 },
  DoubleStorage: { dtype: 'F64', size: 8 },
  HalfStorage: { dtype: 'F16', size: 2 },
  BFloat16Storage: { dtype: 'BF16', size: 2 },
  LongStorage: { dtype: 'I64', size: 8 },
  IntStorage: { dtype: 'I32', size: 4 },
  ShortStorage: { dtype: 'I16', size: 2 },
  CharStorage: { dtype: 'I8', size: 1 },
  ByteStorage: { dtype: 'U8', size: 1 },
  BoolStorage: { dtype: 'BOOL', size: 1 },
  UntypedStorage: { dtype: 'U8', size: 1 },
};

const ALLOWED = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch.Size',
  ...Object.keys(STORAGE_TYPES).map((s) => `torch.${s}`),
  'torch.storage.UntypedStorage',
]);

export interface PickleLimits {
  maxMemo: number;
  maxMarks: number;
  maxString: number;
  maxRank: number;
}
export const LIMITS: PickleLimits = { maxMemo: 1 << 22, maxMarks: 10_000, maxString: 64 << 20, maxRank: 32 };

const isInt = (v: PyValue): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function intTuple(v: PyValue, what: string, maxRank: number): number[] {
  if (!(v instanceof PyTuple)) throw new PickleError(`${what} is not a tuple`);
  if (v.items.length > maxRank) throw new PickleError(`${what} has ${v.items.length} dimensions (more than ${maxRank})`);
  return v.items.map((d) => {
    if (!isInt(d) || d < 0) throw new PickleError(`${what} holds ${describe(d)}, not a whole number ≥ 0`);
    return d;
  });
}

export function describe(v: PyValue, depth = 0): string {
  if (depth > 3) return '…';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (v instanceof PyFloat) return String(v.value);
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof PyTuple)
    return `(${v.items
      .slice(0, 4)
      .map((x) => describe(x, depth + 1))
      .join(', ')}${v.items.length > 4 ? ', …' : ''})`;
  if (v instanceof PyDict) {
    const ks = v.keys.slice(0, 6).map((k) => (typeof k === 'string' ? k : describe(k, depth + 1)));
    return `a dict of ${v.size}${v.size ? ` (${ks.join(', ')}${v.size > 6 ? ', …' : ''})` : ''}`;
  }
  if (v instanceof PyGlobal) return v.path;
  if (v instanceof PyStorage) return `a storage (${v.storageType})`;
  return `a tensor [${v.size.join(', ')}]`;
}

/** The one place REDUCE calls anything: our own versions of the allowlisted callables. */
function reduce(g: PyGlobal, args: PyValue, limits: PickleLimits): PyValue {
  if (!(args instanceof PyTuple)) throw new PickleError(`${g.path} called with ${describe(args)}, not a tuple of arguments`);
  const a = args.items;
  switch (g.path) {
    case 'collections.OrderedDict': {
      const d = new PyDict(true);
      if (a.length === 0) return d;
      const pairs = a[0];
      if (a.length === 1 && Array.isArray(pairs)) {
        for (const p of pairs) {
          if (!(p instanceof PyTuple) || p.items.length !== 2) throw new PickleError('OrderedDict called with a list that is not of pairs');
          d.set(p.items[0], p.items[1]);
        }
        return d;
      }
      throw new PickleError(`OrderedDict called with ${describe(args)}`);
    }
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor': {
      const v2 = g.name === '_rebuild_tensor_v2';
      if (a.length !== (v2 ? 6 : 4) && !(v2 && a.length === 7)) throw new PickleError(`${g.path} called with ${a.length} arguments`);
      const [storage, offset, size, stride] = a;
      if (!(storage instanceof PyStorage)) throw new PickleError(`${g.path}: the first argument is ${describe(storage)}, not a storage`);
      if (!isInt(offset) || offset < 0) throw new PickleError(`${g.path}: storage offset ${describe(offset)} is not a whole number ≥ 0`);
      const sz = intTuple(size, `${g.path}: the size`, limits.maxRank);
      const st = intTuple(stride, `${g.path}: the stride`, limits.maxRank);
      if (sz.length !== st.length) throw new PickleError(`${g.path}: size [${sz.join(', ')}] and stride [${st.join(', ')}] differ in rank`);
      return new PyTensor(storage, offset, sz, st);
    }
    case 'torch._utils._rebuild_parameter':
      if (a.length !== 3 || !(a[0] instanceof PyTensor)) throw new PickleError(`${g.path} called with ${describe(args)}`);
      return a[0];
    case 'torch.Size':
      if (a.length === 0) return new PyTuple([]);
      intTuple(a[0], 'torch.Size', limits.maxRank);
      return a[0];
    default:
      throw new PickleError(`refused call of '${g.path}' (not a constructor this reader implements)`);
  }
}

const MARK = Symbol('mark');
type Slot = PyValue | typeof MARK;

/**
 * Unpickles `data`. `persistent` turns a persistent id (a tuple) into a storage. Every length is
 * checked against the bytes left, the memo and the mark stack are capped.
 */
export function unpickle(data: Uint8Array, persistent: (pid: PyValue) => PyValue, limits: PickleLimits = LIMITS): PyValue {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  const stack: Slot[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const need = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > data.length)
      throw new PickleError(`${what} of ${n} bytes at byte ${pos} runs past the end of the pickle (${data.length} bytes)`);
  };
  const take = (n: number, what: string) => {
    need(n, what);
    pos += n;
    return data.subarray(pos - n, pos);
  };
  const line = (what: string) => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 4096) throw new PickleError(`${what} at byte ${pos} has no end of line`);
    const s = Buffer.from(data.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return s;
  };
  const pop = (): PyValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK || (marks.length && stack.length < marks[marks.length - 1]))
      throw new PickleError(`the pickle pops an empty stack at byte ${pos - 1}`);
    return v;
  };
  const top = (): PyValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError(`the pickle reads an empty stack at byte ${pos - 1}`);
    return v;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleError(`no mark to pop at byte ${pos - 1}`);
    const items = stack.splice(m) as PyValue[];
    stack.pop(); // the mark
    return items;
  };
  const str = (n: number, what: string) => {
    if (n > limits.maxString) throw new PickleError(`${what} of ${n} bytes (more than ${limits.maxString})`);
    try {
      return utf8.decode(take(n, what));
    } catch (e) {
      if (e instanceof PickleError) throw e;
      throw new PickleError(`${what} at byte ${pos - n} is not UTF-8`);
    }
  };
  const global = (module: string, name: string): PyGlobal => {
    const p = `${module}.${name}`;
    if (!ALLOWED.has(p)) throw new PickleError(`refused global '${p}' (a state dict holds only tensors, numbers, strings and containers)`);
    return new PyGlobal(module, name);
  };
  const put = (i: number) => {
    if (memo.size >= limits.maxMemo && !memo.has(i)) throw new PickleError(`more than ${limits.maxMemo} memo entries`);
    memo.set(i, top());
  };
  const get = (i: number) => {
    if (!memo.has(i)) throw new PickleError(`memo entry ${i} read before it was written (byte ${pos})`);
    stack.push(memo.get(i)!);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  for (;;) {
    if (pos >= data.length) throw new PickleError('the pickle ends without a STOP');
    const at = pos;
    const op = data[pos++];
    switch (op) {
      case 0x80: {
        const p = take(1, 'PROTO')[0];
        if (p > 5) throw new PickleError(`pickle protocol ${p} (this reader knows 2 to 5)`);
        break;
      }
      case 0x95: // FRAME: a hint only
        take(8, 'FRAME');
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) throw new PickleError(`STOP with ${stack.length} values on the stack`);
        return pop();
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) throw new PickleError(`more than ${limits.maxMarks} nested marks`);
        marks.push(stack.length + 1);
        stack.push(MARK);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e:
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4, 'BININT');
        stack.push(dv.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b:
        stack.push(take(1, 'BININT1')[0]);
        break;
      case 0x4d:
        need(2, 'BININT2');
        stack.push(dv.getUint16(pos, true));
        pos += 2;
        break;
      case 0x8a: // LONG1
        stack.push(long(take(take(1, 'LONG1')[0], 'LONG1')));
        break;
      case 0x8b: {
        need(4, 'LONG4');
        const n = dv.getInt32(pos, true);
        pos += 4;
        if (n > 1024) throw new PickleError(`a ${n}-byte integer`);
        stack.push(long(take(n, 'LONG4')));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(new PyFloat(dv.getFloat64(pos, false)));
        pos += 8;
        break;
      case 0x58: {
        need(4, 'BINUNICODE');
        const n = dv.getUint32(pos, true);
        pos += 4;
        stack.push(str(n, 'a string'));
        break;
      }
      case 0x8c:
        stack.push(str(take(1, 'SHORT_BINUNICODE')[0], 'a string'));
        break;
      case 0x8d: {
        need(8, 'BINUNICODE8');
        const n = Number(dv.getBigUint64(pos, true));
        pos += 8;
        stack.push(str(n, 'a string'));
        break;
      }
      case 0x55: // SHORT_BINSTRING (Python 2 str): bytes read as Latin-1 text, as torch.load's encoding does
        stack.push(Buffer.from(take(take(1, 'SHORT_BINSTRING')[0], 'a string')).toString('latin1'));
        break;
      case 0x54: {
        need(4, 'BINSTRING');
        const n = dv.getInt32(pos, true);
        pos += 4;
        if (n > limits.maxString) throw new PickleError(`a string of ${n} bytes`);
        stack.push(Buffer.from(take(n, 'a string')).toString('latin1'));
        break;
      }
      case 0x43:
        stack.push(Uint8Array.from(take(take(1, 'SHORT_BINBYTES')[0], 'bytes')));
        break;
      case 0x42: {
        need(4, 'BINBYTES');
        const n = dv.getUint32(pos, true);
        pos += 4;
        if (n > limits.maxString) throw new PickleError(`bytes of ${n} bytes`);
        stack.push(Uint8Array.from(take(n, 'bytes')));
        break;
      }
      case 0x29:
        stack.push(new PyTuple([]));
        break;
      case 0x74:
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85:
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x5d:
        stack.push([]);
        break;
      case 0x6c:
        stack.push(popMark());
        break;
      case 0x61: {
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError(`APPEND to ${describe(l)}, not a list`);
        l.push(v);
        break;
      }
      case 0x65: {
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw new PickleError(`APPENDS to ${describe(l)}, not a list`);
        for (const v of items) l.push(v);
        break;
      }
      case 0x7d:
        stack.push(new PyDict());
        break;
      case 0x64: {
        const items = popMark();
        if (items.length % 2) throw new PickleError('DICT with an odd number of items');
        const d = new PyDict();
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case 0x73: {
        const v = pop();
        const k = pop();
        const d = top();
        if (!(d instanceof PyDict)) throw new PickleError(`SETITEM on ${describe(d)}, not a dict`);
        d.set(k, v);
        break;
      }
      case 0x75: {
        const items = popMark();
        const d = top();
        if (!(d instanceof PyDict)) throw new PickleError(`SETITEMS on ${describe(d)}, not a dict`);
        if (items.length % 2) throw new PickleError('SETITEMS with an odd number of items');
        for (let i = 0; i < items.length; i += 2) d.set(items[i], items[i + 1]);
        break;
      }
      case 0x63: {
        const module = line('GLOBAL');
        stack.push(global(module, line('GLOBAL')));
        break;
      }
      case 0x93: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError('STACK_GLOBAL of values that are not strings');
        stack.push(global(module, name));
        break;
      }
      case 0x52: {
        const args = pop();
        const f = pop();
        if (!(f instanceof PyGlobal)) throw new PickleError(`REDUCE calls ${describe(f)}, not an allowed global`);
        stack.push(reduce(f, args, limits));
        break;
      }
      case 0x62: {
        const state = pop();
        const inst = top();
        // OrderedDict's attributes (a state dict's _metadata: module versions) are kept by nothing here
        if (!(inst instanceof PyDict) || !(state instanceof PyDict || state instanceof PyTuple))
          throw new PickleError(`BUILD on ${describe(inst)} (only a dict's attributes may be set)`);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x71:
        put(take(1, 'BINPUT')[0]);
        break;
      case 0x72:
        need(4, 'LONG_BINPUT');
        put(dv.getUint32(pos, true));
        pos += 4;
        break;
      case 0x94:
        put(memo.size);
        break;
      case 0x68:
        get(take(1, 'BINGET')[0]);
        break;
      case 0x6a:
        need(4, 'LONG_BINGET');
        get(dv.getUint32(pos, true));
        pos += 4;
        break;
      case 0x69: {
        // INST: module and name inline, then a class instantiation: refused by name
        const module = line('INST');
        const name = line('INST');
        global(module, name);
        throw new PickleError(`refused INST of '${module}.${name}'`);
      }
      default:
        throw new PickleError(
          `unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at} (NEWOBJ, INST, OBJ, EXT and text opcodes are refused)`,
        );
    }
  }
}
