"""Planning: everything decided before training starts. The options, the starting weights
and the data become one resolved run (`resolve`); a `Plan` fills in the options left unset
from the data's fingerprint and this machine's measured speed; `Budget` holds a run to its
time; the scratch-or-ImageNet choice and the lr range test are measured here too."""

from convnet.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Plan": "convnet.plan.planner",
    "preview": "convnet.plan.resolve",
})

__all__ = ["Plan", "preview"]
