/* fault_shim.c — an LD_PRELOAD library that makes the Nth fault point of one kind fail, for
 * tests/test_faults.c. It interposes on the C library's allocation, file-writing, rename and
 * fsync functions; armed by environment variables, it counts the calls of one kind and fails
 * the Nth, as a full disk, a failing disk or exhausted memory would:
 *
 *   FAULT_KIND    alloc   malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign
 *                         return NULL (ENOMEM)
 *                 create  fopen for writing, open with O_WRONLY/O_RDWR/O_CREAT, mkdir fail
 *                         with ENOSPC
 *                 write   fwrite, fputs, fputc, putc, fprintf, vfprintf, fflush, fclose of a
 *                         stream open for writing, write: ENOSPC; the stream stays broken (its
 *                         later writes fail too, uncounted), as on a full disk; fclose closes
 *                         the stream and then reports the error
 *                 rename  rename, renameat fail with EIO and rename nothing
 *                 fsync   fsync, fdatasync fail with EIO
 *   FAULT_N       the point that fails, from 1; 0 (the default) fails none and only counts
 *   FAULT_AFTER   when set, counting starts once the process opens, creates or renames a path
 *                 containing this text
 *   FAULT_REPORT  a file: the shim appends "fault KIND N FUNCTION from MODULE+OFFSET" when
 *                 it fails a point, and "points KIND COUNT" when the process exits normally
 *   FAULT_PROGRAM the short name of the program to arm (default "anamo"): programs that the
 *                 armed one starts (gnuplot through system()) inherit LD_PRELOAD, not the fault
 *
 * Only the main thread counts, so that the Nth point is the same call in every run of a
 * deterministic program; streams and descriptors 0-2 are never failed (the error message must
 * get out). Allocations by libgomp, OpenBLAS, oneDNN (its own and its C++ operator new's in
 * libstdc++: anamo itself is C), stb and the dynamic loader are not counted: those libraries
 * end the process on a failed allocation (libgomp: "out of memory", exit 1; stb_image_write:
 * an assert, abort; oneDNN: an uncaught std::bad_alloc outside primitive creation), a policy
 * anamo cannot change from outside them.
 * Everything else the program's main thread allocates is: anamo's own calls, and the C
 * library's, cJSON's, inih's, zlib's on its behalf, and the
 * work arrays src/core/lapack.c allocates for OpenBLAS's LAPACK.
 *
 * Under AddressSanitizer the shim must come before libasan in the preload list (its malloc
 * wraps ASan's, found with dlsym(RTLD_NEXT)), which needs ASAN_OPTIONS=verify_asan_link_order=0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SHIM_EXPORT __attribute__((visibility("default")))
#define BOOT_BYTES 65536 /* dlsym's own allocations, before the real calloc is known */
#define MAX_BROKEN 64    /* streams a write fault has broken, at once */
#define MAX_EXCLUDED 64  /* mapped segments of the libraries whose allocations are not counted */

enum { K_NONE, K_ALLOC, K_CREATE, K_WRITE, K_RENAME, K_FSYNC };
static const char *const KIND_NAMES[] = {"none", "alloc", "create", "write", "rename", "fsync"};

/* The shim's state: set once by the constructor, then changed only by the main thread. */
static struct {
    int ready; /* the constructor has run: counting may start */
    int kind;
    long long n;       /* the point to fail; 0: none */
    long long count;   /* points of the kind seen so far */
    const char *after; /* counting waits for a path containing this; NULL: from the start */
    int gate_open;
    const char *report;
    pid_t pid; /* the armed process (a fork's child is not) */
    FILE *broken[MAX_BROKEN];
    uintptr_t excluded[MAX_EXCLUDED][2];
    int nexcluded;
} S;

static __thread int in_shim __attribute__((tls_model("initial-exec")));

/* ---- the real functions --------------------------------------------------------------------- */

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static void *(*real_aligned_alloc)(size_t, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static FILE *(*real_fopen)(const char *, const char *);
static FILE *(*real_fopen64)(const char *, const char *);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_mkdir)(const char *, mode_t);
static size_t (*real_fwrite)(const void *, size_t, size_t, FILE *);
static int (*real_fputs)(const char *, FILE *);
static int (*real_fputc)(int, FILE *);
static int (*real_putc)(int, FILE *);
static int (*real_vfprintf)(FILE *, const char *, va_list);
static int (*real_fflush)(FILE *);
static int (*real_fclose)(FILE *);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static char boot[BOOT_BYTES] __attribute__((aligned(64)));
static size_t boot_used;
static int resolving;

static void *boot_alloc(size_t bytes)
{
    size_t at = (boot_used + 63) / 64 * 64;
    if (at + bytes > sizeof boot)
        return NULL;
    boot_used = at + bytes;
    return boot + at;
}

static int from_boot(const void *p)
{
    return (const char *)p >= boot && (const char *)p < boot + sizeof boot;
}

/* through memcpy: ISO C has no cast from dlsym's object pointer to a function pointer */
#define RESOLVE(name)                             \
    do {                                          \
        void *sym_ = dlsym(RTLD_NEXT, #name);     \
        memcpy(&real_##name, &sym_, sizeof sym_); \
    } while (0)

static void resolve(void)
{
    if (real_free || resolving)
        return;
    resolving = 1;
    RESOLVE(calloc);
    RESOLVE(malloc);
    RESOLVE(realloc);
    RESOLVE(aligned_alloc);
    RESOLVE(posix_memalign);
    RESOLVE(memalign);
    RESOLVE(fopen);
    RESOLVE(fopen64);
    RESOLVE(open);
    RESOLVE(open64);
    RESOLVE(openat);
    RESOLVE(mkdir);
    RESOLVE(fwrite);
    RESOLVE(fputs);
    RESOLVE(fputc);
    RESOLVE(putc);
    RESOLVE(vfprintf);
    RESOLVE(fflush);
    RESOLVE(fclose);
    RESOLVE(write);
    RESOLVE(rename);
    RESOLVE(renameat);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(free); /* last: real_free set means everything is */
    resolving = 0;
}

/* ---- reporting ------------------------------------------------------------------------------ */

/* Appends text to FAULT_REPORT with system calls only (no stdio, no allocation). */
static void report_line(const char *text)
{
    if (!S.report)
        return;
    int fd = (int)syscall(SYS_openat, AT_FDCWD, S.report, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return;
    size_t len = strlen(text);
    (void)!syscall(SYS_write, fd, text, len);
    syscall(SYS_close, fd);
}

static void report_fault(const char *func, const void *caller)
{
    char line[512];
    Dl_info info = {0};
    in_shim++;
    int known = dladdr(caller, &info) && info.dli_fname;
    in_shim--;
    const char *module = known ? strrchr(info.dli_fname, '/') : NULL;
    module = module ? module + 1 : known ? info.dli_fname : "?";
    snprintf(line, sizeof line, "fault %s %lld %s from %s+0x%lx%s%s\n", KIND_NAMES[S.kind], S.n,
             func, module,
             (unsigned long)((uintptr_t)caller - (known ? (uintptr_t)info.dli_fbase : 0)),
             known && info.dli_sname ? " " : "", known && info.dli_sname ? info.dli_sname : "");
    report_line(line);
}

/* ---- counting ------------------------------------------------------------------------------- */

static int main_thread(void) { return (pid_t)syscall(SYS_gettid) == S.pid && getpid() == S.pid; }

static void see_path(const char *path)
{
    if (S.ready && !S.gate_open && path && strstr(path, S.after) && main_thread())
        S.gate_open = 1;
}

/* Whether this call, a point of kind, is the one to fail (counting it). */
static int strike(int kind, const char *func, const void *caller)
{
    if (!S.ready || S.kind != kind || !S.gate_open || in_shim || !main_thread())
        return 0;
    if (++S.count != S.n)
        return 0;
    report_fault(func, caller);
    return 1;
}

static int excluded_caller(const void *caller)
{
    for (int i = 0; i < S.nexcluded; i++)
        if ((uintptr_t)caller >= S.excluded[i][0] && (uintptr_t)caller < S.excluded[i][1])
            return 1;
    return 0;
}

static int alloc_strike(const char *func, const void *caller)
{
    return S.kind == K_ALLOC && !excluded_caller(caller) && strike(K_ALLOC, func, caller);
}

static int is_std(FILE *f)
{
    return f == stdin || f == stdout || f == stderr || (f && fileno(f) >= 0 && fileno(f) <= 2);
}

static int broken_at(FILE *f)
{
    for (int i = 0; i < MAX_BROKEN; i++)
        if (S.broken[i] == f)
            return i;
    return -1;
}

/* Whether a write to f fails: f is broken, or this is the point (then f breaks). */
static int write_fails(FILE *f, const char *func, const void *caller)
{
    if (S.kind != K_WRITE || !S.ready || !f || is_std(f) || !main_thread())
        return 0;
    if (broken_at(f) >= 0)
        return errno = ENOSPC, 1;
    if (!__fwritable(f) || !strike(K_WRITE, func, caller))
        return 0;
    int free_slot = broken_at(NULL);
    if (free_slot >= 0)
        S.broken[free_slot] = f;
    errno = ENOSPC;
    return 1;
}

static int collect_excluded(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    static const char *const NAMES[] = {"libgomp",  "libopenblas", "libgfortran", "libstb",
                                        "libdnnl",  "libstdc++",   "ld-linux",    "libasan",
                                        "libubsan", "liblsan"};
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    int match = 0;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        match |= strstr(name, NAMES[i]) != NULL;
    for (int i = 0; match && i < info->dlpi_phnum && S.nexcluded < MAX_EXCLUDED; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        S.excluded[S.nexcluded][0] = info->dlpi_addr + ph->p_vaddr;
        S.excluded[S.nexcluded][1] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        S.nexcluded++;
    }
    return 0;
}

__attribute__((constructor)) static void shim_init(void)
{
    resolve();
    const char *kind = getenv("FAULT_KIND"), *program = getenv("FAULT_PROGRAM");
    if (!kind || strcmp(program_invocation_short_name, program ? program : "anamo"))
        return;
    for (int k = K_ALLOC; k <= K_FSYNC; k++)
        if (!strcmp(kind, KIND_NAMES[k]))
            S.kind = k;
    const char *n = getenv("FAULT_N");
    S.n = n ? strtoll(n, NULL, 10) : 0;
    S.after = getenv("FAULT_AFTER");
    S.gate_open = !S.after || !*S.after;
    S.report = getenv("FAULT_REPORT");
    S.pid = getpid();
    in_shim++;
    dl_iterate_phdr(collect_excluded, NULL);
    in_shim--;
    S.ready = S.kind != K_NONE;
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!S.ready || getpid() != S.pid)
        return;
    char line[128];
    snprintf(line, sizeof line, "points %s %lld\n", KIND_NAMES[S.kind], S.count);
    report_line(line);
}

/* ---- allocation ----------------------------------------------------------------------------- */

#define CALLER __builtin_return_address(0)

SHIM_EXPORT void *malloc(size_t size)
{
    if (!real_malloc) {
        resolve();
        if (!real_malloc)
            return boot_alloc(size);
    }
    if (alloc_strike("malloc", CALLER))
        return errno = ENOMEM, NULL;
    return real_malloc(size);
}

SHIM_EXPORT void *calloc(size_t n, size_t size)
{
    if (!real_calloc) {
        resolve();
        if (!real_calloc)
            return size && n > SIZE_MAX / size ? NULL : boot_alloc(n * size); /* zeroed: static */
    }
    if (alloc_strike("calloc", CALLER))
        return errno = ENOMEM, NULL;
    return real_calloc(n, size);
}

SHIM_EXPORT void *realloc(void *p, size_t size)
{
    if (from_boot(p)) { /* never happens in practice: dlsym's buffers are not grown */
        void *q = malloc(size);
        size_t left = (size_t)(boot + sizeof boot - (char *)p);
        if (q)
            memcpy(q, p, size < left ? size : left);
        return q;
    }
    resolve();
    if (size > 0 && alloc_strike("realloc", CALLER))
        return errno = ENOMEM, NULL;
    return real_realloc(p, size);
}

SHIM_EXPORT void free(void *p)
{
    if (!p || from_boot(p))
        return;
    resolve();
    real_free(p);
}

SHIM_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    resolve();
    if (alloc_strike("aligned_alloc", CALLER))
        return errno = ENOMEM, NULL;
    return real_aligned_alloc(align, size);
}

SHIM_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    resolve();
    if (alloc_strike("posix_memalign", CALLER))
        return ENOMEM;
    return real_posix_memalign(out, align, size);
}

SHIM_EXPORT void *memalign(size_t align, size_t size)
{
    resolve();
    if (alloc_strike("memalign", CALLER))
        return errno = ENOMEM, NULL;
    return real_memalign(align, size);
}

/* ---- creating files and directories --------------------------------------------------------- */

static int writing_mode(const char *mode)
{
    return mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
}

SHIM_EXPORT FILE *fopen(const char *path, const char *mode)
{
    resolve();
    see_path(path);
    if (writing_mode(mode) && strike(K_CREATE, "fopen", CALLER))
        return errno = ENOSPC, NULL;
    return real_fopen(path, mode);
}

SHIM_EXPORT FILE *fopen64(const char *path, const char *mode)
{
    resolve();
    see_path(path);
    if (writing_mode(mode) && strike(K_CREATE, "fopen64", CALLER))
        return errno = ENOSPC, NULL;
    return real_fopen64(path, mode);
}

#define WRITING_FLAGS (O_WRONLY | O_RDWR | O_CREAT)

static mode_t mode_arg(int flags, va_list ap)
{
    return flags & (O_CREAT | O_TMPFILE) ? (mode_t)va_arg(ap, int) : 0;
}

SHIM_EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    resolve();
    see_path(path);
    if ((flags & WRITING_FLAGS) && strike(K_CREATE, "open", CALLER))
        return errno = ENOSPC, -1;
    return real_open(path, flags, mode);
}

SHIM_EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    resolve();
    see_path(path);
    if ((flags & WRITING_FLAGS) && strike(K_CREATE, "open64", CALLER))
        return errno = ENOSPC, -1;
    return real_open64(path, flags, mode);
}

SHIM_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    resolve();
    see_path(path);
    if ((flags & WRITING_FLAGS) && strike(K_CREATE, "openat", CALLER))
        return errno = ENOSPC, -1;
    return real_openat(dirfd, path, flags, mode);
}

SHIM_EXPORT int mkdir(const char *path, mode_t mode)
{
    resolve();
    see_path(path);
    if (strike(K_CREATE, "mkdir", CALLER))
        return errno = ENOSPC, -1;
    return real_mkdir(path, mode);
}

/* ---- writing -------------------------------------------------------------------------------- */

SHIM_EXPORT size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    resolve();
    if (n && size && write_fails(f, "fwrite", CALLER))
        return 0;
    return real_fwrite(p, size, n, f);
}

SHIM_EXPORT int fputs(const char *s, FILE *f)
{
    resolve();
    if (write_fails(f, "fputs", CALLER))
        return EOF;
    return real_fputs(s, f);
}

SHIM_EXPORT int fputc(int c, FILE *f)
{
    resolve();
    if (write_fails(f, "fputc", CALLER))
        return EOF;
    return real_fputc(c, f);
}

SHIM_EXPORT int putc(int c, FILE *f)
{
    resolve();
    if (write_fails(f, "putc", CALLER))
        return EOF;
    return real_putc(c, f);
}

SHIM_EXPORT int vfprintf(FILE *f, const char *fmt, va_list ap)
{
    resolve();
    if (write_fails(f, "vfprintf", CALLER))
        return -1;
    return real_vfprintf(f, fmt, ap);
}

SHIM_EXPORT int fprintf(FILE *f, const char *fmt, ...)
{
    resolve();
    if (write_fails(f, "fprintf", CALLER))
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = real_vfprintf(f, fmt, ap);
    va_end(ap);
    return rc;
}

SHIM_EXPORT int fflush(FILE *f)
{
    resolve();
    if (f && write_fails(f, "fflush", CALLER))
        return EOF;
    return real_fflush(f);
}

/* The stream is closed either way (no leak); a failed point reports the error afterwards. */
SHIM_EXPORT int fclose(FILE *f)
{
    resolve();
    int fails = write_fails(f, "fclose", CALLER);
    int slot = S.ready ? broken_at(f) : -1;
    if (slot >= 0 && main_thread())
        S.broken[slot] = NULL;
    int rc = real_fclose(f);
    if (fails)
        return errno = ENOSPC, EOF;
    return rc;
}

SHIM_EXPORT ssize_t write(int fd, const void *p, size_t n)
{
    resolve();
    if (fd > 2 && n > 0 && strike(K_WRITE, "write", CALLER))
        return errno = ENOSPC, -1;
    return real_write(fd, p, n);
}

/* ---- renaming and syncing ------------------------------------------------------------------- */

SHIM_EXPORT int rename(const char *from, const char *to)
{
    resolve();
    see_path(from);
    see_path(to);
    if (strike(K_RENAME, "rename", CALLER))
        return errno = EIO, -1;
    return real_rename(from, to);
}

SHIM_EXPORT int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    resolve();
    see_path(from);
    see_path(to);
    if (strike(K_RENAME, "renameat", CALLER))
        return errno = EIO, -1;
    return real_renameat(fromfd, from, tofd, to);
}

SHIM_EXPORT int fsync(int fd)
{
    resolve();
    if (strike(K_FSYNC, "fsync", CALLER))
        return errno = EIO, -1;
    return real_fsync(fd);
}

SHIM_EXPORT int fdatasync(int fd)
{
    resolve();
    if (strike(K_FSYNC, "fdatasync", CALLER))
        return errno = EIO, -1;
    return real_fdatasync(fd);
}
