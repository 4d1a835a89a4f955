// What *Linger: New Model File* writes (issue 20): a model file as docs/contract.md ("Model files")
// describes it (exports createModel() and inputShape), and the TypeScript config that makes its
// `import … from 'linger-studio'` resolve to the declarations the extension ships (dist/types, built by
// scripts/build.mjs). No `vscode` here: test/engine/manifest.test.ts type-checks the same text.
import * as path from 'node:path';

/** The extension's bundled declarations of the engine's API (package.json `types`). */
export function declarationsOf(extensionPath: string): string {
  return path.join(extensionPath, 'dist', 'types', 'index.d.ts');
}

/** A small CNN for 1×28×28 images (Fashion-MNIST's shape), as the demo's DemoCNN but smaller. */
export function modelFileText(className = 'SmallCNN'): string {
  return `// A model file (docs/contract.md, "Model files"): it exports createModel() and inputShape.
// "Linger: Trace Model File" (the editor title's button) shows it before and after linger's
// traceLayers; \`linger export <file>\` writes its ONNX from the command line.
import { nn, Tensor } from 'linger-studio';

export class ${className} extends nn.Module {
  conv1 = new nn.Conv2d(1, 8, 3, { padding: 1 });
  bn1 = new nn.BatchNorm2d(8);
  relu1 = new nn.ReLU();
  pool1 = new nn.MaxPool2d(2);
  conv2 = new nn.Conv2d(8, 16, 3, { padding: 1 });
  bn2 = new nn.BatchNorm2d(16);
  relu2 = new nn.ReLU();
  pool2 = new nn.MaxPool2d(2);
  flatten = new nn.Flatten();
  fc = new nn.Linear(16 * 7 * 7, 10);

  forward(x: Tensor): Tensor {
    x = this.pool1(this.relu1(this.bn1(this.conv1(x))));
    x = this.pool2(this.relu2(this.bn2(this.conv2(x))));
    return this.fc(this.flatten(x));
  }
}

/** [batch, channels, height, width] of the example input traceLayers runs the model on. */
export const inputShape = [1, 1, 28, 28];

export function createModel(): nn.Module {
  return new ${className}();
}
`;
}

/** The compiler options a model file needs; `paths` maps linger-studio to the shipped declarations. */
export function compilerOptionsFor(declarations: string): Record<string, unknown> {
  return {
    target: 'ES2022',
    module: 'commonjs',
    moduleResolution: 'node',
    strict: true,
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    // the engine's declarations mention Node's and TF.js's types; a workspace without them still type-checks
    types: [],
    paths: { 'linger-studio': [declarations.split(path.sep).join('/')] },
  };
}

/** tsconfig.json (or jsconfig.json) text for a workspace with no TypeScript config yet. */
export function tsconfigText(declarations: string): string {
  return `${JSON.stringify({ compilerOptions: compilerOptionsFor(declarations) }, null, 2)}\n`;
}

/** The names of the configs that, when one exists, New Model File leaves alone. */
export const CONFIG_FILES = ['tsconfig.json', 'jsconfig.json'];
