"""Hand-made importer trees (what :mod:`archlang.importer.trace` makes of small models),
for the blocks tests: a ResNet-like and an Inception-like network."""

from __future__ import annotations

from archlang.importer.tree import Call, Group, Instance, Network, Seq


def conv(label, out, k, **kw):
    return Call("conv2d", (out, k), tuple(kw.items()), label)


def bn(label, **kw):
    return Call("batchnorm", (), tuple(kw.items()), label)


def relu():
    return Call("relu")


def bottleneck(path, label, planes, stride, down):
    main = Seq(
        [
            conv("conv1", planes, 1, bias=False),
            bn("bn1"),
            relu(),
            conv("conv2", planes, 3, **({"stride": stride} if stride != 1 else {}), padding=1, bias=False),
            bn("bn2"),
            relu(),
            conv("conv3", planes * 4, 1, bias=False),
            bn("bn3"),
        ]
    )
    if down:
        ds = [conv("0", planes * 4, 1, **({"stride": stride} if stride != 1 else {}), bias=False), bn("1")]
        short = Instance("Sequential", path + ".downsample", Seq(ds), "downsample", container=True)
    else:
        short = Call("identity")
    return Instance("Bottleneck", path, Seq([Group("add", [main, short]), relu()]), label)


def resnet(stages=(3, 2, 2), width=8) -> Network:
    body = [conv("conv1", width, 3, padding=1, bias=False), bn("bn1"), Call("relu", label="relu")]
    for s, n in enumerate(stages):
        planes = width * 2**s
        items = [bottleneck(f"layer{s + 1}.{j}", str(j), planes, 2 if s and j == 0 else 1, j == 0) for j in range(n)]
        body.append(Instance("Sequential", f"layer{s + 1}", Seq(items), f"layer{s + 1}", container=True))
    body += [Call("adaptive_avgpool", (1,), label="avgpool"), Call("flatten"), Call("linear", (10,), label="fc")]
    return Network("ResNet", (3, 32, 32), Seq(body))


def basic(path, label, out, k, **kw):
    body = Seq([conv("conv", out, k, bias=False, **kw), bn("bn", eps=0.001), relu()])
    return Instance("BasicConv2d", path, body, label)


def inception(path, label, c1, c3r, c3, c5r, c5, pp):
    def seq(name, *items):
        return Instance("Sequential", f"{path}.{name}", Seq(list(items)), name, container=True)

    branches = [
        basic(f"{path}.branch1", "branch1", c1, 1),
        seq("branch2", basic(f"{path}.branch2.0", "0", c3r, 1), basic(f"{path}.branch2.1", "1", c3, 3, padding=1)),
        seq("branch3", basic(f"{path}.branch3.0", "0", c5r, 1), basic(f"{path}.branch3.1", "1", c5, 3, padding=1)),
        seq(
            "branch4",
            Call("maxpool", (3,), (("stride", 1), ("padding", 1), ("ceil_mode", True)), "0"),
            basic(f"{path}.branch4.1", "1", pp, 1),
        ),
    ]
    return Instance("Inception", path, Seq([Group("concat", branches)]), label)


def googlenet_like() -> Network:
    body = [
        basic("conv1", "conv1", 16, 3, padding=1),
        inception("inception3a", "inception3a", 8, 12, 16, 4, 8, 8),
        inception("inception3b", "inception3b", 16, 16, 24, 4, 12, 8),
        Call("maxpool", (2,), (("stride", 2),), "maxpool3"),
        inception("inception4a", "inception4a", 24, 12, 26, 4, 12, 8),
        Call("adaptive_avgpool", (1,), label="avgpool"),
        Call("flatten"),
        Call("linear", (10,), label="fc"),
    ]
    return Network("GoogLeNet", (3, 32, 32), Seq(body))


def dense_block(path, label, layers):
    items = []
    for k in range(1, layers + 1):
        layer = Instance(
            "DenseLayer",
            f"{path}.denselayer{k}",
            Seq([bn("norm1"), Call("relu", label="relu1"), conv("conv1", 4, 3, padding=1, bias=False)]),
            f"denselayer{k}",
        )
        items.append(Group("concat", [Call("identity"), layer]))
    return Instance("DenseBlock", path, Seq(items), label)


def densenet(blocks=(3, 5)) -> Network:
    """DenseNet-like: dense blocks of different lengths (one concat per layer)."""
    body = [conv("conv0", 8, 3, padding=1, bias=False)]
    for b, n in enumerate(blocks):
        body.append(dense_block(f"features.denseblock{b + 1}", f"denseblock{b + 1}", n))
    body += [Call("adaptive_avgpool", (1,)), Call("flatten"), Call("linear", (10,), label="fc")]
    return Network("DenseNet", (3, 16, 16), Seq(body))


def random_network(rng) -> Network:
    """A random ResNet-like tree: stages of `Res` instances (two `Unit`s, an identity or a
    `down` shortcut), each Unit a conv of random width and kernel with an optional
    batchnorm and relu; widths chosen so that every add is valid."""
    channels = 8

    def unit(path, label, out):
        k = rng.choice([1, 3, 5])
        items = [conv("conv", out, k, padding=k // 2)]
        if rng.random() < 0.7:
            items.append(bn("bn"))
        if rng.random() < 0.6:
            items.append(relu())
        return Instance("Unit", path, Seq(items), label)

    stages = []
    for s in range(rng.randint(1, 3)):
        items = []
        for j in range(rng.randint(1, 4)):
            out = rng.choice([8, 16, 24])
            path = f"stage{s}.{j}"
            main = Seq([unit(path + ".a", "a", out), unit(path + ".b", "b", out)])
            if out == channels and rng.random() < 0.8:
                short = Call("identity")
            else:
                down = [conv("0", out, 1, bias=False), bn("1")]
                short = Instance("Sequential", path + ".down", Seq(down), "down", container=True)
            items.append(Instance("Res", path, Seq([Group("add", [main, short]), relu()]), str(j)))
            channels = out
        stages.append(Instance("Sequential", f"stage{s}", Seq(items), f"stage{s}", container=True))
    tail = [Call("adaptive_avgpool", (1,)), Call("flatten"), Call("linear", (10,), label="fc")]
    return Network("Random", (8, 16, 16), Seq(stages + tail))
