#!/usr/bin/python3
"""Records torch.optim trajectories for tests/test_optim_torch.c.

Writes tests/fixtures/torch_optim.txt: for each case, the parameters θ0, then for every step the
block stepped, the learning rate torch used, the gradient torch's autograd gave at θ_t (the one
fed to the optimizer), and θ_{t+1} after optimizer.step(). The C test feeds the same gradients
to anamo's optim_step with the settings a config of the case's `keys` resolves to, and compares
the parameters. Run with Debian's python3-torch (PyTorch 1.13):

    /usr/bin/python3 scripts/torch-optim-fixtures.py            # rewrites the fixture
    /usr/bin/python3 scripts/torch-optim-fixtures.py --stdout   # prints it instead

The loss is a fixed nonlinear function of 5 parameters whose coordinates have scales 1 to 1e-9:
a unit whose gradient is 1e-9 is where AdaGrad's and RMSprop's eps (1e-10 against 1e-8) decide
the step. Everything is float32, as anamo's parameters are.
"""
import os
import sys

import torch

STEPS = 8
THETA0 = [0.8, -0.6, 1.3, 0.45, -1.1]
SCALE = [1.0, 0.3, 1e-2, 1e-5, 1e-9]
CENTER = [0.2, 0.7, -0.4, 1.0, 0.3]


def loss_of(theta):
    """f(θ) = Σ_i s_i·[log(1 + (θ_i − c_i)²) + 0.1·θ_i⁴] + Σ_i s_{i+1}·0.5·θ_i·θ_{i+1}."""
    s = torch.tensor(SCALE, dtype=torch.float32)
    c = torch.tensor(CENTER, dtype=torch.float32)
    d = theta - c
    f = (s * (torch.log1p(d * d) + 0.1 * theta ** 4)).sum()
    return f + (s[1:] * 0.5 * theta[:-1] * theta[1:]).sum()


def nam_loss_of(enc, dec):
    """A loss coupling an 'encoder' (3) and a 'decoder' (3), as a NAM phase sees it:
    f = Σ_j (e_j·d_j + 0.5·e_{j+1 mod 3}·d_j − b_j)² + 0.01·(‖e‖² + ‖d‖²)."""
    b = torch.tensor([0.5, -0.3, 0.8], dtype=torch.float32)
    r = enc * dec + 0.5 * torch.roll(enc, -1) * dec - b
    return (r * r).sum() + 0.01 * ((enc * enc).sum() + (dec * dec).sum())


def fmt(values):
    return " ".join("%.9g" % v for v in values)


def one_block_case(out, name, torch_text, keys, make, steps_per_epoch=1, sched=None):
    theta = torch.tensor(THETA0, dtype=torch.float32, requires_grad=True)
    opt = make([theta])
    scheduler = sched(opt) if sched else None
    out.append("case %s" % name)
    out.append("torch %s" % torch_text)
    out.append("keys %s" % keys)
    out.append("steps_per_epoch %d" % steps_per_epoch)
    out.append("blocks %d" % len(THETA0))
    out.append("theta0 %s" % fmt(theta.detach().tolist()))
    for t in range(STEPS):
        opt.zero_grad()
        loss_of(theta).backward()
        lr = opt.param_groups[0]["lr"]
        grad = theta.grad.detach().clone()
        opt.step()
        out.append("step 0 %s %s %s" % ("%.9g" % lr, fmt(grad.tolist()),
                                        fmt(theta.detach().tolist())))
        if scheduler and (t + 1) % steps_per_epoch == 0:
            scheduler.step()  # anamo's schedules act at the end of each epoch
    out.append("end")


def nam_adam_case(out):
    """NAM with Adam on both blocks: anamo keeps each block's optimizer (m, v and the step count
    of the bias correction) from one of its phases to the next (src/train/steps.c,
    use_optimizer: same kind, state carries on), so torch's equivalent is one torch.optim.Adam
    per block made once, each stepped only in its own block's phases."""
    enc = torch.tensor([0.9, -0.4, 0.6], dtype=torch.float32, requires_grad=True)
    dec = torch.tensor([0.3, 0.8, -0.7], dtype=torch.float32, requires_grad=True)
    opts = [torch.optim.Adam([enc], lr=1e-2), torch.optim.Adam([dec], lr=1e-2)]
    phases = [1, 0, 1, 0]  # anamo's default cycle starts with the decoder
    out.append("case nam_adam")
    out.append("torch Adam([encoder], lr=1e-2) and Adam([decoder], lr=1e-2), each made once; "
               "phases decoder, encoder, decoder, encoder of 2 steps each")
    out.append("keys optimizer=adam lr=1e-2")
    out.append("steps_per_epoch 1")
    out.append("blocks 3 3")
    out.append("theta0 %s" % fmt(enc.detach().tolist() + dec.detach().tolist()))
    for block in phases:
        for _ in range(2):
            p = enc if block == 0 else dec
            opts[block].zero_grad()
            enc.grad = dec.grad = None
            nam_loss_of(enc, dec).backward()
            grad = p.grad.detach().clone()
            lr = opts[block].param_groups[0]["lr"]
            opts[block].step()
            out.append("step %d %s %s %s" % (block, "%.9g" % lr, fmt(grad.tolist()),
                                             fmt(enc.detach().tolist() + dec.detach().tolist())))
    out.append("end")


def main():
    torch.set_num_threads(1)
    O = torch.optim
    step_lr = lambda opt: O.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    out = [
        "# torch.optim trajectories for tests/test_optim_torch.c, written by",
        "# scripts/torch-optim-fixtures.py with torch %s: do not edit by hand." % torch.__version__,
        "# case NAME / torch WHAT / keys anamo's [joint] keys for the same optimizer /",
        "# steps_per_epoch S (the schedule steps every S steps) / blocks n0 [n1] (coordinates",
        "# of the encoder and decoder blocks, or of one block) / theta0 θ0 /",
        "# step BLOCK LR GRAD(of BLOCK) THETA(all, after the step) ... / end",
    ]
    one_block_case(out, "sgd", "SGD(lr=0.05)", "optimizer=sgd lr=0.05",
                   lambda p: O.SGD(p, lr=0.05))
    one_block_case(out, "sgd_weight_decay", "SGD(lr=0.05, weight_decay=0.1)",
                   "optimizer=sgd lr=0.05 weight_decay=0.1",
                   lambda p: O.SGD(p, lr=0.05, weight_decay=0.1))
    one_block_case(out, "momentum_steplr",
                   "SGD(lr=0.05, momentum=0.9), StepLR(step_size=2, gamma=0.5) per 2-step epoch",
                   "optimizer=momentum lr=0.05 momentum=0.9 schedule=step step_size=2 gamma=0.5",
                   lambda p: O.SGD(p, lr=0.05, momentum=0.9), 2, step_lr)
    one_block_case(out, "nesterov_steplr",
                   "SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), "
                   "StepLR(step_size=2, gamma=0.5) per 2-step epoch",
                   "optimizer=nesterov lr=0.05 momentum=0.9 weight_decay=0.01 schedule=step "
                   "step_size=2 gamma=0.5",
                   lambda p: O.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                   2, step_lr)
    one_block_case(out, "adagrad_defaults", "Adagrad(params) (lr 1e-2, eps 1e-10)",
                   "optimizer=adagrad", lambda p: O.Adagrad(p))
    one_block_case(out, "rmsprop_defaults", "RMSprop(params) (lr 1e-2, alpha 0.99, eps 1e-8)",
                   "optimizer=rmsprop", lambda p: O.RMSprop(p))
    one_block_case(out, "adam_defaults", "Adam(params) (lr 1e-3, betas (0.9, 0.999), eps 1e-8)",
                   "optimizer=adam", lambda p: O.Adam(p))
    one_block_case(out, "adam_weight_decay", "Adam(params, lr=1e-2, weight_decay=0.1)",
                   "optimizer=adam lr=1e-2 weight_decay=0.1",
                   lambda p: O.Adam(p, lr=1e-2, weight_decay=0.1))
    nam_adam_case(out)
    text = "\n".join(out) + "\n"
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "fixtures", "torch_optim.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print("%s: %d cases, %d bytes" % (path, text.count("\ncase "), len(text)))


if __name__ == "__main__":
    main()
