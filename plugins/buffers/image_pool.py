"""The history buffer of generated images (Shrivastava et al. 2017), as in CycleGAN's code.

While not full, each image is stored and returned. Once full, each image is, with probability
0.5, swapped for a stored image chosen at random (the stored one is returned, the new one takes
its place), otherwise returned as is. Size 0 passes images through. The buffer has its own random
generator, seeded from the global one when built, so that its state round-trips exactly.

Across world sizes (``merge_states`` / ``load_share``): the pools of every rank of the run that saved
them form one global pool, dealt position-major (rank 0's first image, rank 1's first, ..., then each
rank's second, ...); rank ``r`` of ``n`` takes the global images ``r, r + n, r + 2n, ...``, at most
``size`` of them. On the same world size that is each rank's own pool again; on fewer ranks each
new pool holds images of several old ranks (the oldest slots of each, when they do not all fit); on
more ranks the pools start part-filled and fill with the next fakes.

A run resumed with another image size (``data.crop_size``) finds images of the old size in its pool:
they are resized (bilinear, antialiased) to the size of the images asked about, so the discriminator
sees one size and the pool stays one tensor in a checkpoint."""
import torch
import torch.nn.functional as F

from cgx.plugins import hookimpl


class ImagePool:
    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"image_pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        self._saved: torch.Tensor | None = None  # state_dict's images until the pool changes (saved once)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        self._match_size(images.shape[-2:])
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self._saved = None
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator).item())
                out.append(self.images[i].to(image.device, image.dtype))
                self._saved = None
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def _match_size(self, size: torch.Size) -> None:
        if self.images and self.images[0].shape[-2:] != size:
            self.images = [F.interpolate(im.float(), size=tuple(size), mode="bilinear", align_corners=False,
                                         antialias=True).to(im.dtype) for im in self.images]
            self._saved = None

    def state_dict(self) -> dict:
        """The same ``images`` tensor while the pool is unchanged: a checkpoint that holds the state twice
        (the method's state and the engine's copy for other world sizes) stores the images once."""
        if self._saved is None:
            self._saved = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": self._saved, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"image_pool: checkpoint holds a pool of size {state['size']}, recipe asks {self.size}")
        device = self.images[0].device if self.images else "cpu"
        self.images = [img.unsqueeze(0).to(device) for img in state["images"]] if state["images"].numel() else []
        self._saved = None
        self.generator.set_state(state["rng"])

    def merge_states(self, states: list[dict]) -> dict:
        """One global pool from the states of every rank that saved them (rank order), dealt position-major."""
        for k, state in enumerate(states):
            if state["size"] != self.size:
                raise ValueError(f"image_pool: rank {k} saved a pool of size {state['size']}, recipe asks {self.size}")
        pools = [s["images"] if s["images"].numel() else None for s in states]
        most = max((len(p) for p in pools if p is not None), default=0)
        dealt = [p[i] for i in range(most) for p in pools if p is not None and i < len(p)]
        return {"size": self.size, "images": torch.stack(dealt) if dealt else torch.empty(0)}

    def load_share(self, pool: dict, rank: int, world_size: int, seed: int) -> None:
        """Rank ``rank`` of ``world_size``: the global images ``rank, rank + world_size, ...`` (at most
        ``size``); the random generator seeded with ``seed``."""
        images = pool["images"][rank::world_size][: self.size] if pool["images"].numel() else []
        device = self.images[0].device if self.images else "cpu"
        self.images = [img.unsqueeze(0).to(device) for img in images]
        self._saved = None
        self.generator.manual_seed(seed)


def build_image_pool(size: int = 50) -> ImagePool:
    """size: images kept per domain (50 in the paper; 0 disables the history)."""
    return ImagePool(size)


@hookimpl
def cgx_register_buffers(register):
    register("image_pool", build_image_pool)
