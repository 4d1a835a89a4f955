import { tf } from '../backend/tf';
import { Parameter } from '../nn/module';
import { Tensor } from '../tensor';
import { maybeCollect, releaseWith } from '../memory';
import { checkInterrupt } from '../interrupt';

/** A loss that became NaN or ±∞: the step is refused before any parameter changes. */
export class NonFiniteLossError extends Error {
  constructor(readonly loss: number) {
    super(`the loss is ${loss}: training stopped before updating the parameters (try a lower learning rate, or check the data for NaN/∞)`);
    this.name = 'NonFiniteLossError';
  }
}

/** The whole batch's gradients and loss from this thread's (see Optimizer.step). */
export type GradientReduction = (grads: (tf.Tensor | undefined)[], loss: number) => { grads: (tf.Tensor | undefined)[]; loss: number };

export interface ParamGroup {
  lr: number;
  [k: string]: number | boolean;
}

export interface OptimizerState {
  state: Record<number, Record<string, Tensor | number>>;
  param_groups: (Record<string, number | boolean | number[]> & { lr: number; params: number[] })[];
}

/**
 * PyTorch's optimizer with the closure form of step(): `opt.step(() => loss)` records the
 * gradients of the returned scalar, updates the parameters and returns the loss as a number.
 * Every tensor made inside the step is released.
 */
export abstract class Optimizer {
  readonly params: Parameter[];
  readonly paramGroups: ParamGroup[];
  protected stepCount = 0;

  constructor(params: Iterable<Parameter>, defaults: ParamGroup) {
    this.params = [...params].filter((p) => p.raw.trainable);
    if (this.params.length === 0) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    this.paramGroups = [{ ...defaults }];
    // its state (momentum, Adam's moments) goes with it, like any dropped tensor (memory.ts)
    const slots = this.slots;
    releaseWith(this, () => {
      for (const s of slots.values()) for (const v of Object.values(s)) v.dispose();
    });
  }

  get lr(): number {
    return this.paramGroups[0].lr;
  }
  set lr(v: number) {
    this.paramGroups[0].lr = v;
  }

  /** Gradients live only inside step(); this exists for code written the PyTorch way. */
  zeroGrad(): void {
    /* nothing to clear */
  }

  /**
   * `reduce` (data-parallel training) turns this thread's gradients (one per parameter, undefined
   * where there is none) and loss into the whole batch's, before the finiteness check and update.
   */
  step(closure: () => Tensor, reduce?: GradientReduction): number {
    checkInterrupt('an optimizer step');
    maybeCollect();
    let loss = NaN;
    tf.tidy(() => {
      const vars = this.params.map((p) => p.variable);
      const r = tf.variableGrads(() => {
        const l = closure();
        if (l.size !== 1) throw new Error(`step(): the closure must return a scalar loss, got shape [${l.shape.join(', ')}]`);
        return tf.reshape(l.raw, []) as tf.Scalar;
      }, vars);
      let grads: (tf.Tensor | undefined)[] = this.params.map((p) => r.grads[p.variable.name]);
      loss = r.value.dataSync()[0];
      if (reduce) ({ grads, loss } = reduce(grads, loss));
      if (!Number.isFinite(loss)) throw new NonFiniteLossError(loss);
      this.stepCount++;
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (g) this.update(i, p, g);
      });
    });
    return loss;
  }

  protected abstract update(index: number, p: Parameter, grad: tf.Tensor): void;
  protected abstract slotNames(): string[];
  protected slots: Map<number, Record<string, tf.Variable>> = new Map();

  protected slot(i: number, name: string, like: tf.Tensor): tf.Variable {
    let s = this.slots.get(i);
    if (!s) this.slots.set(i, (s = {}));
    if (!s[name]) s[name] = tf.variable(tf.zerosLike(like), false);
    return s[name];
  }

  /** PyTorch-shaped optimizer state (tensors in the parameters' logical order), for resuming. */
  stateDict(): OptimizerState {
    const state: OptimizerState['state'] = {};
    for (const [i, s] of this.slots) {
      const entry: Record<string, Tensor | number> = { step: this.stepCount };
      for (const [k, v] of Object.entries(s)) entry[k] = new Tensor(v, this.params[i].perm);
      state[i] = entry;
    }
    return { state, param_groups: this.paramGroups.map((g) => ({ ...g, params: this.params.map((_, i) => i) })) };
  }

  loadStateDict(sd: OptimizerState): void {
    const group = sd.param_groups?.[0];
    if (!group || group.params.length !== this.params.length) {
      throw new Error(`optimizer state is for ${group?.params.length ?? 0} parameters, this optimizer has ${this.params.length}`);
    }
    // validate everything before touching anything
    const incoming: [number, string, Tensor][] = [];
    for (const [k, entry] of Object.entries(sd.state)) {
      const i = Number(k);
      if (!(i in this.params)) throw new Error(`optimizer state names parameter ${k}, which does not exist`);
      for (const [name, v] of Object.entries(entry)) {
        if (name === 'step') continue;
        if (!this.slotNames().includes(name)) throw new Error(`optimizer state has unknown slot '${name}' for parameter ${k}`);
        const t = v as Tensor;
        if (t.shape.join() !== this.params[i].shape.join()) {
          throw new Error(
            `optimizer state '${name}' of parameter ${k} has shape [${t.shape.join(', ')}], the parameter [${this.params[i].shape.join(', ')}]`,
          );
        }
        incoming.push([i, name, t]);
      }
    }
    const { params: _p, ...hyper } = group;
    Object.assign(this.paramGroups[0], hyper);
    const steps = Object.values(sd.state).map((e) => Number(e.step ?? 0));
    this.stepCount = steps.length ? Math.max(...steps) : 0;
    for (const [i, name, t] of incoming) {
      const phys = t.physical(this.params[i].perm);
      this.slot(i, name, phys).assign(phys);
    }
  }
}

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD: d = g + wd·p; buf = μ·buf + (1−τ)·d (buf = d at first); p −= lr·(nesterov ? d + μ·buf : buf). */
export class SGD extends Optimizer {
  constructor(params: Iterable<Parameter>, opts: SGDOptions = {}) {
    const g = {
      lr: opts.lr ?? 1e-3,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weight_decay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
    };
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
      throw new Error('SGD: nesterov momentum requires a momentum and zero dampening');
    super(params, g);
  }
  protected slotNames(): string[] {
    return ['momentum_buffer'];
  }
  protected update(i: number, p: Parameter, grad: tf.Tensor): void {
    const g = this.paramGroups[0] as unknown as {
      lr: number;
      momentum: number;
      dampening: number;
      weight_decay: number;
      nesterov: boolean;
    };
    let d = grad;
    if (g.weight_decay) d = tf.add(d, tf.mul(p.raw, g.weight_decay));
    if (g.momentum) {
      const fresh = !this.slots.get(i)?.momentum_buffer;
      const buf = this.slot(i, 'momentum_buffer', d);
      const next = fresh ? d : tf.add(tf.mul(buf, g.momentum), g.dampening ? tf.mul(d, 1 - g.dampening) : d);
      buf.assign(next);
      d = g.nesterov ? tf.add(d, tf.mul(next, g.momentum)) : next;
    }
    p.raw.assign(tf.sub(p.raw, tf.mul(d, g.lr)));
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.Adam (L2 weight decay added to the gradient, bias-corrected moments). */
export class Adam extends Optimizer {
  constructor(params: Iterable<Parameter>, opts: AdamOptions = {}) {
    const [b1, b2] = opts.betas ?? [0.9, 0.999];
    super(params, { lr: opts.lr ?? 1e-3, beta1: b1, beta2: b2, eps: opts.eps ?? 1e-8, weight_decay: opts.weightDecay ?? 0 });
  }
  protected slotNames(): string[] {
    return ['exp_avg', 'exp_avg_sq'];
  }
  protected update(i: number, p: Parameter, grad: tf.Tensor): void {
    const g = this.paramGroups[0] as unknown as { lr: number; beta1: number; beta2: number; eps: number; weight_decay: number };
    const d = g.weight_decay ? tf.add(grad, tf.mul(p.raw, g.weight_decay)) : grad;
    const m = this.slot(i, 'exp_avg', d);
    const v = this.slot(i, 'exp_avg_sq', d);
    m.assign(tf.add(tf.mul(m, g.beta1), tf.mul(d, 1 - g.beta1)));
    v.assign(tf.add(tf.mul(v, g.beta2), tf.mul(tf.square(d), 1 - g.beta2)));
    const t = this.stepCount;
    const bc1 = 1 - g.beta1 ** t;
    const bc2 = 1 - g.beta2 ** t;
    const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), g.eps);
    p.raw.assign(tf.sub(p.raw, tf.mul(tf.div(m, denom), g.lr / bc1)));
  }
}

/** torch.optim.lr_scheduler.StepLR: lr = base · γ^⌊epoch/stepSize⌋, advanced by step(). */
export class StepLR {
  private epoch = 0;
  private readonly base: number;
  constructor(
    private readonly opt: Optimizer,
    private readonly stepSize: number,
    private readonly gamma = 0.1,
  ) {
    this.base = opt.lr;
  }
  step(): void {
    this.epoch++;
    this.opt.lr = this.base * this.gamma ** Math.floor(this.epoch / this.stepSize);
  }
  getLastLr(): number[] {
    return [this.opt.lr];
  }
}

/** torch.optim.lr_scheduler.CosineAnnealingLR (closed form): η_min + (η₀ − η_min)(1 + cos(π·t/T))/2. */
export class CosineAnnealingLR {
  private t = 0;
  private readonly base: number;
  constructor(
    private readonly opt: Optimizer,
    private readonly tMax: number,
    private readonly etaMin = 0,
  ) {
    if (tMax <= 0) throw new Error('CosineAnnealingLR: tMax must be positive');
    this.base = opt.lr;
  }
  step(): void {
    this.t++;
    this.opt.lr = this.etaMin + ((this.base - this.etaMin) * (1 + Math.cos((Math.PI * this.t) / this.tMax))) / 2;
  }
  getLastLr(): number[] {
    return [this.opt.lr];
  }
}
