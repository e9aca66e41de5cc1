"""cgx: CycleGAN-style unpaired image-to-image translation at cluster scale."""
__version__ = "0.1.0"
