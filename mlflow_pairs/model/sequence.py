"""The sequence part: one GRU per sector mapping a window of daily features to the
probability that the spread reverts toward its mean within the horizon."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlflow_pairs.config import MLSettings
from mlflow_pairs.model.metrics import classification_metrics

#: The one definition of the defaults: the ``ml`` section of the configuration.
_DEFAULTS = MLSettings()

__all__ = ["SequencePart", "TrainingConfig", "TrainingDivergenceWarning", "select_device"]


class TrainingDivergenceWarning(Warning):
    """The GRU's validation loss became NaN or infinite; training stopped at that epoch
    and kept the best earlier weights (the untrained network if no epoch beat it)."""


@dataclass(frozen=True)
class TrainingConfig:
    """How the GRU is trained (see ``ml`` in the configuration)."""

    seed: int = _DEFAULTS.seed
    epochs: int = _DEFAULTS.epochs
    batch_size: int = _DEFAULTS.batch_size
    learning_rate: float = _DEFAULTS.learning_rate
    early_stopping_patience: int = _DEFAULTS.early_stopping_patience
    hidden_size: int = _DEFAULTS.hidden_size
    num_layers: int = _DEFAULTS.num_layers
    device: str = _DEFAULTS.device
    torch_threads: int = _DEFAULTS.torch_threads
    correction_penalty: float = _DEFAULTS.correction_penalty


def select_device(requested: str) -> str:
    """``cuda`` when asked for or (``auto``) present, else ``cpu``."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _network(n_features: int, hidden: int, layers: int) -> Any:
    import torch
    from torch import nn

    class ReversionGRU(nn.Module):
        """A fixed prior logit ``prior[0] + prior[1] * x[-1, prior_feature]`` (the plain
        baseline's, on the last day of the window) plus the GRU's correction. The head
        starts at zero, so training starts from the baseline and learns what it misses."""

        prior: torch.Tensor
        prior_feature: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(n_features, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, 1)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
            self.register_buffer("prior", torch.zeros(2))
            self.register_buffer("prior_feature", torch.zeros((), dtype=torch.long))

        def forward(self, windows: torch.Tensor) -> torch.Tensor:
            prior, correction = self.parts(windows)
            return prior + correction

        def parts(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """The prior logit and the GRU's correction, each of shape (n,)."""
            output, _ = self.gru(windows)
            correction = self.head(output[:, -1, :]).squeeze(-1)
            last = windows[:, -1, :].index_select(1, self.prior_feature.view(1)).squeeze(1)
            return self.prior[0] + self.prior[1] * last, correction

    return ReversionGRU()


class SequencePart:
    """A GRU over windows of shape (window, n_features) returning reversion logits."""

    def __init__(self, config: TrainingConfig | None = None) -> None:
        self.config = config or TrainingConfig()

    def fit(
        self,
        train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray],
        *,
        prior: tuple[float, float, int] | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> SequencePart:
        """Train on ``train`` windows and labels, early-stopping on validation loss.

        The training loss is the log loss plus ``correction_penalty`` times the mean
        squared correction logit: the GRU is shrunk toward the prior, and moves away from
        it only as far as the training data pay for. The untrained network (the prior
        itself, when one is given) is the first candidate of the early stopping: when no
        epoch beats its validation loss it is kept, and :attr:`best_epoch_` is -1.

        Parameters
        ----------
        train, validation : (windows, labels)
            ``windows`` of shape (n, window, n_features), float32, already scaled;
            ``labels`` of shape (n,), 0 or 1. Windows are shuffled within the training
            part only; the parts themselves are chronological.
        prior : (intercept, slope, feature), optional
            A fixed logit, linear in one scaled feature on the window's last day (the
            ``|z|`` baseline's); the GRU learns a correction to it. None: no prior.
        on_epoch : callable, optional
            Called after each epoch with its number and metrics (``loss``, the training
            log loss without the penalty, ``val_loss``, and validation ``f1``,
            ``accuracy``, ``precision``, ``recall``, ``auc``).
        """
        import torch

        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        torch.manual_seed(cfg.seed)
        device = torch.device(select_device(cfg.device))
        self.device_ = device.type
        x_train, y_train = (torch.as_tensor(a, dtype=torch.float32) for a in train)
        x_val, y_val = (torch.as_tensor(a, dtype=torch.float32) for a in validation)
        if len(x_train) == 0 or len(x_val) == 0:
            raise ValueError("no training or validation windows: the data is too short")
        self.n_features_ = int(x_train.shape[2])
        network = _network(self.n_features_, cfg.hidden_size, cfg.num_layers)
        if prior is not None:
            network.prior.copy_(torch.tensor(prior[:2], dtype=torch.float32))
            network.prior_feature.fill_(int(prior[2]))
        network = network.to(device)
        # Unweighted log loss: the output is a calibrated probability, compared with the
        # baselines' by Brier score and used as a threshold in the signal rule.
        loss_fn = torch.nn.BCEWithLogitsLoss()
        optimiser = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate)
        generator = torch.Generator().manual_seed(cfg.seed)
        self.history_: list[dict[str, float]] = []
        self.best_epoch_ = -1

        def validate() -> tuple[Any, float]:
            network.eval()
            with torch.no_grad():
                logits = network(x_val.to(device)).cpu()
                return logits, float(loss_fn(logits.to(device), y_val.to(device)))

        _, untrained_loss = validate()
        best_loss, best_state, stale = float("inf"), None, 0
        if np.isfinite(untrained_loss):
            best_loss, best_state = untrained_loss, copy.deepcopy(network.state_dict())
        for epoch in range(cfg.epochs):
            network.train()
            order = torch.randperm(len(x_train), generator=generator)
            total = 0.0
            for start in range(0, len(order), cfg.batch_size):
                batch = order[start : start + cfg.batch_size]
                optimiser.zero_grad()
                prior_logit, correction = network.parts(x_train[batch].to(device))
                log_loss = loss_fn(prior_logit + correction, y_train[batch].to(device))
                penalty = cfg.correction_penalty * correction.pow(2).mean()
                (log_loss + penalty).backward()
                optimiser.step()
                total += log_loss.item() * len(batch)
            val_logits, val_loss = validate()
            if not np.isfinite(val_loss):
                kept = f"keeping epoch {self.best_epoch_}" if self.best_epoch_ >= 0 else "untrained"
                warnings.warn(
                    f"GRU validation loss is {val_loss} at epoch {epoch}; stopping ({kept})",
                    TrainingDivergenceWarning,
                    stacklevel=2,
                )
                break
            metrics = {"loss": total / len(x_train), "val_loss": val_loss}
            metrics.update(classification_metrics(y_val.numpy(), torch.sigmoid(val_logits).numpy()))
            self.history_.append(metrics)
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if val_loss < best_loss - 1e-7:
                best_loss, best_state, stale = val_loss, copy.deepcopy(network.state_dict()), 0
                self.best_epoch_ = epoch
            else:
                stale += 1
                if stale >= cfg.early_stopping_patience:
                    break
        if best_state is not None:
            network.load_state_dict(best_state)
        self.network_ = network.to("cpu").eval()
        return self

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        """Reversion probabilities for windows of shape (n, window, n_features)."""
        import torch

        if len(windows) == 0:
            return np.empty(0)
        with torch.no_grad():
            logits = self.network_(torch.as_tensor(windows, dtype=torch.float32))
        return torch.sigmoid(logits).numpy().astype(float)

    # -- persistence: weights as a state_dict, loaded with weights_only=True ---------------

    def state_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save(self.network_.state_dict(), buffer)
        return buffer.getvalue()

    def to_dict(self) -> dict[str, object]:
        return {"config": vars(self.config), "n_features": self.n_features_}

    @classmethod
    def load(cls, data: dict[str, Any], weights: bytes) -> SequencePart:
        import torch

        part = cls(TrainingConfig(**data["config"]))
        part.n_features_ = int(data["n_features"])
        network = _network(part.n_features_, part.config.hidden_size, part.config.num_layers)
        state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
        # A GRU saved before the prior (model format 2) learned the whole logit: a zero
        # prior gives exactly its predictions.
        state.setdefault("prior", torch.zeros(2))
        state.setdefault("prior_feature", torch.zeros((), dtype=torch.long))
        network.load_state_dict(state)
        part.network_ = network.eval()
        return part
