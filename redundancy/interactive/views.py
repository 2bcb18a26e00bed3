"""What a workspace shows of its session without a background job: channel maps, predictions, an edit's
difference and per-image scores, and predictions on a visitor's own image (cheap: this process)."""

from __future__ import annotations

import numpy as np
import torch

from ..data import load_image
from ..data.prompts import Prompt
from ..engine.evalset import subset
from ..engine.evaluator import Evaluator
from ..models.base import FEATURES
from ..replace import Edit, apply_map, channel_map, edit_alpha, edit_map, set_map, stack_alphas


class Views:
    """The workspace's views (a mixin: `require`, `metric` and `_image_ev` are the Workspace's)."""

    def features(self, index: int) -> np.ndarray:
        """Search-set image `index`'s channel maps (C, h, w) as numpy (a ViT's patch tokens on its grid)."""
        s = self.require()
        return s.backend.channel_maps(s.evaluator("search").set.feats[index : index + 1])[0].cpu().numpy()

    def outputs(self, indices: list[int], edit: Edit | None = None, pairs: list[tuple] | None = None) -> list:
        """The head's output for search images `indices` with no edit, one edit or a replacement set, at their
        sizes (mask logits (H, W), class logits (K,) or depth (H, W)), from as few decoder calls as they fill."""
        s = self.require()
        c = s.backend.channels
        f, alpha = (edit_map(edit, c), edit_alpha(edit, c)) if edit else set_map(pairs or [], c)
        return s.evaluator("search").logits(f, list(indices), alpha)

    def output(self, index: int, edit: Edit | None = None, pairs: list[tuple[int, int]] | None = None) -> torch.Tensor:
        """The head's output for search image `index` (`outputs` of one image)."""
        return self.outputs([index], edit, pairs)[0]

    def target_view(self, index: int) -> np.ndarray:
        """Search image `index` with its ground truth, as its task pictures it."""
        s = self.require()
        sample = s.search_set.samples[index]
        return s.task.target_view(load_image(sample.image_path), s.task.load_target(sample), s.dataset.classes)

    def prediction_views(
        self, indices: list[int], edit: Edit | None = None, pairs: list[tuple] | None = None
    ) -> list[np.ndarray]:
        """Search images' predictions (no edit, one edit or a set) as their task pictures them."""
        s = self.require()
        views = []
        for k, out in zip(indices, self.outputs(indices, edit, pairs)):
            sample = s.search_set.samples[k]
            image, target = load_image(sample.image_path), s.task.load_target(sample)
            views.append(s.task.prediction_view(image, out, target, s.dataset.classes))
        return views

    def prediction_view(
        self, index: int, edit: Edit | None = None, pairs: list[tuple[int, int]] | None = None
    ) -> np.ndarray:
        """Search image `index`'s prediction (`prediction_views` of one image)."""
        return self.prediction_views([index], edit, pairs)[0]

    def difference_view(self, index: int, edit: Edit | None = None, pairs: list[tuple] | None = None) -> np.ndarray:
        """What an edit or a set changes in search image `index`'s prediction, as its task pictures it."""
        s = self.require()
        sample = s.search_set.samples[index]
        image, target = load_image(sample.image_path), s.task.load_target(sample)
        return s.task.difference_view(image, self.output(index), self.output(index, edit, pairs), target,
                                      s.dataset.classes)  # fmt: skip

    def image_scores(self, index: int, variants: list[Edit | list[tuple] | None]) -> list[float]:
        """Search image `index`'s own score in the task's metric, as a user reads it, under each variant (an edit,
        a replacement set, or None: the model as it is)."""
        return [float(v) for v in self.images_scores([index], variants)[:, 0]]

    def images_scores(self, indices: list[int], variants: list[Edit | list[tuple] | None]) -> np.ndarray:
        """Each of the search images `indices` scored alone (its own IoU, accuracy, RMSE, ...: not pooled into a
        protocol's groups) under each variant, (V, len(indices)), from batched calls over those images only."""
        s = self.require()
        c = s.backend.channels
        maps, alphas = [], []
        for v in variants:
            f, a = (edit_map(v, c), edit_alpha(v, c)) if isinstance(v, Edit) else set_map(v or [], c)
            maps.append(f)
            alphas.append(a)
        ev = self._images_evaluator(tuple(indices))
        m = self.metric()
        stats = ev.stats(torch.stack(maps), alphas=stack_alphas(alphas, c))
        n = len(indices)
        return m.value(s.task.per_group(stats, np.arange(n), n, m.name))

    def showcase_index(self) -> int:
        """The search image the teaching views open on: a typical image the model does well on (its own baseline
        score at the set's upper quartile), so an edit's effect shows; the first image may score 0 before and after."""
        n = len(self.require().search_set)
        scores = self.images_scores(list(range(n)), [None])[0]
        better = scores if self.metric().higher_is_better else -scores
        order = np.argsort(np.nan_to_num(better, nan=-np.inf), kind="stable")  # worst .. best; unscored first
        return int(order[(3 * (n - 1)) // 4])

    def _images_evaluator(self, indices: tuple[int, ...]) -> Evaluator:
        """An evaluator over these search images alone (features shared with the set's); the latest one is kept,
        since a slider drags over one image."""
        ev = self.require().evaluator("search")
        if self._image_ev is None or self._image_ev[:2] != (ev, indices):
            part = Evaluator(ev.backend, subset(ev.set, list(indices)), ev.rows, ev.precision)
            self._image_ev = (ev, indices, part)
        return self._image_ev[2]

    def predict_image(
        self, image: np.ndarray, prompt: Prompt | None, pairs: list[tuple]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """An image of the visitor's own (not in the dataset): the head's output without and with the replacement
        set `pairs`, with a click or box `prompt` where the task takes prompts."""
        s = self.require()
        b = s.backend
        with torch.inference_mode():
            encoded = b.encode([image])
            meta = b.meta(image.shape[:2])
            context = b.context(encoded, [prompt or Prompt()], [meta], s.cfg.mask_choice)
            feats = encoded[FEATURES]
            outs = []
            for x in (feats, apply_map(feats, channel_map(pairs, b.channels))):
                outs.append(b.upscale(b.decode(x, context)[:1], meta)[0])
        return outs[0], outs[1]
