"""Interop with the CycleGAN authors' code (junyanz/pytorch-CycleGAN-and-pix2pix) and deployment
runtimes: read and write their network files, import them as a cgx run, export generators."""
