#!/usr/bin/python3
"""PyTorch twins of gradc's models, for tests/run_onnx_tests.sh.

  twins.py export DIR     the twins as DIR/NAME.onnx (opset 17, batch
                          symbolic), and for each a batch of inputs and
                          labels and PyTorch's answers, as raw little-endian
                          files: NAME.x.f32, NAME.y.i32, NAME.out.f32 (the
                          forward output, eval mode) and NAME.loss.txt (the
                          loss of each of 10 SGD steps on that batch, with
                          batch norm in training mode and dropout off, as
                          gradc's train step with the exported model computes)
  twins.py unknown DIR    DIR/selu.onnx, a model with an operator gradc lacks,
                          and DIR/align_corners.onnx, a Resize gradc refuses
  twins.py ops DIR        DIR/ops.onnx (class Ops: most operators gradc
                          imports), its inputs (ops.x.f32, ops.y.i32: ids)
                          and PyTorch's output, ops.out.f32

The models are the twins of models/mnist_mlp.nn, models/cnn_seed.nn,
models/cnn_bn.nn and models/resnet_small.nn (same layers; smaller images
where the test needs speed), and three models of what PyTorch writes for
GELU, bilinear upsampling and grouped convolutions.
"""
import sys

import torch
import torch.nn as nn

BATCH, STEPS, LR = 4, 10, 0.05


class MnistMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(784, 512)
        self.dense_1 = nn.Linear(512, 10)

    def forward(self, x):
        return self.dense_1(torch.relu(self.dense(x)))


class CnnSeed(nn.Module):
    """conv 32 3x3 relu, conv 64 3x3 relu, max pool 2, dropout, dense 128
    relu, dropout, dense 10, on 1x12x12 images (28x28 in the model file)."""
    def __init__(self, side=12):
        super().__init__()
        self.conv2d = nn.Conv2d(1, 32, 3)
        self.conv2d_1 = nn.Conv2d(32, 64, 3)
        self.drop = nn.Dropout(0.25)
        self.dense = nn.Linear(64 * ((side - 4) // 2) ** 2, 128)
        self.drop_1 = nn.Dropout(0.5)
        self.dense_1 = nn.Linear(128, 10)
        self.side = side

    def forward(self, x):
        h = torch.relu(self.conv2d_1(torch.relu(self.conv2d(x))))
        h = self.drop(nn.functional.max_pool2d(h, 2))
        h = self.drop_1(torch.relu(self.dense(torch.flatten(h, 1))))
        return self.dense_1(h)


class CnnBn(nn.Module):
    """Two blocks of conv 3x3 (same padding, no bias), batch norm, relu,
    max pool 2, then dense 128 without bias, batch norm, relu, dropout,
    dense 10, on 1x12x12 images."""
    def __init__(self, side=12):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, eps=1e-3, momentum=0.01)
        self.fc1 = nn.Linear(64 * (side // 4) ** 2, 128, bias=False)
        self.bn3 = nn.BatchNorm1d(128, eps=1e-3, momentum=0.01)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)
        self.side = side

    def forward(self, x):
        h = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        h = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        h = self.drop(torch.relu(self.bn3(self.fc1(torch.flatten(h, 1)))))
        return self.fc2(h)


class ResnetSmall(nn.Module):
    """The BasicBlock ResNet of models/resnet_small.nn: stem conv 3x3 (16,
    no bias), batch norm, relu; three blocks of conv 3x3 (stride s), batch
    norm, relu, conv 3x3, batch norm, plus the identity or a conv 1x1
    (stride s) with batch norm, then relu (16, 32, 64 filters, strides 1, 2,
    2); global average pooling; dense 10; on 1x12x12 images."""
    def __init__(self):
        super().__init__()
        bn = lambda c: nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)   # Keras' defaults
        conv = lambda i, o, k, s: nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False)
        self.stem, self.stem_bn = conv(1, 16, 3, 1), bn(16)
        self.blocks = nn.ModuleList()
        for i, o, s in ((16, 16, 1), (16, 32, 2), (32, 64, 2)):
            b = nn.Module()
            b.c1, b.bn1, b.c2, b.bn2 = conv(i, o, 3, s), bn(o), conv(o, o, 3, 1), bn(o)
            if s != 1:
                b.sc, b.bnsc = conv(i, o, 1, s), bn(o)
            self.blocks.append(b)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        h = torch.relu(self.stem_bn(self.stem(x)))
        for b in self.blocks:
            r = b.bn2(b.c2(torch.relu(b.bn1(b.c1(h)))))
            h = torch.relu(r + (b.bnsc(b.sc(h)) if hasattr(b, "sc") else h))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


class GeluMlp(nn.Module):
    """dense 32, PyTorch's exact GELU (Erf), dense 10, on 16 features."""
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class UpsampleCnn(nn.Module):
    """conv 4 3x3 relu, bilinear upsampling x2 (align_corners=False: ONNX
    Resize linear, pytorch_half_pixel), conv 4 3x3 stride 2, dense 10, on
    2x6x6 images."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 5 * 5, 10)

    def forward(self, x):
        h = nn.functional.interpolate(torch.relu(self.conv1(x)), scale_factor=2, mode="bilinear",
                                      align_corners=False)
        return self.fc(torch.flatten(torch.tanh(self.conv2(h)), 1))


class GroupedCnn(nn.Module):
    """MobileNet's pieces on 3x8x8 images: conv 8, a depthwise conv
    (groups 8), a depthwise conv with channel multiplier 2 (8 -> 16, groups
    8, stride 2), a grouped conv (16 -> 8, groups 4, with dilation), batch
    norm, dense 10."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dw2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8, bias=False)
        self.gc = nn.Conv2d(16, 8, 3, padding=2, dilation=2, groups=4)
        self.bn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        h = torch.relu(self.dw(torch.relu(self.conv(x))))
        h = torch.relu(self.bn(self.gc(torch.relu(self.dw2(h)))))
        return self.fc(torch.flatten(h, 1))


class Ops(nn.Module):
    """One of most operators gradc imports, on 3x8x8 images and 5 ids a
    sample: ConvTranspose, AveragePool, Resize (nearest), MaxPool,
    LeakyRelu, Sigmoid, Tanh, GlobalAveragePool, Squeeze, Unsqueeze,
    ReduceMean/Sum/Max, Gather (an embedding), Concat, Clip, Pow, Abs, Sqrt,
    Exp, Log, Neg, Div, Softmax, LogSoftmax, Transpose, Reshape with the
    batch from Shape, Flatten, Gemm, MatMul, Greater, Where, Max, Min and
    Softplus."""
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 2, stride=2)
        self.emb = nn.Embedding(10, 3)
        self.fc = nn.Linear(14, 6)
        self.w = nn.Parameter(torch.randn(6, 5) * 0.3)

    def forward(self, x, ids):
        h = nn.functional.avg_pool2d(self.up(x), 2)                       # [B,4,8,8]
        u = nn.functional.max_pool2d(nn.functional.interpolate(h, scale_factor=2, mode="nearest"), 2)
        h = nn.functional.leaky_relu(h, 0.2) + torch.sigmoid(u) * torch.tanh(h)
        g = nn.functional.adaptive_avg_pool2d(h, 1).squeeze(-1).squeeze(-1)  # [B,4]
        e = self.emb(ids).mean(dim=1)                                      # [B,3]
        m = x.amax(dim=(2, 3)) - x.sum(dim=(2, 3), keepdim=True).squeeze(3).squeeze(2) / 64
        z = torch.cat([g, e, m, h.mean(dim=(1, 2)).unsqueeze(1)[:, :, :4].reshape(x.shape[0], -1)], dim=1)
        z = torch.clamp(z, -1.5, 2.0) ** 2 + torch.sqrt(torch.abs(z) + 1) - torch.exp(-z) + torch.log(z * z + 1)
        z = torch.where(z > 0.5, z, 0.1 * z) + torch.maximum(z, torch.minimum(-z, nn.functional.softplus(z)))
        y = self.fc(z) @ self.w                                           # [B,5]
        y = torch.softmax(y, dim=1) + torch.log_softmax(y.transpose(0, 1), dim=0).transpose(0, 1)
        return torch.flatten(y.reshape(x.shape[0], 5, 1), 1)


def ops_twin(out):
    g = torch.Generator().manual_seed(2)
    m = Ops().eval()
    x = torch.rand(BATCH, 3, 8, 8, generator=g)
    ids = torch.randint(0, 10, (BATCH, 5), generator=g)
    torch.onnx.export(m, (x, ids), f"{out}/ops.onnx", opset_version=17, input_names=["x", "ids"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "ids": {0: "batch"}, "y": {0: "batch"}})
    write(f"{out}/ops.x.f32", x)
    write(f"{out}/ops.y.i32", ids.to(torch.int32))
    with torch.no_grad():
        write(f"{out}/ops.out.f32", m(x, ids))


def randomize_bn(m, g):
    """Moving statistics away from 0 and 1, so that the test sees them."""
    for b in m.modules():
        if isinstance(b, nn.modules.batchnorm._BatchNorm):
            b.running_mean.copy_(torch.randn(b.num_features, generator=g) * 0.1)
            b.running_var.copy_(torch.rand(b.num_features, generator=g) + 0.5)
            b.weight.data.copy_(torch.rand(b.num_features, generator=g) + 0.5)
            b.bias.data.copy_(torch.randn(b.num_features, generator=g) * 0.1)


def train_mode(model):
    """Batch norm on batch statistics, dropout off."""
    model.train()
    for mod in model.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()


def export(model, x, path):
    """In training mode: in eval mode PyTorch folds each batch norm into the
    convolution before it, and the folded model trains differently."""
    train_mode(model)
    torch.onnx.export(model, x, path, opset_version=17, input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    model.eval()


def write(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().numpy().tobytes())


def main():
    cmd, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if cmd == "ops":
        ops_twin(out)
        return
    if cmd == "unknown":
        m = nn.Sequential(nn.Linear(8, 4), nn.SELU())
        export(m, torch.randn(2, 8), f"{out}/selu.onnx")
        m = nn.Sequential(nn.Conv2d(2, 2, 3), nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
        export(m, torch.randn(2, 2, 5, 5), f"{out}/align_corners.onnx")
        return
    twins = {"mnist_mlp": (MnistMlp(), [BATCH, 784]), "cnn_seed": (CnnSeed(), [BATCH, 1, 12, 12]),
             "cnn_bn": (CnnBn(), [BATCH, 1, 12, 12]), "resnet_small": (ResnetSmall(), [BATCH, 1, 12, 12]),
             "gelu_mlp": (GeluMlp(), [BATCH, 16]), "upsample_cnn": (UpsampleCnn(), [BATCH, 2, 6, 6]),
             "grouped_cnn": (GroupedCnn(), [BATCH, 3, 8, 8])}
    for name, (m, shape) in twins.items():
        with torch.no_grad():
            randomize_bn(m, g)
        x = torch.rand(*shape, generator=g)
        y = torch.randint(0, 10, (BATCH,), generator=g)
        export(m, x, f"{out}/{name}.onnx")
        write(f"{out}/{name}.x.f32", x)
        write(f"{out}/{name}.y.i32", y.to(torch.int32))
        m.eval()
        with torch.no_grad():
            write(f"{out}/{name}.out.f32", m(x))
        # Training: batch norm on batch statistics, dropout off (the
        # exported graph has none: PyTorch leaves it out in eval mode).
        train_mode(m)
        opt = torch.optim.SGD(m.parameters(), lr=LR)
        losses = []
        for _ in range(STEPS):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with open(f"{out}/{name}.loss.txt", "w") as f:
            f.write("".join(f"{v:.9g}\n" for v in losses))


if __name__ == "__main__":
    main()
