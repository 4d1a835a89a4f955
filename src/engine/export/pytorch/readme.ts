// README.md of a PyTorch project (docs/scale-out.md#what-the-export-writes): how to run train.py on
// one GPU, on N GPUs, on a cluster, and how its checkpoints come back to the studio.
export interface ReadmeInput {
  className: string;
  stage: string;
  checkpoint?: string;
  withData: boolean;
  inputShape: number[];
}

export function readmeMd(r: ReadmeInput): string {
  const from = r.checkpoint ? `the checkpoint \`${r.checkpoint.split(/[\\/]/).pop()}\`` : 'a freshly initialised model';
  return `# ${r.className} on PyTorch + linger

Exported by Linger Studio (\`linger export-pytorch\`) from ${from}, at the **${r.stage}** stage.

| file | what |
|---|---|
| \`model.py\` | the model as a PyTorch \`nn.Module\`; layer names and state-dict keys are the studio's |
| \`weights.safetensors\`, \`pt/weights.pt\` | the weights at the ${r.stage} stage (the same tensors; \`torch.load\` reads the .pt) |
| \`recipe.json\` | the stages' settings: epochs, learning rates, batch, normalize clamps, bits (recorded ones under \`recorded\`) |
| \`module_tree.json\` | each stage's module tree (clamps, bits, ahead-ReLU marks), which train.py records in its checkpoints for the studio |
| \`train.py\` | the two-stage recipe with linger (\`trace_layers\` → \`normalize_layers\` → \`init\`, weights loaded after the last transform) under DDP |
${r.withData ? '| `data/` | the data set the studio trained on (uint8 images and labels as .npy) |\n' : ''}
train.py needs \`torch\` and \`numpy\`; the traced and fixed stages need \`linger\` (ListenAI's
package, \`pip install pylinger==1.1.1\` or from source). Without ${r.withData ? '`data/`' : 'a `data/` folder'} it downloads Fashion-MNIST
through \`torchvision\`; for your own data set fill in \`load_data()\` in train.py (input
\`[N, ${r.inputShape.slice(1).join(', ')}]\` as model.py's \`INPUT_DTYPE\`, labels int64).

## One machine, one GPU (or the CPU)

\`\`\`sh
python train.py                          # ${r.stage === 'fixed' ? 'more QAT in the fixed stage' : `the stages after ${r.stage}`}, as recipe.json says
python train.py --stages fixed --epochs 3
python train.py --steps 20 --limit 2000  # a quick check
\`\`\`

## One machine, N GPUs

\`\`\`sh
torchrun --standalone --nproc_per_node N train.py
\`\`\`

Each process takes one GPU (\`LOCAL_RANK\`), NCCL carries the gradients, a \`DistributedSampler\`
splits the data, and BatchNorm becomes \`SyncBatchNorm\` in the float stage (the studio's workers
share BN statistics too; on the CPU, gloo, each process keeps its own). \`--batch\` is the
global batch: each process takes batch / N. Without torchrun: \`python train.py --spawn N\`.

## A cluster

\`\`\`sh
# on each of the M machines (same folder, same data):
torchrun --nnodes M --nproc_per_node N --rdzv_backend c10d --rdzv_endpoint HOST:29400 train.py
\`\`\`

Under Slurm: \`srun torchrun --nnodes $SLURM_NNODES --nproc_per_node N --rdzv_backend c10d
--rdzv_endpoint $(scontrol show hostnames | head -1):29400 train.py\`. train.py reads only
torchrun's variables (\`RANK\`, \`WORLD_SIZE\`, \`LOCAL_RANK\`, \`MASTER_ADDR\`, \`MASTER_PORT\`).

## Back to the studio

Rank 0 writes \`<stage>.safetensors\` beside \`weights.safetensors\` (\`--out\` elsewhere) with the studio's \`linger.*\` metadata (stage,
metrics, parent and its sha256, transforms, recipe). Copy the folder back and open it in the
Checkpoints view, or \`linger inspect\` / \`linger experiment .\` / \`linger export\` it.
`;
}
