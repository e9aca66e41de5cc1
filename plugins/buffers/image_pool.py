"""The history buffer of generated images (Shrivastava et al. 2017), as in CycleGAN's code.

While not full, each image is stored and returned. Once full, each image is, with probability
0.5, swapped for a stored image chosen at random (the stored one is returned, the new one takes
its place), otherwise returned as is. Size 0 passes images through. The buffer has its own random
generator, seeded from the global one when built, so that its state round-trips exactly."""
import torch

from cgx.plugins import hookimpl


class ImagePool:
    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"image_pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator).item())
                out.append(self.images[i].to(image.device, image.dtype))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        images = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": images, "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state["size"] != self.size:
            raise ValueError(f"image_pool: checkpoint holds a pool of size {state['size']}, recipe asks {self.size}")
        device = self.images[0].device if self.images else "cpu"
        self.images = [img.unsqueeze(0).to(device) for img in state["images"]] if state["images"].numel() else []
        self.generator.set_state(state["rng"])


def build_image_pool(size: int = 50) -> ImagePool:
    """size: images kept per domain (50 in the paper; 0 disables the history)."""
    return ImagePool(size)


@hookimpl
def cgx_register_buffers(register):
    register("image_pool", build_image_pool)
