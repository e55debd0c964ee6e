/* fuzz_util.h — what every libFuzzer target shares: the readers take paths, so each input is
 * written to one in-memory file per process (memfd_create; a file under /tmp when that is not
 * available) and handed over as its /proc/self/fd path; and the oracle for messages, which
 * the issue asks to be one line naming the file. A violated expectation calls abort(), which
 * libFuzzer reports as a crash with the input that caused it. */
#ifndef ANAMO_FUZZ_UTIL_H
#define ANAMO_FUZZ_UTIL_H

#include "anamo.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PATH_MAX 64

/* memfd_create through syscall(2): glibc's wrapper needs _GNU_SOURCE, which C11 builds lack. */
static inline int fuzz_open_file(char *path)
{
#ifdef SYS_memfd_create
    int fd = (int)syscall(SYS_memfd_create, "anamo-fuzz", 0u);
    if (fd >= 0) {
        snprintf(path, FUZZ_PATH_MAX, "/proc/self/fd/%d", fd);
        return fd;
    }
#endif
    snprintf(path, FUZZ_PATH_MAX, "/tmp/anamo-fuzz-%ld", (long)getpid());
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

/* The path of a file holding exactly data[0..size). */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    static char path[FUZZ_PATH_MAX];
    static int fd = -1;
    if (fd < 0 && (fd = fuzz_open_file(path)) < 0) {
        perror("fuzz: cannot create the input file");
        abort();
    }
    size_t done = 0;
    if (ftruncate(fd, 0) != 0)
        abort();
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        if (w <= 0)
            abort();
        done += (size_t)w;
    }
    return path;
}

/* A failure must say something, on one line, and name the file it is about. */
static inline void fuzz_check_error(int rc, const anamo_err *err, const char *path)
{
    if (rc == ANAMO_OK)
        return;
    if (err->code != rc || !err->msg[0]) {
        fprintf(stderr, "fuzz: status %d with err.code %d and message '%s'\n", rc, err->code,
                err->msg);
        abort();
    }
    if (strpbrk(err->msg, "\n\r")) {
        fprintf(stderr, "fuzz: message is not one line: '%s'\n", err->msg);
        abort();
    }
    if (path && !strstr(err->msg, path)) {
        fprintf(stderr, "fuzz: message does not name %s: '%s'\n", path, err->msg);
        abort();
    }
}

/* A dataset a reader accepted must be what it claims: touching every byte lets ASan see an
 * allocation shorter than n × dim. */
static inline void fuzz_check_dataset(const anamo_dataset *ds)
{
    if (ds->n < 1 || ds->dim < 1 || ds->dim != (int64_t)ds->c * ds->h * ds->w || !ds->data) {
        fprintf(stderr, "fuzz: dataset n %lld dim %lld c %d h %d w %d data %p\n",
                (long long)ds->n, (long long)ds->dim, ds->c, ds->h, ds->w, ds->data);
        abort();
    }
    size_t bytes = (size_t)(ds->n * ds->dim) * (ds->dtype == ANAMO_U8 ? 1 : sizeof(float));
    const volatile uint8_t *p = ds->data;
    uint8_t acc = 0;
    for (size_t i = 0; i < bytes; i += 61)
        acc ^= p[i];
    acc ^= p[bytes - 1];
    (void)acc;
}

#endif
