// Benchmark of the load-order analyzer (issue 6: a 5,000-line Python file in < 50 ms). Generates a
// linger training script made of repeated experiment units (a model class, training and
// evaluation helpers, a float → trace → normalize → init pipeline with branches, loops and a few
// misplaced loads) and reports the median time of `analyze` after warm-up.
//   node --import tsx src/engine/analysis/bench.ts
import { LoadOrderAnalyzer } from './analyzer';

function unit(i: number): string {
  return `

class Net${i}(nn.Module):
    """Experiment ${i}: a small CNN for 28x28 inputs."""

    def __init__(self, classes=10):
        super(Net${i}, self).__init__()
        self.conv = nn.Conv2d(1, 16, kernel_size=3, stride=1, padding=1, bias=True)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.relu(self.bn(self.conv(x)))
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.pool(x)
        n, c, h, w = x.shape
        x = x.view(n, c * h * w)
        return self.fc(x)


def train_epoch_${i}(model, loader, optimizer, device):
    model.train()
    total, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        optimizer.step()
        total += loss.item() * x.size(0)
        correct += (out.argmax(1) == y).sum().item()
        seen += x.size(0)
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f}")  # progress
    return total / seen, correct / seen


@torch.no_grad()
def evaluate_${i}(model, loader, device):
    model.eval()
    correct, seen = 0, 0
    for x, y in loader:
        out = model(x.to(device))
        correct += (out.argmax(1) == y.to(device)).sum().item()
        seen += y.size(0)
    return correct / max(seen, 1)


def experiment_${i}(args, train_loader, test_loader, device):
    model = Net${i}().to(device)
    if args.float_checkpoint:
        model.load_state_dict(torch.load(args.float_checkpoint))  # trained float weights
    dummy = torch.randn(1, 1, 28, 28).to(device)
    model = linger.trace_layers(model, model, dummy, fuse_bn=True, ahead_bn_relu=True)
    ${i % 3 === 0 ? 'model.load_state_dict(torch.load(args.traced))  # misplaced' : '# traced'}
    model = linger.normalize_layers(model, normalize_weight_value=8, normalize_bias_value=None, normalize_output_value=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    for epoch in range(args.float_epochs):
        loss, acc = train_epoch_${i}(model, train_loader, optimizer, device)
        print("float", epoch, loss, acc, evaluate_${i}(model, test_loader, device))
    torch.save(model.state_dict(), f"{args.out}/float_${i}.pt")
    if args.resume:
        model = linger.init(model, parameter_bits=8, data_bits=8)
    else:
        model = linger.init(model)
    model.load_state_dict(torch.load(args.resume or f"{args.out}/float_${i}.pt"))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr * 0.1, momentum=0.9)
    for epoch in range(args.fix_epochs):
        loss, acc = train_epoch_${i}(model, train_loader, optimizer, device)
        if acc > 0.99:
            break
    torch.save(model.state_dict(), f"{args.out}/fixed_${i}.pt")
    return evaluate_${i}(model, test_loader, device)
`;
}

/** A Python linger script of at least `minLines` lines. */
export function benchScript(minLines = 5000): string {
  let text = `# generated benchmark script for the load-order analyzer
import argparse
import torch
import torch.nn as nn
import torch.nn.functional as F
import linger
`;
  let lines = text.split('\n').length;
  for (let i = 0; lines < minLines; i++) {
    const u = unit(i);
    text += u;
    lines += u.split('\n').length - 1;
  }
  return (
    text +
    `

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
`
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `ms`: median wall time; `cpuMs`: median CPU time of the process (less sensitive to other jobs on the machine). */
export interface AnalyzerBench {
  lines: number;
  ms: number;
  cpuMs: number;
  diagnostics: number;
}
export interface AnalyzerBenchOptions {
  runs?: number;
  warmup?: number;
  prefilter?: boolean;
}

/** Median ms to analyze the 5,000-line script with an analyzer already created (synchronous). */
export function measureAnalyzer(analyzer: LoadOrderAnalyzer, opts: AnalyzerBenchOptions = {}): AnalyzerBench {
  const text = benchScript(5000);
  const lines = text.split('\n').length;
  let diagnostics = 0;
  for (let i = 0; i < (opts.warmup ?? 10); i++) diagnostics = analyzer.analyze(text, 'python', { prefilter: opts.prefilter }).length;
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < (opts.runs ?? 31); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    analyzer.analyze(text, 'python', { prefilter: opts.prefilter });
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { lines, ms: median(times), cpuMs: median(cpu), diagnostics };
}

/**
 * Median ms to analyze a 5,000-line Python script, after warm-up. Async only because creating
 * the analyzer loads the WASM grammars; the timed part is `measureAnalyzer`.
 */
export async function benchAnalyzer(opts: AnalyzerBenchOptions = {}): Promise<AnalyzerBench> {
  return measureAnalyzer(await LoadOrderAnalyzer.create(), opts);
}

// run directly (not when bundled into the CLI, where `require.main === module` would hold too)
if (/[\\/]analysis[\\/]bench\.ts$/.test(process.argv[1] ?? '')) {
  void (async () => {
    const r = await benchAnalyzer();
    const full = await benchAnalyzer({ prefilter: false });
    process.stdout.write(
      `load-order analyzer: ${r.lines} lines of Python in ${r.ms.toFixed(1)} ms (median wall; CPU ${r.cpuMs.toFixed(1)} ms; ` +
        `${r.diagnostics} diagnostics); without the prefilter ${full.ms.toFixed(1)} ms (CPU ${full.cpuMs.toFixed(1)} ms)\n`,
    );
  })();
}
