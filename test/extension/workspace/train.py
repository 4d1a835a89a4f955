# A linger training script, as in the seed (SPEC §9): the load comes after the last transform.
import torch
import linger

model = Net()
model = linger.trace_layers(model, model, torch.randn(1, 10, 5, 5))
model = linger.init(model)
model.load_state_dict(torch.load("checkpoints/fixed.pt"))
