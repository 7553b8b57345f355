"""Fine-tuning step throughput, synthaug's streaming path vs a plain ImageFolder loop, interleaved in one process.

``benchmarks/finetune.py`` runs each pipeline in its own subprocess (for clean peak RSS), one after
the other; on a shared, loaded machine their throughput ratio then mostly measures the load change
between the two. This script alternates one step of each (resnet18, unfrozen, 160 px, batch 16,
one loader worker each, AdamW) so that load hits both alike, and prints the median step times.

Run: ``PYTHONPATH=src python benchmarks/finetune_interleaved.py FOLDER`` (an ImageFolder of 160-px
photos, e.g. one built by ``finetune.build_folder``).
"""

import statistics
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import transforms

from synthaug.data import load_image_folder
from synthaug.methods import make_method
from synthaug.methods.training import _make_optimizer
from synthaug.models import make_backbone

root = sys.argv[1]
B = 16
ds = load_image_folder(root)
opts = {"image_size": 160, "freeze": False, "num_workers": 1}
m = make_method("deterministic", backbone="resnet18", backbone_options=opts, batch_size=B, num_workers=1)
m.backbone_ = make_backbone("resnet18", **opts)
m.classes_ = list(ds.classes)
data = m._prepare(ds, training=True)
torch.manual_seed(0)
ours = m.backbone_.build_trainable(10)
ours.train()
opt1 = _make_optimizer(ours, m.training_config())
tf = transforms.Compose(
    [
        transforms.Resize(160),
        transforms.CenterCrop(160),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ]
)
loader = torch.utils.data.DataLoader(
    torchvision.datasets.ImageFolder(root, transform=tf),
    batch_size=B,
    shuffle=True,
    num_workers=1,
    persistent_workers=True,
    prefetch_factor=4,
)
torch.manual_seed(0)
plain = torchvision.models.resnet18(num_classes=10)
plain.train()
opt2 = torch.optim.AdamW(plain.parameters(), lr=1e-3, weight_decay=0.05)
order = list(torch.randperm(1000)[: B * 12].split(B))
ours_it = data.batches(order, "cpu", 0, 0)
plain_it = iter(loader)
t = {"synthaug": [], "plain": []}
for _r, idx in enumerate(order):
    s = time.perf_counter()
    x = next(ours_it)
    loss = F.cross_entropy(ours(x), data.targets[idx])
    loss.backward()
    opt1.step()
    opt1.zero_grad()
    t["synthaug"].append(time.perf_counter() - s)
    s = time.perf_counter()
    x, y = next(plain_it)
    loss = F.cross_entropy(plain(x), y)
    loss.backward()
    opt2.step()
    opt2.zero_grad()
    t["plain"].append(time.perf_counter() - s)
for k, v in t.items():
    print(k, "median step s", round(statistics.median(v[2:]), 3), "img/s", round(B / statistics.median(v[2:]), 2))
print(
    "ratio synthaug/plain throughput",
    round(statistics.median(t["plain"][2:]) / statistics.median(t["synthaug"][2:]), 2),
)
