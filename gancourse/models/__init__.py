"""Model families, one file each: mlp (lesson 01), and later dcgan, cgan, wgan, cyclegan, progan, stylegan."""
from gancourse.models.mlp import MLPDiscriminator, MLPGenerator

__all__ = ["MLPDiscriminator", "MLPGenerator"]
