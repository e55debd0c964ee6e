/* bench_conv.c — training throughput of seed 000's convolutional CIFAR-10 autoencoder
 * (3×32×32 → 48×4×4 → 3×32×32, three Conv2d and three ConvTranspose2d layers, MSE, batch 125,
 * Adam) and the peak memory of a NAM run on the full training set. How: throughput.h; what each
 * line means: bench/README.md. */
#include "throughput.h"

int main(int argc, char **argv)
{
    const bench_model conv = {
        .name = "bench_conv",
        /* 10,000 images: five repetitions and the memory job in under 3 minutes (epochs
         * over the whole 50,000 give the same rates, 5× slower to measure) */
        .data_spec = "cifar10:train@10000",
        .encoder = "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, conv2d 48 k4 s2 p1, relu",
        .decoder = "convtranspose2d 24 k4 s2 p1, relu, convtranspose2d 12 k4 s2 p1, relu, "
                   "convtranspose2d 3 k4 s2 p1, sigmoid",
        .config = "experiments/cifar-nam-vs-joint.ini",
        .job_args = {"train", "CONFIG", "--set", "train.scheme=nam", "--set", "train.epochs=2",
                     NULL}};
    return bench_main(argc, argv, &conv);
}
