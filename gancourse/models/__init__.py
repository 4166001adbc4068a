"""Model families, one file each: mlp (lesson 01), dcgan (02), cgan (03), wgan (04), and later cyclegan, progan, stylegan."""
from gancourse.models.cgan import (ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, ConditionalGAN,
                                   check_labels)
from gancourse.models.dcgan import (DCGANDiscriminator, DCGANGenerator, conv_output_size, dcgan_init_,
                                    transposed_conv_output_size)
from gancourse.models.mlp import MLPDiscriminator, MLPGenerator
from gancourse.models.wgan import DCGANCritic, WassersteinGAN, spectral_normalize

__all__ = ["MLPDiscriminator", "MLPGenerator",
           "DCGANGenerator", "DCGANDiscriminator", "dcgan_init_", "transposed_conv_output_size",
           "conv_output_size",
           "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator", "ConditionalGAN", "check_labels",
           "DCGANCritic", "WassersteinGAN", "spectral_normalize"]
