"""UNet: shapes, periodic translation equivariance, oddness under the spin flip, size errors."""

import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.skild.unet import UNet, UNetConfig


def random_net(seed=0, **kw):
    torch.manual_seed(seed)
    net = UNet(UNetConfig(base_channels=8, depth=3, **kw)).eval()
    with torch.no_grad():  # the output conv and scale layers start at zero: randomise them
        for name, p in net.named_parameters():
            if "out.weight" in name or "scale" in name or "head" in name:
                p.normal_(0, 0.3)
    return net


@pytest.mark.parametrize("N", [8, 16, 24, 40])
def test_shape_preserving(N):
    net = random_net()
    y = net(torch.randn(3, N, N), torch.rand(3) * 6)
    assert y.shape == (3, N, N) and y.abs().sum() > 0


def test_untrained_output_is_zero():
    net = UNet(UNetConfig(base_channels=8, depth=2))
    assert torch.all(net(torch.randn(2, 16, 16), torch.rand(2)) == 0)


def test_translation_equivariance():
    net = random_net(1)
    y, s = torch.randn(2, 32, 32), torch.tensor([0.5, 3.0])
    out = net(y, s)
    for shift in [(8, 0), (0, 16), (24, 8)]:  # multiples of the pooling grid 2**depth
        assert torch.allclose(net(torch.roll(y, shift, (-2, -1)), s), torch.roll(out, shift, (-2, -1)), atol=1e-4)  # float32 noise of NHWC kernels ~3e-5
    # Sanity: the check is sensitive (a non-circular network breaks it at the boundary).
    flat = random_net(1, padding="zeros")
    assert not torch.allclose(flat(torch.roll(y, (8, 0), (-2, -1)), s), torch.roll(flat(y, s), (8, 0), (-2, -1)), atol=1e-4)


@pytest.mark.parametrize("head_blocks", [0, 2])
def test_odd_under_spin_flip(head_blocks):
    net = random_net(2, head_blocks=head_blocks)
    y, s = torch.randn(4, 16, 16), torch.rand(4) * 7
    out = net(y, s)
    assert torch.allclose(net(-y, s), -out, atol=1e-6)
    assert not torch.allclose(net(2 * y, s), 2 * out, atol=1e-3)  # odd but not linear


def test_size_not_divisible_is_an_error():
    with pytest.raises(IsingScaleError, match="divisible by 8"):
        random_net()(torch.randn(1, 12, 12), torch.zeros(1))


def test_head_blocks_start_as_the_identity():
    # Grown from a trained network (train --init --head-blocks), the network computes what it did ...
    small = random_net(3)
    grown = UNet(UNetConfig(base_channels=8, depth=3, head_blocks=2)).eval()
    missing, unexpected = grown.load_state_dict(small.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("head.") for k in missing)
    y, s = torch.randn(3, 16, 16), torch.rand(3) * 5
    assert torch.equal(grown(y, s), small(y, s))
    # ... until the head's last convolutions move away from zero.
    with torch.no_grad():
        grown.head[1].conv2.weight.normal_(0, 0.1)
    assert not torch.allclose(grown(y, s), small(y, s), atol=1e-4)
    with pytest.raises(IsingScaleError, match="head_blocks"):
        UNetConfig(head_blocks=-1)
