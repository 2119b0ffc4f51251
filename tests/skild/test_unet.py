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
            if "out.weight" in name or "scale" in name:
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


def test_odd_under_spin_flip():
    net = random_net(2)
    y, s = torch.randn(4, 16, 16), torch.rand(4) * 7
    out = net(y, s)
    assert torch.allclose(net(-y, s), -out, atol=1e-6)
    assert not torch.allclose(net(2 * y, s), 2 * out, atol=1e-3)  # odd but not linear


def test_size_not_divisible_is_an_error():
    with pytest.raises(IsingScaleError, match="divisible by 8"):
        random_net()(torch.randn(1, 12, 12), torch.zeros(1))
