"""UNet: shapes, periodic translation equivariance, oddness under the spin flip, size errors."""

import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.skild.process import Whitener
from isingscale.skild.spectral import power_law_spectrum
from isingscale.skild.unet import UNet, UNetConfig


def random_net(seed=0, *, whitener=True, **kw):
    """A network with random weights everywhere (colored I/O unless colored_io=False), with the
    whitener of a power-law spectrum attached (whitener=False: none)."""
    torch.manual_seed(seed)
    net = UNet(UNetConfig(base_channels=8, depth=3, **kw)).eval()
    with torch.no_grad():  # the output conv and scale layers start at zero: randomise them
        for name, p in net.named_parameters():
            if "out.weight" in name or "scale" in name:
                p.normal_(0, 0.3)
    return net.set_whitener(Whitener(power_law_spectrum(16))) if whitener else net


@pytest.mark.parametrize("N", [8, 16, 24, 40])
def test_shape_preserving(N):
    net = random_net()
    y = net(torch.randn(3, N, N), torch.rand(3) * 6)
    assert y.shape == (3, N, N) and y.abs().sum() > 0


@pytest.mark.parametrize("colored_io", [True, False])
def test_untrained_output_is_zero(colored_io):
    net = UNet(UNetConfig(base_channels=8, depth=2, colored_io=colored_io))
    net.set_whitener(Whitener(power_law_spectrum(16)))
    assert torch.all(net(torch.randn(2, 16, 16), torch.rand(2)) == 0)


def test_translation_equivariance():
    net = random_net(1)
    y, s = torch.randn(2, 32, 32), torch.tensor([0.5, 3.0])
    out = net(y, s)
    for shift in [(8, 0), (0, 16), (24, 8)]:  # multiples of the pooling grid 2**depth
        assert torch.allclose(
            net(torch.roll(y, shift, (-2, -1)), s), torch.roll(out, shift, (-2, -1)), atol=1e-4
        )  # float32 noise of NHWC kernels ~3e-5
    # Sanity: the check is sensitive (a non-circular network breaks it at the boundary).
    flat = random_net(1, padding="zeros")
    assert not torch.allclose(
        flat(torch.roll(y, (8, 0), (-2, -1)), s),
        torch.roll(flat(y, s), (8, 0), (-2, -1)),
        atol=1e-4,
    )


@pytest.mark.parametrize("colored_io", [True, False])
def test_odd_under_spin_flip(colored_io):
    net = random_net(2, colored_io=colored_io)
    y, s = torch.randn(4, 16, 16), torch.rand(4) * 7
    out = net(y, s)
    assert torch.allclose(net(-y, s), -out, atol=1e-6)
    assert not torch.allclose(net(2 * y, s), 2 * out, atol=1e-3)  # odd but not linear


def test_size_not_divisible_is_an_error():
    with pytest.raises(IsingScaleError, match="divisible by 8"):
        random_net()(torch.randn(1, 12, 12), torch.zeros(1))


def test_colored_io_is_the_architecture_and_older_checkpoints_load_as_they_were():
    assert UNetConfig().colored_io is True
    plain = UNetConfig(base_channels=8, colored_io=False).to_dict()
    del plain["colored_io"]  # written before the field existed
    assert UNetConfig.from_dict(plain).colored_io is False
    assert UNetConfig.from_dict({**plain, "colored_io": True}).colored_io is True
    with pytest.raises(IsingScaleError, match="head blocks"):
        UNetConfig.from_dict({**plain, "head_blocks": 2})
    assert UNetConfig.from_dict({**plain, "head_blocks": 0}) == UNetConfig.from_dict(plain)


def colored_net(seed=4):
    """A random colored_io network with the whitener of a power-law spectrum attached."""
    return random_net(seed, colored_io=True)


def test_colored_io_keeps_oddness_equivariance_and_the_gaussian_start():
    net = colored_net()
    y, s = torch.randn(3, 16, 16), torch.rand(3) * 6
    out = net(y, s)
    assert torch.allclose(net(-y, s), -out, atol=1e-6)
    assert torch.allclose(
        net(torch.roll(y, (8, 8), (-2, -1)), s), torch.roll(out, (8, 8), (-2, -1)), atol=1e-4
    )
    fresh = UNet(UNetConfig(base_channels=8, depth=2, colored_io=True)).set_whitener(net.whitener)
    assert torch.all(fresh(y, s) == 0)


def test_colored_io_sees_and_writes_data_units():
    # Only the data-unit paths random: the output is whiten(u) where u is a function of color(y).
    net = colored_net(5)
    y, s = torch.randn(2, 16, 16), torch.rand(2) * 3
    with torch.no_grad():
        net.inp.weight[:, 0] = 0  # blind to y itself
        net.out.weight[0] = 0  # no whitened output channel
    out = net(y, s)
    assert out.abs().sum() > 0
    other = Whitener(power_law_spectrum(16, p=1.0))
    assert not torch.allclose(
        net.set_whitener(other)(y, s), out, atol=1e-4
    )  # it goes through the spectrum


def test_colored_io_needs_its_spectrum():
    net = random_net(6, colored_io=True, whitener=False)
    with pytest.raises(IsingScaleError, match="set_whitener"):
        net(torch.randn(1, 16, 16), torch.zeros(1))
