"""Networks, one file per family: mlp (lesson 01), dcgan (02), cgan (03), wgan (04), cyclegan (05), progan (06), and
stylegan (07). Training algorithms live in gancourse.train; nothing here imports it."""
from gancourse.models.cgan import ConditionalDCGANDiscriminator, ConditionalDCGANGenerator, check_labels
from gancourse.models.cyclegan import (PatchDiscriminator, ResidualBlock, ResnetGenerator, check_image_batch,
                                       patch_layers, receptive_field)
from gancourse.models.dcgan import (DCGANDiscriminator, DCGANGenerator, conv_output_size, dcgan_init_,
                                    transposed_conv_output_size)
from gancourse.models.progan import (EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, ProDiscriminator,
                                     ProGenerator, check_final_size)
from gancourse.models.stylegan import (AdaIN, MappingNetwork, ModulatedConv2d, NoiseInjection, StyleDiscriminator,
                                       StyleGenerator, instance_norm, mix_styles, modulated_conv2d, truncate,
                                       truncated_normal)
from gancourse.models.mlp import MLPDiscriminator, MLPGenerator
from gancourse.models.wgan import DCGANCritic, spectral_normalize

__all__ = ["MLPDiscriminator", "MLPGenerator",
           "DCGANGenerator", "DCGANDiscriminator", "dcgan_init_", "transposed_conv_output_size",
           "conv_output_size", "ConditionalDCGANGenerator", "ConditionalDCGANDiscriminator", "check_labels",
           "DCGANCritic", "spectral_normalize",
           "ResnetGenerator", "ResidualBlock", "PatchDiscriminator", "receptive_field", "patch_layers",
           "check_image_batch", "EqualizedConv2d", "EqualizedLinear", "PixelNorm", "MinibatchStdDev", "ProGenerator",
           "ProDiscriminator", "check_final_size", "MappingNetwork", "ModulatedConv2d", "modulated_conv2d", "AdaIN",
           "instance_norm", "NoiseInjection", "StyleGenerator", "StyleDiscriminator", "mix_styles", "truncate",
           "truncated_normal"]
