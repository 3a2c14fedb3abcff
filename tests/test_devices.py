import pytest
import torch
from lightly.loss import NTXentLoss

from sslseg.devices import autocast, full_precision, has_native_bf16, resolve_precision
from sslseg.errors import SslsegError

CPU = torch.device("cpu")


def test_auto_precision_follows_the_hardware():
    expected = "bf16" if has_native_bf16(CPU) else "fp32"
    assert resolve_precision(CPU, "auto") == expected


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_explicit_precision_is_kept(precision):
    assert resolve_precision(CPU, precision) == precision


def test_unknown_precision_names_the_key():
    with pytest.raises(SslsegError, match="precision: 'fp16'"):
        resolve_precision(CPU, "fp16")


def test_fp32_autocast_is_a_no_op():
    a = torch.randn(4, 8)
    with autocast(CPU, "fp32"):
        assert (a @ a.T).dtype == torch.float32


def test_loss_under_full_precision_is_the_fp32_loss():
    """Under bf16 autocast a matmul of fp32 inputs runs in bf16; inside full_precision the
    loss equals the one computed without autocast."""
    torch.manual_seed(0)
    z0, z1 = torch.randn(64, 128), torch.randn(64, 128)
    criterion = NTXentLoss(temperature=0.5)
    reference = criterion(z0, z1)
    with autocast(CPU, "bf16"):
        assert (z0 @ z1.T).dtype == torch.bfloat16
        with full_precision(z0):
            exact = criterion(z0, z1)
    assert torch.equal(exact, reference)
