// GRUInt / LSTMInt in the fixed-stage ONNX dialects (docs/fixed-point.md, docs/linger-ops.md).
// qdq: the integer cell unrolled over the dummy input's time steps in standard ops — float32
// arithmetic on integer values (exact below 2^24, checked), the gates' sigmoid/tanh as a Gather over
// the engine's own tables — so onnxruntime computes what the engine's eval computes, bit for bit.
// thinker: one linger `GRUInt`/`LSTMInt` node per direction and layer, with linger's attributes.
import { EXACT, qmax } from '../../../quant/qvalue';
import { Tensor } from '../../../tensor';
import type { CapturedCall } from '../../../onnx/capture';
import type { ExportContext } from '../../../onnx/export/context';
import { DT, THINKER, PLATFORM } from '../../../onnx/proto';
import { intActivation } from '../iqActivation';
import { ExportedRecurrentLayer, GRUInt, LSTMInt } from './layer';
import { ThinkerUnsupportedError } from '../../../onnx/export/thinkerRules';

export function lowerRecurrentInt(L: ExportContext, c: CapturedCall, m: GRUInt | LSTMInt, scope: string): void {
  const x = c.inputs[0] as Tensor;
  const type = m.kind === 'LSTM' ? 'LSTMInt' : 'GRUInt';
  if (!(x instanceof Tensor) || x.rank !== 3) throw new Error(`${type} at '${c.target}': export needs a batched input (rank 3)`);
  if (c.inputs.length > 1 && c.inputs[1] !== undefined)
    throw new Error(`${type} at '${c.target}': export with initial states is not supported yet`);
  if (L.mode === 'thinker') thinker(L, c, m, x, scope);
  else qdq(L, c, m, x, scope);
}

/** Every layer and direction's scales and integer weights, as the engine's eval uses them. */
function layers(m: GRUInt | LSTMInt, x: Tensor): ExportedRecurrentLayer[][] {
  const out: ExportedRecurrentLayer[][] = [];
  let si = x.quantScale;
  for (let l = 0; l < m.numLayers; l++) {
    const dirs = (m.bidirectional ? ['', '_reverse'] : ['']).map((sfx) => m.exportLayer(l, sfx, si));
    out.push(dirs);
    si = dirs[0].scales.so;
  }
  return out;
}

function thinker(L: ExportContext, c: CapturedCall, m: GRUInt | LSTMInt, x: Tensor, scope: string): void {
  const g = L.g;
  const isLstm = m.kind === 'LSTM';
  const type = isLstm ? 'LSTMInt' : 'GRUInt';
  if (!isLstm && m.bidirectional) {
    // measured: the reverse direction's 8 outputs per step all differ (LSTMInt's are exact)
    throw new ThinkerUnsupportedError(
      "tpacker v1.1.0 packs no direction for GRUInt (it drops go_forward, LSTMInt's it keeps), so the reverse direction would run forward on the chip; use a one-way GRU or an LSTM",
    );
  }
  const all = layers(m, x);
  const off = !isLstm && all.flat().find((e) => e.scales.so !== 256);
  if (off)
    throw new ThinkerUnsupportedError(
      `its state is at 2^${Math.round(Math.log2(off.scales.so))}, and thinker v1.1.0's GRU kernel reads the state as if at 2^8 (it halves the int8 codes), so the chip would compute another GRU; keep GRUInt.chipStateScale (the default) and train again`,
    );
  const D = m.bidirectional ? 2 : 1;
  let inp = L.int8Input(x, all[0][0].scales.si, m.dataBits, scope);
  const hs: { name: string; int8Scale: number }[] = [],
    cs: string[] = [];
  let so = 0;
  all.forEach((dirs, l) => {
    const outs = dirs.map((e, d) => {
      const sfx = d ? '_reverse' : '';
      const ins = [
        inp,
        g.initializer(`${c.target}.weight_ih_l${l}${sfx}`, e.wih.dims, DT.INT8, e.wih.values),
        g.initializer(`${c.target}.weight_hh_l${l}${sfx}`, e.whh.dims, DT.INT8, e.whh.values),
      ];
      if (e.bih) ins.push(g.initializer(`${c.target}.bias_ih_l${l}${sfx}`, [e.bih.length], DT.INT32, e.bih));
      if (e.bhh) ins.push(g.initializer(`${c.target}.bias_hh_l${l}${sfx}`, [e.bhh.length], DT.INT32, e.bhh));
      const o = g.add(
        type,
        ins,
        `${scope}/${type}${D === 2 ? (d ? '_reverse' : '_forward') : ''}`,
        {
          input_size: l === 0 ? m.inputSize : m.hiddenSize * D,
          hidden_size: m.hiddenSize,
          num_layers: 1,
          batch_first: m.batchFirst ? 1 : 0,
          dropout: { float: 0 },
          go_forward: d === 0 ? 1 : 0,
          scale_i: { float: e.scales.si },
          scale_h: { float: e.scales.sh },
          scale_iw: { float: e.scales.siw },
          scale_hw: { float: e.scales.shw },
          scale_o: { float: e.scales.so },
          data_bits: m.dataBits,
          parameter_bits: m.parameterBits,
          o_bits: m.outBits,
          ...PLATFORM,
        },
        { outputs: isLstm ? 3 : 2, domain: THINKER },
      );
      hs.push({ name: o[1], int8Scale: e.scales.so });
      if (isLstm) cs.push(o[2]);
      so = e.scales.so;
      return o[0];
    });
    const scales: Record<string, { float: number }> = {};
    dirs.forEach((e, i) => {
      scales[`scale_x_${i}`] = { float: e.scales.so };
    });
    inp =
      outs.length === 1
        ? outs[0]
        : g.op(
            'iqCat',
            outs,
            `${scope}/iqCat`,
            { ...scales, scale_o: { float: Math.min(...dirs.map((e) => e.scales.so)) }, dim: 2, ...PLATFORM },
            THINKER,
          );
  });
  L.out(c, { name: inp, int8Scale: so }, 0);
  // h_n: tpacker declares the node's state outputs float32, so a consumer would read the int8
  // codes as floats; a one-layer, one-direction layer's h_n is its output's last step (the same
  // codes), taken with Slice + Reshape; any other read is an error (docs/onnx.md)
  const where = `${type} at '${c.target}'`;
  const out = y0(all, hs);
  L.out(
    c,
    {
      name: '',
      materialize: () => {
        if (!out)
          throw new ThinkerUnsupportedError(
            `its final hidden state h_n is read, which tpacker declares float32; with ${m.numLayers} layer(s) and ${D} direction(s) ` +
              'it is not one step of the output: read the output sequence instead',
            where,
          );
        const tAxis = m.batchFirst ? 1 : 0,
          T = x.shape[tAxis],
          N = x.shape[m.batchFirst ? 0 : 1];
        const i64 = (what: string, v: number) => g.initializer(what, [1], DT.INT64, [v]);
        const last = g.op('Slice', [inp, i64('starts', T - 1), i64('ends', T), i64('axes', tAxis)], `${scope}/LastStep/Slice`);
        const r = g.op('Reshape', [last, g.initializer('shape', [3], DT.INT64, [1, N, m.hiddenSize])], `${scope}/LastStep/Reshape`);
        return { name: r, int8Scale: out.int8Scale };
      },
    },
    1,
  );
  if (isLstm) {
    L.out(
      c,
      {
        name: '',
        materialize: () => {
          throw new ThinkerUnsupportedError(
            'its final cell state c_n is read, which tpacker declares float32 and no output step holds',
            where,
          );
        },
      },
      2,
    );
  }
}

/** h_n as one output step: a one-layer, one-direction layer whose state has the output's scale. */
function y0(all: ExportedRecurrentLayer[][], hs: { int8Scale: number }[]): { int8Scale: number } | null {
  return all.length === 1 && all[0].length === 1 && hs.length === 1 && hs[0].int8Scale === all[0][0].scales.so ? hs[0] : null;
}

/** The unrolled integer cell in standard ONNX (see the file's header). */
function qdq(L: ExportContext, c: CapturedCall, m: GRUInt | LSTMInt, x: Tensor, scope: string): void {
  const g = L.g;
  const isLstm = m.kind === 'LSTM';
  const H = m.hiddenSize,
    G = isLstm ? 4 : 3,
    D = m.bidirectional ? 2 : 1;
  const all = layers(m, x);
  const T = x.shape[m.batchFirst ? 1 : 0];
  const bx = qmax(m.dataBits) + 1;
  const op = (type: string, ins: string[], name: string, attrs: Record<string, number | number[]> = {}) =>
    g.op(type, ins, `${scope}/${name}`, attrs);
  const k = (v: number) => g.scalar(v);
  const floor = (v: string, name: string) => op('Floor', [v], `${name}/Floor`);
  const round = (v: string, name: string) => floor(op('Add', [v, k(0.5)], `${name}/Add`), name);
  const i64 = (vals: number[]) => g.initializer(`${c.target}.axes`, [vals.length], DT.INT64, vals);
  // the integer activation of a Q11 value, back as float32 integers
  const act = (kind: 'sigmoid' | 'tanh', v: string, name: string) =>
    op('Cast', [intActivation(L, kind, v, `${scope}/${name}`)], `${name}/Float`, { to: DT.FLOAT });
  // toQ(acc, s, 11): acc·2^l (l > 0) or ⌊acc·2^l + 1/2⌋, on float32 integers
  const toQ11 = (acc: string, s: number, name: string) => {
    const l = 11 - Math.log2(s);
    const shifted = l === 0 ? acc : op('Mul', [acc, k(2 ** l)], `${name}/Mul`);
    return l >= 0 ? shifted : round(shifted, name);
  };
  const slice = (v: string, from: number, to: number, axis: number, name: string) =>
    op(
      'Slice',
      [v, g.initializer(`${c.target}.start`, [1], DT.INT64, [from]), g.initializer(`${c.target}.end`, [1], DT.INT64, [to]), i64([axis])],
      name,
    );
  // W as [in, gates·H] float32 codes (for MatMul) from PyTorch's [gates·H, in]
  const transposed = (w: { dims: number[]; values: number[] }) => {
    const [rows, cols] = w.dims;
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) out[q * rows + r] = w.values[r * cols + q];
    return out;
  };

  let seq = L.floatName(L.value(x), scope);
  if (m.batchFirst) seq = op('Transpose', [seq], 'Transpose', { perm: [1, 0, 2] });
  let inScale = all[0][0].scales.si;
  const hs: string[] = [],
    cs: string[] = [];
  all.forEach((dirs, l) => {
    const inF = l === 0 ? m.inputSize : H * D;
    const si = inScale;
    // the input's codes at s_i, for every step at once: [T, B, F]
    const codes = op('Clip', [round(op('Mul', [seq, k(si)], `l${l}/Codes/Mul`), `l${l}/Codes`), k(-bx), k(bx - 1)], `l${l}/Codes/Clip`);
    const outs = dirs.map((e, d) => {
      const sfx = `l${l}${d ? '_reverse' : ''}`;
      const { sh, siw, shw, so } = e.scales;
      // float32 holds these integers exactly below 2^24: bound every accumulator by its weights
      // (Σ|q_w| per row times the largest code, plus the bias), and the GRU's r·gh_n product
      const accBound = (w: { dims: number[]; values: number[] }, b: number[] | null) => {
        const [rows, cols] = w.dims;
        let worst = 0;
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let q = 0; q < cols; q++) sum += Math.abs(w.values[r * cols + q]);
          worst = Math.max(worst, sum * bx + Math.abs(b?.[r] ?? 0));
        }
        return worst;
      };
      const q11 = (acc: number, s: number) => acc * 2 ** (11 - Math.log2(s)) + 1;
      const bi = accBound(e.wih, e.bih),
        bh = accBound(e.whh, e.bhh);
      const worst = Math.max(2 * bi, 2 * bh, q11(bi, si * siw) + q11(bh, sh * shw), isLstm ? 0 : 128 * q11(bh, sh * shw));
      if (worst >= EXACT) {
        throw new Error(
          `${m.typeName()} at '${c.target}': an intermediate of its integer cell can pass 2^24 (${inF} inputs, ${H} hidden units at ${m.dataBits}/${m.parameterBits} bits), where float32 stops being exact; the qdq export of such a layer is not supported — export with { dialect: 'thinker' }`,
        );
      }
      const wih = g.initializer(`${c.target}.weight_ih_${sfx}_codes`, [inF, G * H], DT.FLOAT, transposed(e.wih));
      const whh = g.initializer(`${c.target}.weight_hh_${sfx}_codes`, [H, G * H], DT.FLOAT, transposed(e.whh));
      let accI = op('MatMul', [codes, wih], `${sfx}/InputMatMul`);
      if (e.bih) accI = op('Add', [accI, g.initializer(`${c.target}.bias_ih_${sfx}_codes`, [G * H], DT.FLOAT, e.bih)], `${sfx}/InputBias`);
      const gi = toQ11(accI, si * siw, `${sfx}/InputQ11`); // [T, B, G·H]
      const bhh = e.bhh ? g.initializer(`${c.target}.bias_hh_${sfx}_codes`, [G * H], DT.FLOAT, e.bhh) : null;
      const gate = (v: string, j: number, name: string) => slice(v, j * H, (j + 1) * H, -1, name);
      let h: string | null = null,
        cell: string | null = null;
      const steps: string[] = new Array(T);
      for (let i = 0; i < T; i++) {
        const t = d === 0 ? i : T - 1 - i;
        const p = `${sfx}/t${t}`;
        const git = op('Gather', [gi, g.scalar(t, DT.INT64)], `${p}/Gi`, { axis: 0 }); // [B, G·H]
        // the hidden side: h codes at s_h (a zero state at t = 0 contributes only its bias)
        let gh: string;
        if (h) {
          const hq = op('Clip', [round(op('Mul', [h, k(sh)], `${p}/Hq/Mul`), `${p}/Hq`), k(-bx), k(bx - 1)], `${p}/Hq/Clip`);
          let accH = op('MatMul', [hq, whh], `${p}/HiddenMatMul`);
          if (bhh) accH = op('Add', [accH, bhh], `${p}/HiddenBias`);
          gh = toQ11(accH, sh * shw, `${p}/HiddenQ11`);
        } else {
          const zeros = () => g.initializer(`${c.target}.bias_hh_${sfx}_zero`, [G * H], DT.FLOAT, new Float32Array(G * H));
          gh = toQ11(bhh ?? zeros(), sh * shw, `${p}/HiddenQ11`);
        }
        let H14: string;
        // the cell's Q7 state R(128·h) (docs/fixed-point.md#the-chips-gruint-lstmint-iqsigmoid-iqtanh-thinker-v110)
        const h7 = h ? round(op('Mul', [h, k(128)], `${p}/H7/Mul`), `${p}/H7`) : k(0);
        if (!isLstm) {
          const r = act('sigmoid', op('Add', [gate(git, 0, `${p}/Gi_r`), gate(gh, 0, `${p}/Gh_r`)], `${p}/R/Add`), `${p}/R`);
          const z = act('sigmoid', op('Add', [gate(git, 1, `${p}/Gi_z`), gate(gh, 1, `${p}/Gh_z`)], `${p}/Z/Add`), `${p}/Z`);
          const rh = floor(
            op(
              'Mul',
              [op('Add', [op('Mul', [r, gate(gh, 2, `${p}/Gh_n`)], `${p}/Rh/Mul`), k(64)], `${p}/Rh/Add`), k(1 / 128)],
              `${p}/Rh/Div`,
            ),
            `${p}/Rh`,
          );
          const n = act('tanh', op('Add', [gate(git, 2, `${p}/Gi_n`), rh], `${p}/N/Add`), `${p}/N`);
          H14 = op(
            'Add',
            [op('Mul', [n, k(128)], `${p}/H14/Mul`), op('Mul', [z, op('Sub', [h7, n], `${p}/H14/Sub`)], `${p}/H14/MulZ`)],
            `${p}/H14/Add`,
          );
        } else {
          const pre = op('Clip', [op('Add', [git, gh], `${p}/G/Add`), k(-32768), k(32767)], `${p}/G/Clip`);
          const ig = act('sigmoid', gate(pre, 0, `${p}/G_i`), `${p}/I`);
          const fg = act('sigmoid', gate(pre, 1, `${p}/G_f`), `${p}/F`);
          const gg = act('tanh', gate(pre, 2, `${p}/G_g`), `${p}/Gg`);
          const og = act('sigmoid', gate(pre, 3, `${p}/G_o`), `${p}/O`);
          const c7 = cell ? round(op('Mul', [cell, k(1 / 128)], `${p}/C7/Mul`), `${p}/C7`) : k(0);
          cell = op('Add', [op('Mul', [fg, c7], `${p}/C/MulF`), op('Mul', [ig, gg], `${p}/C/MulI`)], `${p}/C/Add`); // Q14
          const tc = act(
            'tanh',
            floor(op('Mul', [op('Add', [cell, k(4)], `${p}/C11/Add`), k(1 / 8)], `${p}/C11/Div`), `${p}/C11`),
            `${p}/Tc`,
          );
          H14 = op('Mul', [og, tc], `${p}/H14/Mul`);
        }
        // h = H/2^14, clamped (normalizeData) and requantized to o_bits at s_o
        let hv = op('Mul', [H14, k(1 / 16384)], `${p}/H`);
        if (m.normalizeData !== null) hv = op('Clip', [hv, k(-m.normalizeData), k(m.normalizeData)], `${p}/Clamp`);
        const bo = qmax(m.outBits);
        h = op(
          'Mul',
          [op('Clip', [round(op('Mul', [hv, k(so)], `${p}/Out/Mul`), `${p}/Out`), k(-bo - 1), k(bo)], `${p}/Out/Clip`), k(1 / so)],
          `${p}/Out/Dequantize`,
        );
        steps[t] = op('Unsqueeze', [h, i64([0])], `${p}/Unsqueeze`);
      }
      hs.push(op('Unsqueeze', [h!, i64([0])], `${sfx}/HN`));
      if (cell) cs.push(op('Unsqueeze', [op('Mul', [cell, k(1 / 16384)], `${sfx}/CN/Mul`), i64([0])], `${sfx}/CN`));
      inScale = so;
      return op('Concat', steps, `${sfx}/Y`, { axis: 0 });
    });
    seq = outs.length === 1 ? outs[0] : op('Concat', outs, `l${l}/Directions`, { axis: 2 });
  });
  const y = m.batchFirst ? op('Transpose', [seq], 'Transpose', { perm: [1, 0, 2] }) : seq;
  const cat = (xs: string[]) => (xs.length === 1 ? xs[0] : op('Concat', xs, 'States', { axis: 0 }));
  L.out(c, { name: y }, 0);
  L.out(c, { name: cat(hs) }, 1);
  if (isLstm) L.out(c, { name: cat(cs) }, 2);
}
