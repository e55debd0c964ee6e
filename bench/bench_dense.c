/* bench_dense.c — training throughput of the core MNIST autoencoder (encoder 784→128→64,
 * decoder 64→128→784, ReLU/sigmoid, MSE, batch 125, Adam) and the peak memory of the main job
 * (NAM versus joint). How: throughput.h; what each line means: bench/README.md. */
#include "throughput.h"

int main(int argc, char **argv)
{
    const bench_model dense = {.name = "bench_dense",
                               .data_spec = "mnist:train",
                               .encoder = "linear 128, relu, linear 64, relu",
                               .decoder = "linear 128, relu, linear 784, sigmoid",
                               .config = "experiments/mnist-nam-vs-joint.ini",
                               .job_args = {"compare", "CONFIG", NULL}};
    return bench_main(argc, argv, &dense);
}
