"""What the timm run wrote for other tools: its TensorBoard tags, and the U-Net through smp.

.venv/bin/python docs/results/timm-regnetx-check.py [runs/timm-regnetx]
    >> docs/results/timm-regnetx.txt
"""

import sys
from pathlib import Path

import segmentation_models_pytorch as smp
import timm
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sslseg.runs import RunDir
from sslseg.seg.unet import build_unet

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/timm-regnetx")
for name in ("simclr", "unet-simclr"):
    events = EventAccumulator(str(out / name / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    print(f"tensorboard {name}: scalars={sorted(tags['scalars'])} images={sorted(tags['images'])}")
state = torch.load(out / "simclr" / "encoder.pt", weights_only=True)
missing, unexpected = timm.create_model("regnetx_002").load_state_dict(state, strict=False)
print(f"timm.create_model('regnetx_002') load: missing={missing} unexpected={unexpected}")
loaded = smp.from_pretrained(str(out / "unet-simclr" / "smp")).eval()
best = build_unet("regnetx_002")
best.load_state_dict(RunDir(out / "unet-simclr").load("best.pt")["model"])
x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    same = torch.allclose(loaded(x), best.eval()(x), atol=1e-5)
name = type(loaded).__name__
print(f"smp.from_pretrained(unet-simclr/smp): {name}, same outputs as best.pt: {same}")
