"""No image history: the discriminator sees the current fakes only (same as ``image_pool`` with size 0)."""
import torch

from cgx.plugins import hookimpl


class NoBuffer:
    def query(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def merge_states(self, states: list[dict]) -> dict:
        return {}

    def load_share(self, pool: dict, rank: int, world_size: int, seed: int) -> None:
        pass


def build_none() -> NoBuffer:
    return NoBuffer()


@hookimpl
def cgx_register_buffers(register):
    register("none", build_none)
