"""UNet: shapes, periodic translation equivariance, oddness under the spin flip, size errors."""

import pytest
import torch

from isingscale.errors import IsingScaleError
from isingscale.skild.process import Whitener
from isingscale.skild.spectral import power_law_spectrum
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


def colored_net(seed=4, head_blocks=0):
    """A random colored_io network with the whitener of a power-law spectrum attached."""
    return random_net(seed, colored_io=True, head_blocks=head_blocks).set_whitener(
        Whitener(power_law_spectrum(16))
    )


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
    net = random_net(6, colored_io=True)
    with pytest.raises(IsingScaleError, match="set_whitener"):
        net(torch.randn(1, 16, 16), torch.zeros(1))


@pytest.mark.parametrize("head_blocks", [0, 1])
def test_grown_colored_io_computes_what_the_plain_network_did(head_blocks):
    plain = random_net(7)
    grown = UNet(
        UNetConfig(base_channels=8, depth=3, colored_io=True, head_blocks=head_blocks)
    ).eval()
    grown.set_whitener(colored_net().whitener).load_grown(plain.state_dict())
    y, s = torch.randn(3, 16, 16), torch.rand(3) * 5
    assert torch.allclose(grown(y, s), plain(y, s), atol=1e-5)  # zero weights on the new channels
    with pytest.raises(IsingScaleError, match="do not fit"):
        UNet(UNetConfig(base_channels=12, depth=3)).load_grown(plain.state_dict())
