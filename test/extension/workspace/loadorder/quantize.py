import torch
import linger


def quantize(model, args):
    model = linger.trace_layers(model, model, torch.randn(1, 1, 28, 28))
    model.load_state_dict(
        torch.load(args.ckpt),
        strict=False,
    )  # resume
    model = linger.normalize_layers(model)
    model = linger.init(model)
    return model
