/* fuzz_cifar.c — libFuzzer target for the CIFAR-10 batch reader (anamo_cifar_read): records of
 * a label byte and 3072 pixels, plain or gzip (with the gzip trailer's size as the allocation
 * hint). The input is read once alone and once twice over, as the training batches are read
 * together; an accepted set has its labels below 10 and twice the samples when read twice. */
#include "fuzz_util.h"

#include "data/data.h"

#define CIFAR_CLASSES 10

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    anamo_dataset one, two;
    int rc = anamo_cifar_read(&path, 1, &one, &err);
    fuzz_check_error(rc, &err, path);
    const char *both[2] = {path, path};
    anamo_err err2 = {0};
    int rc2 = anamo_cifar_read(both, 2, &two, &err2);
    fuzz_check_error(rc2, &err2, path);
    if ((rc == ANAMO_OK) != (rc2 == ANAMO_OK))
        abort(); /* the same file cannot be good alone and bad in company */
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&one);
        fuzz_check_dataset(&two);
        if (two.n != 2 * one.n || !one.labels || !two.labels)
            abort();
        for (int64_t i = 0; i < two.n; i++)
            if (two.labels[i] >= CIFAR_CLASSES || two.labels[i] != one.labels[i % one.n])
                abort();
        anamo_dataset_free(&one);
        anamo_dataset_free(&two);
    }
    return 0;
}
