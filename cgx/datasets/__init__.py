"""The CycleGAN and pix2pix authors' data sets: ``cgx datasets list`` and ``cgx datasets fetch``.

``catalog`` (names and URLs), ``download`` (resumable HTTP), ``extract`` (safe unpacking), ``fetch``
(the command's steps). Standard library and tqdm only; nothing here imports torch.
"""
